// Owns the one socket of the page: connects with the chosen settings and
// reports its status, id, transport and problems to the cards.
import { useCallback, useEffect, useRef, useState } from "react";
import { io, type Socket } from "socket.io-client";
import { resolveEndpoint, transportOptions, type ConnectionSettings, type Endpoint } from "./lib/endpoint";
import { connectErrorProblem, disconnectProblem, type Problem } from "./lib/problems";

export type ConnectionStatus = "connecting" | "connected" | "disconnected" | "reconnecting";

/**
 * How the last reconnect went: `recovered` when the server gave the socket back its id, rooms
 * and missed events (`socket.recovered`, with `--connection-state-recovery`), `new-session`
 * otherwise. Null until the socket has reconnected once.
 */
export type RecoveryState = "recovered" | "new-session";

export interface RelayState {
  status: ConnectionStatus;
  endpoint: Endpoint | null;
  socketId: string | null;
  /** Name of the Engine.IO transport in use: `polling` or `websocket`. */
  transport: string | null;
  /** The full message of the last `connect_error`, until the next successful connect. */
  lastConnectError: string | null;
  reconnectAttempt: number;
  recovery: RecoveryState | null;
  problem: Problem | null;
}

export interface InvalidSetting {
  field: "serverUrl" | "namespace";
  message: string;
}

export interface RelaySocket {
  state: RelayState;
  /** The current socket, or null before the first connect and after a disconnect. */
  socket: Socket | null;
  /** Counts the sockets created, so that views of one socket can start afresh with the next. */
  generation: number;
  /** Validates the settings and connects; returns the field to fix, if any. */
  connect: (settings: ConnectionSettings) => InvalidSetting | null;
  disconnect: () => void;
  /** Records the size of an outgoing send, to explain a dropped connection that follows it. */
  noteSend: (bytes: number) => void;
  dismissProblem: () => void;
}

const initialState: RelayState = {
  status: "disconnected",
  endpoint: null,
  socketId: null,
  transport: null,
  lastConnectError: null,
  reconnectAttempt: 0,
  recovery: null,
  problem: null,
};

/** Wait before reconnecting after the server closed the socket, so a server that is shutting down has gone. */
const serverDisconnectRetryMs = 1000;

export function useRelaySocket(): RelaySocket {
  const [state, setState] = useState<RelayState>(initialState);
  const [socket, setSocket] = useState<Socket | null>(null);
  const [generation, setGeneration] = useState(0);
  const socketRef = useRef<Socket | null>(null);
  const lastSendRef = useRef<{ bytes: number; at: number } | null>(null);
  const retryTimerRef = useRef<number | undefined>(undefined);

  const teardown = useCallback(() => {
    window.clearTimeout(retryTimerRef.current);
    const current = socketRef.current;
    socketRef.current = null;
    if (current) {
      current.removeAllListeners();
      current.io.removeAllListeners();
      current.io.engine?.removeAllListeners("upgrade");
      current.disconnect();
    }
  }, []);

  const connect = useCallback(
    (settings: ConnectionSettings): InvalidSetting | null => {
      const resolved = resolveEndpoint(settings.serverUrl, settings.namespace, window.location.origin);
      if (!resolved.ok) {
        const problem: Problem = { kind: "invalid-input", title: "Check the connection settings", detail: resolved.message };
        setState((s) => ({ ...s, problem }));
        return { field: resolved.field, message: resolved.message };
      }
      teardown();
      const { endpoint } = resolved;
      const next = io(endpoint.url, {
        ...transportOptions(settings.transport),
        // A socket of its own, never one shared with an earlier connection to the same server.
        forceNew: true,
        reconnectionDelay: 500,
        reconnectionDelayMax: 3000,
        timeout: 10_000,
      });
      socketRef.current = next;
      lastSendRef.current = null;
      const isCurrent = () => socketRef.current === next;
      const update = (change: Partial<RelayState>) => {
        if (isCurrent()) setState((s) => ({ ...s, ...change }));
      };
      const transportName = () => next.io.engine?.transport?.name ?? null;

      // Each reconnection opens a new engine: follow its upgrades from polling to websocket.
      const watchEngine = () => {
        next.io.engine?.on("upgrade", (transport: { name: string }) => update({ transport: transport.name }));
      };
      next.io.on("open", watchEngine);
      watchEngine();

      let connectedBefore = false;
      next.on("connect", () => {
        if (!isCurrent()) return;
        const recovery: RecoveryState | null = connectedBefore ? (next.recovered ? "recovered" : "new-session") : null;
        connectedBefore = true;
        setState((s) => ({
          ...s,
          status: "connected",
          socketId: next.id ?? null,
          transport: transportName(),
          lastConnectError: null,
          reconnectAttempt: 0,
          recovery,
          // A note about an oversized send stays until dismissed; the rest is resolved by connecting.
          problem: s.problem?.kind === "too-large" ? s.problem : null,
        }));
      });
      next.on("connect_error", (error: Error) => {
        update({
          // `active` stays true while the manager retries (server unreachable); a refusal from
          // the server itself (e.g. an unknown namespace) is final.
          status: next.active ? "reconnecting" : "disconnected",
          lastConnectError: error.message,
          problem: connectErrorProblem(error, endpoint.origin, endpoint.namespace),
        });
      });
      next.on("disconnect", (reason: string) => {
        const problem = disconnectProblem(reason, lastSendRef.current);
        if (reason === "io server disconnect") {
          // socket.io-client gives up after a server-side disconnect; iorelay sends one when it
          // shuts down, so try again: the manager's backoff takes over if the server is still down.
          window.clearTimeout(retryTimerRef.current);
          retryTimerRef.current = window.setTimeout(() => {
            if (isCurrent()) next.connect();
          }, serverDisconnectRetryMs);
        }
        update({
          status: reason === "io client disconnect" ? "disconnected" : "reconnecting",
          socketId: null,
          transport: null,
          problem,
        });
      });
      next.io.on("reconnect_attempt", (attempt: number) => update({ status: "reconnecting", reconnectAttempt: attempt }));
      next.io.on("reconnect_failed", () => update({ status: "disconnected" }));

      setSocket(next);
      setGeneration((n) => n + 1);
      setState({ ...initialState, status: "connecting", endpoint });
      return null;
    },
    [teardown],
  );

  const disconnect = useCallback(() => {
    teardown();
    setSocket(null);
    setState((s) => ({ ...s, status: "disconnected", socketId: null, transport: null, reconnectAttempt: 0, problem: null }));
  }, [teardown]);

  const noteSend = useCallback((bytes: number) => {
    lastSendRef.current = { bytes, at: Date.now() };
  }, []);

  const dismissProblem = useCallback(() => setState((s) => ({ ...s, problem: null })), []);

  useEffect(() => teardown, [teardown]);

  return { state, socket, generation, connect, disconnect, noteSend, dismissProblem };
}
