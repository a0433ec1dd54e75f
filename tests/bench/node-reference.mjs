// Node socket.io 4 reference server for the benchmark: iorelay's event contract on the `/`
// namespace (welcome `message`, `message` echo, `echo` acks, `join`, `leave`, `chat`), ticker
// off, Node socket.io's default options, no logging.
//
// For the scenarios of iorelay's webhooks and server API, the app's side lives in this process,
// as it would in a Node socket.io backend: a `work` handler that acknowledges with its
// arguments (what iorelay's webhook app answers), and `POST /api/emit` on the same port, a
// bare `node:http` route doing `io.to(to).emit(event, ...args)` (without the API key iorelay
// asks for).
//
// `--connection-state-recovery` turns on Node's `connectionStateRecovery` (in memory, or in
// the Redis streams adapter), to compare with iorelay's flag of the same name.
//
// `--redis-url` makes the server a node of a cluster on that Redis, through
// `@socket.io/redis-streams-adapter` (the adapter Node recovers with across servers) or, with
// `--redis-adapter pubsub`, through `@socket.io/redis-adapter`.
//
//   node tests/bench/node-reference.mjs [--host 127.0.0.1] [--port 3000] [--path /socket.io/]
//     [--connection-state-recovery] [--redis-url redis://127.0.0.1:6379]
//     [--redis-adapter streams|pubsub]

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";

const { values: options } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "3000" },
    path: { type: "string", default: "/socket.io/" },
    "connection-state-recovery": { type: "boolean", default: false },
    "redis-url": { type: "string" },
    "redis-adapter": { type: "string", default: "streams" },
  },
});

// The cluster's adapter, when there is a Redis.
async function clusterAdapter(url, kind) {
  if (!url) return {};
  const { createClient } = await import("redis");
  const client = createClient({ url });
  client.on("error", (error) => console.error(`redis: ${error.message}`));
  await client.connect();
  if (kind === "streams") {
    const { createAdapter } = await import("@socket.io/redis-streams-adapter");
    return { adapter: createAdapter(client) };
  }
  if (kind === "pubsub") {
    const { createAdapter } = await import("@socket.io/redis-adapter");
    const subscriber = client.duplicate();
    subscriber.on("error", (error) => console.error(`redis: ${error.message}`));
    await subscriber.connect();
    return { adapter: createAdapter(client, subscriber) };
  }
  throw new Error(`--redis-adapter must be streams or pubsub, not ${kind}`);
}

const MAX_ROOM_NAME_CHARS = 128;

function roomError(room, present) {
  if (!present) return "a room name is required";
  if (typeof room !== "string") return "the room name must be a string";
  if (room.length === 0) return "the room name must not be empty";
  if ([...room].length > MAX_ROOM_NAME_CHARS)
    return `the room name must be at most ${MAX_ROOM_NAME_CHARS} characters`;
  return null;
}

function roomSize(room) {
  return io.of("/").adapter.rooms.get(room)?.size ?? 0;
}

function reply(ack, value) {
  if (typeof ack === "function") ack(value);
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

// Requests socket.io does not take (other paths than its own) come here.
function onRequest(req, res) {
  if (req.method !== "POST" || req.url !== "/api/emit") return answer(res, 404, { error: "not found" });
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    let request;
    try {
      request = JSON.parse(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    } catch {
      return answer(res, 400, { error: "the body is not JSON" });
    }
    const { event, args = [], to } = request ?? {};
    if (typeof event !== "string" || !Array.isArray(args)) {
      return answer(res, 400, { error: "expected { event, args, to }" });
    }
    const target = Array.isArray(to) && to.length > 0 ? io.to(to) : io;
    target.emit(event, ...args);
    answer(res, 200, { ok: true });
  });
}

const httpServer = createServer(onRequest);
const io = new Server(httpServer, {
  path: options.path,
  serveClient: false,
  ...(options["connection-state-recovery"] ? { connectionStateRecovery: {} } : {}),
  ...(await clusterAdapter(options["redis-url"], options["redis-adapter"])),
});

io.on("connection", (socket) => {
  socket.emit("message", { text: "Welcome to iorelay", id: socket.id });

  socket.on("message", (...args) => socket.emit("message", ...args));

  socket.on("echo", (...args) => {
    const ack = args.at(-1);
    if (typeof ack === "function") ack(...args.slice(0, -1));
  });

  // The app's handler of the `webhook` scenario, in process.
  socket.on("work", (...args) => {
    const ack = args.at(-1);
    if (typeof ack === "function") ack(...args.slice(0, -1));
  });

  const roomHandler = (joining) => (...args) => {
    const ack = typeof args.at(-1) === "function" ? args.pop() : undefined;
    const error = roomError(args[0], args.length > 0);
    if (error) return reply(ack, { error });
    const room = args[0];
    if (joining) socket.join(room);
    else socket.leave(room);
    reply(ack, { room, size: roomSize(room) });
  };
  socket.on("join", roomHandler(true));
  socket.on("leave", roomHandler(false));

  socket.on("chat", (request, ack) => {
    if (typeof ack !== "function" && typeof request === "function") {
      return reply(request, { error: "chat expects an object { room, text }" });
    }
    if (request === null || typeof request !== "object" || Array.isArray(request)) {
      return reply(ack, { error: "chat expects an object { room, text }" });
    }
    if (typeof request.text !== "string") {
      return reply(ack, { error: "chat text must be a string" });
    }
    const room = request.room ?? null;
    if (room !== null) {
      const error = roomError(room, true);
      if (error) return reply(ack, { error });
    }
    const message = { room, text: request.text, from: socket.id, ts: Date.now() };
    // io.to() includes the sender when it is a member, as iorelay's `within` does.
    if (room === null) io.emit("chat", message);
    else io.to(room).emit("chat", message);
    reply(ack, { ok: true });
  });
});

httpServer.listen(Number(options.port), options.host, () => {
  const { address, port } = httpServer.address();
  console.error(`node-reference listening on ${address}:${port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
