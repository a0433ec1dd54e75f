// Connection state recovery on one node (`--connection-state-recovery`), driven by the unchanged
// socket.io-client 4: a client whose transport closes misses room broadcasts and emits to its
// id, comes back with `recovered` true, its id and rooms, and gets every missed event once, in
// order, before the new ones. Past the window, or with an unknown offset or session, it starts
// afresh.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { ClientSet, joinRoom, sleep, unique, waitUntil, whenConnected } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { httpRequest } from "../support/raw.mjs";

const API_KEY = "apikey-recovery-51d0b7";

const clients = new ClientSet();
afterEach(() => clients.closeAll());

/** `POST /api/emit` on `server`. */
async function apiEmit(server, body) {
  const res = await httpRequest(`${server.url}/api/emit`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, res.body);
}

/** Closes the client's transport, as Node's own recovery tests do, and waits for the disconnect. */
async function cut(socket) {
  const gone = new Promise((resolve) => socket.once("disconnect", resolve));
  socket.io.engine.close();
  await gone;
  // The server hears the transport close a moment later.
  await sleep(100);
}

/** Reconnects a socket that was cut (it does not reconnect by itself in these tests). */
async function reconnect(socket) {
  socket.connect();
  await whenConnected(socket);
}

/** The `n` payload of each `missed` event recorded, in arrival order. */
const numbers = (recorder, event) => recorder.all(event).map((e) => e.args[0].n);

for (const transports of [["websocket"], ["polling"]]) {
  describe(`recovery over ${transports[0]}`, () => {
    let server;
    before(async () => {
      server = await startIorelay({
        args: ["--tick-interval-ms", "0", "--api-key", API_KEY, "--connection-state-recovery"],
      });
    });
    after(async () => server?.stop());

    it("gives back the id, the rooms and 110 missed events in order, before new ones", async () => {
      const room = unique("room");
      const { socket, recorder } = await clients.connect(server.url, { transports });
      await joinRoom(socket, room);
      // One event received first, so the client holds an offset.
      await apiEmit(server, { event: "before", args: [{ n: -1 }], to: [room] });
      await recorder.waitFor("before");
      const id = socket.id;
      await cut(socket);
      for (let n = 0; n < 100; n++) {
        await apiEmit(server, { event: "missed", args: [{ n }], to: [room] });
        if (n % 10 === 0) await apiEmit(server, { event: "direct", args: [{ n }], to: [id] });
      }
      await reconnect(socket);
      assert.equal(socket.recovered, true);
      assert.equal(socket.id, id);
      await apiEmit(server, { event: "after", args: [{ n: 100 }], to: [room] });
      await recorder.waitFor("after");
      const expected = Array.from({ length: 100 }, (_, n) => n);
      assert.deepEqual(numbers(recorder, "missed"), expected);
      assert.deepEqual(numbers(recorder, "direct"), expected.filter((n) => n % 10 === 0));
      // Missed ones, then the new one: the order of arrival over the whole stream.
      const order = recorder.events.filter((e) => ["missed", "direct", "after"].includes(e.event));
      assert.equal(order.at(-1).event, "after");
      assert.equal(order.length, 111);
      // Each recoverable event carries its offset as a last string argument, as in Node.
      for (const e of order) assert.equal(typeof e.args.at(-1), "string");
      // Still in the room: a room broadcast reaches it without a new join.
      await apiEmit(server, { event: "still-in", args: [{ n: 0 }], to: [room] });
      await recorder.waitFor("still-in");
    });

    it("starts afresh with an unknown offset or a forged session id", async () => {
      for (const forge of [(s) => (s._lastOffset = "unknown-offset"), (s) => (s._pid = "forged-session-id-0000")]) {
        const room = unique("room");
        const { socket, recorder } = await clients.connect(server.url, { transports });
        await joinRoom(socket, room);
        await apiEmit(server, { event: "before", args: [{ n: -1 }], to: [room] });
        await recorder.waitFor("before");
        const id = socket.id;
        await cut(socket);
        await apiEmit(server, { event: "missed", args: [{ n: 0 }], to: [room] });
        forge(socket);
        await reconnect(socket);
        assert.equal(socket.recovered, false);
        assert.notEqual(socket.id, id);
        await sleep(100);
        assert.deepEqual(numbers(recorder, "missed"), []);
      }
    });
  });
}

