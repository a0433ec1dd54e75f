// The HTTP server API on two iorelay nodes sharing a real redis-server: a call on node A acts
// on sockets connected to node B.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { ClientSet, joinRoom, nextEvent, unique, waitUntil } from "../support/clients.mjs";
import { apiCaller } from "../support/api.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startRedis } from "../support/redis.mjs";

const API_KEY = "apikey-cluster-8a1f3c6b";

const clients = new ClientSet();
afterEach(() => clients.closeAll());

const call = apiCaller(API_KEY);

describe("server API on two nodes sharing Redis", () => {
  let redis;
  let nodeA;
  let nodeB;

  before(async () => {
    redis = await startRedis();
    const args = ["--api-key", API_KEY, "--redis-url", redis.url, "--tick-interval-ms", "0"];
    [nodeA, nodeB] = await Promise.all([startIorelay({ args }), startIorelay({ args })]);
  });
  after(async () => {
    clients.closeAll();
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    await redis?.stop();
  });

  it("emits from A to a room and to a socket id on B", async () => {
    const room = unique("on-b");
    const inRoom = await clients.connect(nodeB.url);
    const byId = await clients.connect(nodeB.url);
    const local = await clients.connect(nodeA.url);
    await joinRoom(inRoom.socket, room);
    assert.deepEqual(await call(nodeA, "POST", "/api/emit", { event: "to room", args: ["r"], to: [room] }), { ok: true });
    assert.deepEqual(await call(nodeA, "POST", "/api/emit", { event: "to id", args: ["i"], to: [byId.socket.id] }), { ok: true });
    await call(nodeA, "POST", "/api/emit", { event: "end" });
    for (const member of [inRoom, byId, local]) await member.recorder.waitFor("end");
    assert.deepEqual(inRoom.recorder.all("to room").map((e) => e.args), [["r"]]);
    assert.deepEqual(byId.recorder.all("to id").map((e) => e.args), [["i"]]);
    assert.equal(byId.recorder.find("to room"), undefined);
    assert.equal(inRoom.recorder.find("to id"), undefined);
    assert.equal(local.recorder.find("to room"), undefined);
  });

  it("joins a socket on B to a room from A", async () => {
    const room = unique("joined-from-a");
    const b = await clients.connect(nodeB.url);
    assert.deepEqual(await call(nodeA, "POST", "/api/sockets/join", { namespace: "/", to: [b.socket.id], rooms: [room] }), { ok: true });
    const listed = await waitUntil(
      async () => {
        const { sockets } = await call(nodeA, "GET", `/api/sockets?room=${encodeURIComponent(room)}`);
        return sockets.length > 0 && sockets;
      },
      { what: "the joined socket to be listed in its room" },
    );
    assert.deepEqual(listed.map((s) => s.id), [b.socket.id]);
    await call(nodeA, "POST", "/api/emit", { event: "welcome", args: [room], to: [room] });
    assert.deepEqual(await b.recorder.waitFor("welcome"), [room]);
    await call(nodeA, "POST", "/api/sockets/leave", { to: [b.socket.id], rooms: [room] });
    const { sockets } = await call(nodeA, "GET", `/api/sockets?room=${encodeURIComponent(room)}`);
    assert.deepEqual(sockets, []);
  });

  it("disconnects a socket on B from A", async () => {
    const b = await clients.connect(nodeB.url);
    const stays = await clients.connect(nodeB.url);
    const gone = nextEvent(b.socket, "disconnect");
    assert.deepEqual(await call(nodeA, "POST", "/api/sockets/disconnect", { namespace: "/", to: [b.socket.id] }), { ok: true });
    const [reason] = await gone;
    assert.equal(reason, "io server disconnect");
    assert.equal(stays.socket.connected, true);
  });

  it("lists both nodes' sockets on A, in full for A's own", async () => {
    const room = unique("everywhere");
    const a = await clients.connect(nodeA.url, { auth: { side: "a" } });
    const b = await clients.connect(nodeB.url, { auth: { side: "b" } });
    await joinRoom(a.socket, room);
    await joinRoom(b.socket, room);
    const { sockets } = await call(nodeA, "GET", `/api/sockets?namespace=/&room=${encodeURIComponent(room)}`);
    assert.deepEqual(sockets.map((s) => s.id).sort(), [a.socket.id, b.socket.id].sort());
    const local = sockets.find((s) => s.id === a.socket.id);
    const remote = sockets.find((s) => s.id === b.socket.id);
    assert.deepEqual([...local.rooms].sort(), [room, a.socket.id].sort());
    assert.deepEqual(local.handshake.auth, { side: "a" });
    assert.deepEqual(local.data, {});
    assert.deepEqual([...remote.rooms].sort(), [room, b.socket.id].sort());
    // In Node's Redis format, B answers with its socket's data and handshake, in Node's form.
    assert.deepEqual(remote.data, {});
    assert.equal(remote.user, null);
    assert.deepEqual(remote.handshake.auth, { side: "b" });
    assert.equal(remote.handshake.query.EIO, "4");
    const all = await call(nodeA, "GET", "/api/sockets");
    for (const id of [a.socket.id, b.socket.id]) assert.ok(all.sockets.some((s) => s.id === id), `${id} listed`);
  });

  it("lists rooms of both nodes with cluster-wide sizes", async () => {
    const room = unique("shared");
    const onlyB = unique("only-b");
    const a = await clients.connect(nodeA.url);
    const b = await clients.connect(nodeB.url);
    await joinRoom(a.socket, room);
    await joinRoom(b.socket, room);
    await joinRoom(b.socket, onlyB);
    const { rooms } = await call(nodeA, "GET", "/api/rooms?namespace=/");
    const size = (name) => rooms.find((r) => r.name === name)?.size;
    assert.equal(size(room), 2, JSON.stringify(rooms));
    assert.equal(size(onlyB), 1, JSON.stringify(rooms));
    assert.ok(!rooms.some((r) => r.name === b.socket.id), "a remote socket's own room is not listed");
  });

  it("collects acks from sockets on B", async () => {
    const room = unique("ask-b");
    const answering = await clients.connect(nodeB.url);
    const silent = await clients.connect(nodeA.url);
    await joinRoom(answering.socket, room);
    await joinRoom(silent.socket, room);
    answering.socket.on("question", (n, callback) => callback(n + 1));
    const res = await call(nodeA, "POST", "/api/emit", { event: "question", args: [1], to: [room], timeout_ms: 500 });
    assert.deepEqual(res, { ok: true, acks: [{ socket: answering.socket.id, args: [2] }], missing: 1 });
  });
});
