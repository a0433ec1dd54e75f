// The /admin namespace driven by socket.io-client exactly as the Socket.IO Admin UI page
// (@socket.io/admin-ui 0.5) drives it: login and session, config, server_stats, the socket list
// and its live updates, and each action's effect on real clients. Every check runs against the
// Node reference (socket.io 4.8 instrumented by @socket.io/admin-ui) and against iorelay, so
// iorelay is held to what the official server side does. Two iorelay nodes on a real
// redis-server are then seen as two servers, with actions crossing nodes.
import assert from "node:assert/strict";
import os from "node:os";
import { after, afterEach, before, describe, it } from "node:test";

import {
  ADMIN_PASSWORD,
  ADMIN_USERNAME,
  DEVELOPMENT_FEATURES,
  ISO_DATE,
  iorelayAdminArgs,
  openAdmin,
  startNodeAdminReference,
} from "../support/admin-ui.mjs";
import { ClientSet, joinRoom, nextEvent, unique, waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { startRedis } from "../support/redis.mjs";

/** server_stats comes every 2 s: wait for two rounds and some slack. */
const STATS_WAIT_MS = 5_500;

const clients = new ClientSet();
afterEach(() => clients.closeAll());

const targets = [
  {
    name: "Node socket.io with @socket.io/admin-ui (the reference)",
    start: (options) => startNodeAdminReference(options),
  },
  {
    name: "iorelay",
    start: (options) => startIorelay({ args: [...iorelayAdminArgs(options), "--tick-interval-ms", "0"] }),
  },
];

/** Resolves with the first server_stats (received already or later) that satisfies `match`. */
async function statsWhere(admin, what, match) {
  const [stats] = await admin.recorder.waitFor("server_stats", match, STATS_WAIT_MS).catch((err) => {
    const last = admin.recorder.all("server_stats").at(-1);
    throw new Error(`${err.message} (${what}); the last one: ${JSON.stringify(last?.args[0])}`);
  });
  return stats;
}

const socketsIn = (stats, name) => stats.namespaces.find((ns) => ns.name === name)?.socketsCount;

/** Opens a socket on the namespace `nsp` of an existing client's connection (one Engine.IO session). */
async function sameConnection(client, nsp) {
  // The manager connects the new socket itself (autoConnect).
  const socket = clients.track(client.socket.io.socket(nsp));
  await waitUntil(() => socket.connected, { what: `${nsp} on the same connection` });
  return socket;
}

/**
 * Proves that none of `receivers` got `event` from an earlier emit: a marker that `admin` emits
 * to the whole namespace afterwards arrives, and `event` did not arrive before it.
 */
async function assertNotReceived(admin, receivers, event) {
  const marker = unique("marker");
  admin.socket.emit("emit", "/", null, marker);
  for (const client of receivers) {
    await client.recorder.waitFor(marker);
    assert.equal(client.recorder.find(event), undefined, `${client.socket.id} received ${event}`);
  }
}

for (const target of targets) {
  describe(`admin namespace, development mode: ${target.name}`, () => {
    const serverId = unique("admin-node");
    let server;

    before(async () => {
      server = await target.start({ serverId });
    });
    after(async () => {
      clients.closeAll();
      await server?.stop();
    });

    it("refuses a wrong password, an unknown user, no credentials and an unknown session", async () => {
      const refused = [
        { username: ADMIN_USERNAME, password: "wrong" },
        { username: "root", password: ADMIN_PASSWORD },
        {},
        { sessionId: "0123456789abcdef" },
      ];
      for (const auth of refused) {
        const socket = clients.open(`${server.url}/admin`, { transports: ["websocket"], auth });
        const [err] = await nextEvent(socket, "connect_error");
        assert.equal(err.message, "invalid credentials", JSON.stringify(auth));
        assert.equal(socket.connected, false);
      }
    });

    it("logs in with the password, then again with the session id alone", async () => {
      const first = await openAdmin(clients, server.url, { wsOnly: false });
      const [sessionId] = await first.recorder.waitFor("session");
      assert.equal(typeof sessionId, "string");
      assert.ok(sessionId.length >= 16, `session id ${sessionId}`);
      first.socket.close();

      // What the page does when it is opened again: the form is skipped, the session id sent.
      const again = await openAdmin(clients, server.url, { auth: { sessionId } });
      await again.recorder.waitFor("config");
      assert.equal(again.recorder.find("session"), undefined, "no new session for a session login");
    });

    it("sends config with the supported features, then all_sockets", async () => {
      const admin = await openAdmin(clients, server.url);
      const [config] = await admin.recorder.waitFor("config");
      assert.deepEqual([...config.supportedFeatures].sort(), [...DEVELOPMENT_FEATURES].sort());
      const [sockets] = await admin.recorder.waitFor("all_sockets");
      assert.ok(Array.isArray(sockets));
      const configAt = admin.recorder.events.findIndex((e) => e.event === "config");
      const socketsAt = admin.recorder.events.findIndex((e) => e.event === "all_sockets");
      assert.ok(configAt < socketsAt, "config comes first");
    });

    it("sends server_stats with this server's identity, counts and aggregated events", async () => {
      const admin = await openAdmin(clients, server.url);
      const ws = [await clients.connect(server.url, { transports: ["websocket"] })];
      ws.push(await clients.connect(server.url, { transports: ["websocket"] }));
      const polling = await clients.connect(server.url, { transports: ["polling"] });
      const chat = await clients.connect(`${server.url}/chat`, { transports: ["websocket"] });
      await joinRoom(ws[0].socket, unique("stats-room"));

      // Five Engine.IO sessions (the admin's too), one of them polling.
      const stats = await statsWhere(
        admin,
        "5 clients, 1 polling, 3 sockets on /, 1 on /chat, 1 on /admin",
        (s) =>
          s.clientsCount === 5 &&
          s.pollingClientsCount === 1 &&
          socketsIn(s, "/") === 3 &&
          socketsIn(s, "/chat") === 1 &&
          socketsIn(s, "/admin") === 1,
      );
      assert.equal(stats.serverId, serverId);
      assert.equal(stats.hostname, os.hostname());
      assert.equal(stats.pid, server.pid);
      assert.equal(typeof stats.uptime, "number");
      assert.ok(stats.uptime > 0 && stats.uptime < 3600, `uptime ${stats.uptime}`);
      for (const ns of stats.namespaces) {
        assert.deepEqual(Object.keys(ns).sort(), ["name", "socketsCount"]);
      }

      // A client leaves: the next rounds count it out and report its disconnection.
      polling.socket.close();
      await statsWhere(admin, "the polling client gone", (s) => s.clientsCount === 4 && s.pollingClientsCount === 0);
      const statsSoFar = admin.recorder.all("server_stats").length;
      await admin.recorder.waitFor(
        "server_stats",
        () => admin.recorder.all("server_stats").length > statsSoFar,
        STATS_WAIT_MS,
      );

      const events = admin.recorder.all("server_stats").flatMap((e) => e.args[0].aggregatedEvents);
      for (const e of events) {
        assert.equal(typeof e.timestamp, "number");
        assert.equal(e.timestamp % 1000, 0, "timestamps are whole seconds");
        assert.ok(Math.abs(Date.now() - e.timestamp) < 60_000, `timestamp ${e.timestamp}`);
        assert.ok(Number.isInteger(e.count) && e.count > 0, JSON.stringify(e));
      }
      const total = (type) => events.filter((e) => e.type === type).reduce((sum, e) => sum + e.count, 0);
      assert.ok(total("rawConnection") >= 4, `rawConnection ${total("rawConnection")}: ${JSON.stringify(events)}`);
      assert.ok(total("rawDisconnection") >= 1, `rawDisconnection: ${JSON.stringify(events)}`);
      const disconnections = events.filter((e) => e.type === "rawDisconnection");
      assert.ok(
        disconnections.some((e) => e.subType === "transport close"),
        `the client's close is a "transport close": ${JSON.stringify(disconnections)}`,
      );
      for (const type of ["packetsIn", "packetsOut"]) assert.ok(total(type) >= 4, `${type} ${total(type)}`);
      // Every packet carries at least its one-byte type.
      assert.ok(total("bytesIn") >= total("packetsIn"), `bytesIn ${total("bytesIn")}`);
      assert.ok(total("bytesOut") >= total("packetsOut"), `bytesOut ${total("bytesOut")}`);
      assert.ok(chat.socket.connected && ws.every((c) => c.socket.connected));
    });

    it("lists every socket with its rooms, transport, client and handshake", async () => {
      const room = unique("listed");
      const other = unique("listed-too");
      const a = await clients.connect(server.url, { transports: ["websocket"], query: { tag: "a" } });
      const aChat = await sameConnection(a, "/chat");
      const b = await clients.connect(server.url, { transports: ["polling"] });
      await joinRoom(a.socket, room);
      await joinRoom(b.socket, room);
      await joinRoom(b.socket, other);

      const admin = await openAdmin(clients, server.url);
      const [sockets] = await admin.recorder.waitFor("all_sockets");
      const find = (id, nsp) => sockets.find((s) => s.id === id && s.nsp === nsp);
      const listedA = find(a.socket.id, "/");
      const listedChat = find(aChat.id, "/chat");
      const listedB = find(b.socket.id, "/");
      assert.ok(listedA && listedChat && listedB, JSON.stringify(sockets));
      assert.ok(find(admin.socket.id, "/admin"), "the admin's own socket is listed");

      assert.deepEqual([...listedA.rooms].sort(), [a.socket.id, room].sort());
      assert.deepEqual([...listedB.rooms].sort(), [b.socket.id, room, other].sort());
      assert.deepEqual(listedChat.rooms, [aChat.id]);
      assert.equal(listedA.transport, "websocket");
      assert.equal(listedB.transport, "polling");
      assert.deepEqual(listedA.data, {});

      // The client id groups the sockets of one connection (the page's Clients view).
      assert.equal(typeof listedA.clientId, "string");
      assert.ok(listedA.clientId.length > 0);
      assert.equal(listedChat.clientId, listedA.clientId);
      assert.notEqual(listedB.clientId, listedA.clientId);

      const { handshake } = listedA;
      assert.match(handshake.address, /127\.0\.0\.1$/);
      assert.equal(handshake.headers.host, new URL(server.url).host);
      assert.equal(handshake.query.tag, "a");
      assert.equal(handshake.query.EIO, "4");
      assert.equal(handshake.query.transport, "websocket");
      assert.equal(typeof handshake.time, "string");
      assert.ok(Math.abs(Date.now() - handshake.issued) < 60_000, `issued ${handshake.issued}`);
      assert.equal(handshake.secure, false);
      assert.match(handshake.url, /^\/socket\.io\/\?/);
      assert.equal(typeof handshake.xdomain, "boolean");
      assert.equal(handshake.auth, undefined, "auth is not shown");
    });

    it("sends live updates: connected, upgraded, room joined and left, events, disconnected", async () => {
      const admin = await openAdmin(clients, server.url);
      await admin.recorder.waitFor("all_sockets");
      const room = unique("live");
      // The page's default transports: polling, then the upgrade to WebSocket.
      const client = await clients.connect(server.url);
      const id = client.socket.id;

      const [connected, connectedAt] = await admin.recorder.waitFor("socket_connected", (s) => s.id === id);
      assert.equal(connected.nsp, "/");
      assert.equal(connected.transport, "polling");
      assert.ok(connected.rooms.includes(id));
      assert.match(connectedAt, ISO_DATE);
      const [updated] = await admin.recorder.waitFor("socket_updated", (s) => s.id === id && s.transport);
      assert.deepEqual(updated, { id, nsp: "/", transport: "websocket" });

      await joinRoom(client.socket, room);
      const [, , , joinedAt] = await admin.recorder.waitFor(
        "room_joined",
        (nsp, r, sid) => nsp === "/" && r === room && sid === id,
      );
      assert.match(joinedAt, ISO_DATE);

      client.socket.emit("message", "hello", 2);
      const [, , received, receivedAt] = await admin.recorder.waitFor(
        "event_received",
        (nsp, sid, args) => nsp === "/" && sid === id && args[0] === "message",
      );
      assert.deepEqual(received, ["message", "hello", 2]);
      assert.match(receivedAt, ISO_DATE);
      const [, , sent] = await admin.recorder.waitFor(
        "event_sent",
        (nsp, sid, args) => nsp === "/" && sid === id && args[0] === "message" && args[1] === "hello",
      );
      assert.deepEqual(sent, ["message", "hello", 2]);
      // An acknowledgement callback is not part of the event's arguments.
      assert.deepEqual(await client.socket.timeout(3_000).emitWithAck("echo", "ack me"), "ack me");
      const [, , echoed] = await admin.recorder.waitFor(
        "event_received",
        (nsp, sid, args) => sid === id && args[0] === "echo",
      );
      assert.deepEqual(echoed, ["echo", "ack me"]);

      await client.socket.timeout(3_000).emitWithAck("leave", room);
      await admin.recorder.waitFor("room_left", (nsp, r, sid) => nsp === "/" && r === room && sid === id);

      client.socket.disconnect();
      const [nsp, , reason, leftAt] = await admin.recorder.waitFor("socket_disconnected", (n, sid) => sid === id);
      assert.equal(nsp, "/");
      assert.equal(reason, "client namespace disconnect");
      assert.match(leftAt, ISO_DATE);
    });

    it("emit: to a room's members, and to the whole namespace", async () => {
      const room = unique("emit-room");
      const admin = await openAdmin(clients, server.url);
      const [a, b, outside] = await Promise.all(
        [1, 2, 3].map(() => clients.connect(server.url, { transports: ["websocket"] })),
      );
      await joinRoom(a.socket, room);
      await joinRoom(b.socket, room);

      admin.socket.emit("emit", "/", room, "from admin", "text", { n: 1 });
      assert.deepEqual(await a.recorder.waitFor("from admin"), ["text", { n: 1 }]);
      assert.deepEqual(await b.recorder.waitFor("from admin"), ["text", { n: 1 }]);
      await assertNotReceived(admin, [outside], "from admin");

      admin.socket.emit("emit", "/", null, "to everyone", 42);
      for (const client of [a, b, outside]) assert.deepEqual(await client.recorder.waitFor("to everyone"), [42]);
    });

    it("join and leave: one socket joins a room and leaves it, and a room is cleared", async () => {
      const room = unique("by-admin");
      const admin = await openAdmin(clients, server.url);
      await admin.recorder.waitFor("all_sockets");
      const target1 = await clients.connect(server.url, { transports: ["websocket"] });
      const bystander = await clients.connect(server.url, { transports: ["websocket"] });

      admin.socket.emit("join", "/", room, target1.socket.id);
      await admin.recorder.waitFor("room_joined", (nsp, r, id) => r === room && id === target1.socket.id);
      admin.socket.emit("emit", "/", room, "in room", 1);
      assert.deepEqual(await target1.recorder.waitFor("in room"), [1]);
      await assertNotReceived(admin, [bystander], "in room");

      admin.socket.emit("leave", "/", room, target1.socket.id);
      await admin.recorder.waitFor("room_left", (nsp, r, id) => r === room && id === target1.socket.id);
      admin.socket.emit("emit", "/", room, "after leave", 2);
      await assertNotReceived(admin, [target1], "after leave");

      // The Rooms page's "clear" button: every member leaves.
      const cleared = unique("cleared");
      await joinRoom(target1.socket, cleared);
      await joinRoom(bystander.socket, cleared);
      admin.socket.emit("leave", "/", cleared);
      for (const member of [target1, bystander]) {
        await admin.recorder.waitFor("room_left", (nsp, r, id) => r === cleared && id === member.socket.id);
      }
      admin.socket.emit("emit", "/", cleared, "after clear", 3);
      await assertNotReceived(admin, [target1, bystander], "after clear");
    });

    it("_disconnect: one socket, a whole connection, and a room's members", async () => {
      const admin = await openAdmin(clients, server.url);
      const one = await clients.connect(server.url, { transports: ["websocket"] });
      const oneChat = await sameConnection(one, "/chat");
      const stays = await clients.connect(server.url, { transports: ["websocket"] });

      // The socket page's "disconnect" button: this socket only, its connection stays.
      const oneId = one.socket.id;
      const gone = nextEvent(one.socket, "disconnect");
      admin.socket.emit("_disconnect", "/", false, oneId);
      assert.equal((await gone)[0], "io server disconnect");
      const [, , reason] = await admin.recorder.waitFor(
        "socket_disconnected",
        (nsp, id) => nsp === "/" && id === oneId,
      );
      assert.equal(reason, "server namespace disconnect");
      assert.equal(oneChat.connected, true);
      assert.equal(stays.socket.connected, true);

      // The client page's "disconnect" button: close=true ends the connection and all its sockets.
      const whole = await clients.connect(server.url, { transports: ["websocket"] });
      const wholeChat = await sameConnection(whole, "/chat");
      const wholeGone = nextEvent(whole.socket, "disconnect");
      const chatGone = nextEvent(wholeChat, "disconnect");
      admin.socket.emit("_disconnect", "/", true, whole.socket.id);
      const [[wholeReason], [chatReason]] = await Promise.all([wholeGone, chatGone]);
      assert.equal(wholeReason, "io server disconnect");
      assert.equal(chatReason, "io server disconnect");
      assert.equal(stays.socket.connected, true);

      // The Rooms page's "disconnect" button: every member of the room.
      const room = unique("dropped");
      const members = [
        await clients.connect(server.url),
        await clients.connect(server.url, { transports: ["polling"] }),
      ];
      for (const member of members) await joinRoom(member.socket, room);
      const dropped = members.map((m) => nextEvent(m.socket, "disconnect"));
      admin.socket.emit("_disconnect", "/", false, room);
      for (const [why] of await Promise.all(dropped)) assert.equal(why, "io server disconnect");
      assert.equal(stays.socket.connected, true);
    });
  });

  describe(`admin namespace, production mode: ${target.name}`, () => {
    let server;

    before(async () => {
      server = await target.start({ mode: "production", serverId: unique("admin-prod") });
    });
    after(async () => {
      clients.closeAll();
      await server?.stop();
    });

    it("leaves out the socket list and its live updates, and still counts and acts", async () => {
      const admin = await openAdmin(clients, server.url);
      const [config] = await admin.recorder.waitFor("config");
      assert.deepEqual(
        [...config.supportedFeatures].sort(),
        DEVELOPMENT_FEATURES.filter((f) => f !== "ALL_EVENTS").sort(),
      );
      const room = unique("prod-room");
      const client = await clients.connect(server.url, { transports: ["websocket"] });
      await joinRoom(client.socket, room);
      client.socket.emit("message", "quiet");
      await client.recorder.waitFor("message", (text) => text === "quiet");
      await statsWhere(admin, "the client counted on /", (s) => socketsIn(s, "/") === 1 && s.clientsCount === 2);

      admin.socket.emit("emit", "/", room, "prod emit", 1);
      assert.deepEqual(await client.recorder.waitFor("prod emit"), [1]);
      const gone = nextEvent(client.socket, "disconnect");
      admin.socket.emit("_disconnect", "/", false, client.socket.id);
      assert.equal((await gone)[0], "io server disconnect");
      await statsWhere(admin, "the client counted out", (s) => socketsIn(s, "/") === 0);

      const verbose = [
        "all_sockets",
        "socket_connected",
        "socket_updated",
        "room_joined",
        "room_left",
        "event_received",
        "event_sent",
        "socket_disconnected",
      ];
      for (const event of verbose)
        assert.equal(admin.recorder.find(event), undefined, `${event} sent in production mode`);
    });
  });
}

describe("admin login on iorelay: repeated wrong passwords", () => {
  let server;

  before(async () => {
    server = await startIorelay({ args: [...iorelayAdminArgs(), "--tick-interval-ms", "0"] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  it("refuses an address even the right password after 5 failures, and keeps its sessions valid", async () => {
    const first = await openAdmin(clients, server.url);
    const [sessionId] = await first.recorder.waitFor("session");
    const refusal = async (auth) => {
      const socket = clients.open(`${server.url}/admin`, { transports: ["websocket"], auth });
      const [err] = await nextEvent(socket, "connect_error");
      return err.message;
    };
    for (let i = 0; i < 5; i++) {
      assert.equal(await refusal({ username: ADMIN_USERNAME, password: `guess ${i}` }), "invalid credentials");
    }
    assert.equal(await refusal({ username: ADMIN_USERNAME, password: ADMIN_PASSWORD }), "invalid credentials");
    const again = await openAdmin(clients, server.url, { auth: { sessionId } });
    await again.recorder.waitFor("config");
    assert.match(server.logs(), /Admin UI login refused/);
  });
});

describe("admin namespace on two iorelay nodes sharing Redis", () => {
  let redis;
  let nodeA;
  let nodeB;

  before(async () => {
    redis = await startRedis();
    const start = (serverId) =>
      startIorelay({ args: [...iorelayAdminArgs({ serverId }), "--redis-url", redis.url, "--tick-interval-ms", "0"] });
    [nodeA, nodeB] = await Promise.all([start("node-a"), start("node-b")]);
  });
  after(async () => {
    clients.closeAll();
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    await redis?.stop();
  });

  it("shows both nodes as two servers, each with its own sockets", async () => {
    const admin = await openAdmin(clients, nodeA.url);
    await clients.connect(nodeB.url, { transports: ["websocket"] });
    await clients.connect(nodeB.url, { transports: ["websocket"] });
    const a = await statsWhere(admin, "node-a's stats", (s) => s.serverId === "node-a");
    const b = await statsWhere(
      admin,
      "node-b's stats with its two sockets",
      (s) => s.serverId === "node-b" && socketsIn(s, "/") === 2,
    );
    assert.equal(a.pid, nodeA.pid);
    assert.equal(b.pid, nodeB.pid);
    assert.equal(b.clientsCount, 2);
    assert.equal(socketsIn(a, "/admin"), 1);
    const ids = new Set(admin.recorder.all("server_stats").map((e) => e.args[0].serverId));
    assert.deepEqual([...ids].sort(), ["node-a", "node-b"]);
  });

  it("accepts on one node a session opened on the other", async () => {
    const onA = await openAdmin(clients, nodeA.url);
    const [sessionId] = await onA.recorder.waitFor("session");
    const onB = await openAdmin(clients, nodeB.url, { auth: { sessionId } });
    await onB.recorder.waitFor("config");
    assert.equal(onB.recorder.find("session"), undefined);
  });

  it("lists the other node's sockets and sends their live updates", async () => {
    const room = unique("cluster-listed");
    const onB = await clients.connect(nodeB.url, { transports: ["websocket"] });
    await joinRoom(onB.socket, room);
    const admin = await openAdmin(clients, nodeA.url);
    const [sockets] = await admin.recorder.waitFor("all_sockets");
    const listed = sockets.find((s) => s.id === onB.socket.id);
    assert.ok(listed, JSON.stringify(sockets));
    assert.equal(listed.nsp, "/");
    assert.deepEqual([...listed.rooms].sort(), [onB.socket.id, room].sort());

    const later = await clients.connect(nodeB.url, { transports: ["websocket"] });
    const laterId = later.socket.id;
    await admin.recorder.waitFor("socket_connected", (s) => s.id === laterId);
    later.socket.disconnect();
    await admin.recorder.waitFor("socket_disconnected", (nsp, id) => id === laterId);
  });

  it("acts on the other node's sockets: emit, join, leave, disconnect", async () => {
    const room = unique("cluster-act");
    const admin = await openAdmin(clients, nodeA.url);
    const onB = await clients.connect(nodeB.url, { transports: ["websocket"] });
    const alsoB = await clients.connect(nodeB.url, { transports: ["websocket"] });

    admin.socket.emit("join", "/", room, onB.socket.id);
    await waitUntil(
      async () => {
        admin.socket.emit("emit", "/", room, "cross-node", room);
        return onB.recorder.find("cross-node");
      },
      {
        timeoutMs: 3_000,
        intervalMs: 200,
        what: "the socket on node-b to receive an emit to the room it was joined to",
      },
    );
    await assertNotReceived(admin, [alsoB], "cross-node");

    admin.socket.emit("leave", "/", room, onB.socket.id);
    // Each try sends its own event to the room, then a marker to everyone: once the marker
    // arrives alone, the socket has left.
    let tries = 0;
    await waitUntil(
      async () => {
        tries += 1;
        const probe = `after leave ${tries}`;
        const marker = unique("left");
        admin.socket.emit("emit", "/", room, probe);
        admin.socket.emit("emit", "/", null, marker);
        await onB.recorder.waitFor(marker);
        return onB.recorder.find(probe) === undefined;
      },
      { timeoutMs: 3_000, intervalMs: 100, what: "the socket on node-b to leave the room" },
    );

    const gone = nextEvent(onB.socket, "disconnect");
    admin.socket.emit("_disconnect", "/", false, onB.socket.id);
    assert.equal((await gone)[0], "io server disconnect");
    assert.equal(alsoB.socket.connected, true);
  });
});
