// docker/nginx.conf in front of three iorelay nodes sharing rooms through Redis, as
// docker/docker-compose.yml runs them, but with Debian's nginx and local processes: polling
// clients spread over the nodes, stay on their node, upgrade and chat across nodes, and the
// same config without `hash ... consistent` breaks long-polling.
//
// Every loopback client would come from 127.0.0.1 and hash to one node, so each client binds
// its own source address (127.0.0.2, 127.0.0.3, ...) through an http.Agent, which
// engine.io-client hands to both transports (xmlhttprequest-ssl for polling, ws for WebSocket).
import assert from "node:assert/strict";
import http from "node:http";
import { performance } from "node:perf_hooks";
import { after, afterEach, before, describe, it } from "node:test";

import { ClientSet, emitWithAckArgs, sleep, unique, waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { startNginx } from "../support/nginx.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startRedis } from "../support/redis.mjs";

const NODE_COUNT = 3;
/** Source addresses tried, at most, to find clients for every node. */
const MAX_ADDRESSES = 30;
const LATENCY_MESSAGES = 300;
const LATENCY_PACE_MS = 5;

/** The `index`-th test source address: 127.0.0.2, 127.0.0.3, ... */
const sourceAddress = (index) => `127.0.0.${index + 2}`;

/** One parsed line of the `relay` access log format in docker/nginx.conf. */
function parseAccessLog(text) {
  const pattern = /^(\S+) \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) \d+ upstream=(\S+)/;
  return text
    .split("\n")
    .map((line) => pattern.exec(line))
    .filter(Boolean)
    .map(([, remote, method, uri, status, upstream]) => ({ remote, method, uri, status: Number(status), upstream }));
}

/** Median and 99th percentile (nearest rank) of `values`. */
function percentiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
  return { median: rank(0.5), p99: rank(0.99) };
}

