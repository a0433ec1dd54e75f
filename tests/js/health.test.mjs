// GET /healthz reports the live connection count.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { ClientSet, waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { httpRequest } from "../support/raw.mjs";

describe("/healthz", () => {
  let server;
  const clients = new ClientSet();

  before(async () => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0"] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });
  afterEach(() => clients.closeAll());

  async function health() {
    const res = await httpRequest(`${server.url}/healthz`);
    assert.equal(res.status, 200);
    assert.match(res.headers["content-type"] ?? "", /^application\/json/);
    return JSON.parse(res.body);
  }

  const connectionsReach = (n) =>
    waitUntil(async () => (await health()).connections === n, {
      timeoutMs: 5_000,
      intervalMs: 50,
      what: `/healthz connections to be ${n}`,
    });

  it("describes the server", async () => {
    const { tcp, ...rest } = await health();
    assert.deepEqual(rest, {
      status: "ok",
      connections: 0,
      version: "0.1.0",
      adapter: "memory",
      tick_interval_ms: null,
      rate_limited_events: 0,
    });
    // `open` counts this request's connection, and any earlier probe's not yet closed.
    assert.ok(Number.isInteger(tcp.open) && tcp.open >= 1, `tcp.open is ${tcp.open}`);
    assert.deepEqual(
      { refused: tcp.refused, header_timeout: tcp.closed.header_timeout, body_timeout: tcp.closed.body_timeout, evicted: tcp.closed.evicted },
      { refused: { budget: 0, per_ip: 0 }, header_timeout: 0, body_timeout: 0, evicted: 0 },
    );
    assert.ok(Number.isInteger(tcp.closed.idle_timeout), "idle_timeout counts kept-alive connections that went idle");
  });

  it("counts connections up and back down", async () => {
    const opened = [];
    for (const transports of [["websocket"], ["polling"], undefined]) {
      opened.push(await clients.connect(server.url, transports ? { transports } : {}));
      await connectionsReach(opened.length);
    }
    assert.equal((await health()).connections, 3);

    opened[0].socket.disconnect();
    await connectionsReach(2);
    clients.closeAll();
    await connectionsReach(0);
  });
});
