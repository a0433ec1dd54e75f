// Plain-words explanations of what went wrong with the connection, each one
// saying what the person can do about it.
import { formatBytes } from "./payload";

export interface Problem {
  kind: "invalid-input" | "unreachable" | "namespace" | "too-large" | "server-disconnect" | "connection-lost" | "other";
  title: string;
  detail: string;
}

/** Sends at least this big are suspected when the server drops the connection right after them. */
export const largeSendBytes = 16 * 1024;
/** How long after a large send a dropped connection is blamed on it. */
export const largeSendWindowMs = 10_000;

export function connectErrorProblem(error: Error, url: string, namespace: string): Problem {
  const message = error.message;
  if (message === "Invalid namespace") {
    return {
      kind: "namespace",
      title: `The server refused the namespace "${namespace}"`,
      detail: 'iorelay offers the namespaces "/" and "/chat". Choose one of them and connect again.',
    };
  }
  if (message === "timeout") {
    return {
      kind: "unreachable",
      title: "The server did not complete the connection in time",
      detail: `${url} accepted the request but did not finish the handshake. Check that it is an iorelay (or Socket.IO v4) server. Retrying on its own…`,
    };
  }
  if (/poll error|websocket error|xhr/i.test(message)) {
    return {
      kind: "unreachable",
      title: "Cannot reach the server",
      detail: `Nothing answers at ${url}. Check that iorelay is running and that the address and port are right; if this page comes from another origin, start iorelay with --cors-origin for it. Retrying on its own…`,
    };
  }
  return {
    kind: "other",
    title: "The server refused the connection",
    detail: `It answered: "${message}".`,
  };
}

export function disconnectProblem(reason: string, lastSend: { bytes: number; at: number } | null): Problem | null {
  switch (reason) {
    case "io client disconnect":
      return null;
    case "io server disconnect":
      return {
        kind: "server-disconnect",
        title: "The server closed the connection",
        detail: "It may be restarting or shutting down. The page tries to connect again on its own.",
      };
    case "transport close":
    case "transport error":
      if (lastSend && lastSend.bytes >= largeSendBytes && Date.now() - lastSend.at < largeSendWindowMs) {
        return {
          kind: "too-large",
          title: "The last message was probably too large",
          detail: `The server dropped the connection (${reason}) right after a send of about ${formatBytes(lastSend.bytes)}, more than it accepts (iorelay's --max-http-buffer-size, 1 MB by default). Send something smaller; the page reconnects on its own.`,
        };
      }
      return {
        kind: "connection-lost",
        title: "The connection to the server was lost",
        detail: `Reason: ${reason}. The server may have stopped or the network dropped. Reconnecting on its own…`,
      };
    case "ping timeout":
      return {
        kind: "connection-lost",
        title: "The server stopped answering",
        detail: "No heartbeat arrived in time (ping timeout). Reconnecting on its own…",
      };
    default:
      return {
        kind: "connection-lost",
        title: "The connection to the server was lost",
        detail: `Reason: ${reason}. Reconnecting on its own…`,
      };
  }
}

/** How long the page waits for an acknowledgement. */
export const ackTimeoutMs = 5000;

/** Plain words for a failed `emitWithAck`. */
export function ackFailureText(error: unknown, event: string): string {
  const message = error instanceof Error ? error.message : String(error);
  if (message === "operation has timed out") {
    return `The server did not acknowledge "${event}" within ${ackTimeoutMs / 1000} s. It may be overloaded or unreachable; try again once the status is connected.`;
  }
  return `"${event}" failed: ${message}`;
}