describe("three nodes behind docker/nginx.conf", { timeout: 60_000 }, () => {
  let redis;
  /** @type {Awaited<ReturnType<typeof startIorelay>>[]} */
  let nodes = [];
  let nginx;
  const clients = new ClientSet();

  before(async () => {
    redis = await startRedis();
    nodes = await Promise.all(
      Array.from({ length: NODE_COUNT }, () =>
        startIorelay({ args: ["--redis-url", redis.url, "--tick-interval-ms", "0"] }),
      ),
    );
    nginx = await startNginx({ upstreams: nodes.map((node) => `127.0.0.1:${node.port}`) });
  });
  after(async () => {
    clients.closeAll();
    await nginx?.stop();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
  });
  afterEach(() => clients.closeAll());

  /** How many connects from `address` (the first X-Forwarded-For hop) each node has logged. */
  const connectsLoggedFrom = (address) => {
    const line = new RegExp(`socket connected.*remote=${address.replaceAll(".", "\\.")}(\\s|$)`, "gm");
    return nodes.map((node) => node.logs().match(line)?.length ?? 0);
  };

  /**
   * Connects a socket.io-client@4 socket (default transports: polling, then the upgrade)
   * through nginx from source `address`; resolves with the socket, its recorder and the index
   * of the node that logged the connect.
   */
  async function connectFrom(address) {
    const before = connectsLoggedFrom(address);
    const agent = new http.Agent({ localAddress: address });
    const { socket, recorder } = await clients.connect(nginx.url, { agent, localAddress: address });
    const node = await waitUntil(
      () => {
        const now = connectsLoggedFrom(address);
        return now.findIndex((count, n) => count > before[n]) + 1;
      },
      { timeoutMs: 3_000, what: `a node to log the connect from ${address}` },
    ).then((found) => found - 1);
    return { socket, recorder, node, address };
  }

  const health = async (node) => JSON.parse((await httpRequest(`${node.url}/healthz`)).body);

  it("spreads polling clients over every node, keeps each on its node, upgrades them and chats across nodes once", async (t) => {
    // Distinct source addresses until every node has a client (or the address budget is spent).
    const placed = [];
    for (let i = 0; i < MAX_ADDRESSES; i += 1) {
      if (new Set(placed.map((c) => c.node)).size === NODE_COUNT) break;
      placed.push(await connectFrom(sourceAddress(i)));
    }
    const perNode = nodes.map((_, n) => placed.filter((c) => c.node === n).map((c) => c.address));
    t.diagnostic(`client source addresses by node: ${JSON.stringify(perNode)}`);
    assert.equal(
      perNode.filter((addresses) => addresses.length > 0).length,
      NODE_COUNT,
      `clients by node: ${JSON.stringify(perNode)}`,
    );

    // Each node counts exactly the clients its log named, and its Redis link is up.
    for (const [n, node] of nodes.entries()) {
      const body = await waitUntil(
        async () => {
          const h = await health(node);
          return h.connections === perNode[n].length && h;
        },
        { timeoutMs: 3_000, what: `node ${n + 1} /healthz connections to be ${perNode[n].length}` },
      );
      assert.equal(body.adapter, "redis");
      assert.deepEqual(body.redis, { reachable: true, dropped_messages: 0 });
    }

    // Every client moves from long-polling to WebSocket, and nginx sent each of its requests
    // (handshake, polls, posts, upgrade) to that client's node.
    for (const c of placed) {
      await waitUntil(() => c.socket.io.engine.transport.name === "websocket", {
        timeoutMs: 5_000,
        what: `${c.address} to upgrade to websocket`,
      });
    }
    const requests = parseAccessLog(await nginx.accessLog()).filter((r) => r.uri.startsWith("/socket.io/"));
    for (const c of placed) {
      const own = requests.filter((r) => r.remote === c.address);
      assert.ok(
        own.some((r) => r.uri.includes("transport=polling") && !r.uri.includes("sid=") && r.status === 200),
        `no polling handshake from ${c.address} in the access log: ${JSON.stringify(own)}`,
      );
      const upstreams = new Set(own.map((r) => r.upstream));
      assert.deepEqual([...upstreams], [`127.0.0.1:${nodes[c.node].port}`], `upstreams used by ${c.address}`);
    }
    assert.deepEqual(requests.filter((r) => r.status >= 400), [], "no request through the sticky config failed");

    // Room chat from one client on each node reaches every member on every node exactly once.
    const room = unique("cluster");
    let size = 0;
    for (const c of placed) [{ size }] = await emitWithAckArgs(c.socket, "join", [room]);
    assert.equal(size, placed.length, "the room size counts the members on every node");

    const senders = nodes.map((_, n) => placed.find((c) => c.node === n));
    const texts = senders.map((s) => unique(`from-node-${s.node + 1}`));
    for (const [i, sender] of senders.entries()) {
      const [ack] = await emitWithAckArgs(sender.socket, "chat", [{ room, text: texts[i] }]);
      assert.deepEqual(ack, { ok: true });
    }
    const received = (c, text) => c.recorder.all("chat", (p) => p?.room === room && p.text === text);
    await waitUntil(() => placed.every((c) => texts.every((text) => received(c, text).length > 0)), {
      timeoutMs: 5_000,
      what: "every member to receive every chat",
    });
    await sleep(300); // room for a duplicate to show up
    for (const c of placed) {
      for (const [i, text] of texts.entries()) {
        const got = received(c, text);
        assert.equal(got.length, 1, `${c.address} (node ${c.node + 1}) got "${text}" ${got.length} times`);
        assert.equal(got[0].args[0].from, senders[i].socket.id);
      }
    }
  });

  it(`measures room chat latency across nodes (${LATENCY_MESSAGES} messages, each delivered once)`, async (t) => {
    // A sender, a receiver on another node, and a second client from the sender's address,
    // which nginx must send to the sender's node.
    const sender = await connectFrom(sourceAddress(0));
    let remote;
    for (let i = 1; i < MAX_ADDRESSES && !remote; i += 1) {
      const candidate = await connectFrom(sourceAddress(i));
      if (candidate.node !== sender.node) remote = candidate;
    }
    assert.ok(remote, "no source address reached a second node");
    const local = await connectFrom(sourceAddress(0));
    assert.equal(local.node, sender.node, "a second client from the same address lands on the same node");
    for (const c of [sender, remote, local]) {
      await waitUntil(() => c.socket.io.engine.transport.name === "websocket", {
        timeoutMs: 5_000,
        what: `${c.address} to upgrade to websocket`,
      });
    }

    const room = unique("latency");
    for (const c of [remote, local]) await emitWithAckArgs(c.socket, "join", [room]);

    /** Arrival times (performance.now()) by message index, per receiver. */
    const arrivals = new Map([remote, local].map((c) => [c, new Map()]));
    const duplicates = new Map([remote, local].map((c) => [c, 0]));
    for (const c of [remote, local]) {
      c.socket.on("chat", (payload) => {
        if (payload?.room !== room) return;
        const index = Number(payload.text);
        if (arrivals.get(c).has(index)) duplicates.set(c, duplicates.get(c) + 1);
        else arrivals.get(c).set(index, performance.now());
      });
    }

    const sentAt = [];
    for (let i = 0; i < LATENCY_MESSAGES; i += 1) {
      sentAt.push(performance.now());
      sender.socket.emit("chat", { room, text: String(i) });
      await sleep(LATENCY_PACE_MS);
    }
    await waitUntil(() => [remote, local].every((c) => arrivals.get(c).size === LATENCY_MESSAGES), {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: `both receivers to get all ${LATENCY_MESSAGES} messages`,
    });
    await sleep(200);

    for (const [c, where] of [
      [remote, "on another node"],
      [local, "on the sender's node"],
    ]) {
      assert.equal(duplicates.get(c), 0, `duplicates ${where}`);
      const latencies = sentAt.map((at, i) => arrivals.get(c).get(i) - at);
      const { median, p99 } = percentiles(latencies);
      const order = [...arrivals.get(c).keys()]; // in arrival order
      const outOfOrder = order.filter((index, k) => k > 0 && index < order[k - 1]).length;
      t.diagnostic(
        `room chat latency ${where} (node ${sender.node + 1} -> node ${c.node + 1}), ${LATENCY_MESSAGES} messages ` +
          `every ${LATENCY_PACE_MS} ms through nginx: median ${median.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, ` +
          `${outOfOrder} out of order`,
      );
    }
  });

  it("without `hash ... consistent` (round robin), long-polling sessions get `Session ID unknown`", async (t) => {
    const upstreams = nodes.map((node) => `127.0.0.1:${node.port}`);
    const roundRobin = await startNginx({ upstreams, sticky: false });
    try {
      // The same raw Engine.IO sequence through both configs: a handshake, then POSTs on the
      // session (CONNECT to "/", then `message` events, which come back as echoes). A `t` query
      // parameter tags each request so that its access log line can be found.
      async function pollingSession(proxy, tag) {
        const base = `${proxy.url}/socket.io/?EIO=4&transport=polling`;
        const handshake = await httpRequest(`${base}&t=${tag}-0`);
        assert.equal(handshake.status, 200, `handshake through ${tag}: ${handshake.body}`);
        const { sid } = JSON.parse(handshake.body.slice(1));
        const answers = [];
        for (let i = 1; i <= 6; i += 1) {
          const res = await httpRequest(`${base}&sid=${encodeURIComponent(sid)}&t=${tag}-${i}`, {
            method: "POST",
            body: i === 1 ? "40" : `42["message","probe-${i}"]`,
            headers: { "content-type": "text/plain;charset=UTF-8" },
          });
          answers.push(res);
          if (res.status !== 200) break;
        }
        // nginx writes a line once the response is out, a moment after the client has it.
        const lines = await waitUntil(
          async () => {
            const mine = parseAccessLog(await proxy.accessLog()).filter((r) => r.uri.includes(`t=${tag}-`));
            return mine.length === answers.length + 1 && mine;
          },
          { timeoutMs: 3_000, what: `nginx to log the ${answers.length + 1} requests tagged ${tag}` },
        );
        return { answers, lines };
      }

      const sticky = await pollingSession(nginx, unique("sticky"));
      assert.deepEqual(
        sticky.answers.map((r) => `${r.status} ${r.body}`),
        Array(6).fill("200 ok"),
        "every POST through the sticky config reaches the session",
      );
      assert.equal(new Set(sticky.lines.map((l) => l.upstream)).size, 1, "sticky requests used one upstream");

      const rawTag = unique("round-robin");
      const broken = await pollingSession(roundRobin, rawTag);
      const last = broken.answers.at(-1);
      assert.equal(last.status, 400, `round robin never left the session's node: ${JSON.stringify(broken.lines)}`);
      assert.match(last.body, /Session ID unknown/);
      // nginx logged that 400, from another node than the one that made the session.
      const handshakeLine = broken.lines.find((l) => l.uri.endsWith("-0"));
      const failedLine = broken.lines.find((l) => l.status === 400);
      assert.ok(handshakeLine && failedLine, `access log lines: ${JSON.stringify(broken.lines)}`);
      assert.notEqual(failedLine.upstream, handshakeLine.upstream);

      // socket.io-client with its default transports fails the same way: its first poll or
      // post after the handshake goes to another node. A client whose requests all happen to
      // land on one node connects, so several try and at least one must fail.
      const outcomes = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const socket = clients.open(roundRobin.url);
          return new Promise((resolve) => {
            const timer = setTimeout(() => resolve("no outcome within 5 s"), 5_000);
            const settle = (outcome) => {
              clearTimeout(timer);
              resolve(outcome);
            };
            socket.on("connect", () => settle("connected"));
            socket.on("connect_error", (err) => settle(`connect_error: ${err.message}`));
          });
        }),
      );
      t.diagnostic(`socket.io-client through round robin: ${outcomes.join("; ")}`);
      assert.ok(
        outcomes.some((o) => o.startsWith("connect_error: xhr")),
        `socket.io-client outcomes through round robin: ${JSON.stringify(outcomes)}`,
      );
      await waitUntil(
        async () =>
          parseAccessLog(await roundRobin.accessLog()).some(
            (r) => r.status === 400 && r.uri.includes("sid=") && !r.uri.includes(`t=${rawTag}-`),
          ),
        { timeoutMs: 3_000, what: "nginx to log a client's 400 on its session" },
      );
    } finally {
      clients.closeAll();
      await roundRobin.stop();
    }
  });
});
