// Socket.IO client helpers shared by the end-to-end tests: connecting, recording what a
// socket receives, waiting for a condition with a deadline, and closing everything afterwards.
import { io } from "socket.io-client";

/** Client options for each transport mode of socket.io-client@4 the suite runs against. */
export const TRANSPORT_MODES = [
  { name: "polling then websocket upgrade", transports: undefined, finalTransport: "websocket" },
  { name: "websocket only", transports: ["websocket"], finalTransport: "websocket" },
  { name: "polling only", transports: ["polling"], finalTransport: "polling" },
];

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let counter = 0;
/** A name no other test in this process uses (room names, chat texts). */
export function unique(prefix) {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/**
 * Polls `condition` every `intervalMs` until it returns a truthy value, which is returned.
 * Throws with `what` in the message once `timeoutMs` has passed.
 */
export async function waitUntil(condition, { timeoutMs = 3_000, intervalMs = 10, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Records every event a socket receives, with the time it arrived. Uses `onAny` when the
 * client has it (v4); for socket.io-client@2 the event names to record must be given.
 */
export class Recorder {
  constructor(socket, eventNames = []) {
    /** @type {{ event: string, args: unknown[], at: number }[]} */
    this.events = [];
    const push = (event, args) => this.events.push({ event, args, at: Date.now() });
    if (typeof socket.onAny === "function") {
      socket.onAny((event, ...args) => push(event, args));
    } else {
      for (const name of eventNames) socket.on(name, (...args) => push(name, args));
    }
  }

  /** Every recorded `event` whose args satisfy `match`. */
  all(event, match = () => true) {
    return this.events.filter((e) => e.event === event && match(...e.args));
  }

  /** The first recorded `event` whose args satisfy `match`, or undefined. */
  find(event, match = () => true) {
    return this.events.find((e) => e.event === event && match(...e.args));
  }

  /** Resolves with the args of the first `event` (already received or future) satisfying `match`. */
  async waitFor(event, match = () => true, timeoutMs = 3_000) {
    const found = await waitUntil(() => this.find(event, match), {
      timeoutMs,
      what: `event "${event}"`,
    });
    return found.args;
  }
}

/** Resolves with the args of the next `name` event on `emitter`; rejects after `timeoutMs`. */
export function nextEvent(emitter, name, timeoutMs = 3_000) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(name, onEvent);
      reject(new Error(`no "${name}" event within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.once(name, onEvent);
  });
}

/**
 * Emits `event` with `args` and resolves with every argument of the acknowledgement
 * (`emitWithAck` only hands back the first one).
 */
export function emitWithAckArgs(socket, event, args, timeoutMs = 3_000) {
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, ...args, (err, ...ackArgs) => {
      if (err) reject(new Error(`no ack for "${event}" within ${timeoutMs} ms`));
      else resolve(ackArgs);
    });
  });
}

/** The bytes of a binary value as a Buffer; fails when `value` is not binary at all. */
export function bytesOf(value) {
  if (value instanceof ArrayBuffer) return Buffer.from(new Uint8Array(value));
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`expected binary data, got ${typeof value}: ${JSON.stringify(value)}`);
}

/**
 * Keeps track of the sockets a test opens so that `closeAll()` (from `afterEach`/`after`)
 * can close them, whatever happened in the test.
 */
export class ClientSet {
  constructor() {
    this.sockets = new Set();
  }

  /**
   * Opens a socket.io-client@4 socket on `url` (which may end with a namespace) and resolves
   * with `{ socket, recorder }` once it is connected. Every socket gets its own connection
   * (`forceNew`) and never reconnects, so a dropped connection shows up in the test.
   */
  async connect(url, opts = {}, { timeoutMs = 5_000 } = {}) {
    const socket = this.open(url, opts);
    const recorder = new Recorder(socket);
    await whenConnected(socket, timeoutMs);
    return { socket, recorder };
  }

  /** Opens a socket without waiting for it (for tests that act before `connect`). */
  open(url, opts = {}) {
    const socket = io(url, { forceNew: true, reconnection: false, ...opts });
    this.sockets.add(socket);
    return socket;
  }

  /** Registers a socket opened elsewhere (for example by socket.io-client@2) for `closeAll()`. */
  track(socket) {
    this.sockets.add(socket);
    return socket;
  }

  closeAll() {
    for (const socket of this.sockets) {
      socket.removeAllListeners?.();
      socket.close();
      // Also close the manager: a socket that never connected leaves its engine open otherwise.
      socket.io?.disconnect?.();
    }
    this.sockets.clear();
  }
}

/** Resolves once `socket` is connected; rejects on `connect_error` or after `timeoutMs`. */
export function whenConnected(socket, timeoutMs = 5_000) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
      socket.off("error", onError);
    };
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      cleanup();
      reject(new Error(`connect_error: ${err?.message ?? err}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not connected within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
    // socket.io-client@2 reports a transport failure after the handshake as `error`.
    socket.on("error", onError);
  });
}

/** Joins `socket` to `room` with the built-in `join` event and resolves with its ack. */
export async function joinRoom(socket, room) {
  const ack = await socket.timeout(3_000).emitWithAck("join", room);
  if (ack?.room !== room) throw new Error(`join ${room}: unexpected ack ${JSON.stringify(ack)}`);
  return ack;
}
