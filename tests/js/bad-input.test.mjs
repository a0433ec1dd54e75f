// Malformed packets, oversized payloads and bad handshakes: the offending connection is
// dropped or answered with a standard error, and well-behaved clients never notice.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ClientSet, nextEvent, sleep, waitUntil } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { PollingSession, RawWebSocket, httpRequest } from "../support/raw.mjs";

const TICK_MS = 200;
// Large enough for the 100 000-level JSON of the table below (200 kB), so that it reaches the
// packet parser instead of the size limit.
const MAX_BUFFER = 250_000;

/** A `message` event packet (`42["message","xxx…"]`) of exactly `size` bytes. */
function messagePacketOfSize(size) {
  const overhead = '42["message",""]'.length;
  return `42["message","${"x".repeat(size - overhead)}"]`;
}

/** A binary attachment: a binary WebSocket frame, or a `b<base64>` packet over polling. */
const bin = (bytes) => ({ binary: Buffer.from(bytes) });
/** A text message whose bytes are not UTF-8 (`latin1` keeps each char code as one byte). */
const notUtf8 = (text) => ({ notUtf8: Buffer.from(text, "latin1") });
const deep = (depth) => "[".repeat(depth) + "]".repeat(depth);

/**
 * The classic bad inputs, each sent as Engine.IO messages by a client connected to `/`, over
 * both transports. `expect` lists the outcomes that meet the contract: `closed` (the server
 * closes the connection), `closed on the next packet` (the server waits for attachments and
 * closes when anything else comes), `connect_error` (the standard CONNECT_ERROR),
 * `disconnected` (the standard DISCONNECT for `/`, as `socket.disconnect()` sends it: an event
 * whose arguments are malformed ends the sender's socket, and socket.io-client then closes its
 * connection) and `ignored` (nothing comes back, the connection keeps working: what Node
 * socket.io also does for acks it never asked for and for events to namespaces the client is
 * not in).
 */
