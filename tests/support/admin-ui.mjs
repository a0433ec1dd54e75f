// The Socket.IO Admin UI's side of the /admin namespace, as the official page
// (@socket.io/admin-ui 0.5, ui/dist/js/app.*.js) drives it, and the Node reference it is
// compared with: socket.io 4.8 instrumented by @socket.io/admin-ui with basic auth.
import { once } from "node:events";
import { createServer } from "node:http";

import { instrument } from "@socket.io/admin-ui";
import { Server } from "socket.io";

import { Recorder, whenConnected } from "./clients.mjs";

export const ADMIN_USERNAME = "ops";
export const ADMIN_PASSWORD = "admin-pass-3c9e";
/**
 * bcrypt of ADMIN_PASSWORD, made with bcryptjs (`bcrypt.hashSync(password, 4)`), the library
 * the Node package compares with. Cost 4, the lowest, keeps the debug build's login fast.
 */
export const ADMIN_PASSWORD_HASH = "$2a$04$4EyYSizW2G5njxxR4Wo21ut.aqgwb4PtWMtsW7nDm4jEUVVP.dOQK";

/** iorelay's flags for the Admin UI with the credentials above. */
export function iorelayAdminArgs({ mode = "development", serverId } = {}) {
  return [
    "--admin-ui",
    "--admin-ui-mode",
    mode,
    "--admin-ui-username",
    ADMIN_USERNAME,
    "--admin-ui-password-hash",
    ADMIN_PASSWORD_HASH,
    ...(serverId ? ["--admin-ui-server-id", serverId] : []),
  ];
}

/** What the page's feature checks look for in `config`, development mode (production lacks ALL_EVENTS). */
export const DEVELOPMENT_FEATURES = [
  "EMIT",
  "JOIN",
  "LEAVE",
  "DISCONNECT",
  "MJOIN",
  "MLEAVE",
  "MDISCONNECT",
  "AGGREGATED_EVENTS",
  "ALL_EVENTS",
];

/** How JSON carries the Date the Node package sends with each live update. */
export const ISO_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * Opens the /admin namespace of `url` with the page's own client options
 * (`forceNew`, `withCredentials`, `auth`; `wsOnly` is the form's "WebSocket only" box) and a
 * Recorder attached before the first packet. Resolves with `{ socket, recorder }` once
 * connected; rejects with the `connect_error` message otherwise.
 */
export async function openAdmin(clients, url, { auth, wsOnly = true, namespace = "/admin" } = {}) {
  auth ??= { username: ADMIN_USERNAME, password: ADMIN_PASSWORD };
  const socket = clients.open(`${url}${namespace}`, {
    withCredentials: true,
    transports: wsOnly ? ["websocket"] : ["polling", "websocket"],
    auth,
  });
  const recorder = new Recorder(socket);
  await whenConnected(socket);
  return { socket, recorder };
}

/**
 * Node socket.io with @socket.io/admin-ui, and the few built-in events of iorelay the suites
 * use (`join` and `leave` with their `{ room, size }` ack, `message` sent back, `echo`),
 * on "/" and "/chat". Returns `{ name, url, pid, hostname, stop() }`.
 */
export async function startNodeAdminReference({ mode = "development", serverId } = {}) {
  const httpServer = createServer();
  const io = new Server(httpServer);
  instrument(io, {
    auth: { type: "basic", username: ADMIN_USERNAME, password: ADMIN_PASSWORD_HASH },
    mode,
    serverId,
  });
  for (const nsp of [io.of("/"), io.of("/chat")]) {
    nsp.on("connection", (socket) => {
      const sizeOf = (room) => nsp.adapter.rooms.get(room)?.size ?? 0;
      socket.on("join", async (room, ack) => {
        await socket.join(room);
        ack?.({ room, size: sizeOf(room) });
      });
      socket.on("leave", async (room, ack) => {
        await socket.leave(room);
        ack?.({ room, size: sizeOf(room) });
      });
      socket.on("message", (...args) => socket.emit("message", ...args));
      socket.on("echo", (...args) => {
        const ack = args.pop();
        if (typeof ack === "function") ack(...args);
      });
    });
  }
  httpServer.listen(0, "127.0.0.1");
  await once(httpServer, "listening");
  return {
    url: `http://127.0.0.1:${httpServer.address().port}`,
    pid: process.pid,
    async stop() {
      io.disconnectSockets(true);
      await new Promise((resolve) => io.close(resolve));
    },
  };
}
