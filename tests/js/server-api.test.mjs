// The HTTP server API on one node, driven with plain HTTP requests while real socket.io-client
// and `ws` clients check what they receive.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { ClientSet, bytesOf, joinRoom, nextEvent, sleep, unique } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { openPlain, plainUrl } from "../support/plain.mjs";
import { httpRequest } from "../support/raw.mjs";

const API_KEY = "apikey-server-api-2c7e19d0";
const MAX_BODY = 10_000;

const clients = new ClientSet();
const plainSockets = new Set();
afterEach(() => {
  clients.closeAll();
  for (const socket of plainSockets) socket.terminate();
  plainSockets.clear();
});

/** One API request; resolves with `{ status, body }`, `body` parsed when it is JSON. */
async function api(server, method, path, { body, key = API_KEY, raw, headers = {} } = {}) {
  const res = await httpRequest(`${server.url}${path}`, {
    method,
    headers: {
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      ...(body !== undefined || raw !== undefined ? { "content-type": "application/json" } : {}),
      ...headers,
    },
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  let parsed;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    parsed = res.body;
  }
  return { status: res.status, body: parsed, text: res.body };
}

async function ok(server, method, path, body) {
  const res = await api(server, method, path, { body });
  assert.equal(res.status, 200, `${method} ${path}: ${res.text}`);
  return res.body;
}

describe("without --api-key", () => {
  let server;
  before(async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0"] });
  });
  after(async () => server?.stop());

  it("answers 404 on every /api route, key or not", async () => {
    for (const [method, path] of [
      ["GET", "/api/sockets"],
      ["GET", "/api/rooms"],
      ["POST", "/api/emit"],
      ["POST", "/api/sockets/join"],
    ]) {
      for (const key of [null, "anything"]) {
        const res = await api(server, method, path, { key, body: method === "POST" ? { event: "x" } : undefined });
        assert.equal(res.status, 404, `${method} ${path}`);
      }
    }
  });
});

