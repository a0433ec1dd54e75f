// Event webhooks with socket.io-client: iorelay holds the sockets, a real HTTP app (checking
// every signature) decides, and its answers apply in Socket.IO's words.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { once } from "node:events";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";

import { ClientSet, bytesOf, emitWithAckArgs, joinRoom, nextEvent, unique } from "../support/clients.mjs";
import { freePort, iorelayBin, startIorelay } from "../support/iorelay.mjs";
import { RawWebSocket, httpRequest } from "../support/raw.mjs";
import { signatureOf, startWebhookApp } from "../support/webhook-app.mjs";

const SECRET = "whsec-webhooks-7f3a9c1e";
const API_KEY = "apikey-webhooks-5b2d8e40";
const PING_MS = 250;

const clients = new ClientSet();
afterEach(() => clients.closeAll());

/** GET an API route of `server` with the key; resolves with the parsed body. */
async function apiGet(server, path) {
  const res = await httpRequest(`${server.url}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
  assert.equal(res.status, 200, `GET ${path}: ${res.body}`);
  return JSON.parse(res.body);
}

async function apiPost(server, path, body) {
  const res = await httpRequest(`${server.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `POST ${path}: ${res.body}`);
  return JSON.parse(res.body);
}

/** Joins `room` with the built-in `join` event. */
/** An HS256 JWT for `payload`, signed with `secret`. */
function jwt(payload, secret) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(payload)}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

/** The rooms of a webhook's socket as a sorted list. */
const sortedRooms = (call) => [...call.body.socket.rooms].sort();

