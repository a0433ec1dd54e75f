// WebSocket permessage-deflate on the Socket.IO endpoint (`--per-message-deflate`, Node's
// `perMessageDeflate`): the extension answered as Node's `ws` answers it, compressed frames both
// ways with a raw client reading the RSV1 bit, Node's `ws` client and socket.io-client.
import assert from "node:assert/strict";
import crypto from "node:crypto";
import net from "node:net";
import zlib from "node:zlib";
import { after, afterEach, before, describe, it } from "node:test";
import WebSocket from "ws";

import { ClientSet, whenConnected } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";

const ENGINE_WS = "/socket.io/?EIO=4&transport=websocket";
/** Text that compresses well, `length` characters long. */
const compressible = (length) => "All work and no play makes Jack a dull boy. ".repeat(Math.ceil(length / 44)).slice(0, length);

/**
 * A WebSocket client on a bare TCP connection, so that the frames' RSV1 bit and sizes can be
 * read: it offers `offer`, sends masked frames (compressed with its own deflate stream when
 * asked) and inflates the server's compressed frames with one raw inflate stream, as the
 * context is kept from message to message.
 */
class RawClient {
  static async open(port, offer, path = ENGINE_WS) {
    const client = new RawClient();
    client.socket = net.connect(port, "127.0.0.1");
    client.socket.on("data", (chunk) => client.onData(chunk));
    client.socket.on("close", () => (client.closed = true));
    client.socket.on("error", () => {});
    await new Promise((resolve, reject) => {
      client.socket.once("connect", resolve);
      client.socket.once("error", reject);
    });
    const key = crypto.randomBytes(16).toString("base64");
    client.socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        (offer ? `Sec-WebSocket-Extensions: ${offer}\r\n` : "") +
        "\r\n",
    );
    await client.until(() => client.head !== null, "the upgrade answer");
    return client;
  }

  constructor() {
    this.buffer = Buffer.alloc(0);
    this.head = null;
    /** @type {{ rsv1: boolean, opcode: number, size: number, data: Buffer }[]} */
    this.frames = [];
    this.closed = false;
    // Everything compressed the server sent, each message followed by the trailer it left off.
    this.compressedSoFar = Buffer.alloc(0);
    this.inflatedLength = 0;
    this.deflate = zlib.createDeflateRaw();
  }

  get status() {
    return Number(this.head.split(" ")[1]);
  }

  get extension() {
    return (this.head.match(/^sec-websocket-extensions: (.*)$/im) ?? [])[1];
  }

  onData(chunk) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (this.head === null) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      this.head = this.buffer.subarray(0, end).toString("latin1");
      this.buffer = this.buffer.subarray(end + 4);
    }
    for (;;) {
      if (this.buffer.length < 2) return;
      let size = this.buffer[1] & 0x7f;
      let offset = 2;
      if (size === 126) {
        if (this.buffer.length < 4) return;
        size = this.buffer.readUInt16BE(2);
        offset = 4;
      } else if (size === 127) {
        if (this.buffer.length < 10) return;
        size = Number(this.buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffer.length < offset + size) return;
      const payload = this.buffer.subarray(offset, offset + size);
      const rsv1 = (this.buffer[0] & 0x40) !== 0;
      const opcode = this.buffer[0] & 0x0f;
      this.buffer = this.buffer.subarray(offset + size);
      this.frames.push({ rsv1, opcode, size, data: this.decode(rsv1, payload) });
    }
  }

  decode(rsv1, payload) {
    if (!rsv1) return Buffer.from(payload);
    this.compressedSoFar = Buffer.concat([this.compressedSoFar, payload, Buffer.from([0, 0, 0xff, 0xff])]);
    const all = zlib.inflateRawSync(this.compressedSoFar, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const data = all.subarray(this.inflatedLength);
    this.inflatedLength = all.length;
    return data;
  }

  /** Sends one masked text frame, compressed (RSV1) if `compress`. */
  async send(text, { compress = false } = {}) {
    let payload = Buffer.from(text);
    let first = 0x81;
    if (compress) {
      payload = await new Promise((resolve) => {
        const chunks = [];
        const onData = (chunk) => chunks.push(chunk);
        this.deflate.on("data", onData);
        this.deflate.write(payload);
        this.deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          this.deflate.off("data", onData);
          const all = Buffer.concat(chunks);
          resolve(all.subarray(0, all.length - 4));
        });
      });
      first |= 0x40;
    }
    const mask = crypto.randomBytes(4);
    let length;
    if (payload.length < 126) {
      length = Buffer.from([0x80 | payload.length]);
    } else if (payload.length < 65536) {
      length = Buffer.from([0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    } else {
      length = Buffer.alloc(9);
      length[0] = 0x80 | 127;
      length.writeBigUInt64BE(BigInt(payload.length), 1);
    }
    const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
    this.socket.write(Buffer.concat([Buffer.from([first]), length, mask, masked]));
    return payload.length;
  }

  /** The first frame whose text satisfies `match`. */
  frame(match, what) {
    return this.until(() => this.frames.find((f) => match(f.data.toString("utf8"))), what);
  }

  async until(condition, what, timeoutMs = 3_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = condition();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  close() {
    this.deflate.close();
    this.socket.destroy();
  }
}

/** Opens a `ws` client on the Engine.IO endpoint and joins namespace `/`. */
async function openWs(url, options = {}) {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}${ENGINE_WS}`, options);
  const messages = [];
  let answered;
  ws.once("upgrade", (res) => (answered = res.headers["sec-websocket-extensions"]));
  ws.on("message", (data, isBinary) => messages.push(isBinary ? data : data.toString("utf8")));
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const next = async (match, what) => {
    const deadline = Date.now() + 3_000;
    for (;;) {
      const found = messages.find(match);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no ${what}; got ${JSON.stringify(messages).slice(0, 200)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  await next((m) => m.startsWith("0{"), "open packet");
  ws.send("40");
  await next((m) => m.startsWith("40"), "CONNECT answer");
  return { ws, next, messages, answered };
}

const sockets = new Set();
const clients = new ClientSet();
afterEach(() => {
  for (const socket of sockets) socket.close();
  sockets.clear();
  clients.closeAll();
});

describe("with --per-message-deflate", () => {
  let server;
  before(async () => {
    server = await startIorelay({ args: ["--per-message-deflate", "--tick-interval-ms", "0"] });
  });
  after(async () => {
    await server?.stop();
  });

  it("answers the extension offer as Node's ws server does", async () => {
    for (const [offer, answer] of [
      [undefined, undefined],
      ["permessage-deflate; client_max_window_bits", "permessage-deflate"],
      [
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10, permessage-deflate",
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
      ],
      ["permessage-deflate; server_max_window_bits=9", "permessage-deflate; server_max_window_bits=9"],
      [
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=12",
        "permessage-deflate; client_no_context_takeover; server_max_window_bits=12",
      ],
      ["x-webkit-deflate-frame", undefined],
      // Node answers 400 to parameters it does not know; iorelay goes on uncompressed.
      ["permessage-deflate; unknown", undefined],
    ]) {
      const client = await RawClient.open(server.port, offer);
      sockets.add(client);
      assert.equal(client.status, 101, String(offer));
      assert.equal(client.extension, answer, String(offer));
    }
  });

  it("sends compressed frames (RSV1) and reads the client's compressed frames", async () => {
    const client = await RawClient.open(server.port, "permessage-deflate; client_max_window_bits");
    sockets.add(client);
    await client.frame((t) => t.startsWith("0{"), "open packet");
    await client.send("40", { compress: true });
    await client.frame((t) => t.startsWith("40"), "CONNECT answer");
    const text = compressible(50_000);
    const packet = `42${JSON.stringify(["message", text])}`;
    const sent = await client.send(packet, { compress: true });
    assert.ok(sent < packet.length / 20, `the client's frame holds ${sent} bytes`);
    const echo = await client.frame((t) => t === packet, "echo");
    assert.equal(echo.rsv1, true);
    assert.ok(echo.size < packet.length / 20, `the echo's frame holds ${echo.size} bytes for ${packet.length}`);
    // As Node's ws does while it keeps its context, small messages are compressed too.
    await client.send(`42${JSON.stringify(["message", "hi"])}`);
    const small = await client.frame((t) => t === '42["message","hi"]', "small echo");
    assert.equal(small.rsv1, true);
    const connectAnswer = client.frames.find((f) => f.data.toString().startsWith("40"));
    assert.equal(connectAnswer.rsv1, true);
  });

  it("applies the threshold when the client asks for server_no_context_takeover", async () => {
    const client = await RawClient.open(server.port, "permessage-deflate; server_no_context_takeover");
    sockets.add(client);
    await client.frame((t) => t.startsWith("0{"), "open packet");
    await client.send("40");
    const connect = await client.frame((t) => t.startsWith("40"), "CONNECT answer");
    assert.equal(connect.rsv1, false, "a CONNECT answer is under 1024 bytes");
    // `42["message","…"]` is 16 bytes more than the text.
    for (const [size, compressed] of [
      [1023, false],
      [1024, true],
    ]) {
      const packet = `42${JSON.stringify(["message", compressible(size - 16)])}`;
      await client.send(packet);
      const echo = await client.frame((t) => t === packet, `echo of ${size} bytes`);
      assert.equal(echo.rsv1, compressed, `${size} bytes`);
    }
  });

  it("closes a connection whose message inflates past --max-http-buffer-size", async () => {
    const client = await RawClient.open(server.port, "permessage-deflate");
    sockets.add(client);
    await client.frame((t) => t.startsWith("0{"), "open packet");
    const bomb = `42${JSON.stringify(["message", "0".repeat(2_000_000)])}`;
    const sent = await client.send(bomb, { compress: true });
    assert.ok(sent < 10_000, `${sent} bytes on the wire`);
    await client.until(() => client.closed, "closed connection");
    assert.ok(!client.frames.some((f) => f.data.length > 1_000_000), "no echo of the large message");
  });

  it("works with Node's ws client, both ways compressed", async () => {
    const { ws, next } = await openWs(server.url);
    sockets.add(ws);
    assert.equal(ws.extensions, "permessage-deflate");
    const text = compressible(200_000);
    const readBefore = ws._socket.bytesRead;
    const writtenBefore = ws._socket.bytesWritten;
    ws.send(`42${JSON.stringify(["message", text])}`);
    const binary = crypto.randomBytes(3_000);
    const echoed = await next((m) => typeof m === "string" && m.includes(text.slice(0, 100)), "echo");
    assert.equal(echoed, `42${JSON.stringify(["message", text])}`);
    assert.ok(ws._socket.bytesWritten - writtenBefore < 10_000, "the client compressed its message");
    assert.ok(ws._socket.bytesRead - readBefore < 10_000, "the server compressed the echo");
    // Binary frames (a Socket.IO binary event's attachment) are compressed too and come back
    // whole even when they do not compress.
    ws.send(`451-${JSON.stringify(["message", { _placeholder: true, num: 0 }])}`);
    ws.send(binary);
    const attachment = await next((m) => Buffer.isBuffer(m), "binary attachment");
    assert.ok(attachment.equals(binary));
  });

  it("inflates a ws client that drops its context after each message", async () => {
    const { ws, next, answered } = await openWs(server.url, {
      perMessageDeflate: { clientNoContextTakeover: true, threshold: 0 },
    });
    sockets.add(ws);
    assert.equal(answered, "permessage-deflate; client_no_context_takeover");
    for (let i = 0; i < 3; i++) {
      const packet = `42${JSON.stringify(["message", `${i} ${compressible(3_000)}`])}`;
      ws.send(packet);
      assert.equal(await next((m) => m === packet, `echo ${i}`), packet);
    }
  });

  for (const transports of [["websocket"], ["polling", "websocket"]]) {
    it(`serves socket.io-client with perMessageDeflate (${transports.join(" then ")})`, async () => {
      const { socket, recorder } = await clients.connect(server.url, { transports, perMessageDeflate: { threshold: 1024 } });
      await whenConnected(socket);
      const engine = socket.io.engine;
      if (engine.transport.name !== "websocket") {
        await new Promise((resolve) => engine.once("upgrade", resolve));
      }
      const ws = engine.transport.ws;
      assert.equal(ws.extensions, "permessage-deflate");
      const text = compressible(100_000);
      const binary = Buffer.from(compressible(20_000));
      const readBefore = ws._socket.bytesRead;
      const writtenBefore = ws._socket.bytesWritten;
      const echoed = new Promise((resolve) => socket.on("message", (...args) => args[0] === text && resolve(args)));
      socket.emit("message", text, { nested: [1, 2, 3] }, binary);
      const args = await echoed;
      assert.deepEqual(args[1], { nested: [1, 2, 3] });
      assert.ok(Buffer.from(args[2]).equals(binary));
      const read = ws._socket.bytesRead - readBefore;
      const written = ws._socket.bytesWritten - writtenBefore;
      assert.ok(written < 10_000, `client sent ${written} bytes for 120 000`);
      assert.ok(read < 10_000, `server sent ${read} bytes for 120 000`);
      assert.ok(recorder.find("message", (a) => a === text));
    });
  }
});

describe("without --per-message-deflate (the default, as in Node)", () => {
  let server;
  before(async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0"] });
  });
  after(async () => {
    await server?.stop();
  });

  it("declines the offer and sends plain frames", async () => {
    const client = await RawClient.open(server.port, "permessage-deflate; client_max_window_bits");
    sockets.add(client);
    assert.equal(client.status, 101);
    assert.equal(client.extension, undefined);
    const { ws, next } = await openWs(server.url);
    sockets.add(ws);
    assert.equal(ws.extensions, "");
    const text = compressible(50_000);
    const readBefore = ws._socket.bytesRead;
    ws.send(`42${JSON.stringify(["message", text])}`);
    await next((m) => typeof m === "string" && m.includes(text), "echo");
    assert.ok(ws._socket.bytesRead - readBefore > 50_000);
  });
});
