// GET /metrics read as Prometheus reads it: the text parsed by parse-prometheus-text-format
// (prom2json's model), every family with its type, and the counters followed while a scripted
// session connects, joins, chats, floods past the rate limit and disconnects. Also the bearer
// token, the separate listener, --no-metrics, refused handshakes by cause, Redis's link, and
// labels that never carry a socket id, a room name or a secret.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import parsePrometheusTextFormat from "parse-prometheus-text-format";

import { ClientSet, emitWithAckArgs, nextEvent, unique, waitUntil } from "../support/clients.mjs";
import { freePort, startIorelay } from "../support/iorelay.mjs";
import { FAMILIES, REDIS_FAMILIES } from "../support/metrics.mjs";
import { openPlain, plainUrl } from "../support/plain.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startRedis } from "../support/redis.mjs";

const LIMIT = 10;
const TOKEN = "metrics-token-5d2c8e";

/** Label names and, where the set is closed, their values: nothing a client chooses. */
const LABELS = {
  namespace: null,
  transport: ["polling", "websocket", "plain"],
  reason: null,
  cause: null,
  event: null,
  type: null,
  version: null,
  le: null,
};

/** GETs /metrics and returns the response. */
function getMetrics(url, headers = {}) {
  return httpRequest(`${url}/metrics`, { headers });
}

/**
 * Scrapes `url` (with the token when given) and returns the parsed families by name. Fails
 * on anything the parser could only read as an untyped family (a malformed line).
 */