describe("event webhooks on one node", () => {
  let app;
  let server;

  before(async () => {
    app = await startWebhookApp({ secret: SECRET });
    server = await startIorelay({
      args: [
        "--webhook-url", app.url,
        "--webhook-secret", SECRET,
        "--api-key", API_KEY,
        "--tick-interval-ms", "0",
        "--ping-interval-ms", String(PING_MS),
        "--ping-timeout-ms", String(PING_MS),
      ],
    });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
    await app?.stop();
  });
  beforeEach(() => app.reset());

  it("signs every call with the secret and names the node", async () => {
    const { socket } = await clients.connect(server.url);
    await emitWithAckArgs(socket, "ping me", [1]);
    const id = socket.id;
    socket.disconnect();
    await app.waitFor({ type: "disconnect", socketId: id });
    const calls = app.find({ socketId: id });
    assert.deepEqual(calls.map((c) => c.type), ["connect", "event", "disconnect"]);
    assert.deepEqual(app.rejected, [], "every request carried a valid signature");
    for (const call of calls) {
      assert.match(call.headers["content-type"], /^application\/json/);
      assert.equal(call.headers["x-iorelay-signature"], signatureOf(SECRET, call.raw));
      assert.notEqual(call.headers["x-iorelay-signature"], signatureOf(`${SECRET}x`, call.raw), "another key signs differently");
      assert.match(call.headers["x-iorelay-node"], /^\S+$/);
    }
    assert.equal(new Set(calls.map((c) => c.headers["x-iorelay-node"])).size, 1, "one node id");
  });

  for (const transport of ["websocket", "polling"]) {
    it(`connect: describes a ${transport} socket before its CONNECT is acknowledged`, async () => {
      const tag = unique("hs");
      app.on("connect", (call) => (call.body.socket.handshake.auth?.tag === tag ? { delayMs: 200, json: {} } : undefined));
      const startedAt = Date.now();
      const socket = clients.open(server.url, {
        transports: [transport],
        auth: { tag, token: "abc" },
        query: { room: "q1" },
        extraHeaders: { cookie: "session=s1", origin: "http://app.test", "user-agent": "webhook-test/1.0" },
      });
      await nextEvent(socket, "connect", 5_000);
      const connectedAt = performance.now();
      const call = await app.waitFor((c) => c.type === "connect" && c.body.socket.handshake.auth?.tag === tag);
      const { body } = call;
      assert.equal(body.type, "connect");
      assert.equal(body.namespace, "/");
      assert.equal(body.socket.id, socket.id);
      assert.ok(Array.isArray(body.socket.rooms), "rooms is an array");
      assert.deepEqual(body.socket.data, {});
      assert.equal(body.socket.user, null);
      assert.equal(body.socket.transport, transport);
      const { handshake } = body.socket;
      assert.deepEqual(handshake.auth, { tag, token: "abc" });
      assert.equal(handshake.query.room, "q1");
      assert.equal(handshake.headers.cookie, "session=s1");
      assert.equal(handshake.headers.origin, "http://app.test");
      assert.equal(handshake.headers["user-agent"], "webhook-test/1.0");
      assert.match(handshake.address, /127\.0\.0\.1/);
      assert.equal(typeof handshake.time, "number");
      assert.ok(handshake.time >= startedAt - 1_000 && handshake.time <= Date.now() + 1_000, `time ${handshake.time}`);
      assert.ok(connectedAt > call.answeredAt, "the client is connected only once the app has answered");
    });
  }

  it("connect: data and join of the answer apply before the CONNECT, its emit after", async () => {
    const tag = unique("pre");
    const lobby = unique("lobby");
    app.on("connect", (call) =>
      call.body.socket.handshake.auth?.tag === tag
        ? { json: { emit: [{ event: "welcome", args: ["hi", 2] }], join: [lobby], data: { name: "ann", role: "admin" } } }
        : undefined,
    );
    app.on("event", { json: { ack: ["seen"] } }, { event: "whoami" });
    const socket = clients.open(server.url, { auth: { tag } });
    const welcome = nextEvent(socket, "welcome");
    // Emitted at once on `connect`, as a page does.
    const ack = new Promise((resolve) => socket.on("connect", () => socket.emit("whoami", resolve)));
    assert.equal(await ack, "seen");
    assert.deepEqual(await welcome, ["hi", 2]);
    const call = await app.waitFor({ type: "event", event: "whoami", socketId: socket.id });
    assert.deepEqual(call.body.socket.data, { name: "ann", role: "admin" });
    assert.deepEqual(sortedRooms(call), [lobby, socket.id].sort());
  });

  it("connect: a non-2xx answer refuses the connection with the body's message", async () => {
    const tag = unique("refused");
    app.on("connect", (call) =>
      call.body.socket.handshake.auth?.tag === tag ? { status: 403, json: { message: "banned user" } } : undefined,
    );
    const socket = clients.open(server.url, { auth: { tag } });
    const [error] = await nextEvent(socket, "connect_error", 5_000);
    assert.equal(error.message, "banned user");
    assert.equal(socket.connected, false);
    assert.equal(app.find({ type: "event" }).length, 0);
  });

  it("event: forwards name, args and whether an ack is awaited; the answer's ack comes back", async () => {
    const { socket } = await clients.connect(server.url);
    app.on("event", { json: { ack: ["welcome", { n: 1 }] } }, { event: "add user" });
    const ack = await emitWithAckArgs(socket, "add user", ["ann", { age: 3 }]);
    assert.deepEqual(ack, ["welcome", { n: 1 }]);
    const call = await app.waitFor({ type: "event", event: "add user", socketId: socket.id });
    assert.equal(call.body.type, "event");
    assert.equal(call.body.namespace, "/");
    assert.equal(call.body.event, "add user");
    assert.deepEqual(call.body.args, ["ann", { age: 3 }]);
    assert.equal(call.body.ack, true);
    assert.equal(call.body.socket.id, socket.id);

    socket.emit("typing", true);
    const typing = await app.waitFor({ type: "event", event: "typing", socketId: socket.id });
    assert.deepEqual(typing.body.args, [true]);
    assert.equal(typing.body.ack, false);
  });

  it("event: an answer without ack gives a waiting client an empty ack", async () => {
    const { socket } = await clients.connect(server.url);
    app.on("event", { json: { data: { x: 1 } } }, { event: "no ack here" });
    assert.deepEqual(await emitWithAckArgs(socket, "no ack here", []), []);
    app.on("event", { body: "" }, { event: "empty body" });
    assert.deepEqual(await emitWithAckArgs(socket, "empty body", []), [], "an empty 2xx body is an answer too");
  });

  it("forwards /chat events its built-in handlers do not take", async () => {
    const { socket } = await clients.connect(`${server.url}/chat`);
    const id = socket.id;
    app.on("event", (call) => ({ json: { ack: [`app:${call.event}`] } }), { namespace: "/chat", socketId: id });
    assert.deepEqual(await emitWithAckArgs(socket, "typing", [1]), ["app:typing"]);
    assert.deepEqual(await emitWithAckArgs(socket, "echo", [2]), ["app:echo"], "echo is not built in on /chat");
    const room = unique("chat-room");
    assert.equal((await socket.timeout(3_000).emitWithAck("join", room)).room, room, "join stays built in");
    const calls = app.find({ type: "event", socketId: id });
    assert.deepEqual(calls.map((c) => [c.namespace, c.event]), [["/chat", "typing"], ["/chat", "echo"]]);
    assert.equal((await app.waitFor({ type: "connect", socketId: id })).namespace, "/chat");
  });

  it("applies data, join, leave, emit, ack in that order whatever the key order", async () => {
    const [a, b, c] = [unique("a"), unique("b"), unique("c")];
    const { socket, recorder } = await clients.connect(server.url);
    await joinRoom(socket, c);
    app.on(
      "event",
      {
        // Keys in the reverse of the order they apply in.
        body: JSON.stringify({
          ack: ["done"],
          emit: [
            { event: "in-b", args: [1], to: [b], include_self: true },
            { event: "in-c", args: [2], to: [c], include_self: true },
          ],
          leave: [a, c],
          join: [a, b],
          data: { step: 1 },
        }),
        contentType: "application/json",
      },
      { event: "reorder" },
    );
    const acked = new Promise((resolve) => socket.emit("reorder", (...args) => resolve({ args, at: Date.now() })));
    const { args, at } = await acked;
    assert.deepEqual(args, ["done"]);
    const inB = recorder.find("in-b");
    assert.ok(inB, "joined b before the emit to b");
    assert.ok(inB.at <= at, "the emit arrives before the ack");
    app.on("event", { json: {} }, { event: "look" });
    await emitWithAckArgs(socket, "look", []);
    assert.equal(recorder.find("in-c"), undefined, "left c before the emit to c");
    const look = await app.waitFor({ type: "event", event: "look", socketId: socket.id });
    assert.deepEqual(sortedRooms(look), [b, socket.id].sort(), "joined a and b, then left a and c");
    assert.deepEqual(look.body.socket.data, { step: 1 });
  });

  it("applies disconnect last: the emit and the ack reach the client first", async () => {
    const { socket, recorder } = await clients.connect(server.url);
    app.on(
      "event",
      { json: { disconnect: true, ack: ["bye"], emit: [{ event: "last words", args: ["so long"] }], data: { gone: true } } },
      { event: "quit" },
    );
    const id = socket.id;
    const disconnected = nextEvent(socket, "disconnect");
    const ack = new Promise((resolve) => socket.emit("quit", (...args) => resolve(args)));
    assert.deepEqual(await ack, ["bye"]);
    const [reason] = await disconnected;
    assert.equal(reason, "io server disconnect");
    assert.deepEqual(recorder.find("last words")?.args, ["so long"]);
    const call = await app.waitFor({ type: "disconnect", socketId: id });
    assert.equal(call.body.reason, "server namespace disconnect");
    assert.equal(call.body.socket.data.gone, true);
  });

  it("shallow-merges data; later webhooks and GET /api/sockets show it", async () => {
    const { socket } = await clients.connect(server.url);
    app.on("event", { json: { data: { a: 1, nested: { x: 1 } } } }, { event: "one" });
    app.on("event", { json: { data: { nested: { y: 2 }, b: "two" } } }, { event: "two" });
    await emitWithAckArgs(socket, "one", []);
    await emitWithAckArgs(socket, "two", []);
    await emitWithAckArgs(socket, "three", []);
    const expected = { a: 1, nested: { y: 2 }, b: "two" };
    const three = await app.waitFor({ type: "event", event: "three", socketId: socket.id });
    assert.deepEqual(three.body.socket.data, expected);
    const { sockets } = await apiGet(server, "/api/sockets?namespace=/");
    const listed = sockets.find((s) => s.id === socket.id);
    assert.ok(listed, "the socket is listed");
    assert.deepEqual(listed.data, expected);
  });

  it("sends each emit item to the audience it names", async () => {
    const [r1, r2] = [unique("r1"), unique("r2")];
    const sender = await clients.connect(server.url);
    const a = await clients.connect(server.url);
    const b = await clients.connect(server.url);
    const c = await clients.connect(server.url);
    const d = await clients.connect(server.url);
    await joinRoom(sender.socket, r1);
    await joinRoom(a.socket, r1);
    await joinRoom(b.socket, r1);
    await joinRoom(b.socket, r2);
    await joinRoom(c.socket, r2);
    app.on(
      "event",
      {
        json: {
          emit: [
            { event: "solo", args: [1, "one"] },
            { event: "rooms", args: [2], to: [r1, r2] },
            { event: "rooms-self", args: [3], to: [r1], include_self: true },
            { event: "all", args: [4], broadcast: true },
            { event: "all-self", args: [5], broadcast: true, include_self: true },
            { event: "all-but", args: [6], broadcast: true, except: [r2] },
            { event: "rooms-but", args: [7], to: [r1], except: [r2], include_self: true },
            { event: "end", broadcast: true, include_self: true },
          ],
        },
      },
      { event: "fan out", socketId: sender.socket.id },
    );
    await emitWithAckArgs(sender.socket, "fan out", []);
    const members = { sender, a, b, c, d };
    for (const { recorder } of Object.values(members)) await recorder.waitFor("end");
    const expected = {
      solo: ["sender"],
      rooms: ["a", "b", "c"],
      "rooms-self": ["sender", "a", "b"],
      all: ["a", "b", "c", "d"],
      "all-self": ["sender", "a", "b", "c", "d"],
      "all-but": ["a", "d"],
      "rooms-but": ["sender", "a"],
    };
    for (const [event, audience] of Object.entries(expected)) {
      const got = Object.entries(members).flatMap(([name, { recorder }]) => recorder.all(event).map(() => name));
      assert.deepEqual(got, audience, `audience of "${event}"`);
    }
    assert.deepEqual(sender.recorder.find("solo").args, [1, "one"]);
    assert.deepEqual(b.recorder.find("rooms").args, [2]);
  });

  it("carries binary both ways as { _binary: base64 }", async () => {
    const { socket, recorder } = await clients.connect(server.url);
    const out = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const nested = Buffer.from("nested bytes");
    app.on(
      "event",
      {
        json: {
          emit: [{ event: "file", args: [{ _binary: out.toString("base64") }, { name: "n", body: { _binary: nested.toString("base64") } }] }],
          ack: [{ _binary: out.toString("base64") }],
        },
      },
      { event: "upload" },
    );
    const ack = await emitWithAckArgs(socket, "upload", [{ name: "f.bin", file: Buffer.from([0, 1, 2, 255]) }, Buffer.from([9, 8])]);
    const call = await app.waitFor({ type: "event", event: "upload", socketId: socket.id });
    assert.deepEqual(call.body.args, [{ name: "f.bin", file: { _binary: "AAEC/w==" } }, { _binary: "CQg=" }]);
    assert.equal(ack.length, 1);
    assert.deepEqual([...bytesOf(ack[0])], [...out]);
    const [file, meta] = await recorder.waitFor("file");
    assert.deepEqual([...bytesOf(file)], [...out]);
    assert.equal(meta.name, "n");
    assert.equal(bytesOf(meta.body).toString(), "nested bytes");
  });

  it("disconnect: carries the reason, the final data and the rooms", async () => {
    const kept = unique("kept");
    const { socket } = await clients.connect(server.url);
    app.on("event", { json: { data: { final: "yes" }, join: [kept] } }, { event: "settle" });
    await emitWithAckArgs(socket, "settle", []);
    const id = socket.id;
    socket.disconnect();
    const call = await app.waitFor({ type: "disconnect", socketId: id });
    assert.equal(call.body.type, "disconnect");
    assert.equal(call.body.namespace, "/");
    assert.equal(call.body.reason, "client namespace disconnect");
    assert.deepEqual(call.body.socket.data, { final: "yes" });
    assert.ok(call.body.socket.rooms.includes(kept), `rooms ${call.body.socket.rooms}`);
    assert.equal(call.body.socket.transport, "websocket");
  });

  it("disconnect: transport close", async () => {
    const { socket } = await clients.connect(server.url, { transports: ["websocket"] });
    const id = socket.id;
    socket.io.engine.close();
    const call = await app.waitFor({ type: "disconnect", socketId: id });
    assert.equal(call.body.reason, "transport close");
  });

  it("disconnect: ping timeout", async () => {
    // A raw Engine.IO client never answers the server's pings.
    const raw = await RawWebSocket.open(server.url);
    try {
      const connect = await raw.waitMessage((m) => typeof m === "string" && m.startsWith("40"));
      const id = JSON.parse(connect.slice(2)).sid;
      const call = await app.waitFor({ type: "disconnect", socketId: id }, { timeoutMs: 4 * PING_MS + 2_000 });
      assert.equal(call.body.reason, "ping timeout");
    } finally {
      raw.close();
    }
  });

  it("disconnect: server namespace disconnect, from the server API", async () => {
    const { socket } = await clients.connect(server.url);
    const id = socket.id;
    await apiPost(server, "/api/sockets/disconnect", { namespace: "/", to: [id] });
    const call = await app.waitFor({ type: "disconnect", socketId: id });
    assert.equal(call.body.reason, "server namespace disconnect");
  });

  it(
    "disconnect: sent after the socket's earlier event webhooks, with the data they set",
    async () => {
      const { socket } = await clients.connect(server.url, { transports: ["websocket"] });
      const id = socket.id;
      app.on("event", { delayMs: 400, json: { data: { saved: true } } }, { event: "slow save" });
      socket.emit("slow save", "draft");
      await app.waitFor({ type: "event", event: "slow save", socketId: id });
      socket.disconnect();
      const call = await app.waitFor({ type: "disconnect", socketId: id });
      const event = app.find({ type: "event", event: "slow save", socketId: id })[0];
      assert.ok(event.answeredAt !== null && call.receivedAt >= event.answeredAt, "the disconnect waits for the event's answer");
      assert.equal(call.body.reason, "client namespace disconnect");
      assert.deepEqual(call.body.socket.data, { saved: true }, "the final data, after the event's answer");
    },
  );

  it("disconnect: the answer's emit reaches rooms and the namespace", async () => {
    const room = unique("wake");
    const member = await clients.connect(server.url);
    const outsider = await clients.connect(server.url);
    const { socket: leaving } = await clients.connect(server.url);
    await joinRoom(member.socket, room);
    await joinRoom(leaving, room);
    const id = leaving.id;
    app.on(
      "disconnect",
      { json: { emit: [{ event: "user left", args: [id], to: [room] }, { event: "bye all", args: [id], broadcast: true }] } },
      { socketId: id },
    );
    leaving.disconnect();
    assert.deepEqual(await member.recorder.waitFor("user left"), [id]);
    assert.deepEqual(await member.recorder.waitFor("bye all"), [id]);
    assert.deepEqual(await outsider.recorder.waitFor("bye all"), [id]);
    assert.equal(outsider.recorder.find("user left"), undefined, "only the room hears of it");
  });

  it("hands one socket's events to the app one at a time, in arrival order", async () => {
    const { socket } = await clients.connect(server.url);
    // Earlier events are answered more slowly: only waiting keeps them in order.
    app.on("event", (call) => ({ delayMs: 120 - call.body.args[0] * 20, json: { ack: [call.body.args[0]] } }), { event: "seq" });
    const acks = [];
    await Promise.all(
      [0, 1, 2, 3, 4, 5].map((n) => emitWithAckArgs(socket, "seq", [n]).then(([value]) => acks.push(value))),
    );
    const calls = app.find({ type: "event", event: "seq", socketId: socket.id });
    assert.deepEqual(calls.map((c) => c.body.args[0]), [0, 1, 2, 3, 4, 5]);
    for (let i = 1; i < calls.length; i += 1) {
      assert.ok(calls[i].receivedAt >= calls[i - 1].answeredAt, `event ${i} reached the app before event ${i - 1} was answered`);
    }
    assert.deepEqual(acks, [0, 1, 2, 3, 4, 5]);
  });

  it("runs different sockets' webhooks concurrently", async () => {
    const first = await clients.connect(server.url);
    const second = await clients.connect(server.url);
    app.on("event", { delayMs: 300, json: { ack: ["ok"] } }, { event: "slow" });
    await Promise.all([emitWithAckArgs(first.socket, "slow", []), emitWithAckArgs(second.socket, "slow", [])]);
    const [x, y] = app.find({ type: "event", event: "slow" });
    assert.ok(x && y, "both calls arrived");
    assert.ok(y.receivedAt < x.answeredAt && x.receivedAt < y.answeredAt, "the two calls overlap in time");
  });

  it("never shows the secrets in logs, /healthz or error bodies", async () => {
    const health = await httpRequest(`${server.url}/healthz`);
    const unauthorized = await httpRequest(`${server.url}/api/sockets`, { headers: { authorization: "Bearer nope" } });
    for (const [where, text] of [
      ["logs", server.logs()],
      ["/healthz", health.body],
      ["a 401 body", unauthorized.body],
    ]) {
      assert.ok(!text.includes(SECRET), `the webhook secret appears in ${where}`);
      assert.ok(!text.includes(API_KEY), `the API key appears in ${where}`);
    }
  });
});

