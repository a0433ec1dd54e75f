import { useEffect, useState } from "react";
import { Button, Flex, Input, InputNumber, Space, Typography } from "antd";
import type { Socket } from "socket.io-client";
import { describeArgs, formatClock, payloadBytes } from "../../lib/payload";

interface Props {
  socket: Socket | null;
  connected: boolean;
  noteSend: (bytes: number) => void;
}

interface Received {
  key: number;
  at: number;
  text: string;
}

const kept = 8;

/** Sends `message` (echoed back by the server) and lists the `message` events that are not ticks. */
export function MessageEcho({ socket, connected, noteSend }: Props) {
  const [text, setText] = useState("hi there");
  const [sizeKb, setSizeKb] = useState<number>(1200);
  const [received, setReceived] = useState<Received[]>([]);

  useEffect(() => {
    if (!socket) return;
    let seq = 0;
    const onMessage = (...args: unknown[]) => {
      if (args.length === 1 && typeof args[0] === "number") return; // a tick, shown by the ticker
      const entry = { key: ++seq, at: Date.now(), text: describeArgs(args) };
      setReceived((previous) => [entry, ...previous].slice(0, kept));
    };
    setReceived([]);
    socket.on("message", onMessage);
    return () => {
      socket.off("message", onMessage);
    };
  }, [socket]);

  const emit = (payload: string) => {
    if (!socket) return;
    noteSend(payloadBytes([payload]));
    socket.emit("message", payload);
  };

  return (
    <Flex vertical gap={12}>
      <Typography.Text strong>message (echoed back)</Typography.Text>
      <Space.Compact style={{ width: "100%" }}>
        <Input
          value={text}
          onChange={(event) => setText(event.target.value)}
          onPressEnter={() => emit(text)}
          aria-label="Message text"
          data-testid="message-input"
        />
        <Button onClick={() => emit(text)} disabled={!connected} data-testid="message-send">
          Send message
        </Button>
      </Space.Compact>
      <Flex gap={8} align="center" wrap>
        <Typography.Text type="secondary">Size test:</Typography.Text>
        <InputNumber<number>
          min={1}
          max={20_000}
          value={sizeKb}
          onChange={(value) => setSizeKb(value ?? 1)}
          suffix="KB"
          aria-label="Payload size in KB"
          style={{ width: 120 }}
          data-testid="large-size"
        />
        <Button onClick={() => emit("x".repeat(sizeKb * 1024))} disabled={!connected} data-testid="large-send">
          Send payload
        </Button>
      </Flex>
      <Flex vertical gap={4} className="scroll-list" style={{ maxHeight: 150 }}>
        {received.length === 0 && <Typography.Text type="secondary">No message received yet.</Typography.Text>}
        {received.map((entry) => (
          <Flex key={entry.key} gap={8} align="baseline" data-testid="received-message">
            <Typography.Text type="secondary" className="mono" style={{ flexShrink: 0 }}>
              {formatClock(entry.at)}
            </Typography.Text>
            <Typography.Text className="mono">{entry.text}</Typography.Text>
          </Flex>
        ))}
      </Flex>
    </Flex>
  );
}
