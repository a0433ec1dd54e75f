// Two iorelay nodes over a real redis-server, one app behind both: an answer's emit from a
// socket on node A reaches room members on node B.
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";

import { ClientSet, emitWithAckArgs, unique } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";
import { openPlain, plainUrl } from "../support/plain.mjs";
import { startRedis } from "../support/redis.mjs";
import { startWebhookApp } from "../support/webhook-app.mjs";

const SECRET = "whsec-cluster-6d4f0b2a";

const clients = new ClientSet();
const plainSockets = new Set();
afterEach(() => {
  clients.closeAll();
  for (const socket of plainSockets) socket.terminate();
  plainSockets.clear();
});

describe("event webhooks on two nodes sharing Redis", () => {
  let redis;
  let app;
  let nodeA;
  let nodeB;

  before(async () => {
    redis = await startRedis();
    app = await startWebhookApp({ secret: SECRET });
    const args = ["--webhook-url", app.url, "--webhook-secret", SECRET, "--redis-url", redis.url, "--tick-interval-ms", "0"];
    [nodeA, nodeB] = await Promise.all([startIorelay({ args }), startIorelay({ args })]);
  });
  after(async () => {
    clients.closeAll();
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    await app?.stop();
    await redis?.stop();
  });
  beforeEach(() => app.reset());

  async function joinRoom(socket, room) {
    const ack = await socket.timeout(3_000).emitWithAck("join", room);
    assert.equal(ack.room, room);
  }

  it("names each node in X-Iorelay-Node and signs on both", async () => {
    const { socket: a } = await clients.connect(nodeA.url);
    const { socket: b } = await clients.connect(nodeB.url);
    const onA = await app.waitFor({ type: "connect", socketId: a.id });
    const onB = await app.waitFor({ type: "connect", socketId: b.id });
    assert.deepEqual(app.rejected, []);
    assert.match(onA.headers["x-iorelay-node"], /\S/);
    assert.match(onB.headers["x-iorelay-node"], /\S/);
    assert.notEqual(onA.headers["x-iorelay-node"], onB.headers["x-iorelay-node"]);
  });

  it("delivers an answer's `to` emit from a socket on A to a room member on B", async () => {
    const room = unique("cross");
    const { socket: sender } = await clients.connect(nodeA.url);
    const member = await clients.connect(nodeB.url);
    const outsider = await clients.connect(nodeB.url);
    await joinRoom(member.socket, room);
    const plainMember = await openPlain(plainUrl(nodeB.url));
    plainSockets.add(plainMember);
    assert.equal((await plainMember.request({ event: "join", room }, 1)).room, room);
    app.on(
      "event",
      {
        json: {
          emit: [
            { event: "shout", args: ["to the room", { _binary: Buffer.from("hi").toString("base64") }], to: [room] },
            { event: "everyone", args: [1], broadcast: true },
          ],
          ack: ["sent"],
        },
      },
      { event: "shout", socketId: sender.id },
    );
    assert.deepEqual(await emitWithAckArgs(sender, "shout", []), ["sent"]);
    const [text, bytes] = await member.recorder.waitFor("shout");
    assert.equal(text, "to the room");
    assert.equal(Buffer.from(bytes).toString(), "hi");
    const plainShout = await plainMember.waitJson((f) => f.event === "shout");
    assert.equal(plainShout.data[0], "to the room");
    assert.deepEqual(await outsider.recorder.waitFor("everyone"), [1]);
    assert.equal(outsider.recorder.find("shout"), undefined, "only the room hears the shout");
    assert.deepEqual(await member.recorder.waitFor("everyone"), [1]);
  });

  it("delivers a disconnect answer's room emit across nodes", async () => {
    const room = unique("wake");
    const { socket: leaving } = await clients.connect(nodeA.url);
    const member = await clients.connect(nodeB.url);
    await joinRoom(member.socket, room);
    const id = leaving.id;
    app.on("disconnect", { json: { emit: [{ event: "user left", args: [id], to: [room] }] } }, { socketId: id });
    leaving.disconnect();
    assert.deepEqual(await member.recorder.waitFor("user left"), [id]);
  });
});