describe("recovery window", () => {
  let server;
  before(async () => {
    server = await startIorelay({
      args: [
        "--tick-interval-ms",
        "0",
        "--api-key",
        API_KEY,
        "--connection-state-recovery",
        "--recovery-max-disconnection-ms",
        "300",
      ],
    });
  });
  after(async () => server?.stop());

  it("past --recovery-max-disconnection-ms, a fresh session with nothing replayed", async () => {
    const room = unique("room");
    const { socket, recorder } = await clients.connect(server.url, { transports: ["websocket"] });
    await joinRoom(socket, room);
    await apiEmit(server, { event: "before", args: [{ n: -1 }], to: [room] });
    await recorder.waitFor("before");
    const id = socket.id;
    await cut(socket);
    await apiEmit(server, { event: "missed", args: [{ n: 0 }], to: [room] });
    await sleep(700);
    await reconnect(socket);
    assert.equal(socket.recovered, false);
    assert.notEqual(socket.id, id);
    await sleep(100);
    assert.deepEqual(numbers(recorder, "missed"), []);
  });

  it("within the window, recovered", async () => {
    const room = unique("room");
    const { socket, recorder } = await clients.connect(server.url, { transports: ["websocket"] });
    await joinRoom(socket, room);
    await apiEmit(server, { event: "before", args: [{ n: -1 }], to: [room] });
    await recorder.waitFor("before");
    await cut(socket);
    await apiEmit(server, { event: "missed", args: [{ n: 0 }], to: [room] });
    await reconnect(socket);
    assert.equal(socket.recovered, true);
    await waitUntil(() => numbers(recorder, "missed").length === 1);
  });
});

describe("connect checks on recovery", () => {
  const TOKEN = "recovery-token-8c1f";
  for (const skip of ["true", "false"]) {
    it(`--recovery-skip-middlewares ${skip}: ${skip === "true" ? "credentials are not asked again" : "credentials are checked again"}`, async () => {
      const server = await startIorelay({
        args: [
          "--tick-interval-ms",
          "0",
          "--api-key",
          API_KEY,
          "--auth-token",
          TOKEN,
          "--connection-state-recovery",
          "--recovery-skip-middlewares",
          skip,
        ],
      });
      try {
        const room = unique("room");
        const { socket, recorder } = await clients.connect(server.url, {
          transports: ["websocket"],
          auth: { token: TOKEN },
        });
        await joinRoom(socket, room);
        await apiEmit(server, { event: "before", args: [{ n: -1 }], to: [room] });
        await recorder.waitFor("before");
        await cut(socket);
        socket.auth = { token: "no-longer-valid" };
        if (skip === "true") {
          await reconnect(socket);
          assert.equal(socket.recovered, true);
        } else {
          socket.connect();
          await assert.rejects(whenConnected(socket), /unauthorized/);
        }
      } finally {
        await server.stop();
      }
    });
  }
});

describe("without --connection-state-recovery", () => {
  let server;
  before(async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0", "--api-key", API_KEY] });
  });
  after(async () => server?.stop());

  it("no session id and no offsets on the wire, and no recovery", async () => {
    const room = unique("room");
    const { socket, recorder } = await clients.connect(server.url, { transports: ["websocket"] });
    assert.equal(socket._pid, undefined);
    await joinRoom(socket, room);
    await apiEmit(server, { event: "plain", args: [{ n: 1 }], to: [room] });
    const args = await recorder.waitFor("plain");
    assert.deepEqual(args, [{ n: 1 }]);
    await cut(socket);
    await reconnect(socket);
    // The client sets `recovered` from the CONNECT answer's pid: none here.
    assert.ok(!socket.recovered);
  });
});