describe("server API on one node", () => {
  let server;
  before(async () => {
    server = await startIorelay({
      args: ["--api-key", API_KEY, "--max-http-buffer-size", String(MAX_BODY), "--tick-interval-ms", "0"],
    });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  async function plain() {
    const socket = await openPlain(plainUrl(server.url));
    plainSockets.add(socket);
    return socket;
  }

  it("answers 401 { error: \"unauthorized\" } without the right bearer key", async () => {
    const attempts = [
      { key: null },
      { key: "wrong" },
      { key: `${API_KEY}x` },
      { key: null, headers: { authorization: API_KEY } },
      { key: null, headers: { authorization: `Basic ${API_KEY}` } },
    ];
    for (const attempt of attempts) {
      for (const [method, path, body] of [
        ["GET", "/api/sockets"],
        ["GET", "/api/rooms"],
        ["POST", "/api/emit", { event: "x" }],
        ["POST", "/api/sockets/disconnect", {}],
      ]) {
        const res = await api(server, method, path, { ...attempt, body });
        assert.equal(res.status, 401, `${method} ${path} with ${JSON.stringify(attempt)}`);
        assert.deepEqual(res.body, { error: "unauthorized" });
        assert.ok(!res.text.includes(API_KEY));
      }
    }
  });

  it("answers 400 { error } to malformed bodies", async () => {
    for (const [path, raw] of [
      ["/api/emit", "{not json"],
      ["/api/emit", JSON.stringify({ args: [1] })],
      ["/api/emit", JSON.stringify({ event: 5 })],
      ["/api/emit", JSON.stringify({ event: "x", args: "not a list" })],
      ["/api/emit", JSON.stringify({ event: "x", to: "room" })],
      ["/api/sockets/join", JSON.stringify({ to: ["a"] })],
      ["/api/sockets/leave", "[]"],
    ]) {
      const res = await api(server, "POST", path, { raw });
      assert.equal(res.status, 400, `${path} ${raw}: ${res.text}`);
      assert.equal(typeof res.body?.error, "string", `${path} ${raw}: ${res.text}`);
      assert.ok(res.body.error.length > 0);
      assert.ok(!res.text.includes(API_KEY));
    }
  });

  it("answers 413 to a body larger than --max-http-buffer-size", async () => {
    const res = await api(server, "POST", "/api/emit", { body: { event: "big", args: ["x".repeat(MAX_BODY * 2)] } });
    assert.equal(res.status, 413);
  });

  it("answers 404 { error } for an unknown namespace", async () => {
    for (const [method, path, body] of [
      ["POST", "/api/emit", { namespace: "/nowhere", event: "x" }],
      ["POST", "/api/emit", { namespace: "/nowhere", event: "x", timeout_ms: 100 }],
      ["POST", "/api/sockets/join", { namespace: "/nowhere", rooms: ["r"] }],
      ["POST", "/api/sockets/leave", { namespace: "/nowhere", rooms: ["r"] }],
      ["POST", "/api/sockets/disconnect", { namespace: "/nowhere" }],
      ["GET", "/api/sockets?namespace=/nowhere"],
      ["GET", "/api/rooms?namespace=/nowhere"],
    ]) {
      const res = await api(server, method, path, { body });
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      assert.equal(typeof res.body?.error, "string");
    }
  });

  it("emits to the whole namespace, plain clients included", async () => {
    const a = await clients.connect(server.url);
    const b = await clients.connect(server.url, { transports: ["polling"] });
    const p = await plain();
    assert.deepEqual(await ok(server, "POST", "/api/emit", { namespace: "/", event: "news", args: ["hello", { n: 1 }] }), { ok: true });
    assert.deepEqual(await a.recorder.waitFor("news"), ["hello", { n: 1 }]);
    assert.deepEqual(await b.recorder.waitFor("news"), ["hello", { n: 1 }]);
    assert.deepEqual(await p.waitJson((f) => f.event === "news"), { event: "news", data: ["hello", { n: 1 }] });
    // The namespace defaults to "/".
    await ok(server, "POST", "/api/emit", { event: "one arg", args: [7] });
    assert.deepEqual(await a.recorder.waitFor("one arg"), [7]);
    assert.deepEqual(await p.waitJson((f) => f.event === "one arg"), { event: "one arg", data: 7 });
  });

  it("emits to rooms and socket ids, minus `except`, each member once", async () => {
    const [r1, r2] = [unique("r1"), unique("r2")];
    const s1 = await clients.connect(server.url);
    const s2 = await clients.connect(server.url);
    const s3 = await clients.connect(server.url);
    await joinRoom(s1.socket, r1);
    await joinRoom(s2.socket, r1);
    await joinRoom(s2.socket, r2);
    const p = await plain();
    await p.request({ event: "join", room: r1 }, 1);
    await ok(server, "POST", "/api/emit", { event: "room", args: [1], to: [r1] });
    await ok(server, "POST", "/api/emit", { event: "room-but", args: [2], to: [r1], except: [r2] });
    await ok(server, "POST", "/api/emit", { event: "by-id", args: [3], to: [s3.socket.id] });
    await ok(server, "POST", "/api/emit", { event: "mixed", args: [4], to: [r1, r2, s3.socket.id] });
    await ok(server, "POST", "/api/emit", { event: "all-but", args: [5], except: [r1] });
    await ok(server, "POST", "/api/emit", { event: "end" });
    const members = { s1, s2, s3 };
    for (const { recorder } of Object.values(members)) await recorder.waitFor("end");
    await p.waitJson((f) => f.event === "end");
    const expected = {
      room: ["s1", "s2"],
      "room-but": ["s1"],
      "by-id": ["s3"],
      mixed: ["s1", "s2", "s3"],
      "all-but": ["s3"],
    };
    for (const [event, audience] of Object.entries(expected)) {
      const got = Object.entries(members).flatMap(([name, { recorder }]) => recorder.all(event).map(() => name));
      assert.deepEqual(got, audience, `audience of "${event}"`);
    }
    const plainEvents = p.jsonFrames().filter((f) => f.event !== "ack").map((f) => f.event);
    assert.deepEqual(plainEvents, ["room", "room-but", "mixed", "end"], "the plain member of r1");
  });

  it("emits binary arguments given as { _binary }", async () => {
    const { recorder } = await clients.connect(server.url);
    const bytes = Buffer.from([1, 2, 3, 254]);
    await ok(server, "POST", "/api/emit", { event: "blob", args: [{ _binary: bytes.toString("base64") }, { inner: { _binary: "AA==" } }] });
    const [blob, wrapped] = await recorder.waitFor("blob");
    assert.deepEqual([...bytesOf(blob)], [...bytes]);
    assert.deepEqual([...bytesOf(wrapped.inner)], [0]);
  });

  it("emits with acks: the answers, and the sockets that never answer as `missing`", async () => {
    const room = unique("askers");
    const answering = await clients.connect(server.url);
    const silent = await clients.connect(server.url);
    await joinRoom(answering.socket, room);
    await joinRoom(silent.socket, room);
    answering.socket.on("question", (payload, callback) => callback("yes", payload));
    silent.socket.on("question", () => {});
    const started = performance.now();
    const res = await ok(server, "POST", "/api/emit", { event: "question", args: [{ q: 1 }], to: [room], timeout_ms: 400 });
    const elapsed = performance.now() - started;
    assert.deepEqual(res, { ok: true, acks: [{ socket: answering.socket.id, args: ["yes", { q: 1 }] }], missing: 1 });
    assert.ok(elapsed >= 350, `answered after ${elapsed} ms, before the timeout`);
    assert.ok(elapsed < 3_000, `answered after ${elapsed} ms`);

    const all = await ok(server, "POST", "/api/emit", { event: "question", args: [2], to: [answering.socket.id], timeout_ms: 1_000 });
    assert.deepEqual(all, { ok: true, acks: [{ socket: answering.socket.id, args: ["yes", 2] }], missing: 0 });
  });

  it("joins and leaves rooms by socket id or by room", async () => {
    const [vip, base] = [unique("vip"), unique("base")];
    const a = await clients.connect(server.url);
    const b = await clients.connect(server.url);
    const c = await clients.connect(server.url);
    await joinRoom(a.socket, base);
    await joinRoom(b.socket, base);
    const ids = async (room) =>
      (await ok(server, "GET", `/api/sockets?namespace=/&room=${encodeURIComponent(room)}`)).sockets.map((s) => s.id).sort();

    assert.deepEqual(await ok(server, "POST", "/api/sockets/join", { namespace: "/", to: [c.socket.id], rooms: [vip] }), { ok: true });
    assert.deepEqual(await ids(vip), [c.socket.id]);
    await ok(server, "POST", "/api/sockets/join", { to: [base], rooms: [vip] });
    assert.deepEqual(await ids(vip), [a.socket.id, b.socket.id, c.socket.id].sort());
    await ok(server, "POST", "/api/emit", { event: "vip only", to: [vip] });
    for (const { recorder } of [a, b, c]) await recorder.waitFor("vip only");

    assert.deepEqual(await ok(server, "POST", "/api/sockets/leave", { namespace: "/", to: [a.socket.id], rooms: [vip] }), { ok: true });
    assert.deepEqual(await ids(vip), [b.socket.id, c.socket.id].sort());
    await ok(server, "POST", "/api/sockets/leave", { rooms: [vip] });
    assert.deepEqual(await ids(vip), []);
  });

  it("joins a plain client to a room by room", async () => {
    const room = unique("plain-base");
    const vip = unique("plain-vip");
    const p = await plain();
    await p.request({ event: "join", room }, 1);
    await ok(server, "POST", "/api/sockets/join", { to: [room], rooms: [vip] });
    await ok(server, "POST", "/api/emit", { event: "for vip", args: ["v"], to: [vip] });
    assert.deepEqual(await p.waitJson((f) => f.event === "for vip"), { event: "for vip", data: "v" });
  });

  for (const close of [false, true]) {
    it(`disconnects the sockets named by \`to\` (close: ${close})`, async () => {
      const room = unique("leaving");
      const a = await clients.connect(server.url);
      const b = await clients.connect(server.url);
      const stays = await clients.connect(server.url);
      await joinRoom(b.socket, room);
      const gone = [nextEvent(a.socket, "disconnect"), nextEvent(b.socket, "disconnect")];
      assert.deepEqual(await ok(server, "POST", "/api/sockets/disconnect", { namespace: "/", to: [a.socket.id, room], close }), { ok: true });
      for (const [reason] of await Promise.all(gone)) assert.equal(reason, "io server disconnect");
      await sleep(100);
      assert.equal(stays.socket.connected, true, "a socket not named stays");
    });
  }

  it("disconnects a plain client named by a room", async () => {
    const room = unique("plain-leaving");
    const p = await plain();
    const stays = await plain();
    await p.request({ event: "join", room }, 1);
    await ok(server, "POST", "/api/sockets/disconnect", { to: [room] });
    await p.waitClosed();
    await sleep(100);
    assert.equal(stays.closeInfo, null, "a plain client not named stays");
  });

  it("lists sockets with id, rooms, data, user and handshake, filtered by room", async () => {
    const room = unique("listed");
    const { socket } = await clients.connect(server.url, { auth: { hello: "there" }, query: { page: "2" } });
    const other = await clients.connect(server.url);
    await joinRoom(socket, room);
    const { sockets } = await ok(server, "GET", "/api/sockets?namespace=/");
    const listed = sockets.find((s) => s.id === socket.id);
    assert.ok(listed, "the socket is listed");
    assert.ok(sockets.some((s) => s.id === other.socket.id));
    for (const key of ["id", "rooms", "data", "user", "handshake"]) assert.ok(key in listed, `has ${key}`);
    assert.deepEqual([...listed.rooms].sort(), [room, socket.id].sort());
    assert.deepEqual(listed.data, {});
    assert.equal(listed.user, null);
    assert.deepEqual(listed.handshake.auth, { hello: "there" });
    assert.equal(listed.handshake.query.page, "2");
    const inRoom = await ok(server, "GET", `/api/sockets?namespace=/&room=${encodeURIComponent(room)}`);
    assert.deepEqual(inRoom.sockets.map((s) => s.id), [socket.id]);
    const byDefault = await ok(server, "GET", "/api/sockets");
    assert.ok(byDefault.sockets.some((s) => s.id === socket.id), "the namespace defaults to /");
  });

  it("lists named rooms with their sizes, not the sockets' own rooms", async () => {
    const [big, small] = [unique("big"), unique("small")];
    const a = await clients.connect(server.url);
    const b = await clients.connect(server.url);
    await joinRoom(a.socket, big);
    await joinRoom(b.socket, big);
    await joinRoom(b.socket, small);
    const p = await plain();
    await p.request({ event: "join", room: big }, 1);
    const { rooms } = await ok(server, "GET", "/api/rooms?namespace=/");
    const size = (name) => rooms.find((r) => r.name === name)?.size;
    assert.equal(size(big), 3, JSON.stringify(rooms));
    assert.equal(size(small), 1);
    for (const id of [a.socket.id, b.socket.id]) {
      assert.ok(!rooms.some((r) => r.name === id), "a socket's own room is not listed");
    }
    for (const room of rooms) assert.deepEqual(Object.keys(room).sort(), ["name", "size"]);
  });

  it("never shows the key in logs", () => {
    assert.ok(!server.logs().includes(API_KEY), "the API key appears in the logs");
    assert.match(server.logs(), /socket connected/, "the logs are there to look at");
  });
});
