// Compressed long-polling responses (`--http-compression`, Node's `httpCompression`): raw
// Engine.IO requests with and without Accept-Encoding, and socket.io-client on polling.
import assert from "node:assert/strict";
import http from "node:http";
import zlib from "node:zlib";
import { after, afterEach, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { Fetch } from "engine.io-client";

import { whenConnected } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";

/** One GET or POST; resolves with `{ status, headers, raw }`, `raw` the body's bytes as sent. */
function request(url, { method = "GET", headers = {}, body, timeoutMs = 3_000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks) });
      });
      res.on("error", reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** The body of a response as the client reads it once its Content-Encoding is undone. */
function decoded({ headers, raw }) {
  switch (headers["content-encoding"]) {
    case "gzip":
      return zlib.gunzipSync(raw).toString("utf8");
    case "deflate":
      // HTTP's deflate is zlib-wrapped, as Node's createDeflate writes it.
      return zlib.inflateSync(raw).toString("utf8");
    case undefined:
      return raw.toString("utf8");
    default:
      throw new Error(`unexpected Content-Encoding ${headers["content-encoding"]}`);
  }
}

/** A raw Engine.IO v4 polling session at `path`. */
class Polling {
  constructor(baseUrl, path = "/socket.io/") {
    this.base = `${baseUrl}${path}?EIO=4&transport=polling`;
    this.sid = "";
  }

  get url() {
    return `${this.base}&sid=${encodeURIComponent(this.sid)}`;
  }

  /** The handshake GET, sent with `headers`; returns the response. */
  async handshake(headers = {}) {
    const res = await request(this.base, { headers });
    assert.equal(res.status, 200);
    this.sid = JSON.parse(decoded(res).slice(1)).sid;
    return res;
  }

  post(body) {
    return request(this.url, { method: "POST", body, headers: { "content-type": "text/plain;charset=UTF-8" } });
  }

  get(headers = {}) {
    return request(this.url, { headers });
  }

  /** Handshake and CONNECT to namespace `/`, the welcome message read. */
  static async connected(baseUrl) {
    const session = new Polling(baseUrl);
    await session.handshake();
    assert.equal((await session.post("40")).status, 200);
    const first = decoded(await session.get());
    assert.match(first, /^40/);
    // The welcome `message` may come with the CONNECT answer or in the next response.
    if (!first.includes("Welcome")) assert.match(decoded(await session.get()), /Welcome/);
    return session;
  }

  /** Sends `message` with `text`; the next GET (with `headers`) carries it back. */
  async echo(text, headers) {
    const packet = `42${JSON.stringify(["message", text])}`;
    assert.equal((await this.post(packet)).status, 200);
    const res = await this.get(headers);
    assert.equal(res.status, 200);
    assert.equal(decoded(res), packet, "the decoded payload is the echoed packet");
    return res;
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} in ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Text that compresses well, `length` characters long. */
const compressible = (length) => "All work and no play makes Jack a dull boy. ".repeat(Math.ceil(length / 44)).slice(0, length);
/** The polling payload `42["message","<text>"]` is 16 bytes more than an ASCII text. */
const PACKET_OVERHEAD = 16;

describe("polling responses with compression on (the default)", () => {
  let server;
  before(async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0"] });
  });
  after(async () => {
    await server?.stop();
  });

  it("are gzip, deflate or plain as Accept-Encoding asks, and decode to the same payload", async () => {
    const session = await Polling.connected(server.url);
    const text = compressible(20_000);
    const cases = [
      ["gzip, deflate, br", "gzip"],
      ["deflate", "deflate"],
      ["deflate, gzip", "deflate"],
      ["gzip;q=0.5, deflate", "deflate"],
      ["*", "gzip"],
      ["br", undefined],
      ["identity", undefined],
      [undefined, undefined],
    ];
    const payloads = new Set();
    for (const [accept, expected] of cases) {
      const headers = accept === undefined ? {} : { "accept-encoding": accept };
      const res = await session.echo(text, headers);
      assert.equal(res.headers["content-encoding"], expected, `Accept-Encoding: ${accept}`);
      assert.equal(Number(res.headers["content-length"]), res.raw.length, "Content-Length is the body sent");
      assert.equal(res.headers["content-type"], "text/plain; charset=UTF-8");
      if (expected) {
        assert.ok(res.raw.length < text.length / 10, `${expected}: ${res.raw.length} bytes for ${text.length}`);
      } else {
        assert.equal(res.raw.length, text.length + PACKET_OVERHEAD);
      }
      payloads.add(decoded(res));
    }
    assert.equal(payloads.size, 1, "every coding carries the same payload");
  });

  it("leave a payload under 1024 bytes uncompressed and compress one of 1024", async () => {
    const session = await Polling.connected(server.url);
    const gzip = { "accept-encoding": "gzip" };
    const small = await session.echo("hi", gzip);
    assert.equal(small.headers["content-encoding"], undefined);
    const under = await session.echo(compressible(1023 - PACKET_OVERHEAD), gzip);
    assert.equal(under.raw.length, 1023);
    assert.equal(under.headers["content-encoding"], undefined, "1023 bytes stay as they are");
    const at = await session.echo(compressible(1024 - PACKET_OVERHEAD), gzip);
    assert.equal(at.headers["content-encoding"], "gzip", "1024 bytes are compressed");
    assert.equal(zlib.gunzipSync(at.raw).length, 1024);
  });

  it("leave the answer to a POST and a multi-byte payload's byte count as Node counts them", async () => {
    const session = await Polling.connected(server.url);
    const post = await request(session.url, {
      method: "POST",
      body: `42${JSON.stringify(["message", "é".repeat(600)])}`,
      headers: { "content-type": "text/plain;charset=UTF-8", "accept-encoding": "gzip" },
    });
    assert.equal(post.headers["content-encoding"], undefined);
    assert.equal(post.raw.toString(), "ok");
    // 600 two-byte characters: 616 characters but 1216 bytes, over the threshold.
    const res = await session.get({ "accept-encoding": "gzip" });
    assert.equal(res.headers["content-encoding"], "gzip");
    assert.equal(decoded(res), `42${JSON.stringify(["message", "é".repeat(600)])}`);
  });

  it("reach socket.io-client on fetch() polling compressed, and on XHR polling plain", async () => {
    const encodings = [];
    const realFetch = globalThis.fetch;
    // engine.io-client's Fetch transport calls the global fetch(), which asks for gzip and
    // undoes it; the response headers still say what was sent.
    globalThis.fetch = async (...args) => {
      const res = await realFetch(...args);
      if ((args[1]?.method ?? "GET") === "GET") encodings.push(res.headers.get("content-encoding"));
      return res;
    };
    const sockets = [];
    try {
      const text = compressible(50_000);
      for (const transports of [[Fetch], ["polling"]]) {
        const socket = io(server.url, { transports, forceNew: true, reconnection: false });
        sockets.push(socket);
        await whenConnected(socket);
        const binary = Buffer.from(compressible(4_000));
        // The welcome is a `message` too; the echo is the one carrying the text.
        const echoed = new Promise((resolve) =>
          socket.on("message", (...args) => args[0] === text && resolve(args)),
        );
        socket.emit("message", text, { nested: text }, binary);
        const args = await withTimeout(echoed, 5_000, "the echoed message");
        assert.equal(args[0], text);
        assert.deepEqual(args[1], { nested: text });
        assert.ok(Buffer.from(args[2]).equals(binary), "binary stays binary");
      }
      assert.ok(encodings.includes("gzip"), `fetch() polling saw ${JSON.stringify(encodings)}`);
    } finally {
      globalThis.fetch = realFetch;
      for (const socket of sockets) socket.close();
    }
  });

  it("compress the conformance profile's Engine.IO echo as well", async () => {
    const conformance = await startIorelay({ args: ["--profile", "conformance"] });
    try {
      const session = new Polling(conformance.url, "/engine.io/");
      await session.handshake();
      const text = compressible(5_000);
      assert.equal((await session.post(`4${text}`)).status, 200);
      // Heartbeat pings (every 300 ms here) may come first.
      let res;
      for (let i = 0; i < 5; i++) {
        res = await session.get({ "accept-encoding": "deflate" });
        if (decoded(res).includes(text)) break;
      }
      assert.ok(decoded(res).split("\x1e").includes(`4${text}`));
      assert.equal(res.headers["content-encoding"], "deflate");
    } finally {
      await conformance.stop();
    }
  });
});

describe("polling responses with other settings", () => {
  let server;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it("are never compressed with --http-compression false", async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0", "--http-compression", "false"] });
    const session = await Polling.connected(server.url);
    const text = compressible(20_000);
    for (const accept of ["gzip", "deflate", "gzip, deflate", "*"]) {
      const res = await session.echo(text, { "accept-encoding": accept });
      assert.equal(res.headers["content-encoding"], undefined, accept);
      assert.equal(res.raw.length, text.length + PACKET_OVERHEAD);
    }
  });

  it("follow --http-compression-threshold, the handshake included, as in Node", async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0", "--http-compression-threshold", "0"] });
    const session = new Polling(server.url);
    const handshake = await session.handshake({ "accept-encoding": "gzip" });
    assert.equal(handshake.headers["content-encoding"], "gzip");
    assert.match(decoded(handshake), /^0\{"sid":/);
    assert.equal((await session.post("40")).status, 200);
    const connect = await session.get({ "accept-encoding": "deflate" });
    assert.equal(connect.headers["content-encoding"], "deflate");
    assert.match(decoded(connect), /^40/);
  });
});
