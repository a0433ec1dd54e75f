import { useState } from "react";
import { Alert, Button, Flex, Input, Space, Tag, Typography } from "antd";
import type { AckOutcome, ChatRooms } from "./useChatRooms";

interface Props {
  rooms: ChatRooms;
  connected: boolean;
  onJoined: (room: string) => void;
  onLeft: (room: string) => void;
}

/** Join or leave a room by name, with the server's acknowledgement. */
export function RoomControls({ rooms, connected, onJoined, onLeft }: Props) {
  const [name, setName] = useState("lobby");
  const [outcome, setOutcome] = useState<AckOutcome | null>(null);
  const [pending, setPending] = useState(false);

  const run = async (action: "join" | "leave", room: string) => {
    setPending(true);
    const result = await (action === "join" ? rooms.join(room) : rooms.leave(room));
    setPending(false);
    setOutcome(result);
    if (result.ok) (action === "join" ? onJoined : onLeft)(room);
  };

  return (
    <Flex vertical gap={8}>
      <Space.Compact style={{ width: "100%" }}>
        <Input
          value={name}
          onChange={(event) => setName(event.target.value)}
          onPressEnter={() => run("join", name)}
          placeholder="Room name"
          aria-label="Room name"
          data-testid="room-input"
        />
        <Button type="primary" onClick={() => run("join", name)} disabled={!connected} loading={pending} data-testid="room-join">
          Join
        </Button>
        <Button onClick={() => run("leave", name)} disabled={!connected} data-testid="room-leave">
          Leave
        </Button>
      </Space.Compact>
      {outcome && (
        <Alert
          type={outcome.ok ? "success" : "error"}
          showIcon
          title={outcome.text}
          closable={{ onClose: () => setOutcome(null) }}
          data-testid="room-ack"
        />
      )}
      <Flex gap={4} wrap align="center">
        <Typography.Text type="secondary">Joined:</Typography.Text>
        {rooms.joined.length === 0 && <Typography.Text type="secondary">no room yet</Typography.Text>}
        {rooms.joined.map((room) => (
          <Tag
            key={room}
            color="blue"
            closable={connected}
            onClose={(event) => {
              event.preventDefault();
              void run("leave", room);
            }}
            data-testid="joined-room"
          >
            {room}
          </Tag>
        ))}
      </Flex>
    </Flex>
  );
}
