// Owns the page's browser WebSocket: opens it, follows its readyState, and
// hands incoming frames to the panels; requests with an id wait for their ack.
import { useCallback, useEffect, useRef, useState } from "react";
import { classify, readyStateNames, type IncomingFrame, type ReadyStateName } from "./frames";

export interface PlainState {
  readyState: ReadyStateName;
  url: string | null;
  /** The subprotocol the server chose, "" for none. */
  protocol: string;
  close: { code: number; reason: string } | null;
}

export interface PlainSocket {
  state: PlainState;
  /** Counts the sockets opened, so that panels can start afresh with the next one. */
  generation: number;
  connect: (url: string, protocols: string[]) => string | null;
  disconnect: () => void;
  send: (data: string | ArrayBuffer) => boolean;
  /** Sends a JSON request with an id and resolves with the `data` of its ack. */
  request: (frame: Record<string, unknown>, timeoutMs?: number) => Promise<unknown>;
  /** Calls `listener` with every incoming frame until the returned function is called. */
  subscribe: (listener: (frame: IncomingFrame) => void) => () => void;
}

interface Pending {
  resolve: (data: unknown) => void;
  reject: (error: Error) => void;
  timer: number;
}

const initialState: PlainState = { readyState: "CLOSED", url: null, protocol: "", close: null };

export function usePlainSocket(): PlainSocket {
  const [state, setState] = useState<PlainState>(initialState);
  const [generation, setGeneration] = useState(0);
  const socketRef = useRef<WebSocket | null>(null);
  const listeners = useRef(new Set<(frame: IncomingFrame) => void>());
  const pending = useRef(new Map<number, Pending>());
  const nextId = useRef(1);

  const failPending = useCallback((why: string) => {
    for (const request of pending.current.values()) {
      window.clearTimeout(request.timer);
      request.reject(new Error(why));
    }
    pending.current.clear();
  }, []);

  const connect = useCallback(
    (url: string, protocols: string[]): string | null => {
      let socket: WebSocket;
      try {
        socket = new WebSocket(url, protocols);
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
      socketRef.current?.close();
      failPending("a new connection was opened");
      socket.binaryType = "arraybuffer";
      socketRef.current = socket;
      const sync = (change: Partial<PlainState> = {}) => {
        if (socketRef.current !== socket) return;
        setState((s) => ({ ...s, readyState: readyStateNames[socket.readyState] ?? "CLOSED", ...change }));
      };
      socket.addEventListener("open", () => sync({ protocol: socket.protocol }));
      socket.addEventListener("close", (event) => {
        sync({ close: { code: event.code, reason: event.reason } });
        failPending("the connection closed");
      });
      socket.addEventListener("message", (event: MessageEvent) => {
        if (socketRef.current !== socket) return;
        const frame = classify(event.data);
        if (frame.kind === "ack" && typeof frame.id === "number") {
          const request = pending.current.get(frame.id);
          if (request) {
            window.clearTimeout(request.timer);
            pending.current.delete(frame.id);
            request.resolve(frame.data);
          }
        }
        for (const listener of listeners.current) listener(frame);
      });
      setState({ ...initialState, readyState: "CONNECTING", url });
      setGeneration((n) => n + 1);
      return null;
    },
    [failPending],
  );

  const disconnect = useCallback(() => {
    const socket = socketRef.current;
    if (!socket) return;
    socket.close(1000, "bye");
    // CLOSING until the server answers the close frame.
    setState((s) => ({ ...s, readyState: readyStateNames[socket.readyState] ?? "CLOSED" }));
  }, []);

  const send = useCallback((data: string | ArrayBuffer) => {
    const socket = socketRef.current;
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(data);
    return true;
  }, []);

  const request = useCallback(
    (frame: Record<string, unknown>, timeoutMs = 5_000) =>
      new Promise<unknown>((resolve, reject) => {
        const id = nextId.current++;
        const timer = window.setTimeout(() => {
          pending.current.delete(id);
          reject(new Error(`no ack for "${String(frame.event)}" within ${timeoutMs / 1000} s`));
        }, timeoutMs);
        pending.current.set(id, { resolve, reject, timer });
        if (!send(JSON.stringify({ ...frame, id }))) {
          window.clearTimeout(timer);
          pending.current.delete(id);
          reject(new Error("not connected"));
        }
      }),
    [send],
  );

  const subscribe = useCallback((listener: (frame: IncomingFrame) => void) => {
    listeners.current.add(listener);
    return () => {
      listeners.current.delete(listener);
    };
  }, []);

  useEffect(
    () => () => {
      socketRef.current?.close();
      socketRef.current = null;
    },
    [],
  );

  return { state, generation, connect, disconnect, send, request, subscribe };
}
