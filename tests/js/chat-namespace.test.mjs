// Namespace "/chat" (rooms plus presence, no welcome and no ticker) and unknown namespaces.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { ClientSet, nextEvent, sleep, unique, waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";

const TICK_MS = 200;

let server;
before(async () => {
  server = await startIorelay({ args: ["--tick-interval-ms", String(TICK_MS)] });
});
after(async () => {
  await server?.stop();
});

/** Waits until `recorder` got `presence` for `room` listing exactly `ids` (sorted). */
async function waitPresence(recorder, room, ids) {
  const members = [...ids].sort();
  const [payload] = await recorder.waitFor(
    "presence",
    (p) => p?.room === room && JSON.stringify(p.members) === JSON.stringify(members),
  ).catch((err) => {
    const seen = recorder.all("presence").map((e) => e.args[0]);
    throw new Error(`${err.message}: wanted ${JSON.stringify({ room, members })}, saw ${JSON.stringify(seen)}`);
  });
  assert.deepEqual(payload, { room, members });
}

describe("namespace /chat", () => {
  const clients = new ClientSet();
  const connectChat = () => clients.connect(`${server.url}/chat`);
  afterEach(() => clients.closeAll());

  it("sends the sorted member list to every member on join, leave and disconnect", async () => {
    const room = unique("presence");
    const [c1, c2, c3] = [await connectChat(), await connectChat(), await connectChat()];
    const id = (c) => c.socket.id;

    assert.deepEqual(await c1.socket.timeout(3_000).emitWithAck("join", room), { room, size: 1 });
    await waitPresence(c1.recorder, room, [id(c1)]);

    assert.deepEqual(await c2.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
    for (const c of [c1, c2]) await waitPresence(c.recorder, room, [id(c1), id(c2)]);

    assert.deepEqual(await c3.socket.timeout(3_000).emitWithAck("join", room), { room, size: 3 });
    for (const c of [c1, c2, c3]) await waitPresence(c.recorder, room, [id(c1), id(c2), id(c3)]);

    assert.deepEqual(await c2.socket.timeout(3_000).emitWithAck("leave", room), { room, size: 2 });
    for (const c of [c1, c3]) await waitPresence(c.recorder, room, [id(c1), id(c3)]);

    c3.socket.disconnect();
    await waitPresence(c1.recorder, room, [id(c1)]);

    // c2 left before c3 went away, so it must not hear about the room any more.
    await sleep(100);
    const lateToC2 = c2.recorder.all("presence", (p) => p?.room === room && p.members.length === 1);
    assert.deepEqual(lateToC2.map((e) => e.args[0]), [], "c2 got presence after leaving");
  });

  it("keeps presence per room", async () => {
    const roomA = unique("presence-a");
    const roomB = unique("presence-b");
    const [a, b] = [await connectChat(), await connectChat()];
    await a.socket.timeout(3_000).emitWithAck("join", roomA);
    await b.socket.timeout(3_000).emitWithAck("join", roomB);
    await waitPresence(a.recorder, roomA, [a.socket.id]);
    await waitPresence(b.recorder, roomB, [b.socket.id]);
    await sleep(100);
    assert.equal(a.recorder.all("presence", (p) => p?.room === roomB).length, 0);
    assert.equal(b.recorder.all("presence", (p) => p?.room === roomA).length, 0);
  });

  it("delivers room chat to the room members only", async () => {
    const room = unique("chat-room");
    const [m1, m2, outsider] = [await connectChat(), await connectChat(), await connectChat()];
    await m1.socket.timeout(3_000).emitWithAck("join", room);
    await m2.socket.timeout(3_000).emitWithAck("join", room);

    const text = unique("room-text");
    assert.deepEqual(await m2.socket.timeout(3_000).emitWithAck("chat", { room, text }), { ok: true });
    for (const c of [m1, m2]) {
      const [payload] = await c.recorder.waitFor("chat", (p) => p?.text === text);
      assert.deepEqual({ ...payload, ts: typeof payload.ts }, { room, text, from: m2.socket.id, ts: "number" });
    }
    const fence = unique("fence");
    m2.socket.emit("chat", { text: fence });
    await outsider.recorder.waitFor("chat", (p) => p?.text === fence);
    await sleep(100);
    assert.equal(outsider.recorder.all("chat", (p) => p?.text === text).length, 0);

    const bad = await m1.socket.timeout(3_000).emitWithAck("chat", { room });
    assert.equal(typeof bad?.error, "string", `chat without text -> ${JSON.stringify(bad)}`);
  });

  it("delivers chat without a room to every /chat socket and to no socket of /", async () => {
    const [sender, other] = [await connectChat(), await connectChat()];
    const root = await clients.connect(server.url);
    const text = unique("chat-all");
    assert.deepEqual(await sender.socket.timeout(3_000).emitWithAck("chat", { text }), { ok: true });
    for (const c of [sender, other]) {
      const [payload] = await c.recorder.waitFor("chat", (p) => p?.text === text);
      assert.deepEqual({ ...payload, ts: typeof payload.ts }, { room: null, text, from: sender.socket.id, ts: "number" });
    }
    await sleep(100);
    assert.equal(root.recorder.all("chat", (p) => p?.text === text).length, 0, "a / socket got a /chat broadcast");
  });

  it("sends neither a welcome nor ticks", async () => {
    const chat = await connectChat();
    const root = await clients.connect(server.url);
    const isTick = (...args) => typeof args[0] === "number";
    // The / socket of the same server shows that ticks are being sent meanwhile.
    await waitUntil(() => root.recorder.all("message", isTick).length >= 3, { timeoutMs: 10 * TICK_MS, what: "ticks on /" });
    assert.ok(root.recorder.find("message", (m) => m?.text === "Welcome to iorelay"));
    assert.deepEqual(chat.recorder.all("message"), []);
  });
});

describe("unknown namespace", () => {
  const clients = new ClientSet();
  afterEach(() => clients.closeAll());

  for (const transports of [["websocket"], ["polling"]]) {
    it(`answers connect_error "Invalid namespace" over ${transports[0]}`, async () => {
      const socket = clients.open(`${server.url}/nope`, { transports });
      const [err] = await nextEvent(socket, "connect_error", 5_000);
      assert.equal(err.message, "Invalid namespace");
      assert.equal(socket.connected, false);
    });
  }
});
