// Malformed packets, oversized payloads and bad handshakes: the offending connection is
// dropped or answered with a standard error, and well-behaved clients never notice.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ClientSet, nextEvent, sleep, waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { PollingSession, RawWebSocket, httpRequest } from "../support/raw.mjs";

const TICK_MS = 200;
const MAX_BUFFER = 10_000;

/** A `message` event packet (`42["message","xxx…"]`) of exactly `size` bytes. */
function messagePacketOfSize(size) {
  const overhead = '42["message",""]'.length;
  return `42["message","${"x".repeat(size - overhead)}"]`;
}

/**
 * A socket that stays connected through every test of the file, echoing every 100 ms and
 * receiving ticks, so that damage done to the server shows up as a missed ack or tick.
 */
class ControlClient {
  constructor(name, socket, recorder) {
    this.name = name;
    this.socket = socket;
    this.recorder = recorder;
    this.sent = 0;
    this.acked = 0;
    this.failures = [];
    this.pending = [];
    this.disconnectReason = null;
    this.startedAt = Date.now();
    socket.on("disconnect", (reason) => (this.disconnectReason = reason));
    this.timer = setInterval(() => this.echo(), 100);
  }

  echo() {
    const seq = ++this.sent;
    const pending = this.socket
      .timeout(3_000)
      .emitWithAck("echo", { seq })
      .then(
        (ack) => {
          if (ack?.seq === seq) this.acked += 1;
          else this.failures.push(`echo ${seq} acked with ${JSON.stringify(ack)}`);
        },
        (err) => this.failures.push(`echo ${seq}: ${err.message}`),
      );
    this.pending.push(pending);
  }

  async stop() {
    clearInterval(this.timer);
    await Promise.all(this.pending);
  }

  tickTimes() {
    return this.recorder.all("message", (m) => typeof m === "number").map((e) => e.at);
  }
}

