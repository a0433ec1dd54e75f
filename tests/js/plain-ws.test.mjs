// Plain WebSocket clients (Node's `ws`, as pages written for a `ws` server use it) beside
// socket.io-client on the same iorelay port, in the same rooms.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { startIorelay } from "../support/iorelay.mjs";
import { ClientSet, sleep, unique } from "../support/clients.mjs";
import { openPlain, plainUrl, tryPlain } from "../support/plain.mjs";
import { startRedis } from "../support/redis.mjs";

const PING_INTERVAL_MS = 300;
const PING_TIMEOUT_MS = 300;
const MAX_MESSAGE = 1_000;

/** Plain sockets opened by a test, terminated after it whatever happened. */
const plainSockets = new Set();
async function plain(url, options) {
  const socket = await openPlain(url, options);
  plainSockets.add(socket);
  return socket;
}
const sioClients = new ClientSet();
afterEach(() => {
  for (const socket of plainSockets) socket.terminate();
  plainSockets.clear();
  sioClients.closeAll();
});

describe("one node", () => {
  let server;
  let wsUrl;

  before(async () => {
    server = await startIorelay({
      args: [
        "--tick-interval-ms", "200",
        "--ping-interval-ms", String(PING_INTERVAL_MS),
        "--ping-timeout-ms", String(PING_TIMEOUT_MS),
        "--max-http-buffer-size", String(MAX_MESSAGE),
      ],
    });
    wsUrl = plainUrl(server.url);
  });
  after(async () => {
    await server?.stop();
  });

  for (const path of ["/ws", "/"]) {
    it(`echoes text and binary frames at ${path}`, async () => {
      const socket = await plain(plainUrl(server.url, path));
      socket.send("hello there");
      socket.send(Buffer.from([0, 1, 2, 250]));
      assert.equal(await socket.waitFrame((f) => f === "hello there"), "hello there");
      const binary = await socket.waitFrame((f) => Buffer.isBuffer(f));
      assert.deepEqual([...binary], [0, 1, 2, 250], "binary stays binary");
    });
  }

  it("still serves the page on a plain GET /", async () => {
    const res = await fetch(server.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  });

  it("pushes the ticker as text frames holding the server's time in ms", async () => {
    const socket = await plain(wsUrl);
    await socket.waitFrame((f) => typeof f === "string" && /^\d+$/.test(f), 2_000);
    const ticks = await (async () => {
      await sleep(500);
      return socket.frames.filter((f) => typeof f === "string" && /^\d+$/.test(f)).map(Number);
    })();
    assert.ok(ticks.length >= 2, `ticks: ${ticks}`);
    for (const tick of ticks) assert.ok(Math.abs(Date.now() - tick) < 5_000, `tick ${tick}`);
  });

  it("speaks the JSON contract: join, chat, echo, leave, errors", async () => {
    const socket = await plain(wsUrl);
    const room = unique("json");
    assert.deepEqual(await socket.request({ event: "join", room }, 1), { room, size: 1 });
    assert.deepEqual(await socket.request({ event: "chat", room, text: "hi" }, 2), { ok: true });
    const chat = await socket.waitJson((f) => f.event === "chat");
    assert.equal(chat.room, room);
    assert.equal(chat.text, "hi");
    assert.match(chat.from, /^[\w-]{16}$/);
    assert.equal(typeof chat.ts, "number");
    assert.deepEqual(await socket.request({ event: "echo", data: { nested: [1, "two"] } }, 3), { nested: [1, "two"] });
    assert.deepEqual(await socket.request({ event: "join", room: "" }, 4), { error: "the room name must not be empty" });
    socket.send("{not json");
    const invalid = await socket.waitJson((f) => f.event === "error");
    assert.match(invalid.message, /^invalid JSON/);
    socket.sendJson({ event: "dance", id: 5 });
    const unknown = await socket.waitJson((f) => f.event === "error" && f.id === 5);
    assert.match(unknown.message, /unknown event "dance"/);
    assert.deepEqual(await socket.request({ event: "leave", room }, 6), { room, size: 0 });
    socket.send("still connected");
    await socket.waitFrame((f) => f === "still connected");
  });

  it("shares a room with a socket.io-client socket, both ways", async () => {
    const room = unique("mixed");
    const { socket: sio, recorder } = await sioClients.connect(server.url);
    assert.deepEqual(await sio.emitWithAck("join", room), { room, size: 1 });
    const member = await plain(wsUrl);
    assert.deepEqual(await member.request({ event: "join", room }, 1), { room, size: 2 });
    const outsider = await plain(wsUrl);

    member.sendJson({ event: "chat", room, text: "from plain" });
    const [fromPlain] = await recorder.waitFor("chat", (m) => m.text === "from plain");
    assert.equal(fromPlain.room, room);
    const own = await member.waitJson((f) => f.event === "chat" && f.text === "from plain");
    assert.equal(fromPlain.from, own.from, "the same sender id on both sides");

    await sio.emitWithAck("chat", { room, text: "from socket.io" });
    const fromSio = await member.waitJson((f) => f.event === "chat" && f.text === "from socket.io");
    assert.deepEqual(Object.keys(fromSio).sort(), ["event", "from", "room", "text", "ts"]);
    assert.equal(fromSio.from, sio.id);

    await sleep(200);
    assert.deepEqual(outsider.jsonFrames().filter((f) => f.event === "chat"), [], "outsiders see no room traffic");
  });

  it("relays a room-less chat to every client, like a `ws` chat server's broadcast", async () => {
    const text = unique("everyone");
    const { recorder } = await sioClients.connect(server.url);
    const a = await plain(wsUrl);
    const b = await plain(wsUrl);
    a.sendJson({ event: "chat", text });
    for (const socket of [a, b]) {
      const chat = await socket.waitJson((f) => f.event === "chat" && f.text === text);
      assert.equal(chat.room, null);
    }
    await recorder.waitFor("chat", (m) => m.text === text);
  });

  it("negotiates the subprotocol and refuses unknown ones in the handshake", async () => {
    const echo = await plain(wsUrl, { protocols: ["echo-protocol"] });
    assert.equal(echo.protocol, "echo-protocol");
    const preferred = await plain(wsUrl, { protocols: ["graphql-ws", "echo-protocol"] });
    assert.equal(preferred.protocol, "echo-protocol");
    const none = await plain(wsUrl);
    assert.equal(none.protocol, "");
    const refused = await tryPlain(wsUrl, { protocols: ["graphql-ws"] });
    assert.equal(refused.status, 400);
    assert.match(refused.body, /unsupported subprotocol: this server speaks echo-protocol/);
  });

  it("closes a peer that stops answering pings within the ping timeout", async () => {
    const silent = await plain(wsUrl, { autoPong: false });
    const answering = await plain(wsUrl);
    const started = Date.now();
    const { code, reason } = await silent.waitClosed(PING_INTERVAL_MS + PING_TIMEOUT_MS + 2_000);
    const took = Date.now() - started;
    assert.equal(code, 1001);
    assert.equal(reason, "ping timeout");
    assert.ok(took <= PING_INTERVAL_MS + PING_TIMEOUT_MS + 1_000, `closed after ${took} ms`);
    await sleep(PING_INTERVAL_MS * 3);
    assert.equal(answering.closeInfo, null, "a peer that answers pings stays connected");
    assert.ok(answering.pings >= 2, `the server pings (${answering.pings})`);
  });

  it("closes with 1007 on invalid UTF-8 and 1009 on an oversized message, and keeps serving", async () => {
    const badText = await plain(wsUrl);
    badText.send(Buffer.from([0x68, 0x69, 0xff, 0xfe]), { binary: false });
    assert.deepEqual(await badText.waitClosed(), { code: 1007, reason: "invalid UTF-8" });

    const atLimit = await plain(wsUrl);
    atLimit.send("x".repeat(MAX_MESSAGE));
    await atLimit.waitFrame((f) => f.length === MAX_MESSAGE);
    atLimit.send("x".repeat(MAX_MESSAGE + 1));
    assert.deepEqual(await atLimit.waitClosed(), { code: 1009, reason: "message too big" });

    const next = await plain(wsUrl);
    next.send("ok");
    await next.waitFrame((f) => f === "ok");
  });
});

describe("handshake rules: origin allow-list and token", () => {
  const ALLOWED = "http://allowed.example";
  const TOKEN = "let-me-in";
  let server;

  before(async () => {
    server = await startIorelay({
      args: ["--tick-interval-ms", "0", "--cors-origin", ALLOWED, "--auth-token", TOKEN],
    });
  });
  after(async () => {
    await server?.stop();
  });

  it("refuses an unlisted origin with 403 before anything else", async () => {
    const refused = await tryPlain(`${plainUrl(server.url)}?token=${TOKEN}`, { origin: "http://evil.example" });
    assert.equal(refused.status, 403);
  });

  it("takes the token from ?token= or from the subprotocol list", async () => {
    assert.equal((await tryPlain(plainUrl(server.url), { origin: ALLOWED })).status, 401);
    assert.equal((await tryPlain(`${plainUrl(server.url)}?token=wrong`, { origin: ALLOWED })).status, 401);
    const byQuery = await plain(`${plainUrl(server.url)}?token=${TOKEN}`, { origin: ALLOWED });
    byQuery.send("q");
    await byQuery.waitFrame((f) => f === "q");
    const byProtocol = await plain(plainUrl(server.url, "/"), {
      origin: ALLOWED,
      protocols: ["echo-protocol", `token.${TOKEN}`],
    });
    assert.equal(byProtocol.protocol, "echo-protocol");
    byProtocol.send("p");
    await byProtocol.waitFrame((f) => f === "p");
  });
});

describe("two nodes sharing rooms through Redis", () => {
  let redis;
  let nodes = [];

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all(
      [0, 1].map(() => startIorelay({ args: ["--tick-interval-ms", "0", "--redis-url", redis.url] })),
    );
  });
  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
  });

  it("delivers room messages across nodes exactly once, in both directions", async () => {
    const room = unique("far");
    const [a, b] = nodes;
    const plainA = await plain(plainUrl(a.url));
    const plainB = await plain(plainUrl(b.url));
    const { socket: sioB, recorder } = await sioClients.connect(b.url);
    await sioB.emitWithAck("join", room);
    assert.deepEqual(await plainA.request({ event: "join", room }, 1), { room, size: 2 });
    await plainB.request({ event: "join", room }, 1);

    plainA.sendJson({ event: "chat", room, text: "from node a" });
    await recorder.waitFor("chat", (m) => m.text === "from node a");
    await plainB.waitJson((f) => f.event === "chat" && f.text === "from node a");

    await sioB.emitWithAck("chat", { room, text: "from node b" });
    await plainA.waitJson((f) => f.event === "chat" && f.text === "from node b");

    await sleep(300);
    for (const socket of [plainA, plainB]) {
      const texts = socket.jsonFrames().filter((f) => f.event === "chat").map((f) => f.text);
      assert.deepEqual(texts, ["from node a", "from node b"], "each message exactly once");
    }
  });
});
