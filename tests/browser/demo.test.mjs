// The client demo in a real Chromium, served by a real iorelay.
//
// Needs a built demo (`npm ci && npm run build` in client-demo/), the iorelay
// binary (`cargo build`) and Chromium at /usr/bin/chromium (CHROMIUM_PATH
// overrides it). Each test leaves a screenshot in tests/browser/screenshots/, and
// one of them writes the README's picture, docs/images/demo.png.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { freePort, startIorelay } from "../support/iorelay.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const staticDir = path.join(repoRoot, "client-demo", "dist");
const screenshotDir = path.join(here, "screenshots");
const readmePicture = path.join(repoRoot, "docs", "images", "demo.png");
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const serverArgs = ["--static-dir", staticDir, "--tick-interval-ms", "300"];

/** What Chromium itself logs while the server is down; the page logs nothing of its own. */
const serverDownNoise = [/Failed to load resource: net::ERR_CONNECTION_REFUSED/, /WebSocket connection to .* failed/];
/**
 * Logged by Chromium when a socket is dropped during the WebSocket upgrade: iorelay then
 * closes the whole Engine.IO session, so the client's last polling request gets
 * 400 "Session ID unknown".
 */
const droppedUpgradeNoise = [/Failed to load resource: the server responded with a status of 400/];

let browser;
let server;

before(async () => {
  assert.ok(existsSync(path.join(staticDir, "index.html")), `no demo build in ${staticDir}: run npm ci && npm run build in client-demo/`);
  assert.ok(existsSync(executablePath), `no Chromium at ${executablePath}: apt-get install chromium, or set CHROMIUM_PATH`);
  await mkdir(screenshotDir, { recursive: true });
  [browser, server] = await Promise.all([
    chromium.launch({
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
    }),
    startIorelay({ args: serverArgs }),
  ]);
});

after(async () => {
  await Promise.all([browser?.close(), server?.stop()]);
});

/**
 * Opens `url` in a fresh browser context that records uncaught page errors and
 * console errors. Use through {@link withPages}.
 */
async function openPage(url, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push({ kind: "uncaught", text: `${error.name}: ${error.message}` }));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push({ kind: "console", text: message.text() });
  });
  if (url) await page.goto(url);
  return { context, page, errors };
}

/**
 * Runs `body` with `count` pages, saves a screenshot of the first page as
 * screenshots/<name>.png (also when `body` fails), then checks that no page had an
 * uncaught error or a console error other than those matching `allowConsole`.
 */
async function withPages(name, { count = 1, url = server.url, viewport, allowConsole = [] } = {}, body) {
  const tabs = [];
  try {
    const opened = await Promise.allSettled(Array.from({ length: count }, () => openPage(url, { viewport })));
    for (const result of opened) if (result.status === "fulfilled") tabs.push(result.value);
    const failure = opened.find((result) => result.status === "rejected");
    if (failure) throw failure.reason;
    await body(...tabs.map((tab) => tab.page));
  } finally {
    await tabs[0]?.page.screenshot({ path: path.join(screenshotDir, `${name}.png`) }).catch(() => {});
    await Promise.all(tabs.map((tab) => tab.context.close()));
  }
  const errors = tabs.flatMap((tab) => tab.errors);
  const expected = (e) => e.kind === "console" && allowConsole.some((pattern) => pattern.test(e.text));
  for (const e of errors.filter(expected)) console.log(`expected browser console error: ${e.text}`);
  assert.deepEqual(errors.filter((e) => !expected(e)), [], "the page logged errors");
}

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

/** Waits until at least `count` elements have `testId`, and returns how many there are. */
async function waitForCount(page, testId, count, timeout = 10_000) {
  await page.waitForFunction(
    ([id, n]) => document.querySelectorAll(`[data-testid="${id}"]`).length >= n,
    [testId, count],
    { timeout },
  );
  return page.getByTestId(testId).count();
}

