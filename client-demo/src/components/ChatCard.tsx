import { useEffect, useState } from "react";
import { Badge, Card, Flex, Tabs, Typography } from "antd";
import type { RelaySocket } from "../useRelaySocket";
import { ChatComposer } from "./chat/ChatComposer";
import { RoomControls } from "./chat/RoomControls";
import { RoomMessages } from "./chat/RoomMessages";
import { everyone, useChatRooms } from "./chat/useChatRooms";

interface Props {
  relay: RelaySocket;
}

export function ChatCard({ relay }: Props) {
  const rooms = useChatRooms(relay.socket, relay.noteSend);
  const [activeTab, setActiveTab] = useState(everyone);
  const connected = relay.state.status === "connected";
  const namespace = relay.state.endpoint?.namespace ?? "/";
  const showPresence = namespace === "/chat";

  useEffect(() => setActiveTab(everyone), [relay.socket]);

  const tabKeys = [everyone, ...rooms.joined];
  for (const room of Object.keys(rooms.messages)) {
    if (!tabKeys.includes(room)) tabKeys.push(room);
  }

  return (
    <Card title="Chat rooms" extra={<Typography.Text type="secondary">namespace {namespace}</Typography.Text>}>
      <Flex vertical gap={16}>
        <RoomControls
          key={`controls-${relay.generation}`}
          rooms={rooms}
          connected={connected}
          onJoined={(room) => setActiveTab(room)}
          onLeft={(room) => setActiveTab((current) => (current === room ? everyone : current))}
        />
        <ChatComposer
          key={`composer-${relay.generation}`}
          rooms={rooms}
          connected={connected}
          target={activeTab}
          onTargetChange={setActiveTab}
        />
        <Tabs
          size="small"
          activeKey={tabKeys.includes(activeTab) ? activeTab : everyone}
          onChange={setActiveTab}
          items={tabKeys.map((key) => ({
            key,
            label: (
              <Flex gap={6} align="center" data-testid={`chat-tab-${key === everyone ? "everyone" : key}`}>
                {key === everyone ? "Everyone" : key}
                <Badge count={rooms.messages[key]?.length ?? 0} size="small" color="#8c8c8c" overflowCount={49} />
              </Flex>
            ),
            children: (
              <RoomMessages
                room={key}
                entries={rooms.messages[key] ?? []}
                members={key === everyone ? undefined : rooms.presence[key]}
                showPresence={showPresence && key !== everyone}
                joined={key === everyone || rooms.joined.includes(key)}
                ownId={relay.state.socketId}
              />
            ),
          }))}
        />
      </Flex>
    </Card>
  );
}
