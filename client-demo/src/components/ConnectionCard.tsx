import { useState } from "react";
import { AutoComplete, Button, Card, Descriptions, Flex, Form, Input, Select, Tag, Tooltip, Typography } from "antd";
import type { ConnectionSettings, TransportChoice } from "../lib/endpoint";
import type { InvalidSetting, RecoveryState, RelaySocket } from "../useRelaySocket";
import type { HealthReport } from "../useServerHealth";
import { ProblemAlert } from "./ProblemAlert";
import { ServerHealth } from "./ServerHealth";
import { StatusTag } from "./StatusTag";

interface Props {
  relay: RelaySocket;
  initial: ConnectionSettings;
  health: HealthReport | null;
}

const namespaceOptions = [
  { value: "/", label: "/  (welcome, ticker, echo, rooms)" },
  { value: "/chat", label: "/chat  (rooms with presence)" },
];

const transportChoices: { value: TransportChoice; label: string }[] = [
  { value: "polling-upgrade", label: "HTTP long-polling, then upgrade to WebSocket" },
  { value: "websocket", label: "WebSocket only" },
  { value: "polling", label: "HTTP long-polling only" },
];

export function ConnectionCard({ relay, initial, health }: Props) {
  const [form] = Form.useForm<ConnectionSettings>();
  const [invalid, setInvalid] = useState<InvalidSetting | null>(null);
  const { state } = relay;

  const submit = (values: ConnectionSettings) => {
    setInvalid(relay.connect(values));
  };

  const fieldStatus = (field: InvalidSetting["field"]) => (invalid?.field === field ? "error" : undefined);

  return (
    <Card title="Connection" extra={<StatusTag status={state.status} />}>
      <Flex vertical gap={16}>
        <Form
          form={form}
          name="connection"
          layout="vertical"
          initialValues={initial}
          onFinish={submit}
          onValuesChange={() => setInvalid(null)}
          requiredMark={false}
        >
          <Form.Item
            label="Server URL"
            name="serverUrl"
            validateStatus={fieldStatus("serverUrl")}
            extra="Empty means the server this page came from."
          >
            <Input placeholder={window.location.origin} allowClear data-testid="server-url" autoComplete="off" />
          </Form.Item>
          <Form.Item label="Namespace" name="namespace" validateStatus={fieldStatus("namespace")}>
            <AutoComplete options={namespaceOptions} data-testid="namespace" placeholder="/" />
          </Form.Item>
          <Form.Item label="Transport" name="transport">
            <Select options={transportChoices} data-testid="transport-choice" />
          </Form.Item>
          <Flex gap={8} wrap>
            <Button type="primary" htmlType="submit" data-testid="connect">
              Connect
            </Button>
            <Button onClick={relay.disconnect} disabled={relay.socket === null} data-testid="disconnect">
              Disconnect
            </Button>
          </Flex>
        </Form>

        {state.problem && (
          <ProblemAlert problem={state.problem} onClose={state.problem.kind === "too-large" ? relay.dismissProblem : undefined} />
        )}

        <Descriptions
          size="small"
          bordered
          column={1}
          styles={{ label: { width: 120 } }}
          items={[
            { key: "status", label: "Status", children: <StatusInfo relay={relay} /> },
            {
              key: "id",
              label: "Socket id",
              children: (
                <Typography.Text className="mono" data-testid="socket-id">
                  {state.socketId ?? "—"}
                </Typography.Text>
              ),
            },
            {
              key: "transport",
              label: "Transport",
              children: (
                <Tag color={state.transport === "websocket" ? "geekblue" : "default"} data-testid="transport">
                  {state.transport ?? "—"}
                </Tag>
              ),
            },
            {
              key: "endpoint",
              label: "Endpoint",
              children: (
                <Typography.Text className="mono" data-testid="endpoint">
                  {state.endpoint ? `${state.endpoint.origin} · ${state.endpoint.namespace}` : "—"}
                </Typography.Text>
              ),
            },
            {
              key: "server",
              label: "Server",
              children: state.endpoint ? <ServerHealth health={health} /> : "—",
            },
          ]}
        />
      </Flex>
    </Card>
  );
}

function StatusInfo({ relay }: { relay: RelaySocket }) {
  const { status, reconnectAttempt, lastConnectError, recovery } = relay.state;
  return (
    <Flex vertical gap={4}>
      <Flex gap={8} align="center" wrap>
        <StatusTag status={status} testId="status" />
        {status === "connected" && recovery && <RecoveryTag recovery={recovery} />}
        {status === "reconnecting" && reconnectAttempt > 0 && (
          <Typography.Text type="secondary">attempt {reconnectAttempt}</Typography.Text>
        )}
      </Flex>
      {lastConnectError && (
        <Typography.Text type="danger" data-testid="connect-error">
          Last connect_error: {lastConnectError}
        </Typography.Text>
      )}
    </Flex>
  );
}

const recoveryText: Record<RecoveryState, { label: string; color: string; explanation: string }> = {
  recovered: {
    label: "recovered",
    color: "cyan",
    explanation: "The reconnect recovered the connection: the same socket id, its rooms, and the events sent while it was away.",
  },
  "new-session": {
    label: "new session",
    color: "default",
    explanation:
      "The reconnect started a new session: a new socket id, rooms joined again, and the events sent while it was away are lost. The server recovers brief disconnects with --connection-state-recovery.",
  },
};

/** How the last reconnect went: `socket.recovered` of socket.io-client. */
function RecoveryTag({ recovery }: { recovery: RecoveryState }) {
  const { label, color, explanation } = recoveryText[recovery];
  return (
    <Tooltip title={explanation}>
      <Tag color={color} data-testid="recovery" style={{ marginInlineEnd: 0 }}>
        {label}
      </Tag>
    </Tooltip>
  );
}
