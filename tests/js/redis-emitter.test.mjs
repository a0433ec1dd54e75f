// The real `@socket.io/redis-emitter` 5.x, as a Node job worker or REST handler uses it,
// pushing to sockets on two iorelay nodes that share a real redis-server: namespace, rooms,
// `except`, another namespace, binary data, `socketsJoin`, `socketsLeave`,
// `disconnectSockets`, `serverSideEmit`; a Node socket.io server on `@socket.io/redis-adapter`
// broadcasting to iorelay's sockets and fetching them (`fetchSockets`, `allRooms`); and bad
// input on Node's channels, dropped and counted.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { createServer } from "node:http";

import { createAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { Server } from "socket.io";

import { ClientSet, bytesOf, joinRoom, nextEvent, sleep, unique, waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { openPlain, plainUrl } from "../support/plain.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startRedis } from "../support/redis.mjs";

const clients = new ClientSet();
afterEach(() => clients.closeAll());

async function droppedOn(node) {
  const res = await httpRequest(`${node.url}/healthz`);
  return JSON.parse(res.body).redis.dropped_messages;
}

describe("@socket.io/redis-emitter against two iorelay nodes", () => {
  let redis;
  let nodeA;
  let nodeB;
  let publisher;
  let emitter;

  before(async () => {
    redis = await startRedis();
    const args = ["--redis-url", redis.url, "--tick-interval-ms", "0"];
    [nodeA, nodeB] = await Promise.all([startIorelay({ args }), startIorelay({ args })]);
    publisher = createClient({ url: redis.url });
    await publisher.connect();
    emitter = new Emitter(publisher);
  });
  after(async () => {
    clients.closeAll();
    await publisher?.quit();
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    await redis?.stop();
  });

  /** Emits `end` to the whole namespace and waits until every one of `members` has it. */
  async function fence(members, namespaceEmitter = emitter) {
    const mark = unique("end");
    namespaceEmitter.emit("end", mark);
    for (const member of members) await member.recorder.waitFor("end", (m) => m === mark);
  }

  it("reaches the namespace on both nodes, Socket.IO and plain WebSocket clients alike", async () => {
    const onA = await clients.connect(nodeA.url);
    const onB = await clients.connect(nodeB.url);
    const plain = await openPlain(plainUrl(nodeB.url));
    try {
      emitter.emit("hello", 1, "two", { three: [3] });
      await fence([onA, onB]);
      for (const member of [onA, onB]) {
        assert.deepEqual(member.recorder.all("hello").map((e) => e.args), [[1, "two", { three: [3] }]]);
      }
      const frame = await plain.waitJson((f) => f.event === "hello");
      assert.deepEqual(frame.data, [1, "two", { three: [3] }]);
    } finally {
      plain.ws.close();
    }
  });

  it("reaches a room less another, on both nodes, once each", async () => {
    const room = unique("r");
    const left = unique("l");
    const a = await clients.connect(nodeA.url);
    const b = await clients.connect(nodeB.url);
    const bLeftOut = await clients.connect(nodeB.url);
    const outsider = await clients.connect(nodeA.url);
    await joinRoom(a.socket, room);
    await joinRoom(b.socket, room);
    await joinRoom(bLeftOut.socket, room);
    await joinRoom(bLeftOut.socket, left);
    emitter.to(room).emit("room only", "r");
    emitter.to(room).except(left).emit("room less", "x");
    emitter.to([room, left]).emit("either", "e");
    await fence([a, b, bLeftOut, outsider]);
    for (const member of [a, b, bLeftOut]) {
      assert.deepEqual(member.recorder.all("room only").map((e) => e.args), [["r"]]);
      assert.deepEqual(member.recorder.all("either").map((e) => e.args), [["e"]]);
    }
    for (const member of [a, b]) {
      assert.deepEqual(member.recorder.all("room less").map((e) => e.args), [["x"]]);
    }
    assert.equal(bLeftOut.recorder.find("room less"), undefined);
    for (const event of ["room only", "room less", "either"]) {
      assert.equal(outsider.recorder.find(event), undefined, event);
    }
  });

  it("reaches another namespace, and only it", async () => {
    const chatA = await clients.connect(`${nodeA.url}/chat`);
    const chatB = await clients.connect(`${nodeB.url}/chat`);
    const root = await clients.connect(nodeB.url);
    const chat = emitter.of("/chat");
    chat.emit("chat news", "n");
    await fence([chatA, chatB], chat);
    await fence([root]);
    for (const member of [chatA, chatB]) {
      assert.deepEqual(member.recorder.all("chat news").map((e) => e.args), [["n"]]);
    }
    assert.equal(root.recorder.find("chat news"), undefined);
  });

  it("carries binary data, dates and undefined as Node's own server would", async () => {
    const member = await clients.connect(nodeB.url);
    const millis = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6));
    const seconds = new Date(Date.UTC(2026, 0, 2));
    emitter.emit("bin", Buffer.from([1, 2, 3]), { nested: Buffer.from([4, 5]), gone: undefined }, millis, seconds, [undefined], new Uint8Array([9]));
    const [top, nested, date, day, list, view] = await member.recorder.waitFor("bin");
    assert.deepEqual([...bytesOf(top)], [1, 2, 3]);
    assert.deepEqual(Object.keys(nested), ["nested"]);
    assert.deepEqual([...bytesOf(nested.nested)], [4, 5]);
    assert.equal(date, "2026-01-02T03:04:05.006Z");
    assert.equal(day, "2026-01-02T00:00:00.000Z");
    assert.deepEqual(list, [null]);
    assert.deepEqual([...bytesOf(view)], [9]);
  });

  it("makes sockets join and leave rooms, and disconnects them", async () => {
    const room = unique("from");
    const added = unique("added");
    const a = await clients.connect(nodeA.url);
    const b = await clients.connect(nodeB.url);
    const other = await clients.connect(nodeB.url);
    await joinRoom(a.socket, room);
    await joinRoom(b.socket, room);
    emitter.in(room).socketsJoin(added);
    emitter.to(added).emit("to added", 1);
    await fence([a, b, other]);
    for (const member of [a, b]) assert.equal(member.recorder.all("to added").length, 1);
    assert.equal(other.recorder.find("to added"), undefined);
    // The join ack counts members on every node.
    const size = await other.socket.timeout(3_000).emitWithAck("join", added);
    assert.equal(size.size, 3);

    emitter.in(room).socketsLeave(added);
    emitter.to(added).emit("after leave", 2);
    await fence([a, b, other]);
    assert.equal(other.recorder.all("after leave").length, 1);
    for (const member of [a, b]) assert.equal(member.recorder.find("after leave"), undefined);

    const reasons = [a, b].map((member) => nextEvent(member.socket, "disconnect"));
    emitter.in(room).disconnectSockets(true);
    for (const [reason] of await Promise.all(reasons)) assert.equal(reason, "io server disconnect");
    await sleep(100);
    assert.equal(other.socket.connected, true);
  });

  it("takes serverSideEmit without a listener and keeps serving", async () => {
    const member = await clients.connect(nodeA.url);
    const before = await droppedOn(nodeA);
    emitter.serverSideEmit("hello", "servers");
    await fence([member]);
    assert.equal(await droppedOn(nodeA), before);
  });

  it("lets a Node socket.io server on @socket.io/redis-adapter reach iorelay's sockets", async () => {
    const room = unique("mixed");
    const pub = publisher.duplicate();
    const sub = publisher.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    const nodeServer = new Server(createServer(), { adapter: createAdapter(pub, sub) });
    try {
      const inRoom = await clients.connect(nodeB.url);
      const outside = await clients.connect(nodeA.url);
      await joinRoom(inRoom.socket, room);
      nodeServer.to(room).emit("from node", { n: 1 }, Buffer.from([7]));
      nodeServer.of("/").emit("to all from node", 2);
      for (const member of [inRoom, outside]) await member.recorder.waitFor("to all from node");
      const [message, bytes] = inRoom.recorder.find("from node").args;
      assert.deepEqual(message, { n: 1 });
      assert.deepEqual([...bytesOf(bytes)], [7]);
      assert.equal(inRoom.recorder.all("from node").length, 1);
      assert.equal(outside.recorder.find("from node"), undefined);
    } finally {
      nodeServer.close();
      await Promise.all([pub.quit(), sub.quit()]);
    }
  });

  it("answers a Node server's fetchSockets and allRooms with iorelay's sockets", async () => {
    const room = unique("fetched");
    const pub = publisher.duplicate();
    const sub = publisher.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    // Node waits for every server on the request channel (both iorelay nodes here) to answer,
    // and fails after requestsTimeout; 3 s makes a missing answer fail well within the test.
    const nodeServer = new Server(createServer(), {
      adapter: createAdapter(pub, sub, { requestsTimeout: 3_000 }),
    });
    try {
      const inRoom = await clients.connect(nodeA.url, { auth: { name: "ada" }, query: { from: "a" } });
      const other = await clients.connect(nodeB.url);
      await joinRoom(inRoom.socket, room);
      const ids = (sockets) => sockets.map((s) => s.id).sort();

      const everyone = await nodeServer.fetchSockets();
      assert.deepEqual(ids(everyone), [inRoom.socket.id, other.socket.id].sort());

      const [fetched, ...more] = await nodeServer.in(room).fetchSockets();
      assert.equal(more.length, 0);
      assert.equal(fetched.id, inRoom.socket.id);
      assert.deepEqual([...fetched.rooms].sort(), [room, inRoom.socket.id].sort());
      assert.deepEqual(fetched.data, {});
      assert.deepEqual(fetched.handshake.auth, { name: "ada" });
      assert.equal(fetched.handshake.query.from, "a");
      assert.equal(fetched.handshake.query.EIO, "4");
      assert.match(fetched.handshake.address, /127\.0\.0\.1/);
      assert.equal(typeof fetched.handshake.headers, "object");
      assert.equal(typeof fetched.handshake.issued, "number");

      assert.deepEqual(ids(await nodeServer.in(other.socket.id).fetchSockets()), [other.socket.id]);
      assert.deepEqual(ids(await nodeServer.except(room).fetchSockets()), [other.socket.id]);

      const rooms = await nodeServer.of("/").adapter.allRooms();
      for (const name of [room, inRoom.socket.id, other.socket.id]) assert.ok(rooms.has(name), `allRooms lacks ${name}`);

      // What came back acts on the socket where it lives.
      const added = unique("added");
      fetched.join(added);
      await waitUntil(async () => (await nodeServer.in(added).fetchSockets()).length === 1, { what: "the join", timeoutMs: 5_000 });
      nodeServer.to(added).emit("to added", 1);
      assert.deepEqual(await inRoom.recorder.waitFor("to added"), [1]);
      assert.equal(other.recorder.find("to added"), undefined);

      const [remote] = await nodeServer.in(other.socket.id).fetchSockets();
      const reason = new Promise((resolve) => other.socket.once("disconnect", resolve));
      remote.disconnect();
      assert.equal(await reason, "io server disconnect");
      assert.equal(inRoom.socket.connected, true);
    } finally {
      nodeServer.close();
      await Promise.all([pub.quit(), sub.quit()]);
    }
  });

  it("carries a Node server's emitWithAck to iorelay's sockets and their acks back", async () => {
    const room = unique("asked");
    const pub = publisher.duplicate();
    const sub = publisher.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    const nodeServer = new Server(createServer(), { adapter: createAdapter(pub, sub) });
    try {
      const onA = await clients.connect(nodeA.url);
      const onB = await clients.connect(nodeB.url);
      const outside = await clients.connect(nodeB.url);
      await joinRoom(onA.socket, room);
      await joinRoom(onB.socket, room);
      onA.socket.on("question", (n, ack) => ack({ from: "a", n }));
      onB.socket.on("question", (n, ack) => ack(Buffer.from([n])));
      outside.socket.on("question", (n, ack) => ack("outside"));

      const answers = await nodeServer.timeout(3_000).to(room).emitWithAck("question", 7);
      assert.equal(answers.length, 2);
      assert.deepEqual(answers.find((a) => a.from), { from: "a", n: 7 });
      assert.deepEqual([...bytesOf(answers.find((a) => !a.from))], [7]);

      // Every iorelay node answers with its count, even of no socket: no timeout.
      const started = Date.now();
      assert.deepEqual(await nodeServer.timeout(3_000).to(unique("empty")).emitWithAck("question", 1), []);
      assert.ok(Date.now() - started < 2_000, "the empty broadcast waited for a timeout");

      // A socket that never answers is missing from the answers, and the call times out, as
      // with Node's own sockets.
      const silent = await clients.connect(nodeA.url);
      const quiet = unique("quiet");
      await joinRoom(silent.socket, quiet);
      silent.socket.on("question", () => {});
      await assert.rejects(nodeServer.timeout(500).to(quiet).emitWithAck("question", 2), /timed out/);
    } finally {
      nodeServer.close();
      await Promise.all([pub.quit(), sub.quit()]);
    }
  });

  it("drops and counts bad input on Node's channels, and delivers what follows", async () => {
    const member = await clients.connect(nodeA.url);
    const [beforeA, beforeB] = await Promise.all([droppedOn(nodeA), droppedOn(nodeB)]);
    // [uid, packet, opts] as notepack writes them: `good` emits `x` to the whole namespace.
    const str = (text) => [0xa0 + text.length, ...Buffer.from(text)];
    const packet = (fields) => [0x80 + fields.length / 2, ...fields.flat()];
    const event = [str("type"), [0x02], str("data"), [0x91, ...str("x")]];
    const good = Buffer.from([0x93, ...str("emitter"), ...packet(event), 0x80]);
    const elsewhere = Buffer.from([0x93, ...str("emitter"), ...packet([...event, str("nsp"), str("/nowhere")]), 0x80]);
    const bad = [
      ["socket.io#/#", good.subarray(0, good.length - 3)], // truncated MessagePack
      ["socket.io#/#", Buffer.from([0xc1])], // a byte MessagePack never uses
      ["socket.io#/#", Buffer.alloc(1_500_000, 0x90)], // over maxHttpBufferSize
      ["socket.io#/nowhere#", elsewhere], // a namespace iorelay does not serve
      ["socket.io-request#/#", Buffer.from('{"type":0,"requestId":"x","rooms":[]}')], // SOCKETS with no uid to answer
      ["socket.io-request#/#", Buffer.from('{"type":99,"opts":{"rooms":[]}}')], // an unknown request type
      ["socket.io-request#/#", Buffer.from('{"type":2,"opts":{"rooms":[{}]},"rooms":["r"]}')], // a room that is no name
      ["socket.io-request#/#", Buffer.from([0x81, ...str("type"), 0x63])], // a packed request of an unknown type
      ["socket.io-request#/#", Buffer.from([0x82, ...str("type"), 0x07])], // a packed broadcast, truncated
    ];
    for (const [channel, payload] of bad) await publisher.publish(channel, payload);
    // Every node receives each message itself, and counts each refusal.
    await waitUntil(async () => (await droppedOn(nodeA)) - beforeA >= bad.length, { what: "node A's count", timeoutMs: 5_000 });
    await waitUntil(async () => (await droppedOn(nodeB)) - beforeB >= bad.length, { what: "node B's count", timeoutMs: 5_000 });
    assert.equal((await droppedOn(nodeA)) - beforeA, bad.length);
    assert.equal((await droppedOn(nodeB)) - beforeB, bad.length);
    // The well-formed one reaches sockets: the channel and payload above are Node's format.
    await publisher.publish("socket.io#/#", good);
    assert.deepEqual(await member.recorder.waitFor("x"), []);
    await fence([member]);
    assert.equal(member.socket.connected, true);
  });
});
