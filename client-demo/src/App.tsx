import { useEffect, useState } from "react";
import { Col, Flex, Layout, Row, Typography } from "antd";
import { ChatCard } from "./components/ChatCard";
import { ConnectionCard } from "./components/ConnectionCard";
import { EchoCard } from "./components/EchoCard";
import { StatusTag } from "./components/StatusTag";
import { TickerCard } from "./components/TickerCard";
import { readInitialSettings } from "./lib/settings";
import { useRelaySocket } from "./useRelaySocket";
import { useServerHealth } from "./useServerHealth";

export default function App() {
  const relay = useRelaySocket();
  const [initial] = useState(() => readInitialSettings(window.location.search));
  const { connect } = relay;
  const endpoint = relay.state.endpoint;
  // Read again on every new session: the server may have restarted with other settings.
  const health = useServerHealth(endpoint?.origin ?? null, relay.state.socketId);

  useEffect(() => {
    if (initial.autoConnect) connect(initial.settings);
  }, [connect, initial]);

  return (
    <Layout style={{ minHeight: "100vh" }}>
      <Layout.Header className="app-header">
        <Typography.Title level={3} style={{ color: "#fff", margin: 0 }}>
          iorelay
        </Typography.Title>
        <Typography.Text style={{ color: "rgba(255,255,255,0.75)", flex: 1 }}>
          Socket.IO-compatible realtime server — live demo ·{" "}
          <a href="/plain.html" style={{ color: "#fff" }}>
            plain WebSocket
          </a>
        </Typography.Text>
        <StatusTag status={relay.state.status} />
      </Layout.Header>
      <Layout.Content className="app-content">
        <Row gutter={[16, 16]}>
          <Col xs={24} lg={12} xl={8}>
            <ConnectionCard relay={relay} initial={initial.settings} health={health} />
          </Col>
          <Col xs={24} lg={12} xl={8}>
            <Flex vertical gap={16}>
              <EchoCard relay={relay} />
              <TickerCard
                socket={relay.socket}
                namespace={endpoint?.namespace ?? null}
                connected={relay.state.status === "connected"}
                tickIntervalMs={health?.tickIntervalMs}
              />
            </Flex>
          </Col>
          <Col xs={24} lg={24} xl={8}>
            <ChatCard relay={relay} />
          </Col>
        </Row>
      </Layout.Content>
    </Layout>
  );
}
