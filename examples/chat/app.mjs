// The chat's logic as an express app behind iorelay. iorelay holds the sockets and POSTs every
// client event here (POST /iorelay); each answer says what the socket.io handler in
// socketio-server.mjs would have done: remember the name in socket.data, join the chat room,
// emit to the sender and to the others. POST /announce pushes to the chat through iorelay's
// server API.
//
//   IORELAY_WEBHOOK_SECRET=… IORELAY_API_KEY=… node app.mjs
//
// PORT (4000), HOST (127.0.0.1) and IORELAY_URL (http://127.0.0.1:3000) come from the
// environment too. The page itself is served by iorelay (--static-dir public); see README.md.
import { createHmac, timingSafeEqual } from "node:crypto";

import express from "express";

const port = Number(process.env.PORT ?? 4000);
const host = process.env.HOST ?? "127.0.0.1";
const iorelayUrl = process.env.IORELAY_URL ?? "http://127.0.0.1:3000";
const webhookSecret = required("IORELAY_WEBHOOK_SECRET");
const apiKey = required("IORELAY_API_KEY");

/** Logged-in users; iorelay keeps each socket's name in `socket.data.username` for us. */
let numUsers = 0;
/** The room of logged-in sockets: chat traffic goes to it, not to sockets still on the login form. */
const CHAT_ROOM = "chat";

/**
 * The chat's events, as `socket.on(event, handler)` would register them: each handler gets the
 * webhook's `socket` (with `data`) and the client's arguments, and returns the answer.
 */
const events = {
  "add user"(socket, username) {
    if (socket.data.username !== undefined || !isUsername(username)) return {};
    username = username.trim();
    numUsers += 1;
    // Applied in this order: data, join, emit; so "to" already counts the new member (and, as
    // socket.to() does, leaves the sender out).
    return {
      data: { username },
      join: [CHAT_ROOM],
      emit: [
        { event: "login", args: [{ numUsers }] },
        { event: "user joined", args: [{ username, numUsers }], to: [CHAT_ROOM] },
      ],
    };
  },

  "new message"(socket, message) {
    if (socket.data.username === undefined || typeof message !== "string") return {};
    return { emit: [{ event: "new message", args: [{ username: socket.data.username, message }], to: [CHAT_ROOM] }] };
  },

  typing(socket) {
    if (socket.data.username === undefined) return {};
    return { emit: [{ event: "typing", args: [{ username: socket.data.username }], to: [CHAT_ROOM] }] };
  },

  "stop typing"(socket) {
    if (socket.data.username === undefined) return {};
    return { emit: [{ event: "stop typing", args: [{ username: socket.data.username }], to: [CHAT_ROOM] }] };
  },
};

/** `disconnect` arrives once the socket has left its rooms, so everyone in the chat hears it. */
function onDisconnect(socket) {
  if (socket.data.username === undefined) return {};
  numUsers -= 1;
  return { emit: [{ event: "user left", args: [{ username: socket.data.username, numUsers }], to: [CHAT_ROOM] }] };
}

function answer(call) {
  const socket = { ...call.socket, data: call.socket?.data ?? {} };
  switch (call.type) {
    case "connect":
      return {}; // everyone may connect; a 4xx here would refuse the socket
    case "event":
      // Events nobody handles are ignored, as socket.io ignores events without a listener.
      return Object.hasOwn(events, call.event) ? events[call.event](socket, ...(call.args ?? [])) : {};
    case "disconnect":
      return onDisconnect(socket);
    default:
      return {};
  }
}

const app = express();

// The raw body, because the signature covers the exact bytes iorelay sent.
app.post("/iorelay", express.raw({ type: "application/json", limit: "1mb" }), (req, res) => {
  if (!Buffer.isBuffer(req.body) || !signatureMatches(req.body, req.get("x-iorelay-signature"))) {
    res.status(401).json({ message: "bad signature" });
    return;
  }
  let call;
  try {
    call = JSON.parse(req.body.toString("utf8"));
  } catch {
    res.status(400).json({ message: "body is not JSON" });
    return;
  }
  res.json(answer(call));
});

// A REST route that pushes to everyone in the chat, as a backend job would:
// io.to(room).emit(...) becomes a call to iorelay's server API.
app.post("/announce", express.json(), async (req, res) => {
  const text = req.body?.text;
  if (typeof text !== "string" || text.trim() === "") {
    res.status(400).json({ error: "text must be a non-empty string" });
    return;
  }
  try {
    await iorelayApi("/api/emit", { event: "announcement", args: [{ text }], to: [CHAT_ROOM] });
  } catch (error) {
    // fetch's own message is "fetch failed"; the reason (ECONNREFUSED, …) is in its cause.
    res.status(502).json({ error: error.cause ? `${error.message}: ${error.cause.message}` : error.message });
    return;
  }
  res.json({ ok: true });
});

async function iorelayApi(route, body) {
  const response = await fetch(new URL(route, iorelayUrl), {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`iorelay answered ${route} with ${response.status}: ${await response.text()}`);
  return response.json();
}

function signatureMatches(rawBody, header) {
  if (typeof header !== "string") return false;
  const expected = Buffer.from(`sha256=${createHmac("sha256", webhookSecret).update(rawBody).digest("hex")}`);
  const presented = Buffer.from(header);
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

function isUsername(value) {
  return typeof value === "string" && value.trim() !== "" && value.length <= 32;
}

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`error: set ${name} (the same value iorelay gets)`);
    process.exit(2);
  }
  return value;
}

const server = app.listen(port, host, () => {
  const { address, port: bound } = server.address();
  console.log(`chat app listening on http://${address}:${bound}/ (webhooks at /iorelay, iorelay at ${iorelayUrl})`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
