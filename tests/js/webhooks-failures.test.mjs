// When the app behind the event webhook fails (down, slow, garbage, non-2xx): connections fail
// closed, events get an error ack, /healthz says degraded until a call succeeds again, and
// no secret leaks on the way.
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";

import { ClientSet, emitWithAckArgs, nextEvent, unique, waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { httpRequest } from "../support/raw.mjs";
import { startWebhookApp } from "../support/webhook-app.mjs";

const SECRET = "whsec-failures-3e8b1d77";
const TIMEOUT_MS = 300;

const clients = new ClientSet();

describe("webhook failures", () => {
  let app;
  let server;

  before(async () => {
    app = await startWebhookApp({ secret: SECRET });
    server = await startIorelay({
      args: [
        "--webhook-url", app.url,
        "--webhook-secret", SECRET,
        "--webhook-timeout-ms", String(TIMEOUT_MS),
        "--tick-interval-ms", "0",
      ],
    });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
    await app?.stop();
  });
  beforeEach(() => app.reset());
  afterEach(() => clients.closeAll());

  async function health() {
    const res = await httpRequest(`${server.url}/healthz`);
    assert.equal(res.status, 200, "/healthz stays 200 while degraded");
    return JSON.parse(res.body);
  }

  /** Makes one call succeed, so the webhook is reachable again. */
  async function recover(socket) {
    app.on("event", { json: { ack: ["fine"] } }, { event: "recover" });
    assert.deepEqual(await emitWithAckArgs(socket, "recover", []), ["fine"]);
    const now = await health();
    assert.equal(now.status, "ok");
    assert.equal(now.webhook.reachable, true);
    return now;
  }

  /** Asserts `ack` is the one argument `{ error: "<non-empty text>" }`. */
  function assertErrorAck(ack, what) {
    assert.equal(ack.length, 1, `${what}: one ack argument, got ${JSON.stringify(ack)}`);
    assert.deepEqual(Object.keys(ack[0]), ["error"], `${what}: ${JSON.stringify(ack)}`);
    assert.equal(typeof ack[0].error, "string");
    assert.ok(ack[0].error.length > 0);
    assert.ok(!ack[0].error.includes(SECRET), "the secret is not in the error");
  }

  it("reports a reachable webhook with no failures at first", async () => {
    const now = await health();
    assert.equal(now.status, "ok");
    assert.deepEqual(now.webhook, { reachable: true, failures: 0 });
  });

  const failingAnswers = [
    ["a non-2xx answer", { status: 500, json: { message: "boom" } }],
    ["a 404 without a body", { status: 404, body: "" }],
    ["an answer slower than --webhook-timeout-ms", { delayMs: TIMEOUT_MS + 700, json: { ack: ["too late"] } }],
    ["garbage", { body: Buffer.from([0xff, 0x00, 0x9c, 0x7b]), contentType: "application/octet-stream" }],
    ["a non-JSON 200", { body: "<html>ok</html>", contentType: "text/html" }],
    ["JSON of the wrong shape", { json: { join: "lobby" } }],
    ["a JSON array", { json: [1, 2, 3] }],
    ["a dropped connection", { hangUp: true }],
  ];
  for (const [what, answer] of failingAnswers) {
    it(`answers an event with an error ack on ${what}, counts it, and recovers`, async () => {
      const { socket } = await clients.connect(server.url);
      const before = (await health()).webhook.failures;
      app.on("event", answer, { event: "save" });
      const started = performance.now();
      const ack = await emitWithAckArgs(socket, "save", [{ n: 1 }]);
      const elapsed = performance.now() - started;
      assertErrorAck(ack, what);
      if (answer.delayMs) {
        assert.ok(elapsed >= TIMEOUT_MS - 50, `the error came after ${elapsed} ms, before the timeout`);
        assert.ok(elapsed < answer.delayMs, `the error came after ${elapsed} ms, not at the timeout`);
      }
      const degraded = await health();
      assert.equal(degraded.status, "degraded");
      assert.equal(degraded.webhook.reachable, false);
      assert.equal(degraded.webhook.failures, before + 1);
      const recovered = await recover(socket);
      assert.equal(recovered.webhook.failures, before + 1, "a success does not reset the count");
    });
  }

  it("counts a failed event that waits for no ack", async () => {
    const { socket } = await clients.connect(server.url);
    const before = (await health()).webhook.failures;
    app.on("event", { status: 503 }, { event: "fire and forget" });
    socket.emit("fire and forget", 1);
    await app.waitFor({ type: "event", event: "fire and forget" }, { answered: true });
    const degraded = await waitUntil(
      async () => {
        const now = await health();
        return now.webhook.failures === before + 1 && now;
      },
      { what: "the failure to be counted" },
    );
    assert.equal(degraded.status, "degraded");
    await recover(socket);
  });

  it("fails closed when the app is down: connect_error \"upstream unavailable\", error acks, then recovers", async () => {
    const { socket } = await clients.connect(server.url);
    const before = (await health()).webhook.failures;
    await app.stop();
    try {
      assertErrorAck(await emitWithAckArgs(socket, "save", []), "app down");
      const refused = clients.open(server.url);
      const [error] = await nextEvent(refused, "connect_error", 5_000);
      assert.equal(error.message, "upstream unavailable");
      const degraded = await health();
      assert.equal(degraded.status, "degraded");
      assert.equal(degraded.webhook.reachable, false);
      assert.ok(degraded.webhook.failures >= before + 2, `failures ${degraded.webhook.failures}`);
    } finally {
      await app.listen(app.port);
    }
    await recover(socket);
    const { socket: again } = await clients.connect(server.url);
    assert.ok(again.connected, "connections are admitted again");
  });

  for (const [what, answer] of [
    ["a connect answer slower than --webhook-timeout-ms", { delayMs: TIMEOUT_MS + 700 }],
    ["a garbage connect answer", { body: "certainly not json" }],
    ["a dropped connection on connect", { hangUp: true }],
  ]) {
    it(`refuses the connection with "upstream unavailable" on ${what}`, async () => {
      const tag = unique("fail-closed");
      app.on("connect", (call) => (call.body.socket.handshake.auth?.tag === tag ? answer : undefined));
      const socket = clients.open(server.url, { auth: { tag } });
      const [error] = await nextEvent(socket, "connect_error", 5_000);
      assert.equal(error.message, "upstream unavailable");
      assert.equal(socket.connected, false);
      assert.equal((await health()).status, "degraded");
      const { socket: ok } = await clients.connect(server.url);
      await recover(ok);
    });
  }

  it("keeps the secret out of the logs", () => {
    assert.ok(!server.logs().includes(SECRET), "the webhook secret appears in the logs");
    assert.match(server.logs(), /webhook failed/, "failures are logged");
  });
});
