// Rooms of the current socket: join/leave with their acks, `chat` messages
// grouped by room, and the `presence` member lists sent on /chat.
import { useCallback, useEffect, useRef, useState } from "react";
import type { Socket } from "socket.io-client";
import { describeArgs, isRecord, payloadBytes } from "../../lib/payload";
import { ackFailureText, ackTimeoutMs } from "../../lib/problems";

/** Tab key of the messages sent to the whole namespace (`room: null`). */
export const everyone = "*";

export interface ChatEntry {
  key: number;
  room: string | null;
  text: string;
  from: string;
  ts: number;
}

export interface AckOutcome {
  ok: boolean;
  text: string;
}

export interface ChatRooms {
  joined: string[];
  messages: Record<string, ChatEntry[]>;
  presence: Record<string, string[]>;
  join: (room: string) => Promise<AckOutcome>;
  leave: (room: string) => Promise<AckOutcome>;
  /** Sends `chat` to a room, or to everyone when `target` is {@link everyone}. */
  send: (target: string, text: string) => Promise<AckOutcome>;
}

const keptPerRoom = 50;

export function useChatRooms(socket: Socket | null, noteSend: (bytes: number) => void): ChatRooms {
  const [joined, setJoined] = useState<string[]>([]);
  const [messages, setMessages] = useState<Record<string, ChatEntry[]>>({});
  const [presence, setPresence] = useState<Record<string, string[]>>({});
  const joinedRef = useRef<string[]>([]);
  useEffect(() => {
    joinedRef.current = joined;
  }, [joined]);

  useEffect(() => {
    setJoined([]);
    setMessages({});
    setPresence({});
    if (!socket) return;
    let seq = 0;
    let connectedBefore = socket.connected;

    const onChat = (payload: unknown) => {
      const entry = toChatEntry(payload, ++seq);
      const key = entry.room ?? everyone;
      setMessages((previous) => ({ ...previous, [key]: [entry, ...(previous[key] ?? [])].slice(0, keptPerRoom) }));
    };
    const onPresence = (payload: unknown) => {
      if (!isRecord(payload) || typeof payload.room !== "string" || !Array.isArray(payload.members)) return;
      const members = payload.members.filter((m): m is string => typeof m === "string");
      setPresence((previous) => ({ ...previous, [payload.room as string]: members }));
    };
    // The server forgets the rooms of a connection that ended: join them again after a reconnect,
    // unless the connection was recovered, which keeps them.
    const onConnect = () => {
      if (connectedBefore && !socket.recovered) {
        for (const room of joinedRef.current) socket.emit("join", room);
      }
      connectedBefore = true;
    };
    const onDisconnect = () => setPresence({});

    socket.on("chat", onChat);
    socket.on("presence", onPresence);
    socket.on("connect", onConnect);
    socket.on("disconnect", onDisconnect);
    return () => {
      socket.off("chat", onChat);
      socket.off("presence", onPresence);
      socket.off("connect", onConnect);
      socket.off("disconnect", onDisconnect);
    };
  }, [socket]);

  const join = useCallback(
    async (room: string): Promise<AckOutcome> => {
      const outcome = await roomRequest(socket, "join", room);
      if (outcome.ok) setJoined((previous) => (previous.includes(room) ? previous : [...previous, room]));
      return outcome;
    },
    [socket],
  );

  const leave = useCallback(
    async (room: string): Promise<AckOutcome> => {
      const outcome = await roomRequest(socket, "leave", room);
      if (outcome.ok) {
        setJoined((previous) => previous.filter((r) => r !== room));
        setPresence((previous) => {
          const rest = { ...previous };
          delete rest[room];
          return rest;
        });
      }
      return outcome;
    },
    [socket],
  );

  const send = useCallback(
    async (target: string, text: string): Promise<AckOutcome> => {
      if (!socket) return { ok: false, text: "Not connected." };
      const payload = target === everyone ? { text } : { room: target, text };
      noteSend(payloadBytes([payload]));
      try {
        const reply: unknown = await socket.timeout(ackTimeoutMs).emitWithAck("chat", payload);
        if (isRecord(reply) && typeof reply.error === "string") return { ok: false, text: `The server refused the message: ${reply.error}` };
        if (isRecord(reply) && reply.ok === true) return { ok: true, text: "Sent." };
        return { ok: false, text: `Unexpected acknowledgement: ${describeArgs([reply])}` };
      } catch (failure) {
        return { ok: false, text: ackFailureText(failure, "chat") };
      }
    },
    [socket, noteSend],
  );

  return { joined, messages, presence, join, leave, send };
}

async function roomRequest(socket: Socket | null, event: "join" | "leave", room: string): Promise<AckOutcome> {
  if (!socket) return { ok: false, text: "Not connected." };
  try {
    const reply: unknown = await socket.timeout(ackTimeoutMs).emitWithAck(event, room);
    if (isRecord(reply) && typeof reply.error === "string") {
      return { ok: false, text: `The server refused to ${event} "${room}": ${reply.error}` };
    }
    if (isRecord(reply) && typeof reply.room === "string" && typeof reply.size === "number") {
      const members = `${reply.size} ${reply.size === 1 ? "member" : "members"} now`;
      return { ok: true, text: `${event === "join" ? "Joined" : "Left"} "${reply.room}": ${members}.` };
    }
    return { ok: false, text: `Unexpected acknowledgement: ${describeArgs([reply])}` };
  } catch (failure) {
    return { ok: false, text: ackFailureText(failure, event) };
  }
}

function toChatEntry(payload: unknown, key: number): ChatEntry {
  if (!isRecord(payload)) return { key, room: null, text: describeArgs([payload]), from: "?", ts: Date.now() };
  return {
    key,
    room: typeof payload.room === "string" ? payload.room : null,
    text: typeof payload.text === "string" ? payload.text : describeArgs([payload.text]),
    from: typeof payload.from === "string" ? payload.from : "?",
    ts: typeof payload.ts === "number" ? payload.ts : Date.now(),
  };
}
