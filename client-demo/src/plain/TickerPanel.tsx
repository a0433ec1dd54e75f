import { useEffect, useState } from "react";
import { Card, Empty, List, Typography } from "antd";
import { formatClock } from "../lib/payload";
import type { PlainSocket } from "./usePlainSocket";

interface Tick {
  key: number;
  time: number;
  delayMs: number;
}

const kept = 10;

/** The ticker's text frames: the server's clock in Unix ms, newest first. */
export function TickerPanel({ plain }: { plain: PlainSocket }) {
  const [ticks, setTicks] = useState<Tick[]>([]);

  useEffect(() => {
    let seq = 0;
    setTicks([]);
    return plain.subscribe((frame) => {
      if (frame.kind !== "tick") return;
      const tick = { key: ++seq, time: frame.time, delayMs: Date.now() - frame.time };
      setTicks((previous) => [tick, ...previous].slice(0, kept));
    });
  }, [plain.subscribe, plain.generation]);

  return (
    <Card title="Ticker" extra={<Typography.Text type="secondary">text frames</Typography.Text>}>
      <List
        size="small"
        className="scroll-list"
        dataSource={ticks}
        locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description="Waiting for the ticker (iorelay --tick-interval-ms)." /> }}
        renderItem={(tick) => (
          <List.Item data-testid="plain-tick" extra={<span>{tick.delayMs} ms</span>}>
            <Typography.Text className="mono" title={String(tick.time)}>
              {formatClock(tick.time)}
            </Typography.Text>
          </List.Item>
        )}
      />
    </Card>
  );
}
