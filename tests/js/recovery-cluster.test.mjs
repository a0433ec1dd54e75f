// Connection state recovery on two nodes sharing a real redis-server: the unchanged
// socket.io-client 4 reaches the nodes through one address (a TCP front that forwards to one
// node, as a load balancer would), loses its node, and comes back through the other. Two cases:
// (a) the client is cut off, then its node is killed (SIGKILL) during the gap; (b) its node is
// killed while the client is connected, so the kill itself is the cut; (c) a network cut resets
// its TCP connections. In both, 100 room
// messages and 10 emits to its id are sent through the surviving node while it is away; it
// reconnects with `recovered` true, its id and rooms, the 110 events once each in order, then new
// ones. Also: a forged session id or offset gets a fresh session on another node.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";

import { ClientSet, sleep, unique, waitUntil, whenConnected } from "../support/clients.mjs";
import { freePort, startIorelay } from "../support/iorelay.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startRedis } from "../support/redis.mjs";

const API_KEY = "apikey-recovery-cluster-7e20c4";

/** A TCP front on a free loopback port, forwarding each connection to the node it points at. */
async function startFront() {
  let target = null;
  const pairs = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: "127.0.0.1", port: target });
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Sends new connections to `port`. */
    pointAt(port) {
      target = port;
    },
    /** A network cut: every connection through the front reset (TCP RST) on both sides. */
    reset() {
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
    },
    async stop() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const NODE_SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "support", "node-recovery-server.mjs");

