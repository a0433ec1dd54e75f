// Copies the socket.io-client browser bundles that Node socket.io serves (its client-dist/) into
// public/socket.io/. iorelay answers /socket.io/socket.io.js from <--static-dir>/socket.io/, so
// the page loads the same bundle from either server. Runs after `npm ci`.
import { copyFile, mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const bundles = ["socket.io.js", "socket.io.js.map", "socket.io.min.js", "socket.io.min.js.map"];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const from = path.join(path.dirname(require.resolve("socket.io/package.json")), "client-dist");
const to = path.join(root, "public", "socket.io");

await mkdir(to, { recursive: true });
await Promise.all(bundles.map((name) => copyFile(path.join(from, name), path.join(to, name))));
console.log(`copied ${bundles.join(", ")} to ${path.relative(root, to)}/`);
