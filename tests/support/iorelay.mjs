// Starts the real iorelay binary on a free loopback port for end-to-end tests.
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Path of the iorelay binary under test (`IORELAY_BIN` overrides the debug build). */
export const iorelayBin = process.env.IORELAY_BIN ?? path.join(repoRoot, "target", "debug", "iorelay");

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/**
 * Starts iorelay with `args` (on top of `--host 127.0.0.1 --port <port>`) and waits until
 * `/healthz` answers. Returns `{ url, port, logs(), stop() }`.
 */
export async function startIorelay({ args = [], env = {}, port, readyTimeoutMs = 20_000 } = {}) {
  port ??= await freePort();
  const child = spawn(iorelayBin, ["--host", "127.0.0.1", "--port", String(port), ...args], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info", NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  let exited = false;
  const exitPromise = once(child, "exit").then(([code, signal]) => {
    exited = true;
    return { code, signal };
  });

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exited) throw new Error(`iorelay exited before it was ready:\n${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`iorelay was not ready within ${readyTimeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    url,
    port,
    pid: child.pid,
    logs: () => output,
    /** Sends SIGTERM and waits for the exit, killing the process if it lingers. */
    async stop(timeoutMs = 15_000) {
      if (exited) return exitPromise;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const result = await exitPromise;
      clearTimeout(timer);
      return result;
    },
  };
}
