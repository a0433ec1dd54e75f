// The chat on plain Node: express serves the page and socket.io runs the chat in-process.
// This is the reference that app.mjs + iorelay reproduce without changing the page.
//
//   node socketio-server.mjs        # PORT (3000) and HOST (127.0.0.1) from the environment
//   open http://localhost:3000/
//   curl -X POST localhost:3000/announce -H 'content-type: application/json' -d '{"text":"hello"}'
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

import express from "express";
import { Server } from "socket.io";

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";
const publicDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "public");

const app = express();
app.use(express.static(publicDir));

const server = http.createServer(app);
const io = new Server(server);

/** Logged-in users; a socket's name lives in `socket.data.username`. */
let numUsers = 0;
/** The room of logged-in sockets: chat traffic goes to it, not to sockets still on the login form. */
const CHAT_ROOM = "chat";

io.on("connection", (socket) => {
  socket.on("add user", (username) => {
    if (socket.data.username !== undefined || !isUsername(username)) return;
    socket.data.username = username.trim();
    numUsers += 1;
    socket.join(CHAT_ROOM);
    socket.emit("login", { numUsers });
    socket.to(CHAT_ROOM).emit("user joined", { username: socket.data.username, numUsers });
  });

  socket.on("new message", (message) => {
    if (socket.data.username === undefined || typeof message !== "string") return;
    socket.to(CHAT_ROOM).emit("new message", { username: socket.data.username, message });
  });

  socket.on("typing", () => {
    if (socket.data.username === undefined) return;
    socket.to(CHAT_ROOM).emit("typing", { username: socket.data.username });
  });

  socket.on("stop typing", () => {
    if (socket.data.username === undefined) return;
    socket.to(CHAT_ROOM).emit("stop typing", { username: socket.data.username });
  });

  // By now the socket has left its rooms, so everyone in the chat hears it.
  socket.on("disconnect", () => {
    if (socket.data.username === undefined) return;
    numUsers -= 1;
    socket.to(CHAT_ROOM).emit("user left", { username: socket.data.username, numUsers });
  });
});

// A REST route that pushes to everyone in the chat, as a backend job would.
app.post("/announce", express.json(), (req, res) => {
  const text = req.body?.text;
  if (typeof text !== "string" || text.trim() === "") {
    res.status(400).json({ error: "text must be a non-empty string" });
    return;
  }
  io.to(CHAT_ROOM).emit("announcement", { text });
  res.json({ ok: true });
});

function isUsername(value) {
  return typeof value === "string" && value.trim() !== "" && value.length <= 32;
}

server.listen(port, host, () => {
  const { address, port: bound } = server.address();
  console.log(`chat (socket.io) listening on http://${address}:${bound}/`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => io.close(() => process.exit(0)));
}