async function waitConnected(page, transport = "websocket") {
  await waitForText(page, "status", /^connected$/);
  await waitForText(page, "transport", new RegExp(`^${transport}$`));
  const id = (await page.getByTestId("socket-id").textContent()).trim();
  assert.match(id, /^[\w-]{8,}$/, "the socket id is shown");
  return id;
}

async function joinRoom(page, room) {
  await page.getByTestId("room-input").fill(room);
  await page.getByTestId("room-join").click();
  await waitForText(page, "room-ack", new RegExp(`Joined "${room}"`));
}

async function sendChat(page, text) {
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-send").click();
}

/** Texts of the chat messages of the open tab (the tabs visited before stay in the page, hidden). */
function chatTexts(page) {
  return page.locator('[data-testid="chat-text"]:visible').allTextContents();
}

test("the page loads from iorelay, connects and upgrades to websocket", async () => {
  await withPages("connect-upgrade", { url: null }, async (page) => {
    const pollingRequests = [];
    const websockets = [];
    page.on("request", (req) => {
      if (req.url().includes("/socket.io/?EIO=4&transport=polling")) pollingRequests.push(req.url());
    });
    page.on("websocket", (ws) => websockets.push(ws.url()));

    const response = await page.goto(server.url);
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), "iorelay demo");
    await waitConnected(page, "websocket");

    assert.ok(pollingRequests.length > 0, "the session started with HTTP long-polling");
    assert.ok(
      websockets.some((url) => url.includes("transport=websocket") && url.includes("sid=")),
      `the session was upgraded to a WebSocket: ${JSON.stringify(websockets)}`,
    );
    await waitForText(page, "received-message", /Welcome to iorelay/);
    await waitForText(page, "server-health", /iorelay 0\.1\.0/);
  });
});

test("ticker rows appear, newest first, with the browser delay", async () => {
  await withPages("ticker", {}, async (page) => {
    await waitConnected(page);
    await waitForCount(page, "ticker-row", 3);
    const delays = await page.getByTestId("ticker-delay").allTextContents();
    for (const delay of delays) assert.match(delay, /^-?\d+ ms$/);
    const times = await page.locator('[data-testid="ticker-row"] td:first-child span[title]').evaluateAll((cells) =>
      cells.map((cell) => Number(cell.getAttribute("title"))),
    );
    assert.ok(times.length >= 3);
    assert.deepEqual(times, [...times].sort((a, b) => b - a), "newest first");
  });
});

/** Runs `body` with an iorelay of its own, started with `--tick-interval-ms tickIntervalMs`. */
async function withTickingServer(tickIntervalMs, body) {
  const own = await startIorelay({ args: ["--static-dir", staticDir, "--tick-interval-ms", String(tickIntervalMs)] });
  try {
    await body(own);
  } finally {
    await own.stop();
  }
}

/** The number of seconds in the ticker card's "Next tick in" line. */
async function secondsToNextTick(page) {
  const text = (await page.getByTestId("ticker-schedule").textContent()).trim();
  const match = /^Next tick in (?:at most )?(\d+) s \(every \d+(?:\.\d)? s\)$/.exec(text);
  assert.ok(match, `a countdown to the next tick: ${JSON.stringify(text)}`);
  return Number(match[1]);
}

test("the ticker card counts down to the next tick from the first second", async () => {
  await withTickingServer(3000, async (own) => {
    await withPages("ticker-countdown", { url: own.url }, async (page) => {
      await waitForText(page, "status", /^connected$/);
      // Before any tick the page only knows the interval, so the next tick is due within it.
      await waitForText(page, "ticker-schedule", /^Next tick in (at most )?\d+ s \(every 3 s\)$/, 1000);
      const first = await secondsToNextTick(page);
      assert.ok(first >= 1 && first <= 3, `the first countdown starts within the interval: ${first} s`);

      // A tick arrives within the interval; from then on the countdown runs from the last tick.
      await waitForCount(page, "ticker-row", 1, 4000);
      await waitForText(page, "ticker-schedule", /^Next tick in [1-3] s \(every 3 s\)$/, 1000);
      await waitForText(page, "ticker-schedule", /^Next tick in 1 s \(every 3 s\)$/, 3000);
      await waitForCount(page, "ticker-row", 2, 3000);
      await waitForText(page, "ticker-schedule", /^Next tick in [23] s \(every 3 s\)$/, 1000);
    });
  });
});

