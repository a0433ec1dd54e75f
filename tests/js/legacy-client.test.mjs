// socket.io-client@2 (Engine.IO v3), accepted only with --allow-eio3.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import ioV2 from "socket.io-client-v2";

import { ClientSet, Recorder, nextEvent, sleep, unique, whenConnected } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { httpRequest } from "../support/raw.mjs";

const LEGACY_EVENTS = ["message", "chat", "presence"];

/** Acknowledged emit for socket.io-client@2, which has no timeout(): all ack args or a rejection. */
function emitV2(socket, event, args, timeoutMs = 3_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for "${event}" within ${timeoutMs} ms`)), timeoutMs);
    socket.emit(event, ...args, (...ackArgs) => {
      clearTimeout(timer);
      resolve(ackArgs);
    });
  });
}

describe("socket.io-client@2 with --allow-eio3", () => {
  let server;
  const clients = new ClientSet();

  before(async () => {
    server = await startIorelay({ args: ["--allow-eio3", "--tick-interval-ms", "0"] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });
  afterEach(() => clients.closeAll());

  async function connectV2(opts = {}) {
    const socket = clients.track(ioV2(server.url, { forceNew: true, reconnection: false, ...opts }));
    const recorder = new Recorder(socket, LEGACY_EVENTS);
    await whenConnected(socket);
    return { socket, recorder };
  }

  for (const transports of [undefined, ["websocket"], ["polling"]]) {
    it(`connects and is welcomed with its id (${transports ?? "default transports"})`, async () => {
      const { socket, recorder } = await connectV2(transports ? { transports } : {});
      const [welcome] = await recorder.waitFor("message", (m) => typeof m === "object" && m !== null);
      assert.ok(socket.id, "the v2 client has an id");
      assert.deepEqual(welcome, { text: "Welcome to iorelay", id: socket.id });
    });
  }

  it("uses Engine.IO v3 on the wire", async () => {
    const res = await httpRequest(`${server.url}/socket.io/?EIO=3&transport=polling`);
    assert.equal(res.status, 200, res.body);
    // EIO3 payloads are length-prefixed: `<length>:0{"sid":...}`.
    assert.match(res.body, /^\d+:0\{"sid":"[^"]+"/);
  });

  it("gets `echo` acknowledged with the same arguments", async () => {
    const { socket } = await connectV2();
    assert.deepEqual(await emitV2(socket, "echo", ["v2", 2, { nested: [true, null] }]), ["v2", 2, { nested: [true, null] }]);
  });

  it("gets its `message` echoed", async () => {
    const { socket, recorder } = await connectV2();
    const marker = unique("v2-message");
    socket.emit("message", marker, { n: 1 });
    assert.deepEqual(await recorder.waitFor("message", (m) => m === marker), [marker, { n: 1 }]);
  });

  it("joins rooms and chats with v2 and v4 clients in the same room", async () => {
    const room = unique("v2-room");
    const v2a = await connectV2();
    const v2b = await connectV2({ transports: ["websocket"] });
    const v4 = await clients.connect(server.url);
    const outsider = await connectV2();

    assert.deepEqual(await emitV2(v2a.socket, "join", [room]), [{ room, size: 1 }]);
    assert.deepEqual(await emitV2(v2b.socket, "join", [room]), [{ room, size: 2 }]);
    assert.deepEqual(await v4.socket.timeout(3_000).emitWithAck("join", room), { room, size: 3 });

    const text = unique("v2-chat");
    assert.deepEqual(await emitV2(v2a.socket, "chat", [{ room, text }]), [{ ok: true }]);
    for (const c of [v2a, v2b, v4]) {
      const [payload] = await c.recorder.waitFor("chat", (p) => p?.text === text);
      assert.deepEqual({ ...payload, ts: typeof payload.ts }, { room, text, from: v2a.socket.id, ts: "number" });
    }

    const reply = unique("v4-chat");
    assert.deepEqual(await v4.socket.timeout(3_000).emitWithAck("chat", { room, text: reply }), { ok: true });
    for (const c of [v2a, v2b]) await c.recorder.waitFor("chat", (p) => p?.text === reply);

    await sleep(100);
    assert.equal(outsider.recorder.all("chat", (p) => p?.text === text || p?.text === reply).length, 0);
  });
});

describe("socket.io-client@2 without --allow-eio3", () => {
  let server;
  const clients = new ClientSet();

  before(async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0"] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });
  afterEach(() => clients.closeAll());

  it("answers an EIO=3 polling handshake with 400", async (t) => {
    const res = await httpRequest(`${server.url}/socket.io/?EIO=3&transport=polling`);
    t.diagnostic(`GET EIO=3 polling -> ${res.status} ${res.body}`);
    assert.equal(res.status, 400);
  });

  for (const transports of [["polling"], ["websocket"]]) {
    it(`never connects a v2 client over ${transports[0]}`, async () => {
      const socket = clients.track(ioV2(server.url, { forceNew: true, reconnection: false, transports }));
      let connected = false;
      socket.on("connect", () => (connected = true));
      const [err] = await nextEvent(socket, "connect_error", 5_000);
      assert.ok(err, "connect_error carries an error");
      assert.equal(connected, false);
    });
  }

  it("still serves socket.io-client@4", async () => {
    const { socket } = await clients.connect(server.url);
    assert.equal(await socket.timeout(3_000).emitWithAck("echo", "v4"), "v4");
  });
});

describe("socket.io-client@2 with --allow-eio3 and --connection-state-recovery", () => {
  let server;
  const clients = new ClientSet();

  before(async () => {
    server = await startIorelay({ args: ["--allow-eio3", "--connection-state-recovery", "--tick-interval-ms", "0"] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  it("keeps working: acks, and room chats shared with a 4.x client", async () => {
    const v2 = clients.track(ioV2(server.url, { forceNew: true, reconnection: false }));
    const recorder = new Recorder(v2, LEGACY_EVENTS);
    await whenConnected(v2);
    assert.deepEqual(await emitV2(v2, "echo", ["still", 2]), ["still", 2]);
    const room = unique("room");
    await emitV2(v2, "join", [room]);
    const { socket: v4, recorder: v4Recorder } = await clients.connect(server.url);
    assert.ok(v4._pid, "the 4.x client has a session id");
    await v4.timeout(3_000).emitWithAck("join", room);
    await v4.timeout(3_000).emitWithAck("chat", { room, text: "to both" });
    const got = await recorder.waitFor("chat", (m) => m?.text === "to both");
    // The v2 client never asks for recovery, but a broadcast carries its offset to every
    // member, as Node's adapter appends it to the packet itself.
    assert.equal(got.length, 2, JSON.stringify(got));
    assert.equal(typeof got[1], "string");
    const v4Got = await v4Recorder.waitFor("chat", (m) => m?.text === "to both");
    assert.equal(typeof v4Got.at(-1), "string", "the 4.x client gets an offset");
  });
});
