// Chromium's own WebSocket (no Socket.IO client) against a real iorelay: raw frames from a page
// script, the plain WebSocket demo page, and a room it shares with the Socket.IO demo page.
//
// Needs what demo.test.mjs needs: a built demo (client-demo/dist), the iorelay binary and
// Chromium at /usr/bin/chromium (CHROMIUM_PATH overrides it).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startIorelay } from "../support/iorelay.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const staticDir = path.resolve(here, "..", "..", "client-demo", "dist");
const screenshotDir = path.join(here, "screenshots");
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const PING_MS = 300;
// A page still busy loading may take a few hundred milliseconds to make its next poll and answer
// a ping: a timeout as short as the interval cut it off.
const PING_TIMEOUT_MS = 5_000;
const MAX_MESSAGE = 4_000;
const serverArgs = [
  "--static-dir", staticDir,
  "--tick-interval-ms", "300",
  "--ping-interval-ms", String(PING_MS),
  "--ping-timeout-ms", String(PING_TIMEOUT_MS),
  "--max-http-buffer-size", String(MAX_MESSAGE),
];
/** What Chromium logs for a WebSocket whose handshake the server refuses. */
const refusedHandshake = [/WebSocket connection to .* failed/];

let browser;
let server;
/** A second node that only lets pages of another origin in. */
let guarded;

before(async () => {
  assert.ok(existsSync(path.join(staticDir, "plain.html")), `no demo build in ${staticDir}: run npm ci && npm run build in client-demo/`);
  assert.ok(existsSync(executablePath), `no Chromium at ${executablePath}: apt-get install chromium, or set CHROMIUM_PATH`);
  await mkdir(screenshotDir, { recursive: true });
  [browser, server, guarded] = await Promise.all([
    chromium.launch({
      executablePath,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-quic"],
    }),
    startIorelay({ args: serverArgs }),
    startIorelay({ args: ["--tick-interval-ms", "0", "--cors-origin", "http://allowed.example"] }),
  ]);
});

after(async () => {
  await Promise.all([browser?.close(), server?.stop(), guarded?.stop()]);
});

/**
 * Runs `body` with `count` fresh pages at `url`, saves a screenshot of the first as
 * screenshots/<name>.png, then checks that no page logged an error other than `allowConsole`.
 */