test("the ticker card says when the server's ticker is off", async () => {
  await withTickingServer(0, async (own) => {
    await withPages("ticker-off", { url: own.url }, async (page) => {
      await waitConnected(page);
      await waitForText(page, "ticker-schedule", /^The ticker is off on this server$/, 1000);
      assert.equal(await page.getByTestId("ticker-row").count(), 0);
    });
  });
});

test("an echo acknowledgement round-trips and shows its RTT", async () => {
  await withPages("echo-ack", {}, async (page) => {
    await waitConnected(page);
    await page.getByTestId("echo-input").fill("ping from the browser");
    await page.getByTestId("echo-send").click();
    await waitForText(page, "echo-rtt", /^\d+\.\d ms$/);
    await waitForText(page, "echo-result", /ack "ping from the browser"/);
    assert.equal(await page.getByText("differs from what was sent").count(), 0);

    await page.getByTestId("message-input").fill("plain message");
    await page.getByTestId("message-send").click();
    await waitForText(page, "received-message", /"plain message"/);
  });
});

test("chat reaches the members of a room and nobody else", async () => {
  const rooms = ["red", "red", "blue"];
  await withPages("chat-rooms", { count: 3 }, async (alice, bob, carol) => {
    const [aliceId, bobId] = await Promise.all([alice, bob, carol].map((page) => waitConnected(page)));
    await Promise.all([alice, bob, carol].map((page, i) => joinRoom(page, rooms[i])));

    await sendChat(alice, "hello from alice");
    await waitForText(bob, "chat-text", /^hello from alice$/);
    await sendChat(bob, "hi alice, bob here");
    await waitForText(alice, "chat-text", /^hi alice, bob here$/);
    await waitForText(bob, "chat-text", /^hi alice, bob here$/);
    await sendChat(carol, "anyone in blue?");
    await waitForText(carol, "chat-text", /^anyone in blue\?$/);

    for (const page of [alice, bob]) {
      assert.deepEqual(await chatTexts(page), ["hi alice, bob here", "hello from alice"]);
      assert.deepEqual(await page.locator('[data-testid="chat-from"]:visible').allTextContents(), [bobId, aliceId]);
    }
    // Carol's only messages are her own, and she has no tab of the red room.
    assert.deepEqual(await chatTexts(carol), ["anyone in blue?"]);
    assert.equal(await carol.getByTestId("chat-tab-red").count(), 0);
    await carol.getByTestId("chat-tab-everyone").click();
    await carol.getByText("No message yet.").waitFor();
    assert.deepEqual(await chatTexts(carol), []);
  });
});

test("stopping the server shows the outage and a restart reconnects on its own", async () => {
  const port = await freePort();
  let own = await startIorelay({ args: serverArgs, port });
  try {
    await withPages("restart", { url: own.url, allowConsole: serverDownNoise }, async (page) => {
      const firstId = await waitConnected(page);
      await joinRoom(page, "survivors");

      await own.stop();
      await waitForText(page, "status", /^(reconnecting|disconnected)$/);
      await waitForText(page, "connection-problem", /closed the connection|connection to the server was lost|Cannot reach the server/);
      assert.equal((await page.getByTestId("socket-id").textContent()).trim(), "—");
      await page.screenshot({ path: path.join(screenshotDir, "restart-down.png") });

      own = await startIorelay({ args: serverArgs, port });
      const started = Date.now();
      const secondId = await waitConnected(page);
      assert.notEqual(secondId, firstId, "a new session after the restart");
      assert.equal(await page.getByTestId("connection-problem").count(), 0, "the outage message is gone");
      await waitForCount(page, "ticker-row", 1);
      // The page joins its rooms again after the reconnection.
      await page.getByTestId("chat-input").fill("back again");
      await page.getByTestId("chat-send").click();
      await waitForText(page, "chat-text", /^back again$/);
      console.log(`reconnected ${Date.now() - started} ms after the restart`);
    });
  } finally {
    await own.stop();
  }
});