const BAD_INPUTS = [
  { kind: "truncated packet", label: "event with no payload", frames: ["42"], expect: ["closed"] },
  { kind: "truncated packet", label: "empty Socket.IO packet", frames: ["4"], expect: ["closed"] },
  { kind: "truncated packet", label: "unterminated array", frames: ['42["message"'], expect: ["closed"] },
  { kind: "truncated packet", label: "unterminated string", frames: ['42["message","abc'], expect: ["closed"] },
  { kind: "truncated packet", label: "binary header cut before the dash", frames: ["451"], expect: ["closed"] },
  { kind: "truncated packet", label: "binary ack cut after the dash", frames: ["461-"], expect: ["closed"] },
  { kind: "wrong packet type", label: "Socket.IO type 9", frames: ['49["message"]'], expect: ["closed"] },
  { kind: "wrong packet type", label: "CONNECT_ERROR from a client", frames: ['44{"message":"x"}'], expect: ["closed"] },
  { kind: "wrong packet type", label: "ACK without an id", frames: ['43["x"]'], expect: ["closed"] },
  { kind: "wrong packet type", label: "Engine.IO type 9", frames: ["9"], expect: ["closed"] },
  { kind: "wrong packet type", label: "BINARY_EVENT without a count", frames: ['45["message"]'], expect: ["closed"] },
  { kind: "invalid JSON", label: "object without a value", frames: ['42["message",{]'], expect: ["closed"] },
  { kind: "invalid JSON", label: "bare word", frames: ['421["chat",{"room":r,"text":"x"}]'], expect: ["closed"] },
  { kind: "invalid JSON", label: "trailing comma", frames: ['421["echo",1,]'], expect: ["closed"] },
  { kind: "invalid JSON", label: "not an array", frames: ['42{"event":"message"}'], expect: ["closed"] },
  {
    kind: "invalid JSON",
    label: "garbage after the array",
    frames: ['421["echo","x"]garbage'],
    expect: ["disconnected"],
  },
  {
    kind: "deeply nested JSON",
    label: "echo of 100 000 nested arrays",
    frames: [`421["echo",${deep(100_000)}]`],
    expect: ["disconnected"],
  },
  { kind: "deeply nested JSON", label: "100 000 unclosed arrays", frames: [`42["message",${"[".repeat(100_000)}`], expect: ["closed"] },
  { kind: "deeply nested JSON", label: "100 000 nested arrays as the event name", frames: [`42[${deep(100_000)}]`], expect: ["closed"] },
  { kind: "huge attachment count", label: "10 001 attachments (over the 10 000 limit)", frames: ['4510001-["message"]'], expect: ["closed"] },
  { kind: "huge attachment count", label: "count overflowing 64 bits", frames: ['45999999999999999999999-["message"]'], expect: ["closed"] },
  { kind: "huge attachment count", label: "9 999 attachments never sent", frames: ['459999-["message"]'], expect: ["closed on the next packet"] },
  {
    kind: "binary placeholder pointing nowhere",
    label: "placeholder num 9 with one attachment",
    frames: ['451-["message",{"_placeholder":true,"num":9}]', bin([1, 2])],
    expect: ["disconnected"],
  },
  {
    kind: "binary placeholder pointing nowhere",
    label: "placeholder with no attachment announced",
    frames: ['450-1["echo",{"_placeholder":true,"num":0}]'],
    expect: ["disconnected"],
  },
  { kind: "binary placeholder pointing nowhere", label: "attachment with no packet waiting", frames: [bin([1, 2, 3])], expect: ["closed"] },
  { kind: "unknown namespace", label: "CONNECT to /nope", frames: ["40/nope,"], expect: ["connect_error"] },
  { kind: "unknown namespace", label: "event to /nope", frames: ['42/nope,1["echo","x"]'], expect: ["ignored"] },
  { kind: "unknown namespace", label: "event to /chat before its CONNECT", frames: ['42/chat,["join","r"]'], expect: ["closed", "ignored"] },
  { kind: "non-string event name", label: "number", frames: ["42[42]"], expect: ["closed"] },
  { kind: "non-string event name", label: "null", frames: ["42[null]"], expect: ["closed"] },
  { kind: "non-string event name", label: "array", frames: ['42[["message"]]'], expect: ["closed"] },
  { kind: "non-string event name", label: "object", frames: ['42[{"event":"message"}]'], expect: ["closed"] },
  { kind: "non-string event name", label: "missing", frames: ["42[]"], expect: ["closed"] },
  { kind: "non-string event name", label: "binary placeholder", frames: ['451-[{"_placeholder":true,"num":0}]', bin([1])], expect: ["closed"] },
  { kind: "ack for an id never issued", label: "ACK 999", frames: ['43999["x"]'], expect: ["ignored"] },
  { kind: "ack for an id never issued", label: "BINARY_ACK 5", frames: ['461-5[{"_placeholder":true,"num":0}]', bin([0])], expect: ["ignored"] },
  { kind: "invalid UTF-8", label: "inside a string", frames: [notUtf8('421["echo","\xff\xfe"]')], expect: ["closed"] },
  { kind: "invalid UTF-8", label: "in the namespace", frames: [notUtf8("40/\xc3,")], expect: ["closed"] },
  { kind: "invalid UTF-8", label: "a lone continuation byte", frames: [notUtf8("\x80")], expect: ["closed"] },
];

/** The probe sent after each bad input: an `echo` that must be acked if the connection is alive. */
const PROBE_ACK_ID = 4242;
const PROBE = `42${PROBE_ACK_ID}["echo","probe"]`;
const isProbeAck = (m) => typeof m === "string" && m.startsWith(`43${PROBE_ACK_ID}[`);
/** Welcome, ticks, pings and probe acks: traffic every connection gets, not an answer to the bad input. */
const isRoutine = (m) =>
  typeof m === "string" &&
  (/^42\["message",\d+\]$/.test(m) || m.startsWith('42["message",{"text":"Welcome') || m === "2" || m === "3" || isProbeAck(m));
const show = (m) => {
  const text = typeof m === "string" ? m : `<binary ${m.length} B>`;
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
};

