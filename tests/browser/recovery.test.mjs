// Connection state recovery seen on the client demo, in a real Chromium against a real
// iorelay: the page's network goes down for a moment while another client chats in its room.
// With `--connection-state-recovery` the page shows "recovered" and the missed message; without
// it, "new session" and no message.
//
// Needs a built demo (`npm ci && npm run build` in client-demo/), the iorelay binary and
// Chromium at /usr/bin/chromium (CHROMIUM_PATH overrides it).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { startIorelay } from "../support/iorelay.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const staticDir = path.join(repoRoot, "client-demo", "dist");
const screenshotDir = path.join(here, "screenshots");
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const serverArgs = ["--static-dir", staticDir, "--tick-interval-ms", "0"];

/** What Chromium logs while the page is offline and its reconnect attempts fail. */
const offlineNoise = [/WebSocket connection to .* failed/, /Failed to load resource: net::ERR_INTERNET_DISCONNECTED/];

let browser;

before(async () => {
  assert.ok(existsSync(path.join(staticDir, "index.html")), `no demo build in ${staticDir}: run npm ci && npm run build in client-demo/`);
  assert.ok(existsSync(executablePath), `no Chromium at ${executablePath}: apt-get install chromium, or set CHROMIUM_PATH`);
  await mkdir(screenshotDir, { recursive: true });
  browser = await chromium.launch({
    executablePath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
      "--disable-quic",
    ],
  });
});

after(async () => {
  await browser?.close();
});

/** Waits until the first element with `testId` has a text matching `expected`. */
async function waitForText(page, testId, expected, timeout = 10_000) {
  const locator = page.getByTestId(testId);
  try {
    await locator.filter({ hasText: expected }).first().waitFor({ timeout });
  } catch (error) {
    const seen = await locator.allTextContents().catch(() => []);
    throw new Error(`[data-testid=${testId}] never matched ${expected} within ${timeout} ms; it shows ${JSON.stringify(seen)}`, {
      cause: error,
    });
  }
}

async function socketId(page) {
  return (await page.getByTestId("socket-id").textContent()).trim();
}

/** Texts of the chat messages of the open tab. */
function chatTexts(page) {
  return page.locator('[data-testid="chat-text"]:visible').allTextContents();
}

/** A socket.io-client 4 in `room` of the server at `url`. */
async function roomMember(url, room) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  const ack = await socket.timeout(5_000).emitWithAck("join", room);
  assert.equal(ack.room, room);
  return socket;
}

/**
 * Opens the demo on an iorelay started with `extraArgs`, joins `room`, takes the page's network
 * down until the page has seen the disconnect, has another client chat `text` into the room
 * meanwhile, brings the network back, and waits for the page to reconnect. Calls `check` with
 * the page and its socket id from before the cut; saves a screenshot as screenshots/<name>.png.
 */
async function cutWhileChatting(name, extraArgs, room, text, check) {
  const server = await startIorelay({ args: [...serverArgs, ...extraArgs] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(`uncaught ${error.name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !offlineNoise.some((pattern) => pattern.test(message.text()))) errors.push(message.text());
  });
  let other;
  try {
    await page.goto(`${server.url}/?transport=websocket`);
    await waitForText(page, "status", /^connected$/);
    const firstId = await socketId(page);
    assert.match(firstId, /^[\w-]{8,}$/, "the socket id is shown");
    assert.equal(await page.getByTestId("recovery").count(), 0, "no recovery tag before any reconnect");

    await page.getByTestId("room-input").fill(room);
    await page.getByTestId("room-join").click();
    await waitForText(page, "room-ack", new RegExp(`Joined "${room}"`));
    other = await roomMember(server.url, room);

    // Going offline closes the page's WebSocket, and its reconnect attempts fail until it is back.
    await context.setOffline(true);
    await waitForText(page, "status", /^reconnecting$/);
    const ack = await other.timeout(5_000).emitWithAck("chat", { room, text });
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    // The server has the chat before the page can come back.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await chatTexts(page)).includes(text), false, "nothing reaches the page while it is offline");
    await context.setOffline(false);

    await waitForText(page, "status", /^connected$/, 15_000);
    await check(page, firstId);
  } finally {
    other?.disconnect();
    await page.screenshot({ path: path.join(screenshotDir, `${name}.png`) }).catch(() => {});
    await context.close();
    await server.stop();
  }
  assert.deepEqual(errors, [], "the page logged errors");
}

test("with --connection-state-recovery the page shows 'recovered' and the chat it missed", async () => {
  const text = "sent while the page was offline";
  await cutWhileChatting("recovered", ["--connection-state-recovery"], "lobby", text, async (page, firstId) => {
    await waitForText(page, "recovery", /^recovered$/);
    assert.equal(await socketId(page), firstId, "the same socket id");
    await waitForText(page, "chat-text", new RegExp(`^${text}$`));
    assert.deepEqual(await chatTexts(page), [text], "the missed chat, once");
  });
});

test("without recovery the page shows 'new session' and the chat is lost", async () => {
  const text = "sent while the page was offline";
  await cutWhileChatting("new-session", [], "lobby", text, async (page, firstId) => {
    await waitForText(page, "recovery", /^new session$/);
    assert.notEqual(await socketId(page), firstId, "a new socket id");
    // Give a replay, if any came, the time to show.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.deepEqual(await chatTexts(page), [], "the chat sent during the cut is not shown");
  });
});
