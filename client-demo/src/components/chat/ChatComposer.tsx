import { useState } from "react";
import { Alert, Button, Flex, Input, Select, Space } from "antd";
import { everyone, type ChatRooms } from "./useChatRooms";

interface Props {
  rooms: ChatRooms;
  connected: boolean;
  target: string;
  onTargetChange: (target: string) => void;
}

/** Sends `chat` to one joined room or to every socket of the namespace. */
export function ChatComposer({ rooms, connected, target, onTargetChange }: Props) {
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const options = [
    { value: everyone, label: "Everyone" },
    ...rooms.joined.map((room) => ({ value: room, label: `Room ${room}` })),
  ];
  const selected = options.some((o) => o.value === target) ? target : everyone;

  const send = async () => {
    setPending(true);
    const outcome = await rooms.send(selected, text);
    setPending(false);
    setError(outcome.ok ? null : outcome.text);
    if (outcome.ok) setText("");
  };

  return (
    <Flex vertical gap={8}>
      <Space.Compact style={{ width: "100%" }}>
        <Select
          value={selected}
          onChange={onTargetChange}
          options={options}
          style={{ minWidth: 120, maxWidth: 180 }}
          aria-label="Send to"
          data-testid="chat-target"
        />
        <Input
          value={text}
          onChange={(event) => setText(event.target.value)}
          onPressEnter={send}
          placeholder="Say something"
          aria-label="Chat message"
          data-testid="chat-input"
        />
        <Button type="primary" onClick={send} disabled={!connected} loading={pending} data-testid="chat-send">
          Send
        </Button>
      </Space.Compact>
      {error && <Alert type="error" showIcon title={error} closable={{ onClose: () => setError(null) }} data-testid="chat-error" />}
    </Flex>
  );
}