async function scrape(url, token) {
  const res = await getMetrics(url, token ? { authorization: `Bearer ${token}` } : {});
  assert.equal(res.status, 200, res.body);
  assert.match(res.headers["content-type"] ?? "", /^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(res.body);
  const byName = new Map();
  for (const family of families) {
    assert.notEqual(family.type, "UNTYPED", `a line the parser could not place: ${family.name}`);
    assert.ok(family.help.length > 0, `${family.name} has a HELP line`);
    assert.ok(!byName.has(family.name), `${family.name} appears once`);
    byName.set(family.name, family);
  }
  return { byName, text: res.body };
}

const matches = (labels = {}, wanted) => Object.entries(wanted).every(([k, v]) => labels[k] === v);

/** The sum of a counter's or gauge's samples whose labels include `wanted`. */
function value(scraped, name, wanted = {}) {
  const family = scraped.byName.get(name);
  assert.ok(family, `no family ${name}`);
  return family.metrics.filter((m) => matches(m.labels, wanted)).reduce((sum, m) => sum + Number(m.value), 0);
}

/** A histogram's `{ count, sum, buckets }` for the sample whose labels include `wanted`. */
function histogram(scraped, name, wanted = {}) {
  const family = scraped.byName.get(name);
  assert.ok(family, `no family ${name}`);
  const sample = family.metrics.find((m) => matches(m.labels, wanted));
  assert.ok(sample, `${name} ${JSON.stringify(wanted)}`);
  return { count: Number(sample.count), sum: Number(sample.sum), buckets: sample.buckets };
}

/** Waits until a scrape satisfies `condition` (counters of work the server does after it answers). */
async function scrapeUntil(url, what, condition) {
  let last;
  try {
    return await waitUntil(
      async () => {
        last = await scrape(url);
        return condition(last) && last;
      },
      { timeoutMs: 5_000, intervalMs: 50, what },
    );
  } catch (err) {
    throw new Error(
      `${err.message}\n${last?.text
        .split("\n")
        .filter((l) => !l.startsWith("#") && !/ 0$/.test(l))
        .join("\n")}`,
    );
  }
}

const clients = new ClientSet();
afterEach(() => clients.closeAll());

describe("/metrics", () => {
  let server;

  before(async () => {
    server = await startIorelay({ args: ["--max-events-per-second", String(LIMIT), "--tick-interval-ms", "0"] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  it("exposes every family with its type, labels from closed sets, and the process's own numbers", async () => {
    const scraped = await scrape(server.url);
    for (const [name, type] of Object.entries(FAMILIES)) {
      assert.equal(scraped.byName.get(name)?.type, type, `${name} is a ${type}`);
    }
    for (const name of Object.keys(REDIS_FAMILIES)) assert.ok(!scraped.byName.has(name), `${name} without Redis`);
    for (const name of scraped.byName.keys()) assert.match(name, /^(iorelay|process)_[a-z_]+$/);

    for (const family of scraped.byName.values()) {
      for (const sample of family.metrics) {
        for (const [label, v] of Object.entries(sample.labels ?? {})) {
          assert.ok(label in LABELS, `${family.name} has label ${label}`);
          if (LABELS[label]) assert.ok(LABELS[label].includes(v), `${family.name}{${label}="${v}"}`);
        }
      }
    }
    const fanout = histogram(scraped, "iorelay_broadcast_fanout");
    assert.deepEqual(
      Object.keys(fanout.buckets)
        .map((le) => (le === "+Inf" ? Infinity : Number(le)))
        .sort((a, b) => a - b),
      [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, Infinity],
    );
    const build = scraped.byName.get("iorelay_build_info").metrics;
    assert.equal(build.length, 1);
    assert.equal(build[0].value, "1");
    assert.match(build[0].labels.version, /^\d+\.\d+\.\d+/);

    assert.ok(value(scraped, "process_resident_memory_bytes") > 1_000_000);
    assert.ok(value(scraped, "process_open_fds") >= 3);
    assert.ok(value(scraped, "process_max_fds") >= value(scraped, "process_open_fds"));
    const started = value(scraped, "process_start_time_seconds");
    assert.ok(Math.abs(Date.now() / 1000 - started) < 600, `start time ${started}`);
    const cpu = value(scraped, "process_cpu_seconds_total");
    assert.ok(Number.isFinite(cpu) && cpu >= 0, `cpu seconds ${cpu}`);
  });

  it("follows a session: connect, join, chat, flood, disconnect", async () => {
    const room = unique("metrics-room");
    const before = await scrape(server.url);
    const delta = (scraped, name, labels) => value(scraped, name, labels) - value(before, name, labels);
    const ws = { namespace: "/", transport: "websocket" };
    const polling = { namespace: "/chat", transport: "polling" };

    const a = await clients.connect(server.url, { transports: ["websocket"] });
    const b = await clients.connect(server.url, { transports: ["websocket"] });
    const onChat = await clients.connect(`${server.url}/chat`, { transports: ["polling"] });
    const handshakesIn = (s) =>
      histogram(s, "iorelay_handshake_duration_seconds").count -
      histogram(before, "iorelay_handshake_duration_seconds").count;
    let now = await scrapeUntil(
      server.url,
      "three sockets counted",
      (s) =>
        delta(s, "iorelay_connects_total") === 3 &&
        delta(s, "iorelay_sockets_connected") === 3 &&
        handshakesIn(s) === 3,
    );
    assert.equal(delta(now, "iorelay_sockets_connected", ws), 2);
    assert.equal(delta(now, "iorelay_sockets_connected", polling), 1);
    assert.equal(delta(now, "iorelay_connects_total", ws), 2);
    assert.equal(delta(now, "iorelay_connects_total", polling), 1);
    const handshakes = histogram(now, "iorelay_handshake_duration_seconds");
    assert.ok(handshakes.sum > 0 && handshakes.sum < 60, `handshake seconds ${handshakes.sum}`);

    // join, a chat to the room's two members, an echo, and an event no built-in handler takes.
    await a.socket.timeout(3_000).emitWithAck("join", room);
    await b.socket.timeout(3_000).emitWithAck("join", room);
    await a.socket.timeout(3_000).emitWithAck("chat", { room, text: "hello" });
    await b.recorder.waitFor("chat", (m) => m.text === "hello");
    assert.deepEqual(await emitWithAckArgs(a.socket, "echo", ["ping"]), ["ping"]);
    a.socket.emit(unique("no-such-event"), 1);
    now = await scrapeUntil(
      server.url,
      "the events counted",
      (s) => delta(s, "iorelay_events_received_total", { namespace: "/", event: "unhandled" }) === 1,
    );
    assert.equal(delta(now, "iorelay_events_received_total", { namespace: "/", event: "join" }), 2);
    assert.equal(delta(now, "iorelay_events_received_total", { namespace: "/", event: "chat" }), 1);
    assert.equal(delta(now, "iorelay_events_received_total", { namespace: "/", event: "echo" }), 1);
    const fanout = histogram(now, "iorelay_broadcast_fanout");
    const fanoutBefore = histogram(before, "iorelay_broadcast_fanout");
    assert.ok(fanout.count > fanoutBefore.count, `the chat is a broadcast: ${JSON.stringify([fanoutBefore, fanout])}`);
    assert.ok(fanout.sum - fanoutBefore.sum >= 2, `the chat reached its two members: ${fanout.sum - fanoutBefore.sum}`);
    for (const [kind, transport] of [
      ["packets", "websocket"],
      ["bytes", "websocket"],
      ["packets", "polling"],
    ]) {
      assert.ok(delta(now, `iorelay_${kind}_received_total`, { transport }) > 0, `${kind} received over ${transport}`);
      assert.ok(delta(now, `iorelay_${kind}_sent_total`, { transport }) > 0, `${kind} sent over ${transport}`);
    }
    assert.ok(
      delta(now, "iorelay_bytes_sent_total", { transport: "websocket" }) >=
        delta(now, "iorelay_packets_sent_total", { transport: "websocket" }),
    );

    // A flood: LIMIT + 5 acknowledged events at once, at least 5 of them refused (b's join may
    // share their one-second window).
    const answers = await Promise.all(
      Array.from({ length: LIMIT + 5 }, (_, i) => emitWithAckArgs(b.socket, "echo", [i])),
    );
    const refused = answers.filter((args) => typeof args[0] === "object").length;
    assert.ok(refused >= 5 && refused <= 6, JSON.stringify(answers));
    now = await scrape(server.url);
    assert.equal(delta(now, "iorelay_events_rate_limited_total", { namespace: "/" }), refused);
    assert.equal(delta(now, "iorelay_events_rate_limited_total", { namespace: "/chat" }), 0);

    // Leaving: a socket leaves its namespace, a connection closes under its socket, and the
    // polling client leaves /chat.
    a.socket.disconnect();
    b.socket.io.engine.close();
    onChat.socket.disconnect();
    now = await scrapeUntil(
      server.url,
      "three sockets gone",
      (s) => delta(s, "iorelay_disconnects_total") === 3 && delta(s, "iorelay_sockets_connected") === 0,
    );
    assert.equal(delta(now, "iorelay_disconnects_total", { namespace: "/", reason: "client_namespace_disconnect" }), 1);
    assert.equal(delta(now, "iorelay_disconnects_total", { namespace: "/", reason: "transport_close" }), 1);
    assert.equal(
      delta(now, "iorelay_disconnects_total", { namespace: "/chat", reason: "client_namespace_disconnect" }),
      1,
    );
    assert.equal(delta(now, "iorelay_sockets_connected", ws), 0);
    assert.equal(delta(now, "iorelay_sockets_connected", polling), 0);
    assert.equal(delta(now, "iorelay_handshakes_refused_total"), 0);
  });

  it("counts plain WebSocket clients under the plain transport", async () => {
    const before = await scrape(server.url);
    const delta = (scraped, name, labels) => value(scraped, name, labels) - value(before, name, labels);
    const plain = await openPlain(plainUrl(server.url));
    // The gauge is read from the live connections when scraped, the counter bumped once the
    // client is admitted: wait for both.
    let now = await scrapeUntil(
      server.url,
      "the plain client counted",
      (s) =>
        delta(s, "iorelay_sockets_connected", { transport: "plain" }) === 1 &&
        delta(s, "iorelay_connects_total", { transport: "plain" }) === 1,
    );
    assert.equal(delta(now, "iorelay_connects_total"), 1);
    plain.ws.send(JSON.stringify({ event: "echo", id: 1, data: "x" }));
    await waitUntil(() => plain.frames.length > 0, { what: "the echo" });
    now = await scrapeUntil(
      server.url,
      "the plain echo counted",
      (s) => delta(s, "iorelay_packets_received_total", { transport: "plain" }) >= 1,
    );
    assert.ok(delta(now, "iorelay_packets_sent_total", { transport: "plain" }) >= 1);
    plain.ws.close();
    now = await scrapeUntil(
      server.url,
      "the plain client gone",
      (s) =>
        delta(s, "iorelay_sockets_connected", { transport: "plain" }) === 0 &&
        delta(s, "iorelay_disconnects_total") >= 1,
    );
    assert.equal(delta(now, "iorelay_disconnects_total"), 1);
    assert.equal(delta(now, "iorelay_disconnects_total", { namespace: "/", reason: "client_namespace_disconnect" }), 1);
  });

  it("never labels with a socket id, a room name or an event name a client chose", async () => {
    const room = unique("secret-room");
    const event = unique("secret-event");
    const a = await clients.connect(server.url, { transports: ["websocket"], auth: { token: "user-secret" } });
    const onChat = await clients.connect(`${server.url}/chat`);
    await a.socket.timeout(3_000).emitWithAck("join", room);
    await onChat.socket.timeout(3_000).emitWithAck("join", room);
    a.socket.emit(event, "payload");
    await a.socket.timeout(3_000).emitWithAck("chat", { room, text: "hi" });
    // A namespace nobody serves: its refusal may be counted, under a fixed label.
    const stray = clients.open(`${server.url}/${unique("stray-namespace")}`, { transports: ["websocket"] });
    await nextEvent(stray, "connect_error");
    const { text } = await scrapeUntil(
      server.url,
      "the custom event counted",
      (s) => value(s, "iorelay_events_received_total", { event: "unhandled" }) >= 1,
    );
    for (const secret of [a.socket.id, onChat.socket.id, room, event, "user-secret", "stray-namespace"]) {
      assert.ok(!text.includes(secret), `${secret} appears in /metrics`);
    }
  });

  it("counts handshakes refused as a bad request", async () => {
    const before = await scrape(server.url);
    const res = await httpRequest(`${server.url}/socket.io/?EIO=9&transport=polling`);
    assert.equal(res.status, 400);
    const unknownSid = await httpRequest(`${server.url}/socket.io/?EIO=4&transport=polling&sid=${"x".repeat(20)}`);
    assert.equal(unknownSid.status, 400);
    const now = await scrape(server.url);
    assert.ok(
      value(now, "iorelay_handshakes_refused_total", { cause: "bad_request" }) -
        value(before, "iorelay_handshakes_refused_total", { cause: "bad_request" }) >=
        1,
    );
  });
});

describe("/metrics: handshakes refused by origin and auth, and the bearer token", () => {
  const ALLOWED = "http://allowed.example";
  let server;

  before(async () => {
    server = await startIorelay({
      args: [
        "--cors-origin",
        ALLOWED,
        "--auth-token",
        "client-token",
        "--metrics-token",
        TOKEN,
        "--tick-interval-ms",
        "0",
      ],
    });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  it("answers 401 without the token or with another one", async () => {
    for (const headers of [
      {},
      { authorization: "Bearer wrong" },
      { authorization: TOKEN },
      { authorization: `Basic ${TOKEN}` },
    ]) {
      const res = await getMetrics(server.url, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.headers["www-authenticate"], "Bearer");
      assert.ok(!res.body.includes("iorelay_"), "no metrics in a refusal");
    }
    await scrape(server.url, TOKEN);
  });

  it("counts refusals by cause", async () => {
    const before = await scrape(server.url, TOKEN);
    const refused = (s, cause) =>
      value(s, "iorelay_handshakes_refused_total", { cause }) -
      value(before, "iorelay_handshakes_refused_total", { cause });
    const res = await httpRequest(`${server.url}/socket.io/?EIO=4&transport=polling`, {
      headers: { origin: "http://evil.example" },
    });
    assert.equal(res.status, 403);
    const noToken = clients.open(server.url, { transports: ["websocket"], extraHeaders: { origin: ALLOWED } });
    await nextEvent(noToken, "connect_error");
    const withToken = await clients.connect(server.url, {
      transports: ["websocket"],
      extraHeaders: { origin: ALLOWED },
      auth: { token: "client-token" },
    });
    assert.ok(withToken.socket.connected);
    const now = await waitUntil(
      async () => {
        const s = await scrape(server.url, TOKEN);
        return refused(s, "auth") === 1 && s;
      },
      { timeoutMs: 3_000, intervalMs: 50, what: "the auth refusal counted" },
    );
    assert.equal(refused(now, "origin"), 1);
    assert.equal(refused(now, "capacity"), 0);
  });
});

describe("/metrics on its own listener, and turned off", () => {
  let separate;
  let off;
  let metricsPort;

  before(async () => {
    metricsPort = await freePort();
    [separate, off] = await Promise.all([
      startIorelay({ args: ["--metrics-listen", `127.0.0.1:${metricsPort}`, "--tick-interval-ms", "0"] }),
      startIorelay({ args: ["--no-metrics", "--tick-interval-ms", "0"] }),
    ]);
  });
  after(async () => {
    await Promise.all([separate?.stop(), off?.stop()]);
  });

  it("--metrics-listen serves them there and not on the public port", async () => {
    const scraped = await scrape(`http://127.0.0.1:${metricsPort}`);
    assert.ok(scraped.byName.has("iorelay_connects_total"));
    const publicRes = await getMetrics(separate.url);
    assert.equal(publicRes.status, 404);
    assert.ok(!publicRes.body.includes("iorelay_"), "no metrics on the public port");
  });

  it("--no-metrics serves none", async () => {
    const res = await getMetrics(off.url);
    assert.equal(res.status, 404);
    assert.ok(!res.body.includes("iorelay_"), "no metrics");
    assert.equal((await httpRequest(`${off.url}/healthz`)).status, 200);
  });
});

describe("/metrics with Redis", () => {
  let redis;
  let server;

  before(async () => {
    redis = await startRedis();
    server = await startIorelay({ args: ["--redis-url", redis.url, "--redis-optional", "--tick-interval-ms", "0"] });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it("shows the link up, then down when Redis stops", async () => {
    const scraped = await scrape(server.url);
    for (const [name, type] of Object.entries(REDIS_FAMILIES)) assert.equal(scraped.byName.get(name)?.type, type, name);
    assert.equal(value(scraped, "iorelay_redis_up"), 1);
    await redis.stop();
    await scrapeUntil(server.url, "iorelay_redis_up 0", (s) => value(s, "iorelay_redis_up") === 0);
  });
});
