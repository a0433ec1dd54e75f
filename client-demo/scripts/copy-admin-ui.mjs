// Copies the Socket.IO Admin UI (the built page that @socket.io/admin-ui ships in ui/dist/)
// into dist/admin/, where iorelay serves it at /admin/ when started with --admin-ui.
// The files are copied unchanged: the page is the official one, not a rebuild.
import { cp, readdir, rm, stat } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const packageDir = path.dirname(require.resolve("@socket.io/admin-ui/package.json"));
const { version } = require("@socket.io/admin-ui/package.json");
const from = path.join(packageDir, "ui", "dist");
const to = path.join(root, "dist", "admin");

try {
  await stat(path.join(from, "index.html"));
} catch {
  throw new Error(`no Admin UI page in ${from}: run npm ci in client-demo/`);
}
// A previous build may hold files with other content hashes in their names.
await rm(to, { recursive: true, force: true });
await cp(from, to, { recursive: true });
const count = (await readdir(to, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).length;
console.log(`copied the Admin UI of @socket.io/admin-ui ${version} (${count} files) to ${path.relative(root, to)}/`);
