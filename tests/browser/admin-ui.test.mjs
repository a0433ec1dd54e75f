// The official Socket.IO Admin UI page, served by iorelay at /admin/, in a real Chromium:
// log in through its connection form, see the sockets and rooms of scripted socket.io-client
// clients, and disconnect one of them from the page. It also writes docs/images/admin-ui.png.
//
// Needs the demo build (`npm run build` in client-demo/ copies the page into dist/admin/), the
// iorelay binary and Chromium (see demo.test.mjs). The page loads Roboto from Google Fonts and
// its icons from jsDelivr: the test answers those requests itself (the icons from the same
// @mdi/font package, installed in tests/), so it runs offline.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { after, afterEach, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

import { ADMIN_PASSWORD, ADMIN_USERNAME, iorelayAdminArgs } from "../support/admin-ui.mjs";
import { ClientSet, nextEvent, unique } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const staticDir = path.join(repoRoot, "client-demo", "dist");
const screenshotDir = path.join(here, "screenshots");
const docsPicture = path.join(repoRoot, "docs", "images", "admin-ui.png");
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const mdiFont = path.join(here, "..", "node_modules", "@mdi", "font");
const SERVER_ID = "iorelay-1";
const viewport = { width: 1440, height: 900 };

let browser;
let server;
const clients = new ClientSet();
afterEach(() => clients.closeAll());

before(async () => {
  assert.ok(
    existsSync(path.join(staticDir, "admin", "index.html")),
    `no Admin UI in ${staticDir}/admin: run npm ci && npm run build in client-demo/`,
  );
  assert.ok(
    existsSync(executablePath),
    `no Chromium at ${executablePath}: apt-get install chromium, or set CHROMIUM_PATH`,
  );
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
    startIorelay({
      args: ["--static-dir", staticDir, "--tick-interval-ms", "0", ...iorelayAdminArgs({ serverId: SERVER_ID })],
    }),
  ]);
});

after(async () => {
  clients.closeAll();
  await Promise.all([browser?.close(), server?.stop()]);
});

/**
 * Answers every request that leaves the loopback interface: the icon stylesheet and its fonts
 * from the installed @mdi/font, any other stylesheet (Roboto) with an empty one. Returns the
 * URLs it answered.
 */
async function keepOffline(context) {
  const answered = [];
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, async (route) => {
    const url = new URL(route.request().url());
    answered.push(url.href);
    const mdi = /^\/npm\/@mdi\/font@[^/]+\/(css|fonts)\/([\w.-]+)$/.exec(url.pathname);
    if (url.hostname === "cdn.jsdelivr.net" && mdi) {
      const types = {
        css: "text/css",
        woff2: "font/woff2",
        woff: "font/woff",
        ttf: "font/ttf",
        eot: "application/vnd.ms-fontobject",
      };
      const contentType = types[mdi[1] === "css" ? "css" : path.extname(mdi[2]).slice(1)];
      return route.fulfill({ body: await readFile(path.join(mdiFont, mdi[1], mdi[2])), contentType });
    }
    if (route.request().resourceType() === "stylesheet") return route.fulfill({ contentType: "text/css", body: "" });
    return route.abort();
  });
  return answered;
}

/** A scripted client on "/" that joined `room`. */
async function clientIn(room) {
  const client = await clients.connect(server.url, { transports: ["websocket"] });
  const ack = await client.socket.timeout(3_000).emitWithAck("join", room);
  assert.equal(ack.room, room);
  return client;
}

const navLink = (page, name) => page.getByRole("navigation").getByRole("link", { name, exact: true });

