// The chat example (examples/chat/) in headless Chromium, with one unchanged page against two
// servers: the example's Node express + socket.io server, and iorelay with the example's
// express app behind it (webhooks in, server API out). Each run logs two users in, types,
// chats both ways, posts an announcement through the app's REST route, closes one tab, and
// checks what each page shows.
//
// Needs `npm ci --prefix examples/chat` (express, socket.io, and the client bundle it copies into
// examples/chat/public/socket.io/), the iorelay binary and Chromium at /usr/bin/chromium
// (CHROMIUM_PATH overrides it). Each run leaves screenshots/example-chat-<server>.png.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { freePort, startIorelay } from "../support/iorelay.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const exampleDir = path.resolve(here, "..", "..", "examples", "chat");
const publicDir = path.join(exampleDir, "public");
const screenshotDir = path.join(here, "screenshots");
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const WEBHOOK_SECRET = "example-chat-webhook-secret";
const API_KEY = "example-chat-api-key";

let browser;

before(async () => {
  for (const needed of [path.join(exampleDir, "node_modules", "express"), path.join(publicDir, "socket.io", "socket.io.js")]) {
    assert.ok(existsSync(needed), `${path.relative(exampleDir, needed)} is missing: run npm ci --prefix examples/chat`);
  }
  assert.ok(existsSync(executablePath), `no Chromium at ${executablePath}: apt-get install chromium, or set CHROMIUM_PATH`);
  await mkdir(screenshotDir, { recursive: true });
  browser = await chromium.launch({
    executablePath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run", "--disable-quic"],
  });
});

after(async () => {
  await browser?.close();
});

/**
 * Runs one of the example's Node servers on 127.0.0.1:`port` and waits for its "listening on"
 * line. Returns `{ url, logs(), stop() }`.
 */
async function startNodeServer(script, { port, env = {}, readyTimeoutMs = 10_000 }) {
  const child = spawn(process.execPath, [path.join(exampleDir, script)], {
    cwd: exampleDir,
    env: { ...process.env, ...env, HOST: "127.0.0.1", PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = once(child, "exit");
  const ready = new Promise((resolve) => child.stdout.on("data", () => /listening on/.test(output) && resolve()));
  let timer;
  const outcome = await Promise.race([
    ready.then(() => "ready"),
    exited.then(() => "exited"),
    new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), readyTimeoutMs))),
  ]);
  clearTimeout(timer);
  if (outcome !== "ready") {
    child.kill("SIGKILL");
    throw new Error(`${script} did not start (${outcome}):\n${output}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    logs: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * The two ways to serve the chat. Each returns `{ pageUrl, appUrl, check(), logs(), stop() }`:
 * the page's address, the express app's (which has POST /announce), checks to run after the
 * scenario, and the servers' output for failure messages.
 */
const servers = {
  async "socket.io"() {
    const node = await startNodeServer("socketio-server.mjs", { port: await freePort() });
    return { pageUrl: node.url, appUrl: node.url, check: async () => {}, logs: node.logs, stop: () => node.stop() };
  },

  async "iorelay + express"() {
    const [appPort, relayPort] = [await freePort(), await freePort()];
    const app = await startNodeServer("app.mjs", {
      port: appPort,
      env: { IORELAY_URL: `http://127.0.0.1:${relayPort}`, IORELAY_WEBHOOK_SECRET: WEBHOOK_SECRET, IORELAY_API_KEY: API_KEY },
    });
    let relay;
    try {
      relay = await startIorelay({
        port: relayPort,
        args: [
          "--static-dir", publicDir,
          "--builtin-events", "none",
          "--tick-interval-ms", "0",
          "--webhook-url", `${app.url}/iorelay`,
          "--webhook-secret", WEBHOOK_SECRET,
          "--api-key", API_KEY,
        ],
      });
    } catch (error) {
      await app.stop();
      throw error;
    }
    return {
      pageUrl: relay.url,
      appUrl: app.url,
      async check() {
        // Every webhook of the run was answered, and the app refuses a body it cannot verify.
        const health = await (await fetch(`${relay.url}/healthz`)).json();
        assert.deepEqual(health.webhook, { reachable: true, failures: 0 }, "iorelay saw no failed webhook");
        const forged = await fetch(`${app.url}/iorelay`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-iorelay-signature": `sha256=${"0".repeat(64)}` },
          body: JSON.stringify({ type: "event", namespace: "/", socket: { id: "x", data: {} }, event: "add user", args: ["mallory"] }),
        });
        assert.equal(forged.status, 401, "a webhook with a wrong signature is refused");
      },
      logs: () => `--- app.mjs ---\n${app.logs()}\n--- iorelay ---\n${relay.logs()}`,
      stop: () => Promise.all([relay.stop(), app.stop()]),
    };
  },
};