describe("webhook concurrency bound", () => {
  let app;
  let server;
  before(async () => {
    app = await startWebhookApp({ secret: SECRET });
    server = await startIorelay({
      args: ["--webhook-url", app.url, "--webhook-secret", SECRET, "--webhook-concurrency", "2", "--tick-interval-ms", "0"],
    });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
    await app?.stop();
  });

  it("keeps at most --webhook-concurrency calls in flight; the others wait", async () => {
    const sockets = [];
    for (let i = 0; i < 4; i += 1) sockets.push((await clients.connect(server.url)).socket);
    app.reset();
    app.on("event", { delayMs: 250, json: { ack: ["done"] } }, { event: "work" });
    const acks = await Promise.all(sockets.map((socket) => emitWithAckArgs(socket, "work", [], 5_000)));
    assert.deepEqual(acks, [["done"], ["done"], ["done"], ["done"]]);
    assert.equal(app.find({ type: "event", event: "work" }).length, 4);
    assert.equal(app.maxInFlight, 2);
  });
});

describe("JWT authentication with webhooks", () => {
  const AUTH_SECRET = "jwt-secret-for-webhooks-0c1d";
  let app;
  let server;
  before(async () => {
    app = await startWebhookApp({ secret: SECRET });
    server = await startIorelay({
      args: [
        "--webhook-url", app.url, "--webhook-secret", SECRET, "--api-key", API_KEY,
        "--auth-secret", AUTH_SECRET, "--tick-interval-ms", "0",
      ],
    });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
    await app?.stop();
  });

  it("shows the token's sub as socket.user in every webhook and in GET /api/sockets", async () => {
    const token = jwt({ sub: "user-42", exp: Math.floor(Date.now() / 1000) + 600 }, AUTH_SECRET);
    const { socket } = await clients.connect(server.url, { auth: { token } });
    await emitWithAckArgs(socket, "hello", []);
    const id = socket.id;
    assert.equal((await app.waitFor({ type: "connect", socketId: id })).body.socket.user, "user-42");
    assert.equal((await app.waitFor({ type: "event", socketId: id })).body.socket.user, "user-42");
    const { sockets } = await apiGet(server, "/api/sockets");
    assert.equal(sockets.find((s) => s.id === id)?.user, "user-42");
    socket.disconnect();
    assert.equal((await app.waitFor({ type: "disconnect", socketId: id })).body.socket.user, "user-42");
  });
});