test("a plain page loads /socket.io/socket.io.js from iorelay and receives the ticker", async () => {
  const fixture = await readFile(path.join(here, "fixtures", "script-tag.html"), "utf8");
  await withPages("script-tag", { url: null }, async (page) => {
    // The fixture's HTML is written into a document of iorelay's origin, so its relative
    // <script src> and the socket go to iorelay. (A page fulfilled by page.route would count
    // as a public page for Chromium's local network access checks, which then block its
    // WebSocket to 127.0.0.1.)
    await page.goto(`${server.url}/healthz`);
    const bundle = page.waitForResponse((res) => res.url() === `${server.url}/socket.io/socket.io.js`);
    await page.setContent(fixture);
    const response = await bundle;
    assert.equal(response.status(), 200);
    assert.match(response.headers()["content-type"] ?? "", /javascript/);
    assert.equal(response.fromServiceWorker(), false);

    await waitForText(page, "status", /^connected$/);
    await waitForText(page, "welcome", /Welcome to iorelay/);
    await waitForCount(page, "tick", 2);
  });
});

test("the /chat namespace lists both members of a room", async () => {
  await withPages("presence", { count: 2, url: `${server.url}/?ns=/chat` }, async (first, second) => {
    const ids = await Promise.all([first, second].map((page) => waitConnected(page)));
    assert.equal(await first.getByTestId("ticker-row").count(), 0, "no ticker on /chat");
    await joinRoom(first, "team");
    await joinRoom(second, "team");
    for (const page of [first, second]) {
      await waitForCount(page, "presence-member", 2);
      const members = await page.getByTestId("presence-member").evaluateAll((tags) => tags.map((t) => t.dataset.member));
      assert.deepEqual(members, [...ids].sort());
    }
    // Leaving shrinks the list of whoever stays.
    await second.getByTestId("room-leave").click();
    await waitForText(second, "room-ack", /Left "team"/);
    await first.waitForFunction(() => document.querySelectorAll('[data-testid="presence-member"]').length === 1);
    assert.deepEqual(await first.getByTestId("presence-member").evaluateAll((tags) => tags.map((t) => t.dataset.member)), [ids[0]]);
  });
});

test("a refused namespace is explained in plain words", async () => {
  await withPages("refused-namespace", { allowConsole: droppedUpgradeNoise }, async (page) => {
    await waitConnected(page);
    await page.getByLabel("Namespace").fill("/nope");
    await page.keyboard.press("Escape");
    await page.getByTestId("connect").click();
    await waitForText(page, "connection-problem", /The server refused the namespace "\/nope"/);
    await waitForText(page, "connection-problem", /"\/" and "\/chat"/);
    await waitForText(page, "connect-error", /Invalid namespace/);
    await waitForText(page, "status", /^disconnected$/);
    assert.equal((await page.getByTestId("socket-id").textContent()).trim(), "—");
  });
});

test("server addresses that cannot work are refused before connecting", async () => {
  await withPages("invalid-url", { url: `${server.url}/?autoconnect=0` }, async (page) => {
    const cases = [
      ["ftp://example.com", /ftp:\/\/ address cannot work/],
      ["garbage", /has no scheme/],
      ["http://", /is not a web address/],
      [`${server.url}/chat`, /without a path/],
    ];
    for (const [input, expected] of cases) {
      await page.getByLabel("Server URL").fill(input);
      await page.getByTestId("connect").click();
      await waitForText(page, "connection-problem", expected);
      await waitForText(page, "status", /^disconnected$/);
    }
    await page.getByLabel("Server URL").fill("");
    await page.getByTestId("connect").click();
    await waitConnected(page);
  });
});

