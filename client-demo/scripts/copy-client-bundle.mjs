// Copies socket.io-client's browser bundles into dist/socket.io/, where iorelay
// serves them as /socket.io/socket.io.js (and .min.js, .esm.min.js, maps) for
// pages that load the client with a plain <script> tag.
import { copyFile, mkdir, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const bundles = [
  "socket.io.js",
  "socket.io.js.map",
  "socket.io.min.js",
  "socket.io.min.js.map",
  "socket.io.esm.min.js",
  "socket.io.esm.min.js.map",
];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
// The package's "exports" hide package.json, so start from its resolved entry.
const clientDir = findPackageDir(path.dirname(require.resolve("socket.io-client")));
const from = path.join(clientDir, "dist");
const to = path.join(root, "dist", "socket.io");

function findPackageDir(dir) {
  while (path.basename(dir) !== "socket.io-client") {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("socket.io-client is not installed: run npm ci");
    dir = parent;
  }
  return dir;
}

async function exists(file) {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

await mkdir(to, { recursive: true });
const copied = [];
for (const name of bundles) {
  const source = path.join(from, name);
  if (!(await exists(source))) continue;
  await copyFile(source, path.join(to, name));
  copied.push(name);
}
if (!copied.includes("socket.io.js")) {
  throw new Error(`socket.io.js not found in ${from}`);
}
console.log(`copied ${copied.length} socket.io-client bundles to ${path.relative(root, to)}/: ${copied.join(", ")}`);
