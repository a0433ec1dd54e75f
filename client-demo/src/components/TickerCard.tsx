import { useEffect, useState } from "react";
import { Card, Empty, Table, Typography } from "antd";
import type { HTMLAttributes } from "react";
import type { Socket } from "socket.io-client";
import { formatClock } from "../lib/payload";

interface Props {
  socket: Socket | null;
  namespace: string | null;
}

interface Tick {
  key: number;
  serverTime: number;
  delayMs: number;
}

const kept = 20;

/** The server's timed `message` events carrying its clock (Unix ms), newest first. */
export function TickerCard({ socket, namespace }: Props) {
  const [ticks, setTicks] = useState<Tick[]>([]);

  useEffect(() => {
    if (!socket) return;
    let seq = 0;
    const onMessage = (...args: unknown[]) => {
      const [value] = args;
      if (args.length !== 1 || typeof value !== "number") return;
      const tick = { key: ++seq, serverTime: value, delayMs: Date.now() - value };
      setTicks((previous) => [tick, ...previous].slice(0, kept));
    };
    setTicks([]);
    socket.on("message", onMessage);
    return () => {
      socket.off("message", onMessage);
    };
  }, [socket]);

  const emptyText =
    namespace !== null && namespace !== "/"
      ? `The ticker runs on namespace "/" only.`
      : "Waiting for the ticker (iorelay --tick-interval-ms; 0 turns it off).";

  return (
    <Card title="Ticker" extra={<Typography.Text type="secondary">last {kept}</Typography.Text>}>
      <Table<Tick>
        size="small"
        dataSource={ticks}
        pagination={false}
        scroll={{ y: 220 }}
        locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={emptyText} /> }}
        onRow={() => ({ "data-testid": "ticker-row" }) as HTMLAttributes<HTMLElement>}
        columns={[
          {
            title: "Server time",
            dataIndex: "serverTime",
            render: (value: number) => (
              <Typography.Text className="mono" title={String(value)}>
                {formatClock(value)}
              </Typography.Text>
            ),
          },
          {
            title: "Delay in browser",
            dataIndex: "delayMs",
            align: "right",
            render: (value: number) => <span data-testid="ticker-delay">{value} ms</span>,
          },
        ]}
      />
    </Card>
  );
}
