// `--parser msgpack`: socket.io-client 4 with the npm socket.io-msgpack-parser, as a frontend
// with `io(url, { parser })` uses it, over every transport mode: the event contract of "/" and
// "/chat", binary mixed with objects, a plain WebSocket member in the same room, the webhooks
// and the server API, two nodes sharing Redis, and clients whose parser is not the server's.
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";

import * as msgpackParser from "socket.io-msgpack-parser";

import {
  ClientSet,
  TRANSPORT_MODES,
  bytesOf,
  emitWithAckArgs,
  nextEvent,
  sleep,
  unique,
  waitUntil,
  whenConnected,
} from "../support/clients.mjs";
import { ADMIN_PASSWORD, ADMIN_USERNAME, iorelayAdminArgs } from "../support/admin-ui.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { openPlain, plainUrl } from "../support/plain.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startRedis } from "../support/redis.mjs";
import { startWebhookApp } from "../support/webhook-app.mjs";

const TICK_MS = 200;
const SECRET = "whsec-msgpack-3c81d0f2";
const API_KEY = "apikey-msgpack-9e42b7a5";

const clients = new ClientSet();
const plainSockets = new Set();
afterEach(() => {
  clients.closeAll();
  for (const socket of plainSockets) socket.terminate();
  plainSockets.clear();
});

/** Opens a socket with the MessagePack parser and waits until it is connected. */
const connectMsgpack = (url, opts = {}) => clients.connect(url, { parser: msgpackParser, ...opts });

/** `chat` events of `recorder` carrying `text`. */
const chatsWithText = (recorder, text) => recorder.all("chat", (p) => p?.text === text);

/** Asserts `payload` is exactly a chat broadcast: {room, text, from, ts} with a recent ts. */
function assertChat(payload, { room, text, from }) {
  assert.deepEqual(Object.keys(payload).sort(), ["from", "room", "text", "ts"]);
  assert.deepEqual({ room: payload.room, text: payload.text, from: payload.from }, { room, text, from });
  assert.equal(typeof payload.ts, "number");
  assert.ok(Math.abs(payload.ts - Date.now()) < 5_000, `ts ${payload.ts} is not close to now`);
}

/** The bytes of every binary value in `value`, replaced by `{ bytes: [...] }`, for comparison. */
function withBytes(value) {
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return { bytes: [...bytesOf(value)] };
  if (Array.isArray(value)) return value.map(withBytes);
  if (value instanceof Date) return value;
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withBytes(v)]));
  return value;
}

/**
 * Arguments mixing text, numbers, objects and binary where the default parser would put
 * placeholders, with what the npm parser writes as MessagePack extensions: `undefined`, a
 * `Date`, and ArrayBuffers and typed arrays (extensions of type 0) of the lengths MessagePack
 * has fixed-size extensions for.
 */
const mixedArgs = () => [
  "text \u00e9\u{1f600}",
  42,
  -7,
  1.5,
  2 ** 40,
  true,
  null,
  { nested: { ok: true, list: [1, "two", null], bin: Buffer.from([0, 255]) } },
  [Buffer.from("in an array"), { deeper: [Buffer.from([1])] }],
  Buffer.from([0, 1, 2, 127, 128, 253, 254, 255]),
  new Uint8Array([9, 8, 7]),
  new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer,
  new Uint8Array([5]).buffer,
  new Uint16Array([1]),
  new Float64Array([0.5, 2]),
  new Date(Date.UTC(2025, 10, 21, 16, 0, 0, 123)),
  undefined,
];

/** Asserts `got` carries `sent` back: binary as binary with the same bytes, the rest equal. */
function assertSameArgs(got, sent) {
  assert.equal(got.length, sent.length);
  assert.deepEqual(withBytes(got), withBytes(sent));
  for (const [i, value] of sent.entries()) {
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
      assert.ok(got[i] instanceof ArrayBuffer || ArrayBuffer.isView(got[i]), `argument ${i} is binary`);
    }
  }
  assert.ok(got.at(-2) instanceof Date, "a Date stays a Date");
  assert.equal(got.at(-1), undefined, "undefined stays undefined");
}