/** What the server's answers amount to, once the connection is known to be alive or closed. */
function classify({ closedBefore, closedAtProbe, answers }) {
  if (answers.some((m) => typeof m === "string" && m.startsWith("44"))) return "connect_error";
  if (answers.includes("41")) return "disconnected";
  if (closedBefore) return "closed";
  if (closedAtProbe) return "closed on the next packet";
  return answers.length === 0 ? "ignored" : "answered";
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

  /** Sends `frames` over a raw WebSocket connected to `/`; resolves with how the server reacted. */
  async function tryWebSocket(frames) {
    const raw = await openRaw();
    const before = raw.messages.length;
    for (const frame of frames) {
      if (typeof frame === "string") raw.send(frame);
      else if (frame.binary) raw.send(frame.binary);
      else raw.send(frame.notUtf8, { binary: false });
    }
    const closedBefore = await raw.closedWithin(800);
    let closedAtProbe = null;
    if (!closedBefore) {
      raw.send(PROBE);
      await raw.waitMessage(isProbeAck, 3_000).catch(() => {});
      closedAtProbe = raw.closeInfo;
      assert.ok(closedAtProbe || raw.messages.some(isProbeAck), "the probe got neither an ack nor a close");
    }
    const answers = raw.messages.slice(before).filter((m) => !isRoutine(m));
    const close = closedBefore ?? closedAtProbe;
    const detail = `${close ? `close ${close.code}` : "open"}${answers.length ? `; ${answers.map(show).join(" | ")}` : ""}`;
    return { outcome: classify({ closedBefore, closedAtProbe, answers }), detail };
  }

  /** Sends `frames` as one POST to a fresh polling session on `/`; resolves with how the server reacted. */
  async function tryPolling(frames) {
    const session = await PollingSession.open(server.url);
    const body = Buffer.concat(
      frames.flatMap((frame, i) => [
        i ? Buffer.from("\x1e") : Buffer.alloc(0),
        typeof frame === "string"
          ? Buffer.from(frame)
          : frame.binary
            ? Buffer.from(`b${frame.binary.toString("base64")}`)
            : frame.notUtf8,
      ]),
    );
    const post = await session.post(body);
    const notes = [`POST ${post.status}${post.status === 200 || !post.body ? "" : ` ${show(post.body)}`}`];
    const answers = [];
    let closed = post.status !== 200;
    // Ticks come every TICK_MS, so each GET returns quickly while the socket lives; after a
    // DISCONNECT nothing more comes until the next packet.
    const collect = async (until) => {
      for (let i = 0; i < 20 && !closed && !until(); i++) {
        const res = await httpRequest(session.url, { timeoutMs: 3_000 });
        if (res.status !== 200) {
          notes.push(`GET ${res.status}`);
          closed = true;
          break;
        }
        const packets = res.body.split("\x1e");
        if (packets.includes("1")) closed = true;
        answers.push(...packets.filter((p) => p !== "1"));
      }
    };
    const started = Date.now();
    await collect(() => Date.now() - started > 800 || answers.includes("41"));
    const closedBefore = closed;
    let closedAtProbe = false;
    if (!closedBefore) {
      const probe = await session.post(PROBE);
      if (probe.status !== 200) {
        notes.push(`probe POST ${probe.status}`);
        closed = true;
      }
      await collect(() => answers.some(isProbeAck));
      closedAtProbe = closed;
      assert.ok(closed || answers.some(isProbeAck), "the probe got neither an ack nor a close");
    }
    const shown = answers.filter((m) => !isRoutine(m));
    if (closed && !notes.some((n) => n.startsWith("GET") || n.startsWith("probe"))) notes.push("session closed");
    if (!closed) notes.push("open");
    const detail = `${notes.join(", ")}${shown.length ? `; ${shown.map(show).join(" | ")}` : ""}`;
    return { outcome: classify({ closedBefore, closedAtProbe, answers: shown }), detail };
  }

  const table = [];
  for (const entry of BAD_INPUTS) {
    for (const [transport, attempt] of [["websocket", tryWebSocket], ["polling", tryPolling]]) {
      const name = `${transport}: ${entry.kind}, ${entry.label}`;
      it(name, async (t) => {
        const { outcome, detail } = await attempt(entry.frames);
        table.push({ transport, entry, outcome, detail });
        t.diagnostic(`${outcome} (${detail})`);
        assert.equal((await httpRequest(`${server.url}/healthz`)).status, 200, "the server stopped answering");
        assert.ok(entry.expect.includes(outcome), `expected ${entry.expect.join(" or ")}, got ${outcome} (${detail})`);
      });
    }
  }

  it("prints what the server answered to each bad input", (t) => {
    const rows = BAD_INPUTS.map((entry) => {
      const cell = (transport) => {
        const row = table.find((r) => r.entry === entry && r.transport === transport);
        return row ? `${row.outcome} (${row.detail})` : "not run";
      };
      return `| ${entry.kind} | ${entry.label} | ${cell("websocket")} | ${cell("polling")} |`;
    });
    for (const line of ["| class | input | websocket | polling |", "|---|---|---|---|", ...rows]) t.diagnostic(line);
    assert.equal(table.length, 2 * BAD_INPUTS.length);
  });

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