async function withPages(name, { count = 1, url, allowConsole = [], init } = {}, body) {
  const contexts = [];
  const errors = [];
  try {
    const pages = [];
    for (let i = 0; i < count; i += 1) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      contexts.push(context);
      const page = await context.newPage();
      page.on("pageerror", (error) => errors.push(`uncaught ${error.name}: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error" && !allowConsole.some((p) => p.test(message.text()))) errors.push(message.text());
      });
      if (init) await page.addInitScript(init);
      await page.goto(url ?? `${server.url}/healthz`);
      pages.push(page);
    }
    await body(...pages);
  } finally {
    const first = contexts[0]?.pages()[0];
    await first?.screenshot({ path: path.join(screenshotDir, `${name}.png`) }).catch(() => {});
    await Promise.all(contexts.map((context) => context.close()));
  }
  assert.deepEqual(errors, [], "the page logged errors");
}

/** Opens `new WebSocket(url, protocols)` in the page; resolves with its outcome once `script` has run. */
function inPage(page, url, protocols, script) {
  return page.evaluate(
    async ([url, protocols, source]) => {
      const ws = new WebSocket(url, protocols);
      ws.binaryType = "arraybuffer";
      const frames = [];
      const waiters = [];
      ws.onmessage = (event) => {
        frames.push(typeof event.data === "string" ? event.data : [...new Uint8Array(event.data)]);
        for (const wake of waiters.splice(0)) wake();
      };
      const closed = new Promise((resolve) => {
        ws.onclose = (event) => {
          for (const wake of waiters.splice(0)) wake();
          resolve({ code: event.code, reason: event.reason, wasClean: event.wasClean });
        };
      });
      const opened = await new Promise((resolve) => {
        ws.onopen = () => resolve(true);
        ws.onerror = () => resolve(false);
      });
      /** Resolves with the first frame matching `match`, within 3 s. */
      const next = async (match) => {
        const deadline = Date.now() + 3_000;
        for (;;) {
          const found = frames.find(match);
          if (found !== undefined) return found;
          if (Date.now() > deadline || ws.readyState === WebSocket.CLOSED) return null;
          await new Promise((resolve) => {
            waiters.push(resolve);
            setTimeout(resolve, 50);
          });
        }
      };
      const json = async (match) => {
        const frame = await next((f) => typeof f === "string" && f.startsWith("{") && match(JSON.parse(f)));
        return frame && JSON.parse(frame);
      };
      const result = opened ? await new Function("ws", "next", "json", "closed", `return (async () => { ${source} })()`)(ws, next, json, closed) : null;
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
      return { opened, protocol: ws.protocol, result, close: await closed };
    },
    [url, protocols, script],
  );
}

test("the browser's WebSocket: echo, ticker frames and the JSON contract", async () => {
  await withPages("plain-raw", {}, async (page) => {
    const url = `${server.url.replace("http", "ws")}/ws`;
    const { opened, result } = await inPage(
      page,
      url,
      [],
      `
      ws.send("hello from chromium");
      ws.send(new Uint8Array([7, 8, 9]).buffer);
      const text = await next((f) => f === "hello from chromium");
      const binary = await next((f) => Array.isArray(f));
      const tick = await next((f) => typeof f === "string" && /^\\d{13}$/.test(f));
      ws.send(JSON.stringify({ event: "join", room: "browser-raw", id: 1 }));
      const joined = await json((f) => f.event === "ack" && f.id === 1);
      ws.send(JSON.stringify({ event: "chat", room: "browser-raw", text: "hi" }));
      const chat = await json((f) => f.event === "chat");
      ws.send(JSON.stringify({ event: "echo", data: { a: [1, 2] }, id: 2 }));
      const echoed = await json((f) => f.event === "ack" && f.id === 2);
      ws.send("{oops");
      const error = await json((f) => f.event === "error");
      return { text, binary, tick: Number(tick), joined, chat, echoed, error };
      `,
    );
    assert.ok(opened);
    assert.equal(result.text, "hello from chromium");
    assert.deepEqual(result.binary, [7, 8, 9]);
    assert.ok(Math.abs(Date.now() - result.tick) < 5_000, `tick ${result.tick}`);
    assert.deepEqual(result.joined.data, { room: "browser-raw", size: 1 });
    assert.equal(result.chat.text, "hi");
    assert.match(result.chat.from, /^[\w-]{16}$/);
    assert.deepEqual(result.echoed.data, { a: [1, 2] });
    assert.match(result.error.message, /^invalid JSON/);
  });
});

test("subprotocols are negotiated, and a page asking only for unknown ones is refused", async () => {
  await withPages("plain-subprotocol", { allowConsole: refusedHandshake }, async (page) => {
    const url = `${server.url.replace("http", "ws")}/`;
    const echo = await inPage(page, url, ["echo-protocol"], "return null;");
    assert.equal(echo.opened, true);
    assert.equal(echo.protocol, "echo-protocol");
    const unknown = await inPage(page, url, ["graphql-ws"], "return null;");
    assert.equal(unknown.opened, false);
    assert.equal(unknown.close.code, 1006, "a refused handshake shows as 1006 in the browser");
  });
});

test("a page of an unlisted origin is refused; a browser peer answers pings and stays", async () => {
  await withPages("plain-origin-heartbeat", { allowConsole: refusedHandshake }, async (page) => {
    const refused = await inPage(page, `${guarded.url.replace("http", "ws")}/ws`, [], "return null;");
    assert.equal(refused.opened, false, "iorelay answers 403 to the page's origin");

    const stays = await inPage(
      page,
      `${server.url.replace("http", "ws")}/ws`,
      [],
      `
      await new Promise((resolve) => setTimeout(resolve, ${PING_MS * 6}));
      return ws.readyState;
      `,
    );
    assert.equal(stays.result, 1, "still OPEN after several heartbeats");
  });
});

test("an oversized message closes the browser's socket with 1009", async () => {
  await withPages("plain-too-big", {}, async (page) => {
    const { result } = await inPage(
      page,
      `${server.url.replace("http", "ws")}/ws`,
      [],
      `
      ws.send("x".repeat(${MAX_MESSAGE + 1}));
      return await closed;
      `,
    );
    // iorelay does not read the rest of an oversized message before it closes, so the close
    // may not count as clean for the browser; the code and reason always arrive.
    assert.deepEqual({ code: result.code, reason: result.reason }, { code: 1009, reason: "message too big" });
  });
});

/** Records every value the readyState tag shows, from the first render on. */
function recordReadyStates() {
  window.__readyStates = [];
  const record = () => {
    const text = document.querySelector('[data-testid="plain-ready-state"]')?.textContent;
    if (text && window.__readyStates.at(-1) !== text) window.__readyStates.push(text);
  };
  new MutationObserver(record).observe(document, { subtree: true, childList: true, characterData: true });
}

test("the plain WebSocket page shows readyState, echoes and ticks", async () => {
  await withPages("plain-page", { url: `${server.url}/plain.html`, init: recordReadyStates }, async (page) => {
    const state = page.getByTestId("plain-ready-state");
    await state.filter({ hasText: /^OPEN$/ }).waitFor();
    await page.getByTestId("plain-echo-input").fill("echo me");
    await page.getByTestId("plain-echo-send").click();
    await page.getByTestId("plain-echo-row").filter({ hasText: /^echo me$/ }).waitFor();
    await page.getByTestId("plain-binary-send").click();
    await page.getByTestId("plain-echo-row").filter({ hasText: "<binary 5 bytes: 1 2 3 254 255>" }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="plain-tick"]').length >= 2);

    await page.getByTestId("plain-disconnect").click();
    await state.filter({ hasText: /^CLOSED$/ }).waitFor();
    await page.getByTestId("plain-close-info").filter({ hasText: /^1000 "bye"/ }).waitFor();
    const seen = await page.evaluate(() => window.__readyStates);
    assert.deepEqual(seen, ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]);

    await page.getByTestId("plain-connect").click();
    await state.filter({ hasText: /^OPEN$/ }).waitFor();
  });
});

test("a plain WebSocket page and a Socket.IO page chat in one room, both ways", async () => {
  await withPages("plain-bridge", { count: 2, url: `${server.url}/plain.html` }, async (plainPage, sioPage) => {
    await sioPage.goto(server.url);
    await sioPage.getByTestId("status").filter({ hasText: /^connected$/ }).waitFor();
    await plainPage.getByTestId("plain-ready-state").filter({ hasText: /^OPEN$/ }).waitFor();

    await sioPage.getByTestId("room-input").fill("bridge");
    await sioPage.getByTestId("room-join").click();
    await sioPage.getByTestId("room-ack").filter({ hasText: /Joined "bridge"/ }).waitFor();
    await plainPage.getByTestId("plain-room-input").fill("bridge");
    await plainPage.getByTestId("plain-join").click();
    await plainPage.getByTestId("plain-room-ack").filter({ hasText: /Joined "bridge": 2 member/ }).waitFor();

    await plainPage.getByTestId("plain-chat-input").fill("hello from the plain page");
    await plainPage.getByTestId("plain-chat-send").click();
    await sioPage.getByTestId("chat-text").filter({ hasText: /^hello from the plain page$/ }).waitFor();

    await sioPage.getByTestId("chat-input").fill("hello from the Socket.IO page");
    await sioPage.getByTestId("chat-send").click();
    await plainPage.getByTestId("plain-chat-text").filter({ hasText: /^hello from the Socket.IO page$/ }).waitFor();
    const sioId = (await sioPage.getByTestId("socket-id").textContent()).trim();
    assert.ok((await plainPage.getByTestId("plain-chat-from").allTextContents()).includes(sioId));
  });
});