test("log in, see the clients' sockets and rooms, disconnect one from its page", async () => {
  const lobby = unique("lobby");
  const support = unique("support");
  const alice = await clientIn(lobby);
  const bob = await clientIn(lobby);
  const carol = await clientIn(support);
  const started = Date.now();

  const context = await browser.newContext({ viewport, locale: "en-US" });
  const answered = await keepOffline(context);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(`${error.name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  // Known and open: now and then the page's polling POST, sent while its transport upgrades,
  // is answered 400 (the client carries on over WebSocket). Counted and shown, not failed on.
  let refusedPollingPosts = 0;
  page.on("response", (response) => {
    const request = response.request();
    if (response.status() === 400 && request.method() === "POST" && request.url().includes("transport=polling")) {
      refusedPollingPosts += 1;
      console.log(`# known: a polling POST answered 400: ${request.url()}`);
    }
  });
  try {
    const response = await page.goto(`${server.url}/admin/`);
    assert.equal(response.status(), 200);
    assert.equal(await page.title(), "Socket.IO Admin UI");

    // The connection form, first with a wrong password.
    await page.getByLabel("Server URL").fill(server.url);
    await page.getByLabel("Username").fill(ADMIN_USERNAME);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByText("invalid credentials").waitFor();
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Connect" }).click();
    await page
      .locator("header")
      .getByText(/^connected$/i)
      .filter({ visible: true })
      .first()
      .waitFor();
    await page.getByRole("button", { name: "Connect" }).waitFor({ state: "hidden" });

    // Sockets: the three clients of "/", with their address and transport.
    await navLink(page, "Sockets").click();
    for (const { socket } of [alice, bob, carol]) {
      const row = page.getByRole("row").filter({ hasText: socket.id });
      await row.waitFor();
      assert.match(await row.innerText(), /127\.0\.0\.1\s+WebSocket/);
    }
    // The picture for the docs, once the page's transitions and the click's ripple are over.
    await page.mouse.move(viewport.width - 1, viewport.height - 1);
    await page.waitForFunction(
      () => document.getAnimations().length === 0 && !document.querySelector(".v-ripple__animation"),
    );
    await page.screenshot({ path: docsPicture });

    // Rooms: each room with its member count.
    await navLink(page, "Rooms").click();
    for (const [room, count] of [
      [lobby, "2"],
      [support, "1"],
    ]) {
      const row = page.getByRole("row").filter({ hasText: room });
      await row.waitFor();
      assert.deepEqual(
        (await row.getByRole("cell").allInnerTexts()).slice(0, 3).map((t) => t.trim()),
        [room, "PUBLIC", count],
      );
    }

    // Servers: this node, by the id it was given.
    await navLink(page, "Servers").click();
    await page.getByRole("row").filter({ hasText: SERVER_ID }).waitFor();

    // Alice's page: her rooms, and the button that disconnects this socket only.
    await navLink(page, "Sockets").click();
    await page.getByRole("cell", { name: alice.socket.id }).click();
    await page.waitForURL(`**/admin/#/n/%2F/sockets/${alice.socket.id}`);
    const rooms = page.locator(".v-card", { hasText: "Rooms" }).last();
    await rooms.getByRole("cell", { name: lobby }).waitFor();
    const details = page.locator(".v-card", { hasText: "Details" }).first();
    const disconnect = details.getByRole("button").nth(1);
    await disconnect.hover();
    await page.getByText("Disconnect this Socket instance").waitFor();
    const aliceId = alice.socket.id;
    const gone = nextEvent(alice.socket, "disconnect", 5_000);
    await disconnect.click();
    const [reason] = await gone;
    assert.equal(reason, "io server disconnect");
    await details
      .getByText(/^disconnected$/i)
      .first()
      .waitFor();
    assert.equal(bob.socket.connected, true);
    assert.equal(carol.socket.connected, true);

    await navLink(page, "Sockets").click();
    await page.getByRole("row").filter({ hasText: bob.socket.id }).waitFor();
    assert.equal(await page.getByRole("row").filter({ hasText: aliceId }).count(), 0, "alice is no longer listed");
  } finally {
    await page.screenshot({ path: path.join(screenshotDir, "admin-ui.png") }).catch(() => {});
    await context.close();
  }
  const refusedPost = "Failed to load resource: the server responded with a status of 400 (Bad Request)";
  const unexplained = errors.filter((error) => error !== refusedPost || refusedPollingPosts-- <= 0);
  assert.deepEqual(unexplained, [], "the page logged errors");
  assert.ok(
    answered.some((url) => url.startsWith("https://cdn.jsdelivr.net/npm/@mdi/font")),
    `requests answered: ${answered}`,
  );

  assert.ok((await stat(docsPicture)).mtimeMs >= started, `${docsPicture} was written by this run`);
  const png = await readFile(docsPicture);
  assert.equal(png.toString("latin1", 1, 4), "PNG");
  assert.deepEqual({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) }, viewport);
});

test("/admin/ is not served without --admin-ui", async () => {
  const plain = await startIorelay({ args: ["--static-dir", staticDir, "--tick-interval-ms", "0"] });
  try {
    const res = await fetch(`${plain.url}/admin/`);
    const body = await res.text();
    assert.ok(!body.includes("Socket.IO Admin UI"), `/admin/ answered ${res.status} with the Admin UI`);
  } finally {
    await plain.stop();
  }
});
