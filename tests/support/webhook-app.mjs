// A real HTTP app on 127.0.0.1 that receives iorelay's event webhooks, as an express app behind
// iorelay would: it checks `X-Iorelay-Signature`, records every call in arrival order with its
// timing, and answers as each test scripts it (slowly, with garbage, with a non-2xx status, or
// not at all once stopped).
import { createHmac, timingSafeEqual } from "node:crypto";
import { once } from "node:events";
import http from "node:http";

import { sleep, waitUntil } from "./clients.mjs";

/** `sha256=<hex HMAC-SHA256 of body with secret>`, as the app computes it. */
export function signatureOf(secret, body) {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** Whether `header` is the signature of `body` under `secret`, compared in constant time. */
export function signatureMatches(secret, body, header) {
  if (typeof header !== "string") return false;
  const expected = Buffer.from(signatureOf(secret, body));
  const presented = Buffer.from(header);
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

/**
 * A scripted answer:
 * - `{ json }`: that value as the JSON body (status 200 unless `status` says otherwise);
 * - `{ body }`: that string or Buffer as is (with `contentType`, default text/plain);
 * - `{ status }`: the HTTP status;
 * - `{ delayMs }`: wait that long before answering;
 * - `{ hangUp: true }`: destroy the connection without answering.
 * A script is a function `(call) => answer | undefined`; `undefined` lets the next one decide.
 * With no script deciding, the app answers `200 {}`.
 */

/**
 * Starts the app; `port` reuses a port (to bring a stopped app back where iorelay calls it).
 * Returns a {@link WebhookApp}.
 */
export async function startWebhookApp({ secret, port = 0, path = "/hook" } = {}) {
  if (!secret) throw new Error("startWebhookApp needs the secret iorelay signs with");
  const app = new WebhookApp(secret, path);
  await app.listen(port);
  return app;
}

export class WebhookApp {
  constructor(secret, path) {
    this.secret = secret;
    this.path = path;
    /**
     * Every call in arrival order:
     * `{ seq, type, namespace, event, body, raw, headers, signatureOk, receivedAt, answeredAt, status }`.
     * Times are `performance.now()` milliseconds; `answeredAt` is null until answered.
     */
    this.calls = [];
    /** Requests that did not carry a valid signature (answered 401). */
    this.rejected = [];
    this.scripts = [];
    this.inFlight = 0;
    this.maxInFlight = 0;
    this.server = null;
    this.port = null;
    this.sockets = new Set();
  }

  /** The URL to give iorelay as `--webhook-url`. */
  get url() {
    return `http://127.0.0.1:${this.port}${this.path}`;
  }

  async listen(port = 0) {
    const server = http.createServer((req, res) => this.onRequest(req, res));
    server.keepAliveTimeout = 30_000;
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
    this.server = server;
    this.port = server.address().port;
  }

  /** Stops listening and drops every open connection (kept-alive ones included). */
  async stop() {
    if (!this.server) return;
    const server = this.server;
    this.server = null;
    const closed = once(server, "close");
    server.close();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  /** Listens again on the same port after `stop()`. */
  async restart() {
    await this.stop();
    await this.listen(this.port);
  }

  /** Forgets the calls and the scripts (between tests). */
  reset() {
    this.calls = [];
    this.rejected = [];
    this.scripts = [];
    this.maxInFlight = this.inFlight;
  }

  /** Adds a script, consulted before the ones added earlier; returns a function removing it. */
  script(fn) {
    this.scripts.unshift(fn);
    return () => {
      this.scripts = this.scripts.filter((s) => s !== fn);
    };
  }

  /**
   * Answers calls of `type` (and, when given, of `event`, or of a socket id via `socketId`)
   * with `answer`, an answer object or a function of the call returning one.
   */
  on(type, answer, { event, socketId, namespace } = {}) {
    return this.script((call) => {
      if (call.type !== type) return undefined;
      if (event !== undefined && call.event !== event) return undefined;
      if (socketId !== undefined && call.body.socket?.id !== socketId) return undefined;
      if (namespace !== undefined && call.namespace !== namespace) return undefined;
      return typeof answer === "function" ? answer(call) : answer;
    });
  }

  /** The calls matching `match` (an object of `type`/`event`/`socketId`/`namespace`, or a function). */
  find(match = {}) {
    if (typeof match === "object" && "socketId" in match && typeof match.socketId !== "string") {
      throw new TypeError("find: socketId must be a string (read socket.id while the socket is connected)");
    }
    const test =
      typeof match === "function"
        ? match
        : (call) =>
            (match.type === undefined || call.type === match.type) &&
            (match.event === undefined || call.event === match.event) &&
            (match.namespace === undefined || call.namespace === match.namespace) &&
            (match.socketId === undefined || call.body.socket?.id === match.socketId);
    return this.calls.filter(test);
  }

  /** Resolves with the first call matching `match` (see `find`), received already or later. */
  async waitFor(match, { timeoutMs = 3_000, answered = false } = {}) {
    return waitUntil(
      () => this.find(match).find((call) => !answered || call.answeredAt !== null),
      { timeoutMs, what: `a webhook call matching ${describe(match)}` },
    );
  }

  /** Resolves with the first `count` calls matching `match` once that many have arrived. */
  async waitForCount(match, count, { timeoutMs = 3_000 } = {}) {
    await waitUntil(() => this.find(match).length >= count, {
      timeoutMs,
      what: `${count} webhook calls matching ${describe(match)}`,
    });
    return this.find(match).slice(0, count);
  }

  async onRequest(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const rawBytes = Buffer.concat(chunks);
    const raw = rawBytes.toString("utf8");
    const receivedAt = performance.now();
    if (req.method !== "POST" || req.url !== this.path) {
      res.writeHead(404).end();
      return;
    }
    // The check an app does before trusting the body.
    const signatureOk = signatureMatches(this.secret, rawBytes, req.headers["x-iorelay-signature"]);
    if (!signatureOk) {
      this.rejected.push({ raw, headers: req.headers, receivedAt });
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ message: "bad signature" }));
      return;
    }
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      body = null;
    }
    const call = {
      seq: this.calls.length,
      type: body?.type,
      namespace: body?.namespace,
      event: body?.event,
      body,
      raw,
      headers: req.headers,
      signatureOk,
      receivedAt,
      answeredAt: null,
      status: null,
    };
    this.calls.push(call);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      let answer;
      for (const script of [...this.scripts]) {
        answer = script(call);
        if (answer !== undefined) break;
      }
      answer = (await answer) ?? {};
      if (answer.delayMs) await sleep(answer.delayMs);
      if (answer.hangUp) {
        req.socket.destroy();
        return;
      }
      const status = answer.status ?? 200;
      call.status = status;
      if (answer.body !== undefined) {
        res.writeHead(status, { "content-type": answer.contentType ?? "text/plain" }).end(answer.body);
      } else {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(answer.json ?? {}));
      }
    } finally {
      call.answeredAt = performance.now();
      this.inFlight -= 1;
    }
  }
}

function describe(match) {
  return typeof match === "function" ? "a predicate" : JSON.stringify(match);
}
