// Node socket.io 4.8 with connectionStateRecovery on @socket.io/redis-streams-adapter (the
// adapter Node recovers with across servers), for the recovery comparison in
// tests/js/recovery-cluster.test.mjs. It serves what that test uses of iorelay: `join` with
// its ack, and `POST /api/emit` `{ event, args, to }`.
// Usage: node node-recovery-server.mjs PORT REDIS_URL
import { createServer } from "node:http";

import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";

const [port, redisUrl] = process.argv.slice(2);
const redis = createClient({ url: redisUrl });
await redis.connect();

const httpServer = createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/api/emit") {
    res.writeHead(req.url === "/healthz" ? 200 : 404).end();
    return;
  }
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    const { event, args = [], to = [] } = JSON.parse(body);
    io.to(to).emit(event, ...args);
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  });
});
const io = new Server(httpServer, {
  adapter: createAdapter(redis),
  connectionStateRecovery: { maxDisconnectionDuration: 120_000 },
});
io.on("connection", (socket) => {
  socket.on("join", async (room, ack) => {
    socket.join(room);
    ack?.({ room, size: (await io.in(room).fetchSockets()).length });
  });
});
httpServer.listen(Number(port), "127.0.0.1");
