// socket.io-client@3 (Engine.IO v4, Socket.IO v5, as 4.x speaks), on the default options: each
// transport mode, the event contract's main rows, binary, and a room shared with a 4.x client.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import ioV3 from "socket.io-client-v3";

import { ClientSet, Recorder, TRANSPORT_MODES, bytesOf, unique, whenConnected } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";

/** Acknowledged emit for socket.io-client@3, which has no timeout(): every ack argument. */
function emitV3(socket, event, args, timeoutMs = 3_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for "${event}" within ${timeoutMs} ms`)), timeoutMs);
    socket.emit(event, ...args, (...ackArgs) => {
      clearTimeout(timer);
      resolve(ackArgs);
    });
  });
}

describe("socket.io-client@3", () => {
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

  async function connectV3(path = "", opts = {}) {
    const socket = clients.track(ioV3(`${server.url}${path}`, { forceNew: true, reconnection: false, ...opts }));
    const recorder = new Recorder(socket);
    await whenConnected(socket);
    return { socket, recorder };
  }

  for (const mode of TRANSPORT_MODES) {
    describe(`over ${mode.name}`, () => {
      const opts = mode.transports ? { transports: mode.transports } : {};

      it("is welcomed with its id and ends up on the expected transport", async () => {
        const { socket, recorder } = await connectV3("", opts);
        const [welcome] = await recorder.waitFor("message", (m) => typeof m === "object" && m !== null);
        assert.deepEqual(welcome, { text: "Welcome to iorelay", id: socket.id });
        if (mode.transports === undefined) {
          await new Promise((resolve) => {
            if (socket.io.engine.transport.name === "websocket") resolve();
            else socket.io.engine.once("upgrade", resolve);
          });
        }
        assert.equal(socket.io.engine.transport.name, mode.finalTransport);
      });

      it("gets `echo` acknowledged with every argument, binary included", async () => {
        const { socket } = await connectV3("", opts);
        const bytes = Buffer.from([0, 1, 2, 250, 255]);
        const [text, object, binary] = await emitV3(socket, "echo", ["v3", { nested: [1, null] }, bytes]);
        assert.equal(text, "v3");
        assert.deepEqual(object, { nested: [1, null] });
        assert.deepEqual(bytesOf(binary), bytes);
      });

      it("joins a room and chats with a 4.x client in it", async () => {
        const room = unique("v3-room");
        const v3 = await connectV3("", opts);
        const v4 = await clients.connect(server.url, opts);
        assert.deepEqual(await emitV3(v3.socket, "join", [room]), [{ room, size: 1 }]);
        assert.deepEqual(await v4.socket.timeout(3_000).emitWithAck("join", room), { room, size: 2 });
        const text = unique("from-v3");
        assert.deepEqual(await emitV3(v3.socket, "chat", [{ room, text }]), [{ ok: true }]);
        const [payload] = await v4.recorder.waitFor("chat", (p) => p?.text === text);
        assert.equal(payload.from, v3.socket.id);
        const reply = unique("from-v4");
        await v4.socket.timeout(3_000).emitWithAck("chat", { room, text: reply });
        const [back] = await v3.recorder.waitFor("chat", (p) => p?.text === reply);
        assert.deepEqual({ room: back.room, from: back.from }, { room, from: v4.socket.id });
      });
    });
  }

  it("connects to /chat and sees presence", async () => {
    const room = unique("v3-chat");
    const { socket, recorder } = await connectV3("/chat");
    assert.deepEqual(await emitV3(socket, "join", [room]), [{ room, size: 1 }]);
    const [presence] = await recorder.waitFor("presence", (p) => p?.room === room);
    assert.deepEqual(presence, { room, members: [socket.id] });
  });
});
