// A real redis-server on a free loopback port, started and stopped by the test.
import { spawn } from "node:child_process";
import net from "node:net";

import { freePort } from "./iorelay.mjs";

/** Resolves with true when something on `port` answers PING with +PONG. */
function answersPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let reply = "";
    const done = (ok) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"));
    });
    socket.on("error", () => done(false));
  });
}

/**
 * Starts redis-server without persistence (on `port`, or a free one) and waits until it
 * answers PING. Returns `{ url, port, stop() }`.
 */
export async function startRedis({ readyTimeoutMs = 10_000, port: wanted } = {}) {
  // A given `port` restarts a stopped server where its clients look for it.
  const port = wanted ?? (await freePort());
  const child = spawn(
    "redis-server",
    ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no", "--protected-mode", "no"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  let exited = false;
  const exitPromise = new Promise((resolve) => {
    child.on("error", (err) => {
      exited = true;
      output += `\n${err.message} (install it with: apt-get install redis-server)`;
      resolve({ code: null, signal: null });
    });
    child.on("exit", (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
  });

  const deadline = Date.now() + readyTimeoutMs;
  while (!(await answersPing(port))) {
    if (exited) throw new Error(`redis-server exited before it was ready:\n${output}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server was not ready within ${readyTimeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop(timeoutMs = 5_000) {
      if (exited) return exitPromise;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const result = await exitPromise;
      clearTimeout(timer);
      return result;
    },
  };
}