describe("bad input", () => {
  let server;
  const clients = new ClientSet();
  /** @type {ControlClient[]} */
  let controls = [];
  const controlErrors = [];
  const raws = [];

  before(async () => {
    server = await startIorelay({
      args: ["--tick-interval-ms", String(TICK_MS), "--max-http-buffer-size", String(MAX_BUFFER)],
    });
    for (const transports of [["websocket"], ["polling"]]) {
      // A control client that cannot connect fails the last test, not every test of the file.
      try {
        const { socket, recorder } = await clients.connect(server.url, { transports });
        controls.push(new ControlClient(transports[0], socket, recorder));
      } catch (err) {
        controlErrors.push(`${transports[0]} control client: ${err.message}`);
      }
    }
  });
  after(async () => {
    for (const control of controls) await control.stop();
    for (const raw of raws) raw.close();
    clients.closeAll();
    await server?.stop();
  });

  async function openRaw(namespace = "/") {
    const raw = await RawWebSocket.open(server.url, { namespace });
    raws.push(raw);
    return raw;
  }

  /** Sends `body` to a fresh polling session; resolves with how the server reacted. */
  async function postToFreshSession(body, headers) {
    const session = await PollingSession.open(server.url);
    const res = await session.post(body, headers);
    let sessionClosed = false;
    let probe;
    if (res.status === 200) {
      // The session may be closed a moment after the POST was accepted.
      sessionClosed = await waitUntil(
        async () => {
          probe = await session.post('42["message","still there?"]');
          return probe.status === 400;
        },
        { timeoutMs: 2_000, intervalMs: 100, what: "the session to be closed" },
      ).catch(() => false);
    }
    return { res, sessionClosed, probe };
  }

  const websocketGarbage = [
    ["4{", "4{"],
    ["42[", "42["],
    ["9", "9"],
    ["an empty frame", ""],
    ['42["message" (unterminated)', '42["message"'],
    ["binary garbage", Buffer.from([0xff, 0x00, 0x13, 0x37, 0xde, 0xad])],
    ["an event with no name", "42[]"],
  ];

  for (const [label, data] of websocketGarbage) {
    it(`websocket: ${label} closes the connection or gets a standard error`, async (t) => {
      const raw = await openRaw();
      const before = raw.messages.length;
      raw.send(data);
      const closed = await raw.closedWithin(2_000);
      const answers = raw.messages.slice(before).filter((m) => !(typeof m === "string" && m.startsWith("42")));
      t.diagnostic(`websocket ${JSON.stringify(label)} -> ${closed ? `closed ${closed.code} ${JSON.stringify(closed.reason)}` : "still open"}; answers ${JSON.stringify(answers)}`);
      const gotError = answers.some((m) => typeof m === "string" && m.startsWith("44"));
      assert.ok(closed || gotError, "the connection neither closed nor got an error packet");
      assert.equal((await httpRequest(`${server.url}/healthz`)).status, 200);
    });
  }

  it('websocket: "40/nope," gets CONNECT_ERROR "Invalid namespace"', async (t) => {
    const raw = await openRaw();
    raw.send("40/nope,");
    const answer = await raw.waitMessage((m) => typeof m === "string" && m.startsWith("44"));
    t.diagnostic(`websocket "40/nope," -> ${answer}`);
    const comma = answer.indexOf(",");
    assert.equal(answer.slice(0, comma + 1), "44/nope,");
    assert.deepEqual(JSON.parse(answer.slice(comma + 1)), { message: "Invalid namespace" });
  });

  const pollingGarbage = [
    ["4{", "4{"],
    ["42[", "42["],
    ["9", "9"],
    ['42["message" (unterminated)', '42["message"'],
    ["a bad packet after a good one", '42["message","ok"]\x1e9'],
    ["binary garbage", Buffer.from([0xff, 0x00, 0x13, 0x37]), { "content-type": "application/octet-stream" }],
  ];

  for (const [label, body, headers] of pollingGarbage) {
    it(`polling: ${label} answers 400 or closes the session`, async (t) => {
      const { res, sessionClosed, probe } = await postToFreshSession(body, headers);
      t.diagnostic(
        `polling ${JSON.stringify(label)} -> POST ${res.status} ${JSON.stringify(res.body)}` +
          (res.status === 200 ? `; session closed: ${sessionClosed} (probe ${probe?.status} ${JSON.stringify(probe?.body)})` : ""),
      );
      assert.ok(res.status === 400 || sessionClosed, `POST answered ${res.status} and the session stayed open`);
    });
  }

  it(`websocket: a message over ${MAX_BUFFER} bytes closes the connection`, async (t) => {
    const raw = await openRaw();
    raw.send(messagePacketOfSize(2 * MAX_BUFFER));
    const closed = await raw.closedWithin(3_000);
    t.diagnostic(`websocket ${2 * MAX_BUFFER}-byte message -> ${closed ? `closed ${closed.code} ${JSON.stringify(closed.reason)}` : "still open"}`);
    assert.ok(closed, "the connection is still open");
  });

  it(`websocket: a message of exactly ${MAX_BUFFER} bytes passes`, async () => {
    const raw = await openRaw();
    const packet = messagePacketOfSize(MAX_BUFFER);
    assert.equal(Buffer.byteLength(packet), MAX_BUFFER);
    raw.send(packet);
    await raw.waitMessage((m) => m === packet);
    assert.equal(raw.closeInfo, null);
  });

  it(`polling: a body over ${MAX_BUFFER} bytes answers 413 or closes the session`, async (t) => {
    const { res, sessionClosed } = await postToFreshSession(messagePacketOfSize(2 * MAX_BUFFER));
    t.diagnostic(`polling ${2 * MAX_BUFFER}-byte POST -> ${res.status} ${JSON.stringify(res.body)}; session closed: ${sessionClosed}`);
    assert.ok(res.status === 413 || sessionClosed, `POST answered ${res.status} and the session stayed open`);
  });

  it(`polling: a body of exactly ${MAX_BUFFER} bytes passes`, async () => {
    const session = await PollingSession.open(server.url);
    const packet = messagePacketOfSize(MAX_BUFFER);
    const res = await session.post(packet);
    assert.equal(res.status, 200, res.body);
    await waitUntil(async () => (await session.poll()).includes(packet), { what: "the echo of the big message" });
  });

  for (const transports of [["websocket"], ["polling"]]) {
    it(`socket.io-client over ${transports[0]} is disconnected for an oversized event`, async (t) => {
      const { socket } = await clients.connect(server.url, { transports });
      const disconnected = nextEvent(socket, "disconnect", 5_000);
      socket.emit("message", "y".repeat(2 * MAX_BUFFER));
      const [reason] = await disconnected;
      t.diagnostic(`socket.io-client ${transports[0]} oversized event -> disconnect "${reason}"`);
      assert.match(reason, /^transport (close|error)$/);
    });
  }

  it("answers an unknown sid with 400 Session ID unknown", async (t) => {
    for (const method of ["GET", "POST"]) {
      const res = await httpRequest(`${server.url}/socket.io/?EIO=4&transport=polling&sid=doesnotexist`, {
        method,
        body: method === "POST" ? '42["message"]' : undefined,
      });
      t.diagnostic(`${method} unknown sid -> ${res.status} ${res.body}`);
      assert.equal(res.status, 400);
      assert.deepEqual(JSON.parse(res.body), { code: 1, message: "Session ID unknown" });
    }
  });

  for (const query of ["EIO=5&transport=polling", "EIO=abc&transport=polling", "transport=polling", "EIO=4&transport=carrier-pigeon"]) {
    it(`answers ${query} with 400`, async (t) => {
      const res = await httpRequest(`${server.url}/socket.io/?${query}`);
      t.diagnostic(`GET ?${query} -> ${res.status} ${res.body}`);
      assert.equal(res.status, 400);
    });
  }

  it("kept serving the control clients throughout", async (t) => {
    // Let a few more ticks and echoes happen after the last bad input.
    await sleep(4 * TICK_MS);
    assert.deepEqual(controlErrors, []);
    assert.equal(controls.length, 2);
    for (const control of controls) {
      await control.stop();
      const ticks = control.tickTimes();
      const elapsed = Date.now() - control.startedAt;
      const gaps = ticks.slice(1).map((at, i) => at - ticks[i]);
      const maxGap = Math.max(ticks[0] - control.startedAt, ...gaps, Date.now() - ticks.at(-1));
      t.diagnostic(`${control.name} control: ${control.acked}/${control.sent} echoes acked, ${ticks.length} ticks in ${elapsed} ms, longest gap ${maxGap} ms`);
      assert.equal(control.disconnectReason, null, `${control.name} control disconnected`);
      assert.equal(control.socket.connected, true);
      assert.deepEqual(control.failures, []);
      assert.equal(control.acked, control.sent);
      assert.ok(control.sent >= 10, "the control client kept echoing");
      assert.ok(ticks.length >= elapsed / TICK_MS / 2, `${ticks.length} ticks in ${elapsed} ms`);
      assert.ok(maxGap < 2_000, `no tick for ${maxGap} ms`);
    }
  });
});
