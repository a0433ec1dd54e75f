// --cors-origin: an allow-list checked before any Engine.IO session exists.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import WebSocket from "ws";

import { startIorelay } from "../support/iorelay.mjs";
import { engineWsUrl, httpRequest } from "../support/raw.mjs";

const ALLOWED = "http://allowed.example";
const EVIL = "http://evil.example";

/** Opens a WebSocket to the Engine.IO endpoint; resolves with "open" or the refusing status code. */
function tryWebSocket(url, origin) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(engineWsUrl(url), { headers: origin ? { origin } : {} });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("neither opened nor refused within 3 s"));
    }, 3_000);
    ws.on("open", () => {
      clearTimeout(timer);
      ws.terminate();
      resolve("open");
    });
    ws.on("unexpected-response", (req, res) => {
      clearTimeout(timer);
      req.destroy();
      resolve(res.statusCode);
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

describe(`--cors-origin ${ALLOWED}`, () => {
  let server;
  let handshakeUrl;

  before(async () => {
    server = await startIorelay({ args: ["--cors-origin", ALLOWED, "--tick-interval-ms", "0"] });
    handshakeUrl = `${server.url}/socket.io/?EIO=4&transport=polling`;
  });
  after(async () => {
    await server?.stop();
  });

  it("accepts a polling handshake from the allowed origin and says so", async () => {
    const res = await httpRequest(handshakeUrl, { headers: { origin: ALLOWED } });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers["access-control-allow-origin"], ALLOWED);
    assert.match(res.body, /^0\{"sid":/);
  });

  it("refuses a polling handshake from another origin with 403", async (t) => {
    const res = await httpRequest(handshakeUrl, { headers: { origin: EVIL } });
    t.diagnostic(`polling handshake from ${EVIL} -> ${res.status} ${JSON.stringify(res.body)}`);
    assert.equal(res.status, 403);
    assert.notEqual(res.headers["access-control-allow-origin"], EVIL);
    assert.doesNotMatch(res.body, /"sid"/);
  });

  it("accepts a polling handshake without an Origin header", async () => {
    const res = await httpRequest(handshakeUrl);
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /^0\{"sid":/);
  });

  it("answers the preflight of the allowed origin", async (t) => {
    const res = await httpRequest(handshakeUrl, {
      method: "OPTIONS",
      headers: { origin: ALLOWED, "access-control-request-method": "POST" },
    });
    t.diagnostic(`preflight from ${ALLOWED} -> ${res.status}, allow-origin ${res.headers["access-control-allow-origin"]}`);
    assert.ok(res.status >= 200 && res.status < 300, `preflight answered ${res.status}`);
    assert.equal(res.headers["access-control-allow-origin"], ALLOWED);
  });

  it("refuses a websocket upgrade from another origin with 403", async () => {
    assert.equal(await tryWebSocket(server.url, EVIL), 403);
  });

  it("accepts a websocket upgrade from the allowed origin and without an origin", async () => {
    assert.equal(await tryWebSocket(server.url, ALLOWED), "open");
    assert.equal(await tryWebSocket(server.url, undefined), "open");
  });
});
