// A mixed cluster: a real Node socket.io 4.8 server on @socket.io/redis-adapter 8 and iorelay
// nodes on one real Redis, with socket.io-client clients on each. iorelay's own broadcasts and
// room changes travel in Node's format (`--redis-protocol node`, the default), so the Node
// server acts on them; with `--redis-protocol socketioxide`, only iorelay nodes read them.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { createServer } from "node:http";

import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";

import { ClientSet, bytesOf, joinRoom, sleep, unique, waitUntil } from "../support/clients.mjs";
import { apiCaller } from "../support/api.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startRedis } from "../support/redis.mjs";

const API_KEY = "apikey-mixed-3c9d21e7";

const clients = new ClientSet();
afterEach(() => clients.closeAll());

const call = apiCaller(API_KEY);

/**
 * A Node socket.io server on `@socket.io/redis-adapter`, listening on 127.0.0.1, whose clients
 * speak iorelay's `join` and `chat` events as an express + socket.io backend would serve them.
 */
async function startNodeServer(redisUrl) {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  const io = new Server(http, { adapter: createAdapter(pub, sub, { requestsTimeout: 3_000 }) });
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack?.({ room });
    });
    socket.on("chat", ({ room, text }, ack) => {
      io.to(room).emit("chat", { room, text, from: socket.id, ts: Date.now() });
      ack?.({ ok: true });
    });
  });
  await new Promise((resolve) => http.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${http.address().port}`;
  return {
    io,
    url,
    /** Whether this server's own socket `id` is in `room`. */
    has: (room, id) => io.of("/").adapter.rooms.get(room)?.has(id) === true,
    async stop() {
      io.close();
      await Promise.allSettled([pub.quit(), sub.quit()]);
    },
  };
}

/**
 * A real redis-server, two iorelay nodes on it (with `protocolArgs`) and a Node server on its
 * adapter; `stop()` ends them all, `restartRedis()` restarts Redis on its port.
 */
async function startMixedCluster(protocolArgs) {
  const cluster = { redis: await startRedis() };
  const args = ["--redis-url", cluster.redis.url, "--api-key", API_KEY, "--tick-interval-ms", "0", ...protocolArgs];
  [cluster.nodeA, cluster.nodeB] = await Promise.all([startIorelay({ args }), startIorelay({ args })]);
  cluster.nodeServer = await startNodeServer(cluster.redis.url);
  cluster.restartRedis = async () => {
    await cluster.redis.stop();
    cluster.redis = await startRedis({ port: cluster.redis.port });
  };
  cluster.stop = async () => {
    clients.closeAll();
    await cluster.nodeServer?.stop();
    await Promise.all([cluster.nodeA?.stop(), cluster.nodeB?.stop()]);
    await cluster.redis?.stop();
  };
  return cluster;
}

describe("a Node socket.io server and iorelay nodes on one Redis (--redis-protocol node)", () => {
  let cluster;
  let nodeA;
  let nodeB;
  let nodeServer;

  before(async () => {
    cluster = await startMixedCluster([]);
    ({ nodeA, nodeB, nodeServer } = cluster);
  });
  after(() => cluster?.stop());

  it("carries room chats both ways, to members on every server and to no one else", async () => {
    const room = unique("mixed-chat");
    const onA = await clients.connect(nodeA.url);
    const onB = await clients.connect(nodeB.url);
    const onNode = await clients.connect(nodeServer.url);
    const outsideA = await clients.connect(nodeA.url);
    const outsideNode = await clients.connect(nodeServer.url);
    await joinRoom(onA.socket, room);
    await joinRoom(onB.socket, room);
    await joinRoom(onNode.socket, room);

    assert.deepEqual(await onA.socket.timeout(3_000).emitWithAck("chat", { room, text: "from iorelay" }), { ok: true });
    for (const member of [onA, onB, onNode]) {
      const [message] = await member.recorder.waitFor("chat", (m) => m.text === "from iorelay");
      assert.equal(message.from, onA.socket.id);
      assert.equal(message.room, room);
    }

    await onNode.socket.timeout(3_000).emitWithAck("chat", { room, text: "from node" });
    for (const member of [onA, onB, onNode]) {
      const [message] = await member.recorder.waitFor("chat", (m) => m.text === "from node");
      assert.equal(message.from, onNode.socket.id);
    }

    // A fence to the whole namespace from each side, then nothing was delivered twice or
    // outside the room.
    const fence = unique("fence");
    await call(nodeA, "POST", "/api/emit", { event: "fence", args: [fence] });
    nodeServer.io.emit("fence", fence);
    for (const member of [onA, onB, onNode, outsideA, outsideNode]) {
      await waitUntil(() => member.recorder.all("fence").length === 2, { what: "both fences" });
    }
    for (const member of [onA, onB, onNode]) {
      assert.equal(member.recorder.all("chat").length, 2, "each chat arrived once");
    }
    assert.equal(outsideA.recorder.find("chat"), undefined);
    assert.equal(outsideNode.recorder.find("chat"), undefined);
  });

  it("reaches the Node server's sockets with iorelay's emits: a room less another, one socket, binary", async () => {
    const room = unique("api-room");
    const muted = unique("muted");
    const onNode = await clients.connect(nodeServer.url);
    const mutedOnNode = await clients.connect(nodeServer.url);
    const byId = await clients.connect(nodeServer.url);
    const onB = await clients.connect(nodeB.url);
    for (const member of [onNode, mutedOnNode, onB]) await joinRoom(member.socket, room);
    await joinRoom(mutedOnNode.socket, muted);

    await call(nodeA, "POST", "/api/emit", { event: "news", args: [{ n: 1 }], to: [room], except: [muted] });
    await call(nodeA, "POST", "/api/emit", { event: "direct", args: ["only you"], to: [byId.socket.id] });
    assert.deepEqual(await onNode.recorder.waitFor("news"), [{ n: 1 }]);
    assert.deepEqual(await onB.recorder.waitFor("news"), [{ n: 1 }]);
    assert.deepEqual(await byId.recorder.waitFor("direct"), ["only you"]);

    await call(nodeA, "POST", "/api/emit", { event: "bytes", args: ["b", { _binary: "AAEC/w==" }], to: [room] });
    const [label, bytes] = await onNode.recorder.waitFor("bytes");
    assert.equal(label, "b");
    assert.deepEqual([...bytesOf(bytes)], [0, 1, 2, 255]);
    const fence = unique("fence");
    await call(nodeB, "POST", "/api/emit", { event: "fence", args: [fence] });
    for (const member of [onNode, mutedOnNode, byId, onB]) await member.recorder.waitFor("fence");
    assert.equal(mutedOnNode.recorder.find("news"), undefined);
    assert.equal(onNode.recorder.find("direct"), undefined);
    assert.equal(onNode.recorder.all("news").length, 1);
  });

  it("lets iorelay's server API join, leave and disconnect the Node server's sockets", async () => {
    const room = unique("api-join");
    const onNode = await clients.connect(nodeServer.url);
    const onB = await clients.connect(nodeB.url);
    assert.deepEqual(
      await call(nodeA, "POST", "/api/sockets/join", { namespace: "/", to: [onNode.socket.id, onB.socket.id], rooms: [room] }),
      { ok: true },
    );
    await waitUntil(() => nodeServer.has(room, onNode.socket.id), { what: "the Node socket in the room" });
    // Node's own broadcast to the room reaches both, wherever they live.
    nodeServer.io.to(room).emit("joined", 1);
    assert.deepEqual(await onNode.recorder.waitFor("joined"), [1]);
    assert.deepEqual(await onB.recorder.waitFor("joined"), [1]);

    await call(nodeA, "POST", "/api/sockets/leave", { namespace: "/", to: [room], rooms: [room] });
    await waitUntil(() => !nodeServer.has(room, onNode.socket.id), { what: "the Node socket out of the room" });

    const reason = new Promise((resolve) => onNode.socket.once("disconnect", resolve));
    await call(nodeA, "POST", "/api/sockets/disconnect", { namespace: "/", to: [onNode.socket.id] });
    assert.equal(await reason, "io server disconnect");
    assert.equal(onB.socket.connected, true);
  });

  it("counts the Node server's members in iorelay's join acks, without waiting for a timeout", async () => {
    const room = unique("sizes");
    const onNode = await clients.connect(nodeServer.url);
    const onB = await clients.connect(nodeB.url);
    const onA = await clients.connect(nodeA.url);
    await joinRoom(onNode.socket, room);
    assert.equal((await joinRoom(onB.socket, room)).size, 2);
    const started = Date.now();
    assert.equal((await joinRoom(onA.socket, room)).size, 3);
    // Every server answers Node's SOCKETS request; a missing answer would cost the 1 s timeout.
    assert.ok(Date.now() - started < 1_000, "the join ack waited for a server that never answered");
    // socket.io-client forgets its id on disconnect.
    const nodeSocketId = onNode.socket.id;
    onNode.socket.disconnect();
    await waitUntil(() => !nodeServer.has(room, nodeSocketId), { what: "the Node socket gone" });
    assert.equal((await onA.socket.timeout(3_000).emitWithAck("leave", room)).size, 1);
  });

  it("lists the Node server's sockets and rooms in iorelay's server API, without waiting for a timeout", async () => {
    const room = unique("listed");
    const onNode = await clients.connect(nodeServer.url, { auth: { from: "node" } });
    const onB = await clients.connect(nodeB.url, { auth: { from: "b" } });
    const onA = await clients.connect(nodeA.url);
    for (const member of [onNode, onB, onA]) await joinRoom(member.socket, room);
    const started = Date.now();
    const { sockets } = await call(nodeA, "GET", `/api/sockets?room=${encodeURIComponent(room)}`);
    const { rooms } = await call(nodeA, "GET", "/api/rooms");
    assert.ok(Date.now() - started < 1_000, "a list waited for a server that never answered");
    assert.deepEqual(sockets.map((s) => s.id).sort(), [onNode.socket.id, onB.socket.id, onA.socket.id].sort());
    const fromNode = sockets.find((s) => s.id === onNode.socket.id);
    assert.deepEqual([...fromNode.rooms].sort(), [room, onNode.socket.id].sort());
    assert.deepEqual(fromNode.handshake.auth, { from: "node" });
    assert.deepEqual(fromNode.data, {});
    assert.deepEqual(sockets.find((s) => s.id === onB.socket.id).handshake.auth, { from: "b" });
    assert.equal(rooms.find((r) => r.name === room)?.size, 3, JSON.stringify(rooms));
    assert.ok(!rooms.some((r) => r.name === onNode.socket.id), "a Node socket's own room is not listed");
  });

  it("carries chats both ways again once a restarted Redis is back", async () => {
    await cluster.restartRedis();
    const reachable = async (node) => JSON.parse((await httpRequest(`${node.url}/healthz`)).body).redis.reachable;
    await waitUntil(async () => (await reachable(nodeA)) && (await reachable(nodeB)), {
      what: "both nodes back on Redis",
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    const room = unique("after-restart");
    const onA = await clients.connect(nodeA.url);
    const onNode = await clients.connect(nodeServer.url);
    await joinRoom(onA.socket, room);
    await joinRoom(onNode.socket, room);
    // The Node server's Redis client resubscribes on its own schedule: chat until a message
    // crosses each way, a bounded number of times.
    let crossed = false;
    for (let attempt = 0; attempt < 50 && !crossed; attempt++) {
      await onA.socket.timeout(3_000).emitWithAck("chat", { room, text: `a${attempt}` });
      await onNode.socket.timeout(3_000).emitWithAck("chat", { room, text: `n${attempt}` });
      await sleep(100);
      crossed =
        onNode.recorder.all("chat").some((e) => e.args[0].text.startsWith("a")) &&
        onA.recorder.all("chat").some((e) => e.args[0].text.startsWith("n"));
    }
    assert.ok(crossed, "chats cross both ways after the restart");
  });
});

describe("iorelay nodes on --redis-protocol socketioxide", () => {
  let cluster;
  let nodeA;
  let nodeB;
  let nodeServer;

  before(async () => {
    cluster = await startMixedCluster(["--redis-protocol", "socketioxide"]);
    ({ nodeA, nodeB, nodeServer } = cluster);
  });
  after(() => cluster?.stop());

  it("share rooms among themselves; Node servers do not read their messages", async () => {
    const room = unique("sx");
    const onA = await clients.connect(nodeA.url);
    const onB = await clients.connect(nodeB.url);
    const onNode = await clients.connect(nodeServer.url);
    for (const member of [onA, onB, onNode]) await joinRoom(member.socket, room);
    await onA.socket.timeout(3_000).emitWithAck("chat", { room, text: "sx" });
    await onB.recorder.waitFor("chat", (m) => m.text === "sx");
    // Node's broadcasts still reach iorelay's sockets: iorelay reads Node's format either way.
    nodeServer.io.to(room).emit("fence", 1);
    await onA.recorder.waitFor("fence");
    await onNode.recorder.waitFor("fence");
    await sleep(200);
    assert.equal(onNode.recorder.find("chat"), undefined);
    // Room sizes come from socketioxide-redis's requests, which only iorelay nodes answer.
    const other = await clients.connect(nodeA.url);
    assert.equal((await joinRoom(other.socket, room)).size, 3);
  });
});