describe("which events go to the app", () => {
  let app;
  before(async () => {
    app = await startWebhookApp({ secret: SECRET });
    app.on("event", (call) => ({ json: { ack: [`app:${call.body.event}`] } }));
  });
  after(async () => {
    clients.closeAll();
    await app?.stop();
  });
  beforeEach(() => {
    app.calls = [];
  });

  it("--builtin-events echo: chat, join and message go to the app, echo stays built in", async () => {
    const server = await startIorelay({
      args: ["--webhook-url", app.url, "--webhook-secret", SECRET, "--builtin-events", "echo", "--tick-interval-ms", "0"],
    });
    try {
      const { socket } = await clients.connect(server.url);
      for (const event of ["chat", "join", "leave", "message"]) {
        assert.deepEqual(await emitWithAckArgs(socket, event, ["x"]), [`app:${event}`], event);
      }
      assert.deepEqual(await emitWithAckArgs(socket, "echo", ["x", 2]), ["x", 2]);
      assert.deepEqual(app.find({ type: "event", socketId: socket.id }).map((c) => c.event), ["chat", "join", "leave", "message"]);
    } finally {
      clients.closeAll();
      await server.stop();
    }
  });

  it("--builtin-events none: every event goes to the app", async () => {
    const server = await startIorelay({
      args: ["--webhook-url", app.url, "--webhook-secret", SECRET, "--builtin-events", "none", "--tick-interval-ms", "0"],
    });
    try {
      const { socket } = await clients.connect(server.url);
      for (const event of ["echo", "join", "chat"]) {
        assert.deepEqual(await emitWithAckArgs(socket, event, ["x"]), [`app:${event}`], event);
      }
    } finally {
      clients.closeAll();
      await server.stop();
    }
  });

  it("--namespace /orders: a namespace whose events all go to the app", async () => {
    const server = await startIorelay({
      args: ["--webhook-url", app.url, "--webhook-secret", SECRET, "--namespace", "/orders", "--tick-interval-ms", "0"],
    });
    try {
      const { socket } = await clients.connect(`${server.url}/orders`);
      const connect = await app.waitFor({ type: "connect", socketId: socket.id });
      assert.equal(connect.body.namespace, "/orders");
      for (const event of ["place order", "echo", "join", "chat"]) {
        assert.deepEqual(await emitWithAckArgs(socket, event, [{ id: 1 }]), [`app:${event}`], event);
      }
      const calls = app.find({ type: "event", socketId: socket.id });
      assert.deepEqual(calls.map((c) => c.namespace), ["/orders", "/orders", "/orders", "/orders"]);
      // The root namespace keeps its built-in events.
      const { socket: root } = await clients.connect(server.url);
      assert.deepEqual(await emitWithAckArgs(root, "echo", ["e"]), ["e"]);
    } finally {
      clients.closeAll();
      await server.stop();
    }
  });

  it("--namespace without a webhook: the namespace is refused", async () => {
    const server = await startIorelay({ args: ["--namespace", "/orders", "--tick-interval-ms", "0"] });
    try {
      const socket = clients.open(`${server.url}/orders`);
      const [error] = await nextEvent(socket, "connect_error", 5_000);
      assert.equal(error.message, "Invalid namespace");
    } finally {
      clients.closeAll();
      await server.stop();
    }
  });
});

describe("server shutdown with webhooks", () => {
  it(
    "tells the app each socket left with \"server shutting down\"",
    async () => {
      const app = await startWebhookApp({ secret: SECRET });
      const server = await startIorelay({
        args: ["--webhook-url", app.url, "--webhook-secret", SECRET, "--tick-interval-ms", "0", "--shutdown-timeout-ms", "2000"],
      });
      try {
        const { socket } = await clients.connect(server.url);
        const id = socket.id;
        await server.stop();
        const call = await app.waitFor({ type: "disconnect", socketId: id }, { timeoutMs: 2_000 });
        assert.equal(call.body.reason, "server shutting down");
      } finally {
        clients.closeAll();
        await server.stop();
        await app.stop();
      }
    },
  );
});

describe("startup", () => {
  it("refuses a webhook URL without a secret: exit code 2 and an error on stderr", async () => {
    const port = await freePort();
    const child = spawn(iorelayBin, ["--host", "127.0.0.1", "--port", String(port), "--webhook-url", "http://127.0.0.1:9/hook"], {
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const [code] = await once(child, "exit");
    clearTimeout(timer);
    assert.equal(code, 2);
    assert.match(stderr, /webhook-secret/);
  });
});