/** Node socket.io with connectionStateRecovery on the Redis streams adapter, on a free port. */
async function startNodeServer(redisUrl) {
  const port = await freePort();
  const child = spawn(process.execPath, [NODE_SERVER, String(port), redisUrl], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = once(child, "exit");
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    async () => {
      if (child.exitCode !== null) throw new Error(`the Node server exited:\n${output}`);
      return fetch(`${url}/healthz`).then((res) => res.ok, () => false);
    },
    { timeoutMs: 10_000, intervalMs: 50, what: "the Node server to listen" },
  );
  return {
    url,
    port,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** `POST /api/emit` on `node`. */
async function apiEmit(node, body) {
  const res = await httpRequest(`${node.url}/api/emit`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, res.body);
}

/** Kills a node (iorelay or Node) with SIGKILL and waits until it is gone. */
async function kill(node) {
  process.kill(node.pid, "SIGKILL");
  await node.stop();
}

const numbers = (recorder, event) => recorder.all(event).map((e) => e.args[0].n);

async function sendWhileAway(node, room, id) {
  for (let n = 0; n < 100; n++) {
    await apiEmit(node, { event: "missed", args: [{ n }], to: [room] });
    if (n % 10 === 0) await apiEmit(node, { event: "direct", args: [{ n }], to: [id] });
  }
}

function assertRecoveredEverything(recorder) {
  const expected = Array.from({ length: 100 }, (_, n) => n);
  assert.deepEqual(numbers(recorder, "missed"), expected);
  assert.deepEqual(numbers(recorder, "direct"), expected.filter((n) => n % 10 === 0));
  const order = recorder.events.filter((e) => ["missed", "direct", "after"].includes(e.event));
  assert.equal(order.length, 111);
  assert.equal(order.at(-1).event, "after");
}

/**
 * Two servers (from `startServer(redisUrl)`) on one `redis-server` behind a TCP front pointing
 * at the first, set up around each test of the enclosing `describe`, with the steps the cases
 * share. The second server sends every event.
 */
function twoServersBehindAFront(transports, startServer) {
  const clients = new ClientSet();
  const setup = { nodes: [], front: null };
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => redis?.stop());
  beforeEach(async () => {
    setup.nodes = [await startServer(redis.url), await startServer(redis.url)];
    setup.front = await startFront();
    setup.front.pointAt(setup.nodes[0].port);
  });
  afterEach(async () => {
    clients.closeAll();
    await setup.front?.stop();
    for (const node of setup.nodes) await node.stop();
  });

  /** A client connected through the front to the first server, in a fresh room, with an offset. */
  setup.connectedClient = async () => {
    const room = unique("room");
    const { socket, recorder } = await clients.connect(setup.front.url, { transports });
    const ack = await socket.timeout(3_000).emitWithAck("join", room);
    assert.equal(ack.room, room);
    await apiEmit(setup.nodes[1], { event: "before", args: [{ n: -1 }], to: [room] });
    await recorder.waitFor("before");
    return { socket, recorder, room, id: socket.id };
  };

  /** Does `cut` and resolves with the client's disconnect reason. */
  setup.loseConnection = async (socket, cut) => {
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    await cut();
    return gone;
  };

  /** Reconnects through the front, now pointing at the second server. */
  setup.comeBack = async (socket) => {
    setup.front.pointAt(setup.nodes[1].port);
    socket.connect();
    await whenConnected(socket);
  };
  return setup;
}

for (const transports of [["websocket"], ["polling"]]) {
  describe(`recovery across two nodes over ${transports[0]}`, () => {
    const setup = twoServersBehindAFront(transports, (redisUrl) =>
      startIorelay({
        args: ["--tick-interval-ms", "0", "--api-key", API_KEY, "--redis-url", redisUrl, "--connection-state-recovery"],
      }),
    );

    async function recoveredThroughTheOtherNode(socket, recorder, room, id) {
      const other = setup.nodes[1];
      await sendWhileAway(other, room, id);
      await setup.comeBack(socket);
      assert.equal(socket.recovered, true, "recovered on the other node");
      assert.equal(socket.id, id);
      await apiEmit(other, { event: "after", args: [{ n: 100 }], to: [room] });
      await recorder.waitFor("after");
      assertRecoveredEverything(recorder);
      // Still in its room on the new node, without a new join.
      await apiEmit(other, { event: "still-in", args: [{ n: 0 }], to: [room] });
      await recorder.waitFor("still-in");
    }

    it("(a) cut off, then its node killed during the gap: recovered on the other node", async () => {
      const { socket, recorder, room, id } = await setup.connectedClient();
      await setup.loseConnection(socket, () => socket.io.engine.close());
      await sleep(200);
      await kill(setup.nodes[0]);
      await recoveredThroughTheOtherNode(socket, recorder, room, id);
    });

    it("(b) its node killed while it is connected: recovered on the other node", async () => {
      const { socket, recorder, room, id } = await setup.connectedClient();
      const reason = await setup.loseConnection(socket, () => kill(setup.nodes[0]));
      assert.match(reason, /transport (close|error)/);
      await recoveredThroughTheOtherNode(socket, recorder, room, id);
    });

    it("(c) a network cut that resets its TCP connections: recovered on the other node", async () => {
      const { socket, recorder, room, id } = await setup.connectedClient();
      const reason = await setup.loseConnection(socket, () => setup.front.reset());
      assert.match(reason, /transport (close|error)/);
      await recoveredThroughTheOtherNode(socket, recorder, room, id);
    });

    it("a forged session id or an unknown offset gets a fresh session on the other node", async () => {
      for (const forge of [(s) => (s._pid = "forged-session-id-0000"), (s) => (s._lastOffset = "unknown-offset")]) {
        setup.front.pointAt(setup.nodes[0].port);
        const { socket, recorder, room, id } = await setup.connectedClient();
        await setup.loseConnection(socket, () => socket.io.engine.close());
        await apiEmit(setup.nodes[1], { event: "missed", args: [{ n: 0 }], to: [room] });
        forge(socket);
        await setup.comeBack(socket);
        assert.equal(socket.recovered, false);
        assert.notEqual(socket.id, id);
        await sleep(100);
        assert.deepEqual(numbers(recorder, "missed"), []);
      }
    });
  });
}

describe("recovery across nodes, past the window", () => {
  const clients = new ClientSet();
  let redis;
  let nodes = [];
  before(async () => {
    redis = await startRedis();
    const args = [
      "--tick-interval-ms", "0", "--api-key", API_KEY, "--redis-url", redis.url,
      "--connection-state-recovery", "--recovery-max-disconnection-ms", "400",
    ];
    nodes = [await startIorelay({ args }), await startIorelay({ args })];
  });
  after(async () => {
    clients.closeAll();
    for (const node of nodes) await node.stop();
    await redis?.stop();
  });

  it("a client back after --recovery-max-disconnection-ms gets a fresh session", async () => {
    const room = unique("room");
    const { socket, recorder } = await clients.connect(nodes[0].url, { transports: ["websocket"] });
    await socket.timeout(3_000).emitWithAck("join", room);
    await apiEmit(nodes[1], { event: "before", args: [{ n: -1 }], to: [room] });
    await recorder.waitFor("before");
    const id = socket.id;
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    socket.io.engine.close();
    await gone;
    await apiEmit(nodes[1], { event: "missed", args: [{ n: 0 }], to: [room] });
    await sleep(900);
    socket.connect();
    await whenConnected(socket);
    assert.equal(socket.recovered, false);
    assert.notEqual(socket.id, id);
    await sleep(100);
    assert.deepEqual(numbers(recorder, "missed"), []);
    await waitUntil(() => socket.connected);
  });
});

describe("recovery across nodes while Redis is down", () => {
  const clients = new ClientSet();
  let redis;
  let node;
  before(async () => {
    redis = await startRedis();
    node = await startIorelay({
      args: ["--tick-interval-ms", "0", "--api-key", API_KEY, "--redis-url", redis.url, "--connection-state-recovery"],
    });
  });
  after(async () => {
    clients.closeAll();
    await node?.stop();
    await redis?.stop();
  });

  it("a client back while Redis is unreachable gets a fresh session, and the failure is counted", async () => {
    const room = unique("room");
    const { socket, recorder } = await clients.connect(node.url, { transports: ["websocket"] });
    await socket.timeout(3_000).emitWithAck("join", room);
    await apiEmit(node, { event: "before", args: [{ n: -1 }], to: [room] });
    await recorder.waitFor("before");
    const id = socket.id;
    const gone = new Promise((resolve) => socket.once("disconnect", resolve));
    socket.io.engine.close();
    await gone;
    await redis.stop();
    socket.connect();
    await whenConnected(socket, 10_000);
    assert.equal(socket.recovered, false);
    assert.notEqual(socket.id, id);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    const failures = Number(/^iorelay_recovery_store_failures_total (\d+)/m.exec(metrics)?.[1]);
    assert.ok(failures > 0, `failures counted: ${failures}`);
    assert.match(node.logs(), /a client it concerns gets a fresh session instead of a recovered one/);
  });
});

// The same cases against Node socket.io 4.8 with the Redis streams adapter, the adapter Node
// recovers with across servers: (a) recovers, (b) does not, as the streams adapter saves a
// session only when its server sees the socket leave, which a killed server never does.
for (const transports of [["websocket"], ["polling"]]) {
  describe(`for comparison, Node socket.io with the Redis streams adapter over ${transports[0]}`, () => {
    const setup = twoServersBehindAFront(transports, startNodeServer);

    it("(a) cut off, then its server killed during the gap: Node recovers it", async () => {
      const { socket, recorder, room, id } = await setup.connectedClient();
      await setup.loseConnection(socket, () => socket.io.engine.close());
      await sleep(200);
      await kill(setup.nodes[0]);
      await sendWhileAway(setup.nodes[1], room, id);
      await setup.comeBack(socket);
      assert.equal(socket.recovered, true);
      assert.equal(socket.id, id);
      await apiEmit(setup.nodes[1], { event: "after", args: [{ n: 100 }], to: [room] });
      await recorder.waitFor("after");
      assertRecoveredEverything(recorder);
    });

    it("(b) its server killed while it is connected: Node gives a fresh session, nothing replayed", async () => {
      const { socket, recorder, room, id } = await setup.connectedClient();
      await setup.loseConnection(socket, () => kill(setup.nodes[0]));
      await sendWhileAway(setup.nodes[1], room, id);
      await setup.comeBack(socket);
      assert.equal(socket.recovered, false);
      assert.notEqual(socket.id, id);
      await sleep(100);
      assert.deepEqual(numbers(recorder, "missed"), []);
    });
  });
}
