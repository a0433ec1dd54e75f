// The event contract of namespace "/" with socket.io-client@4, once per transport mode.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import {
  ClientSet,
  TRANSPORT_MODES,
  bytesOf,
  emitWithAckArgs,
  sleep,
  unique,
  waitUntil,
  whenConnected,
} from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";

const TICK_MS = 200;

/** `chat` events of `recorder` carrying `text`. */
const chatsWithText = (recorder, text) => recorder.all("chat", (p) => p?.text === text);

/** Asserts `payload` is exactly a chat broadcast: {room, text, from, ts} with a recent ts. */
function assertChat(payload, { room, text, from }) {
  assert.deepEqual(Object.keys(payload).sort(), ["from", "room", "text", "ts"]);
  assert.deepEqual({ room: payload.room, text: payload.text, from: payload.from }, { room, text, from });
  assert.equal(typeof payload.ts, "number");
  assert.ok(Math.abs(payload.ts - Date.now()) < 5_000, `ts ${payload.ts} is not close to now`);
}

let server;
before(async () => {
  server = await startIorelay({ args: ["--tick-interval-ms", String(TICK_MS)] });
});
after(async () => {
  await server?.stop();
});

for (const mode of TRANSPORT_MODES) {
  describe(`namespace / over ${mode.name}`, () => {
    const clients = new ClientSet();
    const opts = mode.transports ? { transports: mode.transports } : {};
    const connect = () => clients.connect(server.url, opts);

    afterEach(() => clients.closeAll());

    it(`ends up on the ${mode.finalTransport} transport`, async () => {
      const socket = clients.open(server.url, opts);
      const engine = socket.io.engine;
      const used = [engine.transport.name];
      engine.on("upgrade", (transport) => used.push(transport.name));
      await whenConnected(socket);
      if (mode.transports === undefined) {
        await waitUntil(() => used.length === 2, { timeoutMs: 5_000, what: "the upgrade to websocket" });
        assert.deepEqual(used, ["polling", "websocket"]);
      } else {
        // Give a (wrong) upgrade the time to happen before checking it did not.
        await sleep(300);
        assert.deepEqual(used, mode.transports);
      }
      assert.equal(engine.transport.name, mode.finalTransport);
      assert.equal(await socket.timeout(3_000).emitWithAck("echo", "after upgrade"), "after upgrade");
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
      const ticks = recorder.all("message", isTick);
      for (const { args, at } of ticks) {
        assert.ok(Number.isInteger(args[0]), `tick ${args[0]} is not an integer`);
        assert.ok(Math.abs(args[0] - at) < 2_000, `tick ${args[0]} received at ${at}`);
      }
      for (let i = 1; i < ticks.length; i++) {
        const gap = ticks[i].args[0] - ticks[i - 1].args[0];
        assert.ok(gap > 0 && gap < 5 * TICK_MS, `ticks ${TICK_MS} ms apart, got a gap of ${gap} ms`);
      }
    });

    it("echoes `message` with all its arguments, binary kept as binary", async () => {
      const { socket, recorder } = await connect();
      const marker = unique("message");
      const buffer = Buffer.from([0, 1, 2, 127, 128, 253, 254, 255]);
      const uint8 = new Uint8Array([9, 8, 7, 0]);
      socket.emit("message", marker, 42, { nested: { ok: true, list: [1, "two", null] } }, true, buffer, uint8);
      const args = await recorder.waitFor("message", (first) => first === marker);
      assert.equal(args.length, 6);
      assert.deepEqual(args.slice(0, 4), [marker, 42, { nested: { ok: true, list: [1, "two", null] } }, true]);
      assert.deepEqual(bytesOf(args[4]), buffer);
      assert.deepEqual(bytesOf(args[5]), Buffer.from(uint8));
    });

    it("echoes a lone binary `message`", async () => {
      const { socket, recorder } = await connect();
      const payload = Buffer.from("iorelay binary \u00e9\u0000\u00ff", "utf8");
      socket.emit("message", payload);
      const [echoed] = await recorder.waitFor(
        "message",
        (first) => first instanceof ArrayBuffer || ArrayBuffer.isView(first),
      );
      assert.deepEqual(bytesOf(echoed), payload);
    });

    it("acknowledges `echo` with the same arguments, binary kept", async () => {
      const { socket } = await connect();
      const buffer = Buffer.from([255, 0, 10, 13, 30]);
      const ackArgs = await emitWithAckArgs(socket, "echo", ["a", 1, { b: [2, 3] }, null, buffer]);
      assert.equal(ackArgs.length, 5);
      assert.deepEqual(ackArgs.slice(0, 4), ["a", 1, { b: [2, 3] }, null]);
      assert.deepEqual(bytesOf(ackArgs[4]), buffer);

      assert.equal(await socket.timeout(3_000).emitWithAck("echo", "single"), "single");
      const bytes = await socket.timeout(3_000).emitWithAck("echo", new Uint8Array([1, 2, 3]));
      assert.deepEqual(bytesOf(bytes), Buffer.from([1, 2, 3]));
    });

    it("acknowledges `join` with the room and its size", async () => {
      const room = unique("join");
      const first = await connect();
      const second = await connect();
      assert.deepEqual(await first.socket.timeout(3_000).emitWithAck("join", room), { room, size: 1 });
      assert.deepEqual(await second.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
      // Joining again changes nothing.
      assert.deepEqual(await second.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
    });

    it("rejects invalid room names and leaves membership unchanged", async () => {
      const outsider = await connect();
      const member = await connect();
      const longName = "r".repeat(129);
      const invalid = ["", 42, longName];
      for (const name of invalid) {
        const joinAck = await outsider.socket.timeout(3_000).emitWithAck("join", name);
        assert.deepEqual(Object.keys(joinAck ?? {}), ["error"], `join ${JSON.stringify(name)} -> ${JSON.stringify(joinAck)}`);
        assert.equal(typeof joinAck.error, "string");
        assert.ok(joinAck.error.length > 0);
        const leaveAck = await outsider.socket.timeout(3_000).emitWithAck("leave", name);
        assert.deepEqual(Object.keys(leaveAck ?? {}), ["error"], `leave ${JSON.stringify(name)} -> ${JSON.stringify(leaveAck)}`);
      }
      // Names a lenient server could have turned the invalid ones into: the outsider is in none.
      const lookalikes = ["42", longName.slice(0, 128)];
      const texts = [];
      for (const room of lookalikes) {
        assert.deepEqual(await member.socket.timeout(3_000).emitWithAck("join", room), { room, size: 1 });
        const text = unique("lookalike");
        texts.push(text);
        assert.deepEqual(await member.socket.timeout(3_000).emitWithAck("chat", { room, text }), { ok: true });
        await member.recorder.waitFor("chat", (p) => p?.text === text);
      }
      // Everything the member sent before this broadcast has been routed once the outsider sees it.
      const fence = unique("fence");
      member.socket.emit("chat", { text: fence });
      await outsider.recorder.waitFor("chat", (p) => p?.text === fence);
      await sleep(100);
      for (const text of texts) assert.equal(chatsWithText(outsider.recorder, text).length, 0, `outsider got ${text}`);
    });

    it("acknowledges `leave` and stops room delivery to the leaver", async () => {
      const room = unique("leave");
      const stays = await connect();
      const leaves = await connect();
      await stays.socket.timeout(3_000).emitWithAck("join", room);
      assert.deepEqual(await leaves.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
      assert.deepEqual(await leaves.socket.timeout(3_000).emitWithAck("leave", room), { room, size: 1 });

      const text = unique("after-leave");
      assert.deepEqual(await stays.socket.timeout(3_000).emitWithAck("chat", { room, text }), { ok: true });
      await stays.recorder.waitFor("chat", (p) => p?.text === text);
      const fence = unique("fence");
      stays.socket.emit("chat", { text: fence });
      await leaves.recorder.waitFor("chat", (p) => p?.text === fence);
      await sleep(100);
      assert.equal(chatsWithText(leaves.recorder, text).length, 0);

      assert.deepEqual(await stays.socket.timeout(3_000).emitWithAck("leave", room), { room, size: 0 });
    });

    it("delivers room chat to every member, sender included, and to nobody else", async () => {
      const roomA = unique("room-a");
      const roomB = unique("room-b");
      const a1 = await connect();
      const a2 = await connect();
      const b = await connect();
      await a1.socket.timeout(3_000).emitWithAck("join", roomA);
      assert.deepEqual(await a2.socket.timeout(3_000).emitWithAck("join", roomA), { room: roomA, size: 2 });
      assert.deepEqual(await b.socket.timeout(3_000).emitWithAck("join", roomB), { room: roomB, size: 1 });

      const textA = unique("to-a");
      assert.deepEqual(await a1.socket.timeout(3_000).emitWithAck("chat", { room: roomA, text: textA }), { ok: true });
      const [toA1] = await a1.recorder.waitFor("chat", (p) => p?.text === textA);
      const [toA2] = await a2.recorder.waitFor("chat", (p) => p?.text === textA);
      assertChat(toA1, { room: roomA, text: textA, from: a1.socket.id });
      assert.deepEqual(toA2, toA1);

      const textB = unique("to-b");
      assert.deepEqual(await b.socket.timeout(3_000).emitWithAck("chat", { room: roomB, text: textB }), { ok: true });
      const [toB] = await b.recorder.waitFor("chat", (p) => p?.text === textB);
      assertChat(toB, { room: roomB, text: textB, from: b.socket.id });

      // A broadcast to everybody, sent after the room chats, fences them off.
      const fenceText = unique("everybody");
      a1.socket.emit("chat", { text: fenceText });
      for (const c of [a1, a2, b]) await c.recorder.waitFor("chat", (p) => p?.text === fenceText);
      await sleep(100);
      assert.equal(chatsWithText(b.recorder, textA).length, 0, "room B member received a room A chat");
      assert.equal(chatsWithText(a1.recorder, textB).length, 0, "room A member received a room B chat");
      assert.equal(chatsWithText(a2.recorder, textB).length, 0, "room A member received a room B chat");
      assert.equal(chatsWithText(a1.recorder, textA).length, 1, "room chat delivered more than once");
      assert.equal(chatsWithText(a2.recorder, textA).length, 1, "room chat delivered more than once");
    });

    it("delivers chat without a room to everybody with room null", async () => {
      const sender = await connect();
      const others = [await connect(), await connect()];
      await others[0].socket.timeout(3_000).emitWithAck("join", unique("somewhere"));
      const text = unique("broadcast");
      assert.deepEqual(await sender.socket.timeout(3_000).emitWithAck("chat", { text }), { ok: true });
      for (const c of [sender, ...others]) {
        const [payload] = await c.recorder.waitFor("chat", (p) => p?.text === text);
        assertChat(payload, { room: null, text, from: sender.socket.id });
      }
    });

    it("acknowledges bad chat payloads with an error", async () => {
      const { socket } = await connect();
      const room = unique("bad-chat");
      await socket.timeout(3_000).emitWithAck("join", room);
      const bad = [
        { room },
        { room, text: 42 },
        { room, text: null },
        { room: "", text: "empty room" },
        { room: 7, text: "numeric room" },
        { room: "x".repeat(129), text: "long room" },
        "just a string",
      ];
      for (const payload of bad) {
        const ack = await socket.timeout(3_000).emitWithAck("chat", payload);
        assert.deepEqual(Object.keys(ack ?? {}), ["error"], `chat ${JSON.stringify(payload)} -> ${JSON.stringify(ack)}`);
        assert.equal(typeof ack.error, "string");
      }
      await sleep(100);
      assert.equal(socket.connected, true);
    });
  });
}