/** A fresh browser context on `url` that records uncaught errors, console errors and failed requests. */
async function openPage(url) {
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(`uncaught ${error.name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("response", (res) => {
    if (res.status() >= 400) errors.push(`${res.status()} for ${res.request().method()} ${res.url()}`);
  });
  const response = await page.goto(url);
  assert.equal(response.status(), 200, `${url} answers 200`);
  return { context, page, errors };
}

/** What the page's chat shows, one string per line: "name: text" for messages, the text for the rest. */
function transcript(page) {
  return page.locator('[data-testid="entries"] > li').evaluateAll((items) =>
    items.map((item) =>
      item.dataset.username === undefined
        ? item.textContent
        : `${item.dataset.username}: ${item.querySelector('[data-testid="message-body"]').textContent}`,
    ),
  );
}

/** Waits until an element with `testId` has a text matching `expected`. */
async function waitForText(page, testId, expected, timeout = 5_000) {
  try {
    await page.getByTestId(testId).filter({ hasText: expected }).first().waitFor({ timeout });
  } catch (error) {
    const shown = testId === "status" || testId === "user-count" ? await page.getByTestId(testId).allTextContents() : await transcript(page);
    throw new Error(`[data-testid=${testId}] never showed ${expected} within ${timeout} ms; the page shows ${JSON.stringify(shown)}`, {
      cause: error,
    });
  }
}

async function logIn(page, username) {
  await waitForText(page, "status", /^connected$/);
  await page.getByTestId("username-input").fill(username);
  await page.getByTestId("username-input").press("Enter");
  await waitForText(page, "log", new RegExp(`^Welcome, ${username}$`));
}

async function sendMessage(page, text) {
  await page.getByTestId("message-input").fill(text);
  await page.getByTestId("message-input").press("Enter");
}

for (const [name, start] of Object.entries(servers)) {
  test(`the chat page works unchanged against ${name}`, async () => {
    const server = await start();
    const tabs = [];
    try {
      const opened = await Promise.allSettled([openPage(server.pageUrl), openPage(server.pageUrl)]);
      for (const result of opened) if (result.status === "fulfilled") tabs.push(result.value);
      const failure = opened.find((result) => result.status === "rejected");
      if (failure) throw failure.reason;
      const [ann, bob] = tabs;

      // Log in one after the other, so the counts are known.
      await logIn(ann.page, "ann");
      await waitForText(ann.page, "user-count", /^1 participant$/);
      await logIn(bob.page, "bob");
      await waitForText(bob.page, "user-count", /^2 participants$/);
      await waitForText(ann.page, "log", /^bob joined$/);
      await waitForText(ann.page, "user-count", /^2 participants$/);

      // Bob types (a key every 100 ms keeps him "typing"): ann sees the notice, and sees it go
      // once he pauses, before he sends anything.
      const typingNotice = ann.page.getByTestId("typing").filter({ hasText: /^bob\s*is typing…$/ });
      await Promise.all([
        typingNotice.waitFor({ timeout: 5_000 }),
        bob.page.getByTestId("message-input").pressSequentially("hello ann", { delay: 100 }),
      ]);
      await typingNotice.waitFor({ state: "detached", timeout: 5_000 });
      assert.equal(await ann.page.getByTestId("message").count(), 0, "nothing was sent while bob typed");
      await bob.page.getByTestId("message-input").press("Enter");
      await waitForText(ann.page, "message", /^bob\s*hello ann$/);
      assert.equal(await bob.page.getByTestId("message-input").inputValue(), "", "the input is cleared after sending");

      // And back.
      await sendMessage(ann.page, "hi bob");
      await waitForText(bob.page, "message", /^ann\s*hi bob$/);

      // The app's REST route pushes to every socket (through iorelay's server API on iorelay).
      const announced = await fetch(`${server.appUrl}/announce`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: "Maintenance at noon" }),
      });
      assert.equal(announced.status, 200, `POST /announce: ${await announced.clone().text()}`);
      assert.deepEqual(await announced.json(), { ok: true });
      await Promise.all([
        waitForText(ann.page, "announcement", /^Announcement: Maintenance at noon$/),
        waitForText(bob.page, "announcement", /^Announcement: Maintenance at noon$/),
      ]);

      assert.deepEqual(await transcript(bob.page), [
        "Welcome, bob",
        "there are 2 participants",
        "bob: hello ann",
        "ann: hi bob",
        "Announcement: Maintenance at noon",
      ]);
      await bob.page.screenshot({ path: path.join(screenshotDir, `example-chat-${slug(name)}-bob.png`) });

      // Bob closes his tab.
      await bob.context.close();
      await waitForText(ann.page, "log", /^bob left$/);
      await waitForText(ann.page, "user-count", /^1 participant$/);

      assert.deepEqual(await transcript(ann.page), [
        "Welcome, ann",
        "there is 1 participant",
        "bob joined",
        "there are 2 participants",
        "bob: hello ann",
        "ann: hi bob",
        "Announcement: Maintenance at noon",
        "bob left",
        "there is 1 participant",
      ]);
      await ann.page.screenshot({ path: path.join(screenshotDir, `example-chat-${slug(name)}.png`) });

      await server.check();
      assert.deepEqual(
        tabs.flatMap((tab) => tab.errors),
        [],
        "the pages logged no errors",
      );
    } catch (error) {
      error.message += `\n${server.logs()}`;
      throw error;
    } finally {
      await Promise.all(tabs.map((tab) => tab.context.close()));
      await server.stop();
    }
  });
}

function slug(text) {
  return text.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
}
