import { useEffect, useState } from "react";
import { Col, Flex, Layout, Row, Typography } from "antd";
import { ConnectionPanel, type PlainSettings } from "./ConnectionPanel";
import { EchoPanel } from "./EchoPanel";
import { ReadyStateTag } from "./ReadyStateTag";
import { RoomPanel } from "./RoomPanel";
import { TickerPanel } from "./TickerPanel";
import { usePlainSocket } from "./usePlainSocket";

/** Settings from the query string: ?url=ws://host:3000/ws&protocol=echo-protocol&autoconnect=0 */
function readSettings(search: string): { settings: PlainSettings; autoConnect: boolean } {
  const params = new URLSearchParams(search);
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return {
    settings: {
      url: params.get("url") ?? `${scheme}://${window.location.host}/ws`,
      protocol: params.get("protocol") ?? "",
    },
    autoConnect: params.get("autoconnect") !== "0",
  };
}

export default function PlainApp() {
  const plain = usePlainSocket();
  const [initial] = useState(() => readSettings(window.location.search));
  const { connect } = plain;

  useEffect(() => {
    if (initial.autoConnect) connect(initial.settings.url, initial.settings.protocol ? [initial.settings.protocol] : []);
  }, [connect, initial]);

  return (
    <Layout style={{ minHeight: "100vh" }}>
      <Layout.Header className="app-header">
        <Typography.Title level={3} style={{ color: "#fff", margin: 0 }}>
          iorelay
        </Typography.Title>
        <Typography.Text style={{ color: "rgba(255,255,255,0.75)", flex: 1 }}>
          Plain WebSocket — the browser's own <code>WebSocket</code>, no Socket.IO client ·{" "}
          <a href="/" style={{ color: "#fff" }}>
            Socket.IO demo
          </a>
        </Typography.Text>
        <ReadyStateTag readyState={plain.state.readyState} />
      </Layout.Header>
      <Layout.Content className="app-content">
        <Row gutter={[16, 16]}>
          <Col xs={24} lg={12} xl={8}>
            <ConnectionPanel plain={plain} initial={initial.settings} />
          </Col>
          <Col xs={24} lg={12} xl={8}>
            <Flex vertical gap={16}>
              <EchoPanel plain={plain} />
              <TickerPanel plain={plain} />
            </Flex>
          </Col>
          <Col xs={24} lg={24} xl={8}>
            <RoomPanel plain={plain} />
          </Col>
        </Row>
      </Layout.Content>
    </Layout>
  );
}
