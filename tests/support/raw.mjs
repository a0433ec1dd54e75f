// Raw HTTP and WebSocket access to the Engine.IO endpoint, for tests that must send what no
// Socket.IO client would (malformed packets, oversized bodies, foreign origins).
import http from "node:http";
import WebSocket from "ws";

/**
 * One HTTP request without connection reuse. Resolves with `{ status, headers, body }`
 * (`body` as a string) and rejects when no response came within `timeoutMs`.
 */
export function httpRequest(url, { method = "GET", headers = {}, body, timeoutMs = 3_000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", onError);
    });
    const onError = (err) => {
      clearTimeout(timer);
      reject(err);
    };
    const timer = setTimeout(() => {
      req.destroy(new Error(`${method} ${url}: no response within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on("error", onError);
    req.end(body);
  });
}

/** The WebSocket URL of the Engine.IO endpoint for `baseUrl` (`http://host:port`). */
export function engineWsUrl(baseUrl, query = "EIO=4&transport=websocket") {
  return `${baseUrl.replace(/^http/, "ws")}/socket.io/?${query}`;
}

/**
 * A raw Engine.IO v4 WebSocket connection. `open()` waits for the handshake and, unless
 * `namespace` is null, connects to that Socket.IO namespace.
 */
export class RawWebSocket {
  constructor(url, { headers } = {}) {
    this.ws = new WebSocket(url, { headers });
    /** @type {(string | Buffer)[]} */
    this.messages = [];
    /** @type {{ code: number, reason: string } | null} */
    this.closeInfo = null;
    this.error = null;
    this.ws.on("message", (data, isBinary) => this.messages.push(isBinary ? data : data.toString("utf8")));
    this.ws.on("error", (err) => (this.error = err));
    this.closed = new Promise((resolve) => {
      this.ws.on("close", (code, reason) => {
        this.closeInfo = { code, reason: reason.toString("utf8") };
        resolve(this.closeInfo);
      });
    });
  }

  static async open(baseUrl, { namespace = "/", headers, timeoutMs = 3_000 } = {}) {
    const raw = new RawWebSocket(engineWsUrl(baseUrl), { headers });
    const handshake = await raw.waitMessage((m) => typeof m === "string" && m.startsWith("0"), timeoutMs);
    raw.sid = JSON.parse(handshake.slice(1)).sid;
    if (namespace !== null) {
      const prefix = namespace === "/" ? "40" : `40${namespace},`;
      raw.send(prefix);
      await raw.waitMessage((m) => typeof m === "string" && m.startsWith(prefix), timeoutMs);
    }
    return raw;
  }

  /**
   * Sends one WebSocket message: a string as text, a Buffer as binary. `{ binary: false }`
   * sends a Buffer's bytes as a text frame unchecked, to test invalid UTF-8.
   */
  send(data, options) {
    this.ws.send(data, options);
  }

  /** Resolves with the first message (received so far or later) satisfying `match`. */
  async waitMessage(match, timeoutMs = 3_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(match);
      if (found !== undefined) return found;
      if (this.closeInfo) throw new Error(`connection closed (${this.closeInfo.code}) before the expected message`);
      if (this.error) throw this.error;
      if (Date.now() > deadline) {
        throw new Error(`expected message not received within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Resolves with the close info if the connection closes within `timeoutMs`, else null. */
  async closedWithin(timeoutMs) {
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)));
    const result = await Promise.race([this.closed, timeout]);
    clearTimeout(timer);
    return result;
  }

  close() {
    if (this.ws.readyState === WebSocket.CONNECTING || this.ws.readyState === WebSocket.OPEN) this.ws.terminate();
  }
}

/** A raw Engine.IO v4 long-polling session, connected to namespace `/`. */
export class PollingSession {
  static async open(baseUrl) {
    const session = new PollingSession(baseUrl);
    const handshake = await httpRequest(`${baseUrl}/socket.io/?EIO=4&transport=polling`);
    if (handshake.status !== 200 || !handshake.body.startsWith("0")) {
      throw new Error(`polling handshake failed: ${handshake.status} ${handshake.body}`);
    }
    session.sid = JSON.parse(handshake.body.slice(1)).sid;
    const connect = await session.post("40");
    if (connect.status !== 200) throw new Error(`namespace connect failed: ${connect.status} ${connect.body}`);
    // The first heartbeat ping is a ping interval away, so the first GET carries the answer.
    const packets = await session.poll();
    if (!packets.some((p) => p.startsWith("40"))) throw new Error(`no CONNECT answer: ${JSON.stringify(packets)}`);
    return session;
  }

  constructor(baseUrl) {
    this.baseUrl = baseUrl;
    this.sid = "";
  }

  get url() {
    return `${this.baseUrl}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(this.sid)}`;
  }

  post(body, headers = { "content-type": "text/plain;charset=UTF-8" }) {
    return httpRequest(this.url, { method: "POST", body, headers });
  }

  /** One GET; resolves with the packets of the payload (split on the record separator). */
  async poll(timeoutMs = 3_000) {
    const res = await httpRequest(this.url, { timeoutMs });
    if (res.status !== 200) throw new Error(`poll answered ${res.status}: ${res.body}`);
    return res.body.split("\x1e");
  }
}
