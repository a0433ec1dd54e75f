// Debian's nginx running docker/nginx.conf in front of local iorelay nodes, as a child
// process the test owns (no daemon, every file under a temporary folder).
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { freePort } from "./iorelay.mjs";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The configuration docker-compose.yml mounts into the nginx container. */
export const nginxConfPath = path.join(repoRoot, "docker", "nginx.conf");

/** Replaces every match of `pattern` (a global regex) and fails unless there were `count`. */
function replaceExactly(text, pattern, count, replacer, what) {
  const found = text.match(pattern)?.length ?? 0;
  if (found !== count) throw new Error(`docker/nginx.conf: expected ${count} ${what}, found ${found}`);
  return text.replace(pattern, replacer);
}

/**
 * docker/nginx.conf made runnable outside the container, changing nothing else: the `listen`
 * port, the upstream `server` lines (in order) and the paths of the pid file, the logs and the
 * temporary folders, which go under `dir`. With `sticky: false` the `hash ... consistent;`
 * line is removed too, which leaves nginx's default round robin. Each rewrite fails when the
 * line it replaces is missing, so a test never runs a config other than the one it claims.
 */
export function localNginxConf(text, { port, upstreams, dir, sticky = true }) {
  let conf = text;
  conf = replaceExactly(conf, /^(\s*)listen\s+[^;]+;/gm, 1, (_, indent) => `${indent}listen 127.0.0.1:${port};`, "listen line");
  let next = 0;
  conf = replaceExactly(
    conf,
    /^(\s*)server\s+[^\s{;]+;/gm,
    upstreams.length,
    (_, indent) => `${indent}server ${upstreams[next++]};`,
    "upstream server lines",
  );
  conf = replaceExactly(conf, /^(\s*)pid\s+[^;]+;/gm, 1, (_, indent) => `${indent}pid ${dir}/nginx.pid;`, "pid line");
  conf = replaceExactly(
    conf,
    /^(\s*)error_log\s+\S+?(\s+\w+)?;/gm,
    1,
    (_, indent, level = "") => `${indent}error_log ${dir}/error.log${level};`,
    "error_log line",
  );
  conf = replaceExactly(
    conf,
    /^(\s*)access_log\s+\S+?(\s+\w+)?;/gm,
    1,
    (_, indent, format = "") => `${indent}access_log ${dir}/access.log${format};`,
    "access_log line",
  );
  // Debian's nginx keeps its temporary folders under /var/lib/nginx, which only root may write.
  const tempPaths = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `    ${kind}_temp_path ${dir}/${kind}_temp;`)
    .join("\n");
  conf = replaceExactly(conf, /^http\s*\{$/gm, 1, (line) => `${line}\n${tempPaths}`, "http block");
  if (!sticky) {
    conf = replaceExactly(conf, /^\s*hash\s+\$remote_addr\s+consistent;\s*\n/gm, 1, "", "hash line");
  }
  return conf;
}

/**
 * Starts nginx on a free loopback port with docker/nginx.conf rewritten by `localNginxConf`
 * for `upstreams` (`host:port` strings), and waits until `/healthz` answers through it.
 * Returns `{ url, port, accessLog(), errorLog(), stop() }`.
 */
export async function startNginx({ upstreams, sticky = true, readyTimeoutMs = 10_000 }) {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), "iorelay-nginx-"));
  // Run as root, nginx's workers drop to `nobody`, which must reach the temporary folders.
  await chmod(dir, 0o755);
  const confFile = path.join(dir, "nginx.conf");
  await writeFile(confFile, localNginxConf(await readFile(nginxConfPath, "utf8"), { port, upstreams, dir, sticky }));

  const child = spawn("nginx", ["-p", dir, "-c", confFile, "-e", path.join(dir, "error.log"), "-g", "daemon off;"], {
    // Debian installs nginx in /usr/sbin, which is not on a non-root user's PATH.
    env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  let exited = false;
  const exitPromise = new Promise((resolve) => {
    child.on("error", (err) => {
      exited = true;
      output += `\n${err.message} (install it with: apt-get install nginx)`;
      resolve({ code: null, signal: null });
    });
    child.on("exit", (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });
  const readLog = (name) => readFile(path.join(dir, name), "utf8").catch(() => "");

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) throw new Error(`nginx exited before it was ready:\n${output}\n${await readLog("error.log")}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx was not ready within ${readyTimeoutMs} ms:\n${output}\n${await readLog("error.log")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    url,
    port,
    accessLog: () => readLog("access.log"),
    errorLog: () => readLog("error.log"),
    /** Fast shutdown (SIGTERM: open WebSockets would hold a graceful one), then cleanup. */
    async stop(timeoutMs = 5_000) {
      if (!exited) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        await exitPromise;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
