// The frames iorelay sends to plain WebSocket clients, told apart.
import { isRecord } from "../lib/payload";

export interface ChatFrame {
  room: string | null;
  text: string;
  from: string;
  ts: number;
  user?: string;
}

export type IncomingFrame =
  | { kind: "tick"; time: number }
  | { kind: "chat"; chat: ChatFrame }
  | { kind: "ack"; id: unknown; data: unknown }
  | { kind: "error"; message: string; id?: unknown }
  | { kind: "text"; text: string }
  | { kind: "binary"; bytes: Uint8Array };

const day = 24 * 60 * 60 * 1000;

/** Reads one frame: the ticker's time, a JSON frame of the event contract, or an echo. */
export function classify(data: unknown): IncomingFrame {
  if (data instanceof ArrayBuffer) return { kind: "binary", bytes: new Uint8Array(data) };
  const text = String(data);
  // The ticker sends the server's clock in Unix ms, a bare number.
  if (/^\d{12,}$/.test(text) && Math.abs(Number(text) - Date.now()) < day) {
    return { kind: "tick", time: Number(text) };
  }
  if (!text.startsWith("{")) return { kind: "text", text };
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { kind: "text", text };
  }
  if (!isRecord(frame)) return { kind: "text", text };
  if (frame.event === "chat" && typeof frame.text === "string") {
    return { kind: "chat", chat: frame as unknown as ChatFrame };
  }
  if (frame.event === "ack") return { kind: "ack", id: frame.id, data: frame.data };
  if (frame.event === "error") return { kind: "error", message: String(frame.message), id: frame.id };
  return { kind: "text", text };
}

export const readyStateNames = ["CONNECTING", "OPEN", "CLOSING", "CLOSED"] as const;
export type ReadyStateName = (typeof readyStateNames)[number];

/** What the close codes iorelay sends mean, in words. */
export function describeClose(code: number, reason: string): string {
  const meaning: Record<number, string> = {
    1000: "closed normally",
    1001: "the server is going away or the client stopped answering pings",
    1002: "a frame broke the WebSocket protocol",
    1005: "closed without a code",
    1006: "the connection dropped, or the handshake was refused",
    1007: "a text frame was not valid UTF-8",
    1008: "too many messages, or not reading fast enough",
    1009: "the message was too large",
  };
  const words = meaning[code] ?? "closed";
  return `${code}${reason ? ` "${reason}"` : ""}: ${words}`;
}
