// A plain WebSocket client (Node's `ws`) for iorelay's plain endpoint, as pages written for a
// `ws` or `nodejs-websocket` server use it: frames in, frames out, nothing Socket.IO about it.
import WebSocket from "ws";

/** The plain WebSocket URL for `baseUrl` (`http://host:port`) and `path`. */
export function plainUrl(baseUrl, path = "/ws") {
  return `${baseUrl.replace(/^http/, "ws")}${path}`;
}

/**
 * Opens a WebSocket and resolves with `{ status }` when the handshake is refused, or
 * `{ socket }` (a {@link PlainSocket}) once it is open.
 */
export function tryPlain(url, { protocols = [], timeoutMs = 3_000, ...options } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    const socket = new PlainSocket(ws);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`neither opened nor refused within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once("open", () => {
      clearTimeout(timer);
      resolve({ socket });
    });
    ws.once("unexpected-response", (req, res) => {
      clearTimeout(timer);
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, body }));
      res.on("error", () => resolve({ status: res.statusCode, body }));
    });
    ws.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Opens a plain WebSocket that must be accepted. */
export async function openPlain(url, options) {
  const { socket, status, body } = await tryPlain(url, options);
  if (!socket) throw new Error(`handshake refused with ${status}: ${body}`);
  return socket;
}

/** Records what a `ws` client receives and how it closes. */
export class PlainSocket {
  constructor(ws) {
    this.ws = ws;
    /** @type {(string | Buffer)[]} text frames as strings, binary frames as Buffers */
    this.frames = [];
    this.pings = 0;
    /** @type {{ code: number, reason: string } | null} */
    this.closeInfo = null;
    ws.on("message", (data, isBinary) => this.frames.push(isBinary ? Buffer.from(data) : data.toString("utf8")));
    ws.on("ping", () => (this.pings += 1));
    ws.on("error", () => {});
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        this.closeInfo = { code, reason: reason.toString("utf8") };
        resolve(this.closeInfo);
      });
    });
  }

  get protocol() {
    return this.ws.protocol;
  }

  send(data, options) {
    this.ws.send(data, options);
  }

  sendJson(value) {
    this.ws.send(JSON.stringify(value));
  }

  /** Text frames parsed as JSON where they are JSON objects. */
  jsonFrames() {
    return this.frames.filter((f) => typeof f === "string" && f.startsWith("{")).map((f) => JSON.parse(f));
  }

  /** Resolves with the first frame (received so far or later) satisfying `match`. */
  async waitFrame(match, timeoutMs = 3_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      if (this.closeInfo) throw new Error(`closed (${JSON.stringify(this.closeInfo)}) while waiting for a frame`);
      if (Date.now() > deadline) throw new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Resolves with the first JSON frame satisfying `match`. */
  async waitJson(match, timeoutMs) {
    const frame = await this.waitFrame((f) => typeof f === "string" && f.startsWith("{") && match(JSON.parse(f)), timeoutMs);
    return JSON.parse(frame);
  }

  /** Sends a request with `id` and resolves with the `data` of its `ack` frame. */
  async request(frame, id, timeoutMs) {
    this.sendJson({ ...frame, id });
    const ack = await this.waitJson((f) => f.event === "ack" && f.id === id, timeoutMs);
    return ack.data;
  }

  /** Resolves with `{ code, reason }` once closed; rejects after `timeoutMs`. */
  async waitClosed(timeoutMs = 3_000) {
    let timer;
    const limit = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  terminate() {
    this.ws.terminate();
  }
}
