import { useEffect, useState } from "react";
import { Typography } from "antd";
import { isRecord } from "../lib/payload";

interface Props {
  /** Origin of the server; health is only read when it is this page's own origin. */
  origin: string;
  /** Changes whenever the health is worth reading again (e.g. the socket id). */
  refreshKey: string | null;
}

interface Health {
  version: string;
  connections: number;
}

/** The server's /healthz summary, when the page is served by that server. */
export function ServerHealth({ origin, refreshKey }: Props) {
  const [health, setHealth] = useState<Health | null>(null);
  const sameOrigin = origin === window.location.origin;

  useEffect(() => {
    if (!sameOrigin || refreshKey === null) return;
    const controller = new AbortController();
    fetch(`${origin}/healthz`, { signal: controller.signal })
      .then((res) => (res.ok ? res.json() : null))
      .then((body: unknown) => {
        if (isRecord(body) && typeof body.version === "string" && typeof body.connections === "number") {
          setHealth({ version: body.version, connections: body.connections });
        }
      })
      .catch(() => setHealth(null));
    return () => controller.abort();
  }, [origin, sameOrigin, refreshKey]);

  if (!sameOrigin || !health) return <Typography.Text type="secondary">—</Typography.Text>;
  return (
    <Typography.Text data-testid="server-health">
      iorelay {health.version} · {health.connections} {health.connections === 1 ? "connection" : "connections"}
    </Typography.Text>
  );
}
