import { Tag } from "antd";
import type { ConnectionStatus } from "../useRelaySocket";

const colors: Record<ConnectionStatus, string> = {
  connecting: "processing",
  connected: "success",
  reconnecting: "warning",
  disconnected: "default",
};

interface Props {
  status: ConnectionStatus;
  testId?: string;
}

export function StatusTag({ status, testId }: Props) {
  return (
    <Tag color={colors[status]} data-testid={testId} style={{ marginInlineEnd: 0 }}>
      {status}
    </Tag>
  );
}
