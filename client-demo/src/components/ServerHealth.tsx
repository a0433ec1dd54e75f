import { Typography } from "antd";
import type { HealthReport } from "../useServerHealth";

interface Props {
  /** The server's /healthz summary; null when the page is not served by that server. */
  health: HealthReport | null;
}

/** The server's version and number of connections. */
export function ServerHealth({ health }: Props) {
  if (!health) return <Typography.Text type="secondary">—</Typography.Text>;
  return (
    <Typography.Text data-testid="server-health">
      iorelay {health.version} · {health.connections} {health.connections === 1 ? "connection" : "connections"}
    </Typography.Text>
  );
}
