import { useEffect, useState } from "react";
import { Card, Empty, Flex, Table, Typography } from "antd";
import type { HTMLAttributes } from "react";
import type { Socket } from "socket.io-client";
import { formatClock } from "../lib/payload";

interface Props {
  socket: Socket | null;
  namespace: string | null;
  connected: boolean;
  /** From the server's /healthz: null when its ticker is off, undefined when unknown. */
  tickIntervalMs: number | null | undefined;
}

interface Tick {
  key: number;
  serverTime: number;
  delayMs: number;
}

/**
 * When the countdown to the next tick starts. The server ticks at a fixed interval from its
 * own start, which the page cannot see: until a tick arrives, the next one is only known to
 * come within one interval of connecting.
 */
interface Countdown {
  from: number;
  phaseKnown: boolean;
}

const kept = 20;
/** How often the countdown is redrawn; a quarter second keeps each second's change on time. */
const redrawMs = 250;

/** The server's timed `message` events carrying its clock (Unix ms), newest first. */
export function TickerCard({ socket, namespace, connected, tickIntervalMs }: Props) {
  const [ticks, setTicks] = useState<Tick[]>([]);
  const [countdown, setCountdown] = useState<Countdown | null>(null);

  useEffect(() => {
    if (!socket) return;
    let seq = 0;
    const onMessage = (...args: unknown[]) => {
      const [value] = args;
      if (args.length !== 1 || typeof value !== "number") return;
      const arrived = Date.now();
      const tick = { key: ++seq, serverTime: value, delayMs: arrived - value };
      setTicks((previous) => [tick, ...previous].slice(0, kept));
      // Counted from the arrival, not from the server's clock, which may differ from this one.
      setCountdown({ from: arrived, phaseKnown: true });
    };
    // After a reconnection the server may be another process, ticking at other moments.
    const onConnect = () => setCountdown({ from: Date.now(), phaseKnown: false });
    setTicks([]);
    setCountdown(socket.connected ? { from: Date.now(), phaseKnown: false } : null);
    socket.on("message", onMessage);
    socket.on("connect", onConnect);
    return () => {
      socket.off("message", onMessage);
      socket.off("connect", onConnect);
    };
  }, [socket]);

  const onTickerNamespace = namespace === "/";
  const counting = onTickerNamespace && connected && typeof tickIntervalMs === "number" && countdown !== null;
  const now = useNow(counting && tickIntervalMs >= 1000 ? redrawMs : null);

  let schedule: string | null = null;
  if (onTickerNamespace && tickIntervalMs === null) {
    schedule = "The ticker is off on this server";
  } else if (onTickerNamespace && typeof tickIntervalMs === "number") {
    const every = formatInterval(tickIntervalMs);
    if (!counting) schedule = `A tick every ${every} while connected`;
    else if (tickIntervalMs < 1000) schedule = `A tick every ${every}`;
    else {
      // `now` may date from before the countdown started, until the next redraw.
      const remainingMs = countdown.from + tickIntervalMs - Math.max(now, countdown.from);
      schedule = describeNextTick(remainingMs, countdown.phaseKnown, every);
    }
  }

  let emptyText = "Waiting for the ticker (iorelay --tick-interval-ms; 0 turns it off).";
  if (!onTickerNamespace && namespace !== null) emptyText = `The ticker runs on namespace "/" only.`;
  else if (tickIntervalMs === null) emptyText = "No ticks: the server runs with --tick-interval-ms 0.";
  else if (typeof tickIntervalMs === "number") emptyText = "No tick yet.";

  return (
    <Card title="Ticker" extra={<Typography.Text type="secondary">last {kept}</Typography.Text>}>
      <Flex vertical gap={12}>
        {schedule !== null && (
          <Typography.Text type={tickIntervalMs === null ? "secondary" : undefined} data-testid="ticker-schedule">
            {schedule}
          </Typography.Text>
        )}
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
      </Flex>
    </Card>
  );
}

function describeNextTick(remainingMs: number, phaseKnown: boolean, every: string): string {
  if (remainingMs <= 0) return `Next tick due now (every ${every})`;
  const seconds = Math.ceil(remainingMs / 1000);
  return `Next tick in ${phaseKnown ? "" : "at most "}${seconds} s (every ${every})`;
}

function formatInterval(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** The current time, redrawn every `periodMs` while it is not null. */
function useNow(periodMs: number | null): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (periodMs === null) return;
    setNow(Date.now());
    const timer = window.setInterval(() => setNow(Date.now()), periodMs);
    return () => window.clearInterval(timer);
  }, [periodMs]);
  return now;
}
