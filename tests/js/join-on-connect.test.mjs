// Events emitted the instant a socket connects (or before, from the client's buffer) must not
// be lost while the server is still setting the socket up.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { io } from "socket.io-client";

import { waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { httpRequest } from "../support/raw.mjs";

const CLIENTS = 1_000;
const BATCH = 100;
const ROOM = "instant-join";

describe(`${CLIENTS} websocket clients joining as they connect`, () => {
  let server;
  /** @type {{ socket: import("socket.io-client").Socket, chats: object[] }[]} */
  const clients = [];

  before(async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0"] });
  });
  after(async () => {
    for (const { socket } of clients) socket.disconnect();
    await server?.stop();
  });

  /**
   * Opens one client that emits `join` either before it is connected (socket.io-client
   * buffers the packet and flushes it right after the CONNECT answer) or from its `connect`
   * handler. Resolves with the ack.
   */
  function openJoiningClient(index) {
    const socket = io(server.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
    const client = { socket, chats: [] };
    clients.push(client);
    socket.on("chat", (payload) => client.chats.push(payload));
    const join = () => socket.timeout(15_000).emitWithAck("join", ROOM);
    if (index % 2 === 0) return join();
    return new Promise((resolve, reject) => {
      socket.on("connect", () => join().then(resolve, reject));
      socket.on("connect_error", (err) => reject(new Error(`client ${index}: connect_error ${err.message}`)));
    });
  }

  it("acknowledges every join with the right room", async (t) => {
    const started = Date.now();
    const acks = [];
    for (let first = 0; first < CLIENTS; first += BATCH) {
      const batch = [];
      for (let i = first; i < Math.min(first + BATCH, CLIENTS); i++) batch.push(openJoiningClient(i));
      const results = await Promise.allSettled(batch);
      const failed = results.filter((r) => r.status === "rejected");
      assert.deepEqual(
        failed.map((r) => r.reason.message).slice(0, 5),
        [],
        `${failed.length} joins of batch ${first / BATCH} got no ack`,
      );
      acks.push(...results.map((r) => r.value));
    }
    t.diagnostic(`${CLIENTS} clients connected and joined in ${Date.now() - started} ms`);

    assert.equal(acks.length, CLIENTS);
    for (const ack of acks) {
      assert.equal(ack.room, ROOM);
      assert.ok(Number.isInteger(ack.size) && ack.size >= 1 && ack.size <= CLIENTS, `size ${ack.size}`);
    }
    // Nobody leaves, so the join handled last saw every member.
    assert.equal(Math.max(...acks.map((a) => a.size)), CLIENTS);
    assert.ok(clients.every((c) => c.socket.connected), "every client is still connected");
  });

  it("delivers a room chat to all of them", async () => {
    assert.equal(clients.length, CLIENTS, "the previous test opened the clients");
    const sender = clients[0].socket;
    const text = "to everybody in the room";
    assert.deepEqual(await sender.timeout(5_000).emitWithAck("chat", { room: ROOM, text }), { ok: true });
    await waitUntil(() => clients.every((c) => c.chats.some((p) => p.text === text)), {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: "the chat on every client",
    }).catch((err) => {
      const missing = clients.filter((c) => !c.chats.some((p) => p.text === text)).length;
      throw new Error(`${err.message} (${missing} of ${CLIENTS} never got it)`);
    });
    for (const { chats } of clients) {
      const received = chats.filter((p) => p.text === text);
      assert.equal(received.length, 1);
      assert.deepEqual({ room: received[0].room, from: received[0].from }, { room: ROOM, from: sender.id });
    }
  });

  it("counts the connections down to zero once they are closed", async () => {
    for (const { socket } of clients) socket.disconnect();
    await waitUntil(
      async () => {
        const res = await httpRequest(`${server.url}/healthz`);
        return JSON.parse(res.body).connections === 0;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: "/healthz connections back to 0" },
    );
  });
});