describe("one node with --parser msgpack", () => {
  let server;
  before(async () => {
    server = await startIorelay({ args: ["--parser", "msgpack", "--tick-interval-ms", String(TICK_MS)] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  for (const mode of TRANSPORT_MODES) {
    describe(`namespace / over ${mode.name}`, () => {
      const opts = mode.transports ? { transports: mode.transports } : {};
      const connect = () => connectMsgpack(server.url, opts);

      it(`ends up on the ${mode.finalTransport} transport with every packet in MessagePack`, async () => {
        const socket = clients.open(server.url, { parser: msgpackParser, ...opts });
        const engine = socket.io.engine;
        const used = [engine.transport.name];
        engine.on("upgrade", (transport) => used.push(transport.name));
        const received = [];
        engine.on("packet", (packet) => packet.type === "message" && received.push(packet.data));
        await whenConnected(socket);
        if (mode.transports === undefined) {
          await waitUntil(() => used.length === 2, { timeoutMs: 5_000, what: "the upgrade to websocket" });
        } else {
          await sleep(300);
        }
        assert.deepEqual(used, mode.transports ?? ["polling", "websocket"]);
        assert.equal(engine.transport.name, mode.finalTransport);
        assert.equal(await socket.timeout(3_000).emitWithAck("echo", "after upgrade"), "after upgrade");
        // CONNECT, the welcome and the ack at least, each one binary message.
        assert.ok(received.length >= 3, `${received.length} messages`);
        for (const data of received) {
          assert.ok(data instanceof ArrayBuffer || ArrayBuffer.isView(data), `a text message: ${data}`);
        }
      });

      it("welcomes the socket with its id", async () => {
        const { socket, recorder } = await connect();
        const [welcome] = await recorder.waitFor("message", (m) => typeof m === "object" && m !== null);
        assert.deepEqual(welcome, { text: "Welcome to iorelay", id: socket.id });
        assert.equal(recorder.all("message", (m) => m?.text === "Welcome to iorelay").length, 1);
      });

      it("receives ticks carrying the current Unix time in ms", async () => {
        const { recorder } = await connect();
        const isTick = (...args) => args.length === 1 && typeof args[0] === "number";
        await waitUntil(() => recorder.all("message", isTick).length >= 3, { timeoutMs: 10 * TICK_MS, what: "3 ticks" });
        for (const { args, at } of recorder.all("message", isTick)) {
          assert.ok(Number.isInteger(args[0]), `tick ${args[0]} is not an integer`);
          assert.ok(Math.abs(args[0] - at) < 2_000, `tick ${args[0]} received at ${at}`);
        }
      });

      it("echoes `message` with all its arguments, binary mixed with objects", async () => {
        const { socket, recorder } = await connect();
        const marker = unique("message");
        const sent = [marker, ...mixedArgs()];
        socket.emit("message", ...sent);
        const args = await recorder.waitFor("message", (first) => first === marker);
        assertSameArgs(args, sent);
      });

      it("echoes a lone binary `message`", async () => {
        const { socket, recorder } = await connect();
        const payload = Buffer.from("iorelay binary \u00e9\u0000\u00ff", "utf8");
        socket.emit("message", payload);
        const [echoed] = await recorder.waitFor("message", (first) => first instanceof ArrayBuffer || ArrayBuffer.isView(first));
        assert.deepEqual(bytesOf(echoed), payload);
      });

      it("acknowledges `echo` with the same arguments, binary mixed with objects", async () => {
        const { socket } = await connect();
        const sent = mixedArgs();
        assertSameArgs(await emitWithAckArgs(socket, "echo", sent), sent);
        assert.deepEqual(await emitWithAckArgs(socket, "echo", []), []);
        assert.equal(await socket.timeout(3_000).emitWithAck("echo", "single"), "single");
      });

      it("acknowledges `join` and `leave` with the room and its size, and refuses bad names", async () => {
        const room = unique("join");
        const first = await connect();
        const second = await connect();
        assert.deepEqual(await first.socket.timeout(3_000).emitWithAck("join", room), { room, size: 1 });
        assert.deepEqual(await second.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
        assert.deepEqual(await second.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
        assert.deepEqual(await second.socket.timeout(3_000).emitWithAck("leave", room), { room, size: 1 });
        for (const name of ["", 42, "r".repeat(129), Buffer.from("room"), undefined]) {
          for (const event of ["join", "leave"]) {
            const ack = await first.socket.timeout(3_000).emitWithAck(event, name);
            assert.deepEqual(Object.keys(ack ?? {}), ["error"], `${event} ${String(name)} -> ${JSON.stringify(ack)}`);
          }
        }
        assert.deepEqual(await second.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 }, "membership unchanged");
        // A member that disconnects leaves its rooms.
        second.socket.disconnect();
        await waitUntil(
          async () => (await first.socket.timeout(3_000).emitWithAck("join", room)).size === 1,
          { what: "the room to shrink after the disconnect" },
        );
      });

      it("delivers room chat to every member, sender included, and to nobody else", async () => {
        const room = unique("room");
        const [a1, a2, outsider] = [await connect(), await connect(), await connect()];
        await a1.socket.timeout(3_000).emitWithAck("join", room);
        assert.deepEqual(await a2.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
        const text = unique("to-room");
        assert.deepEqual(await a1.socket.timeout(3_000).emitWithAck("chat", { room, text }), { ok: true });
        const [toA1] = await a1.recorder.waitFor("chat", (p) => p?.text === text);
        const [toA2] = await a2.recorder.waitFor("chat", (p) => p?.text === text);
        assertChat(toA1, { room, text, from: a1.socket.id });
        assert.deepEqual(toA2, toA1);
        // A chat to everybody, sent after the room chat, fences it off.
        const fence = unique("everybody");
        assert.deepEqual(await a2.socket.timeout(3_000).emitWithAck("chat", { text: fence }), { ok: true });
        for (const c of [a1, a2, outsider]) {
          const [payload] = await c.recorder.waitFor("chat", (p) => p?.text === fence);
          assertChat(payload, { room: null, text: fence, from: a2.socket.id });
        }
        await sleep(100);
        assert.equal(chatsWithText(outsider.recorder, text).length, 0, "the outsider got the room chat");
        assert.equal(chatsWithText(a1.recorder, text).length, 1, "room chat delivered more than once");
      });

      it("acknowledges bad chat payloads with an error and keeps the socket", async () => {
        const { socket } = await connect();
        const room = unique("bad-chat");
        await socket.timeout(3_000).emitWithAck("join", room);
        for (const payload of [{ room }, { room, text: 42 }, { room, text: Buffer.from("hi") }, { room: "", text: "x" }, "just a string"]) {
          const ack = await socket.timeout(3_000).emitWithAck("chat", payload);
          assert.deepEqual(Object.keys(ack ?? {}), ["error"], `chat ${JSON.stringify(payload)} -> ${JSON.stringify(ack)}`);
        }
        assert.equal(socket.connected, true);
      });
    });
  }

  describe("namespace /chat", () => {
    for (const mode of TRANSPORT_MODES) {
      it(`sends presence on join, leave and disconnect, and room chat, over ${mode.name}`, async () => {
        const opts = mode.transports ? { transports: mode.transports } : {};
        const room = unique("presence");
        const [c1, c2, c3] = [
          await connectMsgpack(`${server.url}/chat`, opts),
          await connectMsgpack(`${server.url}/chat`, opts),
          await connectMsgpack(`${server.url}/chat`, opts),
        ];
        const ids = (...cs) => cs.map((c) => c.socket.id).sort();
        const presence = (c, members) =>
          c.recorder.waitFor("presence", (p) => p?.room === room && JSON.stringify(p.members) === JSON.stringify(members));
        assert.deepEqual(await c1.socket.timeout(3_000).emitWithAck("join", room), { room, size: 1 });
        assert.deepEqual(await c2.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
        assert.deepEqual(await c3.socket.timeout(3_000).emitWithAck("join", room), { room, size: 3 });
        for (const c of [c1, c2, c3]) await presence(c, ids(c1, c2, c3));
        const text = unique("chat-ns");
        assert.deepEqual(await c1.socket.timeout(3_000).emitWithAck("chat", { room, text }), { ok: true });
        for (const c of [c1, c2, c3]) {
          const [payload] = await c.recorder.waitFor("chat", (p) => p?.text === text);
          assertChat(payload, { room, text, from: c1.socket.id });
        }
        assert.deepEqual(await c2.socket.timeout(3_000).emitWithAck("leave", room), { room, size: 2 });
        for (const c of [c1, c3]) await presence(c, ids(c1, c3));
        c3.socket.disconnect();
        await presence(c1, ids(c1));
        // No welcome, no ticker, and no echo on /chat.
        await sleep(2 * TICK_MS);
        assert.equal(c1.recorder.all("message").length, 0);
      });
    }

    it("refuses an unknown namespace with connect_error `Invalid namespace`", async () => {
      const socket = clients.open(`${server.url}/nowhere`, { parser: msgpackParser });
      const [err] = await nextEvent(socket, "connect_error");
      assert.equal(err.message, "Invalid namespace");
    });
  });

  describe("a plain WebSocket member in the same room", () => {
    for (const mode of TRANSPORT_MODES) {
      it(`exchanges chats with a MessagePack client over ${mode.name}`, async () => {
        const opts = mode.transports ? { transports: mode.transports } : {};
        const room = unique("mixed");
        const sio = await connectMsgpack(server.url, opts);
        const plain = await openPlain(plainUrl(server.url));
        plainSockets.add(plain);
        assert.deepEqual(await sio.socket.timeout(3_000).emitWithAck("join", room), { room, size: 1 });
        assert.deepEqual(await plain.request({ event: "join", room }, 1), { room, size: 2 });

        const fromSio = unique("from-msgpack");
        assert.deepEqual(await sio.socket.timeout(3_000).emitWithAck("chat", { room, text: fromSio }), { ok: true });
        const frame = await plain.waitJson((f) => f.event === "chat" && f.text === fromSio);
        assert.deepEqual(Object.keys(frame).sort(), ["event", "from", "room", "text", "ts"]);
        assert.deepEqual({ room: frame.room, from: frame.from }, { room, from: sio.socket.id });

        const fromPlain = unique("from-plain");
        assert.deepEqual(await plain.request({ event: "chat", room, text: fromPlain }, 2), { ok: true });
        const [payload] = await sio.recorder.waitFor("chat", (p) => p?.text === fromPlain);
        const plainId = payload.from;
        assert.equal(typeof plainId, "string");
        assert.equal(plainId.length, 16);
        assert.notEqual(plainId, sio.socket.id);
        assertChat(payload, { room, text: fromPlain, from: plainId });
        // Plain frames stay JSON text: no MessagePack reaches the plain member.
        assert.ok(plain.frames.every((f) => typeof f === "string"), "every frame to the plain member is text");
      });
    }
  });
});

describe("webhooks and the server API with --parser msgpack", () => {
  let app;
  let server;

  before(async () => {
    app = await startWebhookApp({ secret: SECRET });
    server = await startIorelay({
      args: [
        "--parser", "msgpack",
        "--webhook-url", app.url,
        "--webhook-secret", SECRET,
        "--api-key", API_KEY,
        "--tick-interval-ms", "0",
      ],
    });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
    await app?.stop();
  });
  beforeEach(() => app.reset());

  async function api(method, path, body) {
    const res = await httpRequest(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.equal(res.status, 200, `${method} ${path}: ${res.body}`);
    return JSON.parse(res.body);
  }

  for (const mode of TRANSPORT_MODES) {
    it(`an event reaches the app as JSON and its answer comes back in MessagePack over ${mode.name}`, async () => {
      const opts = mode.transports ? { transports: mode.transports } : {};
      const tag = unique("auth");
      const auth = { tag, list: [1, null, undefined], unset: undefined, key: Buffer.from([1, 2]), at: new Date(0) };
      const { socket, recorder } = await connectMsgpack(server.url, { ...opts, auth });
      const connectCall = await app.waitFor((c) => c.type === "connect" && c.body.socket.id === socket.id);
      assert.deepEqual(connectCall.body.socket.handshake.auth, {
        tag,
        list: [1, null, null],
        key: { _binary: "AQI=" },
        at: "1970-01-01T00:00:00.000Z",
      });

      const out = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
      app.on(
        "event",
        {
          json: {
            emit: [{ event: "file", args: [{ _binary: out.toString("base64") }, { name: "n", body: { _binary: "AAE=" } }] }],
            ack: [{ _binary: out.toString("base64") }, { done: true }],
          },
        },
        { event: "upload" },
      );
      const date = new Date(Date.UTC(2025, 10, 21, 16, 0, 0, 123));
      const ack = await emitWithAckArgs(socket, "upload", [
        { name: "f.bin", file: Buffer.from([0, 1, 2, 255]), at: date },
        new Uint8Array([9, 8]).buffer,
        undefined,
        "text",
      ]);
      const call = await app.waitFor({ type: "event", event: "upload", socketId: socket.id });
      // What the default parser would have carried: binary as base64, a Date as its ISO text,
      // undefined as null.
      assert.deepEqual(call.body.args, [
        { name: "f.bin", file: { _binary: "AAEC/w==" }, at: "2025-11-21T16:00:00.123Z" },
        { _binary: "CQg=" },
        null,
        "text",
      ]);
      assert.equal(call.body.ack, true);
      assert.equal(ack.length, 2);
      assert.deepEqual([...bytesOf(ack[0])], [...out]);
      assert.deepEqual(ack[1], { done: true });
      const [file, meta] = await recorder.waitFor("file");
      assert.deepEqual([...bytesOf(file)], [...out]);
      assert.deepEqual(withBytes(meta), { name: "n", body: { bytes: [0, 1] } });
    });
  }

  it("POST /api/emit reaches MessagePack clients, binary included, and collects their acks", async () => {
    const room = unique("api");
    const a = await connectMsgpack(server.url, { transports: ["websocket"] });
    const b = await connectMsgpack(server.url, { transports: ["polling"] });
    // Without `auth`, the app sees `{}`, as with the default parser.
    const connectCall = await app.waitFor((c) => c.type === "connect" && c.body.socket.id === a.socket.id);
    assert.deepEqual(connectCall.body.socket.handshake.auth, {});
    for (const c of [a, b]) await c.socket.timeout(3_000).emitWithAck("join", room);
    await api("POST", "/api/emit", {
      event: "blob",
      args: [{ _binary: Buffer.from([1, 2, 3, 254]).toString("base64") }, { inner: { _binary: "AA==" }, n: 1 }],
      to: [room],
    });
    for (const c of [a, b]) {
      const [blob, wrapped] = await c.recorder.waitFor("blob");
      assert.deepEqual([...bytesOf(blob)], [1, 2, 3, 254]);
      assert.deepEqual(withBytes(wrapped), { inner: { bytes: [0] }, n: 1 });
    }
    a.socket.on("question", (payload, callback) => callback("yes", payload, Buffer.from([7]), new Date(0)));
    const res = await api("POST", "/api/emit", { event: "question", args: [{ q: 1 }], to: [a.socket.id], timeout_ms: 2_000 });
    assert.deepEqual(res, {
      ok: true,
      acks: [{ socket: a.socket.id, args: ["yes", { q: 1 }, { _binary: "Bw==" }, "1970-01-01T00:00:00.000Z"] }],
      missing: 0,
    });
  });
});

describe("two nodes sharing Redis, both with --parser msgpack", () => {
  let redis;
  let nodes;
  before(async () => {
    redis = await startRedis();
    const args = ["--parser", "msgpack", "--redis-url", redis.url, "--api-key", API_KEY, "--tick-interval-ms", "0"];
    nodes = [await startIorelay({ args }), await startIorelay({ args })];
  });
  after(async () => {
    clients.closeAll();
    for (const node of nodes ?? []) await node.stop();
    await redis?.stop();
  });

  it("delivers a chat and a binary emit across nodes, and counts the room on both", async () => {
    const room = unique("cluster");
    const onA = await connectMsgpack(nodes[0].url, { transports: ["websocket"] });
    const onB = await connectMsgpack(nodes[1].url, { transports: ["polling"] });
    assert.deepEqual(await onA.socket.timeout(3_000).emitWithAck("join", room), { room, size: 1 });
    assert.deepEqual(await onB.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
    const text = unique("across");
    assert.deepEqual(await onA.socket.timeout(3_000).emitWithAck("chat", { room, text }), { ok: true });
    const [payload] = await onB.recorder.waitFor("chat", (p) => p?.text === text);
    assertChat(payload, { room, text, from: onA.socket.id });
    // The adapter carries the encoded packet to the other node, which sends it as it is.
    const res = await httpRequest(`${nodes[0].url}/api/emit`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ event: "blob", args: [{ list: [{ _binary: "AQI=" }, "x"] }, { _binary: "/w==" }], to: [room] }),
    });
    assert.equal(res.status, 200, res.body);
    for (const c of [onA, onB]) {
      const args = await c.recorder.waitFor("blob");
      assert.deepEqual(withBytes(args), [{ list: [{ bytes: [1, 2] }, "x"] }, { bytes: [255] }]);
    }
    const health = JSON.parse((await httpRequest(`${nodes[1].url}/healthz`)).body);
    assert.equal(health.adapter, "redis");
  });
});

describe("the Admin UI namespace with --parser msgpack", () => {
  let server;
  before(async () => {
    server = await startIorelay({ args: ["--parser", "msgpack", "--tick-interval-ms", "0", ...iorelayAdminArgs()] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  it("logs in as the page does with its MessagePack option, lists sockets and acts on them", async () => {
    const member = await connectMsgpack(server.url);
    // The page's options with "MessagePack parser" chosen in its advanced options.
    const admin = await connectMsgpack(`${server.url}/admin`, {
      withCredentials: true,
      transports: ["websocket"],
      auth: { username: ADMIN_USERNAME, password: ADMIN_PASSWORD },
    });
    const [config] = await admin.recorder.waitFor("config");
    assert.ok(config.supportedFeatures.includes("JOIN"), JSON.stringify(config));
    const [sockets] = await admin.recorder.waitFor("all_sockets");
    assert.ok(sockets.some((s) => s.id === member.socket.id), "the member is listed");
    const room = unique("admin-join");
    admin.socket.emit("join", "/", room, member.socket.id);
    // Another socket joining sees the room's size: 2 once the Admin UI has put the member in.
    const other = await connectMsgpack(server.url);
    await waitUntil(
      async () => (await other.socket.timeout(3_000).emitWithAck("join", room)).size === 2,
      { what: "the Admin UI's join" },
    );
    const refused = clients.open(`${server.url}/admin`, {
      parser: msgpackParser,
      transports: ["websocket"],
      auth: { username: ADMIN_USERNAME, password: "wrong" },
    });
    const [err] = await nextEvent(refused, "connect_error");
    assert.equal(err.message, "invalid credentials");
  });
});

describe("connection state recovery with --parser msgpack", () => {
  let server;
  before(async () => {
    server = await startIorelay({
      args: ["--parser", "msgpack", "--connection-state-recovery", "--api-key", API_KEY, "--tick-interval-ms", "0"],
    });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  const apiEmit = async (body) => {
    const res = await httpRequest(`${server.url}/api/emit`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200, res.body);
  };

  for (const transports of [["websocket"], ["polling"]]) {
    it(`gives back the id, the room and the missed events, binary included, over ${transports[0]}`, async () => {
      const room = unique("recover");
      const { socket, recorder } = await connectMsgpack(server.url, { transports });
      await socket.timeout(3_000).emitWithAck("join", room);
      await apiEmit({ event: "before", args: [{ n: -1 }], to: [room] });
      await recorder.waitFor("before");
      const id = socket.id;
      const gone = nextEvent(socket, "disconnect");
      socket.io.engine.close();
      await gone;
      await sleep(100);
      for (let n = 0; n < 5; n++) {
        await apiEmit({ event: "missed", args: [{ n, bin: { _binary: Buffer.from([n]).toString("base64") } }], to: [room] });
      }
      socket.connect();
      await whenConnected(socket);
      assert.equal(socket.recovered, true);
      assert.equal(socket.id, id);
      await waitUntil(() => recorder.all("missed").length === 5, { what: "the 5 missed events" });
      for (const [n, { args }] of recorder.all("missed").entries()) {
        assert.deepEqual(withBytes(args[0]), { n, bin: { bytes: [n] } });
        assert.equal(typeof args.at(-1), "string", "the offset comes last, as in Node");
      }
    });
  }
});

describe("a client whose parser is not the server's", () => {
  let msgpackServer;
  let defaultServer;
  before(async () => {
    msgpackServer = await startIorelay({ args: ["--parser", "msgpack", "--tick-interval-ms", "0"] });
    defaultServer = await startIorelay({ args: ["--tick-interval-ms", "0"] });
  });
  after(async () => {
    clients.closeAll();
    await msgpackServer?.stop();
    await defaultServer?.stop();
  });

  /**
   * Opens a socket that must never connect: resolves with how its connection ended (`disconnect`
   * or `connect_error`), which must come quickly rather than after a timeout.
   */
  async function closedBeforeConnecting(url, opts) {
    const socket = clients.open(url, opts);
    socket.on("connect", () => assert.fail("a client with another parser connected"));
    const started = performance.now();
    const [how, reason] = await Promise.race([
      nextEvent(socket, "disconnect", 3_000).then(([r]) => ["disconnect", r]),
      nextEvent(socket, "connect_error", 3_000).then(([e]) => ["connect_error", e.message]),
    ]);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 2_000, `closed after ${elapsed} ms`);
    return { how, reason };
  }

  for (const transports of [["websocket"], ["polling"]]) {
    it(`the default parser against --parser msgpack over ${transports[0]} is closed at once`, async () => {
      const ended = await closedBeforeConnecting(msgpackServer.url, { transports });
      assert.ok(
        ["transport close", "transport error", "xhr poll error"].includes(ended.reason),
        `ended with ${JSON.stringify(ended)}`,
      );
    });

    it(`the MessagePack parser against the default parser over ${transports[0]} is closed at once`, async () => {
      const ended = await closedBeforeConnecting(defaultServer.url, { transports, parser: msgpackParser });
      assert.ok(
        ["transport close", "transport error", "xhr poll error"].includes(ended.reason),
        `ended with ${JSON.stringify(ended)}`,
      );
    });
  }

  it("the server says once, at warn level, that a client's packets were written by another parser", async () => {
    await waitUntil(() => /WARN.*another parser wrote/.test(msgpackServer.logs()), { what: "the warning" });
    await waitUntil(() => /WARN.*another parser wrote/.test(defaultServer.logs()), { what: "the warning" });
    for (const server of [msgpackServer, defaultServer]) {
      assert.equal(server.logs().match(/another parser wrote/g).length, 1, "logged once");
    }
    // The servers still serve clients with the right parser.
    await connectMsgpack(msgpackServer.url);
    await clients.connect(defaultServer.url);
  });
});
