import { useEffect, useState } from "react";
import { Alert, Button, Card, Empty, Flex, Input, List, Space, Typography } from "antd";
import { isRecord } from "../lib/payload";
import type { ChatFrame } from "./frames";
import type { PlainSocket } from "./usePlainSocket";

interface Entry extends ChatFrame {
  key: number;
}

const kept = 50;

/** Joins rooms and chats with JSON frames; Socket.IO pages in the same room see the same messages. */
export function RoomPanel({ plain }: { plain: PlainSocket }) {
  const [room, setRoom] = useState("lobby");
  const [text, setText] = useState("");
  const [ack, setAck] = useState<{ ok: boolean; text: string } | null>(null);
  const [messages, setMessages] = useState<Entry[]>([]);
  const open = plain.state.readyState === "OPEN";

  useEffect(() => {
    let seq = 0;
    setMessages([]);
    setAck(null);
    return plain.subscribe((frame) => {
      if (frame.kind !== "chat") return;
      const entry = { ...frame.chat, key: ++seq };
      setMessages((previous) => [entry, ...previous].slice(0, kept));
    });
  }, [plain.subscribe, plain.generation]);

  const roomRequest = async (event: "join" | "leave") => {
    try {
      const data = await plain.request({ event, room });
      if (isRecord(data) && typeof data.error === "string") setAck({ ok: false, text: data.error });
      else if (isRecord(data)) setAck({ ok: true, text: `${event === "join" ? "Joined" : "Left"} "${String(data.room)}": ${String(data.size)} member(s)` });
    } catch (error) {
      setAck({ ok: false, text: error instanceof Error ? error.message : String(error) });
    }
  };

  const sendChat = async (toRoom: boolean) => {
    try {
      const data = await plain.request(toRoom ? { event: "chat", room, text } : { event: "chat", text });
      if (isRecord(data) && typeof data.error === "string") setAck({ ok: false, text: data.error });
      else setText("");
    } catch (error) {
      setAck({ ok: false, text: error instanceof Error ? error.message : String(error) });
    }
  };

  return (
    <Card title="Rooms and chat" extra={<Typography.Text type="secondary">JSON frames</Typography.Text>}>
      <Flex vertical gap={12}>
        <Space.Compact style={{ width: "100%" }}>
          <Input value={room} onChange={(e) => setRoom(e.target.value)} aria-label="Room" data-testid="plain-room-input" />
          <Button onClick={() => roomRequest("join")} disabled={!open} data-testid="plain-join">
            Join
          </Button>
          <Button onClick={() => roomRequest("leave")} disabled={!open} data-testid="plain-leave">
            Leave
          </Button>
        </Space.Compact>
        {ack && <Alert type={ack.ok ? "success" : "error"} showIcon title={ack.text} data-testid="plain-room-ack" />}
        <Space.Compact style={{ width: "100%" }}>
          <Input value={text} onChange={(e) => setText(e.target.value)} placeholder="Say something" aria-label="Chat message" data-testid="plain-chat-input" />
          <Button type="primary" onClick={() => sendChat(true)} disabled={!open} data-testid="plain-chat-send">
            To room
          </Button>
          <Button onClick={() => sendChat(false)} disabled={!open} data-testid="plain-chat-everyone">
            To everyone
          </Button>
        </Space.Compact>
        <List
          size="small"
          className="scroll-list"
          dataSource={messages}
          locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description="No message yet." /> }}
          renderItem={(entry) => (
            <List.Item data-testid="plain-chat-row">
              <Flex vertical style={{ minWidth: 0 }}>
                <Typography.Text data-testid="plain-chat-text">{entry.text}</Typography.Text>
                <Typography.Text type="secondary" className="mono">
                  {entry.room ?? "everyone"} · <span data-testid="plain-chat-from">{entry.from}</span>
                </Typography.Text>
              </Flex>
            </List.Item>
          )}
        />
      </Flex>
    </Card>
  );
}
