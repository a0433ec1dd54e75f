import { useState } from "react";
import { Alert, Button, Card, Descriptions, Flex, Input, Select, Typography } from "antd";
import { describeClose } from "./frames";
import { ReadyStateTag } from "./ReadyStateTag";
import type { PlainSocket } from "./usePlainSocket";

export interface PlainSettings {
  url: string;
  protocol: string;
}

const protocolChoices = [
  { value: "", label: "none" },
  { value: "echo-protocol", label: "echo-protocol" },
];

/** Where to connect, and what the socket is doing: readyState, subprotocol, last close. */
export function ConnectionPanel({ plain, initial }: { plain: PlainSocket; initial: PlainSettings }) {
  const [url, setUrl] = useState(initial.url);
  const [protocol, setProtocol] = useState(initial.protocol);
  const [problem, setProblem] = useState<string | null>(null);
  const { state } = plain;
  const busy = state.readyState === "OPEN" || state.readyState === "CONNECTING";

  const connect = () => setProblem(plain.connect(url.trim(), protocol ? [protocol] : []));

  return (
    <Card title="Connection" extra={<Typography.Text type="secondary">new WebSocket(url)</Typography.Text>}>
      <Flex vertical gap={12}>
        <Input value={url} onChange={(e) => setUrl(e.target.value)} aria-label="WebSocket URL" data-testid="plain-url" />
        <Flex gap={8} wrap>
          <Select
            value={protocol}
            onChange={setProtocol}
            options={protocolChoices}
            style={{ minWidth: 160 }}
            aria-label="Subprotocol"
            data-testid="plain-protocol"
          />
          <Button type="primary" onClick={connect} disabled={busy} data-testid="plain-connect">
            Connect
          </Button>
          <Button onClick={plain.disconnect} disabled={!busy} data-testid="plain-disconnect">
            Close
          </Button>
        </Flex>
        {problem && <Alert type="error" showIcon title={problem} data-testid="plain-problem" />}
        <Descriptions size="small" column={1} bordered>
          <Descriptions.Item label="readyState">
            <ReadyStateTag readyState={state.readyState} testId="plain-ready-state" />
          </Descriptions.Item>
          <Descriptions.Item label="Subprotocol">
            <span data-testid="plain-subprotocol">{state.protocol || "—"}</span>
          </Descriptions.Item>
          <Descriptions.Item label="Last close">
            <span data-testid="plain-close-info">{state.close ? describeClose(state.close.code, state.close.reason) : "—"}</span>
          </Descriptions.Item>
        </Descriptions>
      </Flex>
    </Card>
  );
}