test("an oversized message is named as the likely cause of the dropped connection", async () => {
  // Over WebSocket the server closes the connection; over polling it answers 413 and
  // forgets the session, which Chromium logs along with the next poll's 400.
  const cases = [
    ["polling-upgrade", "websocket", []],
    ["polling", "polling", [/status of 413 \(Payload Too Large\)/, /status of 400 \(Bad Request\)/]],
  ];
  for (const [choice, transport, allowConsole] of cases) {
    await withPages(`payload-too-large-${choice}`, { url: `${server.url}/?transport=${choice}`, allowConsole }, async (page) => {
      const firstId = await waitConnected(page, transport);
      await page.getByLabel("Payload size in KB").fill("1200");
      await page.getByTestId("large-send").click();
      await waitForText(page, "connection-problem", /The last message was probably too large/);
      // It reconnects by itself and keeps the explanation until it is dismissed.
      const secondId = await waitConnected(page, transport);
      assert.notEqual(secondId, firstId);
      await waitForText(page, "connection-problem", /about 1\.17 MB/);
      await page.getByTestId("connection-problem").getByRole("button", { name: /close/i }).click();
      assert.equal(await page.getByTestId("connection-problem").count(), 0);
    });
  }
});

test("the page fits a phone screen", async () => {
  await withPages("phone", { viewport: { width: 390, height: 844 } }, async (page) => {
    await waitConnected(page);
    const overflow = await page.evaluate(() => document.scrollingElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no sideways scrolling (${overflow} px too wide)`);
    // The cards are stacked: each one spans the width of the screen.
    const widths = await page.locator(".ant-card").evaluateAll((cards) => cards.map((c) => c.getBoundingClientRect().width));
    assert.equal(widths.length, 4);
    for (const width of widths) assert.ok(width > 340 && width <= 390, `card width ${width}`);
  });
});

test("an acknowledgement that never comes is reported after 5 s", async () => {
  // /chat has no `echo` handler, so the server never acknowledges it.
  await withPages("ack-timeout", { url: `${server.url}/?ns=/chat&transport=websocket` }, async (page) => {
    await waitConnected(page);
    await page.getByTestId("echo-send").click();
    await waitForText(page, "echo-error", /did not acknowledge "echo" within 5 s/, 8000);
  });
});

test("the README picture shows the page in use", async () => {
  const viewport = { width: 1280, height: 900 };
  const started = Date.now();
  // A short interval, so the picture shows ticks and a countdown between two of them.
  await withTickingServer(2000, async (own) => {
    await withPages("readme-picture", { count: 2, url: own.url, viewport }, async (alice, bob) => {
      await Promise.all([alice, bob].map((page) => waitConnected(page)));
      await Promise.all([alice, bob].map((page) => joinRoom(page, "lobby")));
      await sendChat(bob, "hi, anyone in the lobby?");
      await waitForText(alice, "chat-text", /^hi, anyone in the lobby\?$/);
      await sendChat(alice, "hello bob, alice here");
      await waitForText(alice, "chat-text", /^hello bob, alice here$/);

      await alice.getByTestId("echo-send").click();
      await waitForCount(alice, "echo-rtt", 1);
      await alice.getByTestId("message-send").click();
      await waitForText(alice, "received-message", /"hi there"/);
      await alice.getByTestId("room-ack").getByRole("button").click();
      await alice.evaluate(() => document.activeElement?.blur());
      await alice.mouse.move(0, 0);

      // Taken just after a tick, when the countdown starts again from it.
      const ticks = await waitForCount(alice, "ticker-row", 2, 6000);
      await waitForCount(alice, "ticker-row", ticks + 1, 3000);
      await waitForText(alice, "ticker-schedule", /^Next tick in \d s \(every 2 s\)$/, 1000);
      await mkdir(path.dirname(readmePicture), { recursive: true });
      await alice.screenshot({ path: readmePicture });
    });
  });

  assert.ok((await stat(readmePicture)).mtimeMs >= started, `${readmePicture} was written by this run`);
  const png = await readFile(readmePicture);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG signature");
  assert.equal(png.toString("latin1", 12, 16), "IHDR", "the PNG starts with its header chunk");
  assert.deepEqual({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) }, viewport);
});
