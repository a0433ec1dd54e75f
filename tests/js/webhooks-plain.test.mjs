// Plain WebSocket clients (Node's `ws`) and the event webhook: their JSON frames reach the app
// as events of a "plain-websocket" socket, and the app's answers come back as frames.
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";

import { ClientSet, emitWithAckArgs, sleep, unique } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { openPlain, plainUrl } from "../support/plain.mjs";
import { startWebhookApp } from "../support/webhook-app.mjs";

const SECRET = "whsec-plain-91c0aa4f";

const plainSockets = new Set();
const sioClients = new ClientSet();
afterEach(() => {
  for (const socket of plainSockets) socket.terminate();
  plainSockets.clear();
  sioClients.closeAll();
});

describe("event webhooks for plain WebSocket clients", () => {
  let app;
  let server;

  before(async () => {
    app = await startWebhookApp({ secret: SECRET });
    server = await startIorelay({
      args: ["--webhook-url", app.url, "--webhook-secret", SECRET, "--tick-interval-ms", "0", "--webhook-timeout-ms", "500"],
    });
  });
  after(async () => {
    for (const socket of plainSockets) socket.terminate();
    sioClients.closeAll();
    await server?.stop();
    await app?.stop();
  });
  beforeEach(() => app.reset());

  /**
   * Opens a plain client tagged with a query parameter and resolves with it and its connect
   * webhook call (whose socket id names it in later calls).
   */
  async function plain() {
    const tag = unique("plain");
    const socket = await openPlain(`${plainUrl(server.url)}?tag=${tag}`);
    plainSockets.add(socket);
    const connect = await app.waitFor((c) => c.type === "connect" && c.body.socket.handshake.query?.tag === tag);
    return { socket, id: connect.body.socket.id, connect };
  }

  it("sends a connect webhook for a plain client", async () => {
    const { connect, id } = await plain();
    assert.equal(connect.body.type, "connect");
    assert.equal(connect.body.namespace, "/");
    assert.equal(connect.body.socket.transport, "plain-websocket");
    assert.match(id, /\S/);
    assert.deepEqual(connect.body.socket.data, {});
    assert.equal(connect.body.socket.user, null);
    assert.ok(Array.isArray(connect.body.socket.rooms));
    assert.match(connect.body.socket.handshake.address, /127\.0\.0\.1/);
    assert.equal(typeof connect.body.socket.handshake.time, "number");
  });

  it("closes the WebSocket with 1008 and the message when the app refuses the connect", async () => {
    const tag = unique("refused");
    app.on("connect", (call) =>
      call.body.socket.handshake.query?.tag === tag ? { status: 403, json: { message: "no plain clients today" } } : undefined,
    );
    const socket = await openPlain(`${plainUrl(server.url)}?tag=${tag}`);
    plainSockets.add(socket);
    assert.deepEqual(await socket.waitClosed(), { code: 1008, reason: "no plain clients today" });
  });

  it("closes the WebSocket with \"upstream unavailable\" when the connect webhook fails", async () => {
    const tag = unique("fail-closed");
    app.on("connect", (call) => (call.body.socket.handshake.query?.tag === tag ? { hangUp: true } : undefined));
    const socket = await openPlain(`${plainUrl(server.url)}?tag=${tag}`);
    plainSockets.add(socket);
    const closed = await socket.waitClosed();
    assert.equal(closed.reason, "upstream unavailable");
    assert.equal(closed.code, 1008);
  });

  it("forwards a non-built-in frame as an event; the answer's ack comes back in an ack frame", async () => {
    const { socket, id } = await plain();
    app.on("event", { json: { ack: ["noted"] } }, { event: "typing", socketId: id });
    assert.equal(await socket.request({ event: "typing", data: { who: "ann" } }, 7), "noted");
    const call = await app.waitFor({ type: "event", event: "typing", socketId: id });
    assert.equal(call.body.namespace, "/");
    assert.equal(call.body.socket.transport, "plain-websocket");
    assert.deepEqual(call.body.args, [{ who: "ann" }]);
    assert.equal(call.body.ack, true);
    const frame = await socket.waitJson((f) => f.event === "ack" && f.id === 7);
    assert.deepEqual(frame, { event: "ack", id: 7, data: "noted" });
  });

  it("sends several ack arguments as an array, and no ack frame without an id", async () => {
    const { socket, id } = await plain();
    app.on("event", { json: { ack: ["a", { b: 2 }] } }, { event: "pair", socketId: id });
    assert.deepEqual(await socket.request({ event: "pair", data: 1 }, 8), ["a", { b: 2 }]);
    app.on("event", { json: { ack: ["unasked"] } }, { event: "note", socketId: id });
    socket.sendJson({ event: "note", data: "x" });
    const call = await app.waitFor({ type: "event", event: "note", socketId: id }, { answered: true });
    assert.equal(call.body.ack, false);
    assert.deepEqual(call.body.args, ["x"]);
    await sleep(150);
    assert.deepEqual(
      socket.jsonFrames().filter((f) => f.event === "ack" && f.id === undefined),
      [],
      "no ack frame for a frame without an id",
    );
    assert.ok(!socket.frames.some((f) => typeof f === "string" && f.includes("unasked")));
  });

  it("acks a frame with an id even when the answer has no ack", async () => {
    const { socket, id } = await plain();
    app.on("event", { json: { data: { k: 1 } } }, { event: "quiet", socketId: id });
    socket.sendJson({ event: "quiet", data: null, id: 9 });
    const frame = await socket.waitJson((f) => f.event === "ack" && f.id === 9);
    assert.deepEqual(Object.keys(frame).sort(), ["data", "event", "id"]);
  });

  it("sends an answer's emit to the plain sender as { event, data } frames", async () => {
    const { socket, id } = await plain();
    app.on(
      "event",
      { json: { emit: [{ event: "hello", args: ["x"] }, { event: "two args", args: [1, 2] }, { event: "no args" }] } },
      { event: "greet", socketId: id },
    );
    socket.sendJson({ event: "greet", data: null, id: 1 });
    assert.deepEqual(await socket.waitJson((f) => f.event === "hello"), { event: "hello", data: "x" });
    assert.deepEqual(await socket.waitJson((f) => f.event === "two args"), { event: "two args", data: [1, 2] });
    await socket.waitJson((f) => f.event === "no args");
  });

  it("applies data and join to a plain client; a Socket.IO answer's room emit reaches it", async () => {
    const room = unique("mixed");
    const { socket, id } = await plain();
    app.on("event", { json: { join: [room], data: { name: "pat" } } }, { event: "enter", socketId: id });
    await socket.request({ event: "enter", data: room }, 1);
    socket.sendJson({ event: "look", data: null, id: 2 });
    const look = await app.waitFor({ type: "event", event: "look", socketId: id });
    assert.ok(look.body.socket.rooms.includes(room), `rooms ${look.body.socket.rooms}`);
    assert.deepEqual(look.body.socket.data, { name: "pat" });

    const { socket: sio } = await sioClients.connect(server.url);
    app.on("event", { json: { emit: [{ event: "note", args: ["for the room"], to: [room] }] } }, { event: "post", socketId: sio.id });
    await emitWithAckArgs(sio, "post", []);
    assert.deepEqual(await socket.waitJson((f) => f.event === "note"), { event: "note", data: "for the room" });
  });

  it("sends a plain client's room and broadcast emits to Socket.IO sockets", async () => {
    const room = unique("from-plain");
    const { socket: member, recorder } = await sioClients.connect(server.url);
    const outsider = await sioClients.connect(server.url);
    assert.equal((await member.timeout(3_000).emitWithAck("join", room)).room, room);
    const { socket, id } = await plain();
    app.on(
      "event",
      {
        json: {
          emit: [
            { event: "typing", args: ["pat"], to: [room] },
            { event: "everyone", args: [1], broadcast: true, include_self: true },
          ],
        },
      },
      { event: "typing", socketId: id },
    );
    await socket.request({ event: "typing", data: null }, 1);
    assert.deepEqual(await recorder.waitFor("typing"), ["pat"]);
    assert.deepEqual(await outsider.recorder.waitFor("everyone"), [1]);
    assert.deepEqual(await socket.waitJson((f) => f.event === "everyone"), { event: "everyone", data: 1 });
    assert.equal(outsider.recorder.find("typing"), undefined);
  });

  it("answers a failed event with an error in the ack frame", async () => {
    const { socket, id } = await plain();
    app.on("event", { status: 500, json: { message: "nope" } }, { event: "save", socketId: id });
    const data = await socket.request({ event: "save", data: 1 }, 3);
    assert.deepEqual(Object.keys(data), ["error"]);
    assert.equal(typeof data.error, "string");
    assert.ok(data.error.length > 0);
  });

  it("sends a disconnect webhook when a plain client closes, and when it is dropped", async () => {
    const closing = await plain();
    app.on("event", { json: { data: { last: true } } }, { event: "bye", socketId: closing.id });
    await closing.socket.request({ event: "bye", data: null }, 1);
    closing.socket.ws.close(1000, "done");
    const closed = await app.waitFor({ type: "disconnect", socketId: closing.id });
    assert.equal(closed.body.reason, "client namespace disconnect");
    assert.equal(closed.body.socket.transport, "plain-websocket");
    assert.deepEqual(closed.body.socket.data, { last: true });

    const dropped = await plain();
    dropped.socket.terminate();
    const lost = await app.waitFor({ type: "disconnect", socketId: dropped.id });
    assert.equal(lost.body.reason, "transport close");
  });

  it(
    "closes a plain client the app disconnects, after the answer's emit and ack frames",
    async () => {
      const { socket, id } = await plain();
      app.on(
        "event",
        { json: { disconnect: true, ack: ["bye"], emit: [{ event: "last words", args: ["so long"] }] } },
        { event: "kick me", socketId: id },
      );
      socket.sendJson({ event: "kick me", data: null, id: 4 });
      await socket.waitClosed();
      const call = await app.waitFor({ type: "disconnect", socketId: id });
      assert.equal(call.body.reason, "server namespace disconnect");
      assert.deepEqual(
        socket.jsonFrames(),
        [
          { event: "last words", data: "so long" },
          { event: "ack", id: 4, data: "bye" },
        ],
        "the emit, then the ack, then the close",
      );
    },
  );
});
