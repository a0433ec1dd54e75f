// The per-client rate limit as clients see it: an event over the limit that asks for an
// acknowledgement gets one, carrying the error, on both transports; one without is counted.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { ClientSet, TRANSPORT_MODES, emitWithAckArgs, sleep } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { openPlain, plainUrl } from "../support/plain.mjs";
import { httpRequest } from "../support/raw.mjs";

const LIMIT = 10;
const LIMITED = { error: `rate limited: more than ${LIMIT} events per second` };

describe("rate limit", () => {
  let server;
  const clients = new ClientSet();

  before(async () => {
    server = await startIorelay({ args: ["--max-events-per-second", String(LIMIT), "--tick-interval-ms", "0"] });
  });
  after(async () => {
    clients.closeAll();
    await server?.stop();
  });
  afterEach(() => clients.closeAll());

  async function rateLimited() {
    const res = await httpRequest(`${server.url}/healthz`);
    return JSON.parse(res.body).rate_limited_events;
  }

  for (const { name, opts } of TRANSPORT_MODES) {
    it(`answers socket.io-client acks over the limit with the error (${name})`, async () => {
      const { socket } = await clients.connect(server.url, opts);
      const before = await rateLimited();
      const answers = await Promise.all(
        Array.from({ length: LIMIT + 5 }, (_, i) => emitWithAckArgs(socket, "echo", [i])),
      );
      const echoed = answers.filter((args) => typeof args[0] === "number");
      const refused = answers.filter((args) => args.length === 1 && typeof args[0] === "object");
      assert.equal(echoed.length, LIMIT, JSON.stringify(answers));
      assert.equal(refused.length, 5);
      for (const args of refused) assert.deepEqual(args, [LIMITED]);
      assert.equal((await rateLimited()) - before, 5);
      // A new window: the socket is still connected and served.
      await sleep(1_100);
      assert.deepEqual(await emitWithAckArgs(socket, "echo", ["again"]), ["again"]);
    });
  }

  it("answers plain WebSocket requests over the limit in their ack frame", async () => {
    const plain = await openPlain(plainUrl(server.url));
    for (let id = 0; id < LIMIT + 3; id++) plain.ws.send(JSON.stringify({ event: "echo", id, data: id }));
    const deadline = Date.now() + 3_000;
    while (plain.frames.length < LIMIT + 3 && Date.now() < deadline) await sleep(20);
    const frames = plain.frames.map((frame) => JSON.parse(frame));
    assert.equal(frames.length, LIMIT + 3);
    frames.slice(0, LIMIT).forEach((frame, id) => assert.deepEqual(frame, { event: "ack", id, data: id }));
    frames.slice(LIMIT).forEach((frame, i) => assert.deepEqual(frame, { event: "ack", id: LIMIT + i, data: LIMITED }));
    plain.ws.close();
  });
});
