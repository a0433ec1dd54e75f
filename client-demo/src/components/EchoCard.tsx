import { Card, Divider } from "antd";
import type { RelaySocket } from "../useRelaySocket";
import { AckEcho } from "./echo/AckEcho";
import { MessageEcho } from "./echo/MessageEcho";

interface Props {
  relay: RelaySocket;
}

export function EchoCard({ relay }: Props) {
  const connected = relay.state.status === "connected";
  return (
    <Card title="Echo">
      <AckEcho socket={relay.socket} connected={connected} noteSend={relay.noteSend} />
      <Divider style={{ marginBlock: 16 }} />
      <MessageEcho socket={relay.socket} connected={connected} noteSend={relay.noteSend} />
    </Card>
  );
}
