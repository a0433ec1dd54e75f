import { Empty, Flex, Tag, Typography, theme } from "antd";
import { formatClock } from "../../lib/payload";
import type { ChatEntry } from "./useChatRooms";

interface Props {
  room: string;
  entries: ChatEntry[];
  /** Members from the last `presence` event of the room, if any. */
  members: string[] | undefined;
  showPresence: boolean;
  joined: boolean;
  ownId: string | null;
}

/** Presence and messages of one room, newest message first. */
export function RoomMessages({ room, entries, members, showPresence, joined, ownId }: Props) {
  const { token } = theme.useToken();
  return (
    <Flex vertical gap={12}>
      {showPresence && (
        <Flex gap={4} wrap align="center" data-testid="presence">
          <Typography.Text type="secondary">Members{members ? ` (${members.length})` : ""}:</Typography.Text>
          {!members && <Typography.Text type="secondary">{joined ? "waiting for presence…" : "join the room to see them"}</Typography.Text>}
          {members?.map((id) => (
            <Tag key={id} color={id === ownId ? "green" : "default"} className="mono" data-testid="presence-member" data-member={id}>
              {id}
              {id === ownId ? " (you)" : ""}
            </Tag>
          ))}
        </Flex>
      )}
      {entries.length === 0 ? (
        <Empty
          image={Empty.PRESENTED_IMAGE_SIMPLE}
          description={joined ? "No message yet." : `Not a member of "${room}" any more.`}
        />
      ) : (
        <Flex vertical className="scroll-list" style={{ maxHeight: 320 }}>
          {entries.map((entry) => (
            <Flex
              key={entry.key}
              vertical
              gap={2}
              style={{ padding: "6px 0", borderBottom: `1px solid ${token.colorBorderSecondary}` }}
              data-testid="chat-message"
            >
              <Flex gap={8} align="center" wrap>
                <Typography.Text className="mono" type="secondary" data-testid="chat-from" style={{ fontSize: 12 }}>
                  {entry.from}
                </Typography.Text>
                {entry.from === ownId && <Tag color="green">you</Tag>}
                <Typography.Text type="secondary" style={{ fontSize: 12, marginInlineStart: "auto" }}>
                  {formatClock(entry.ts)}
                </Typography.Text>
              </Flex>
              <Typography.Text data-testid="chat-text">{entry.text}</Typography.Text>
            </Flex>
          ))}
        </Flex>
      )}
    </Flex>
  );
}
