import { useEffect, useState } from "react";
import { Alert, Button, Flex, Input, Space, Tag, Typography } from "antd";
import type { Socket } from "socket.io-client";
import { describeArgs, payloadBytes } from "../../lib/payload";
import { ackFailureText, ackTimeoutMs } from "../../lib/problems";

interface Props {
  socket: Socket | null;
  connected: boolean;
  noteSend: (bytes: number) => void;
}

interface RoundTrip {
  key: number;
  sent: string;
  reply: string;
  rttMs: number;
  matches: boolean;
}

/** Sends `echo` with an acknowledgement and shows each round trip. */
export function AckEcho({ socket, connected, noteSend }: Props) {
  const [text, setText] = useState("hello iorelay");
  const [trips, setTrips] = useState<RoundTrip[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);

  useEffect(() => {
    setTrips([]);
    setError(null);
  }, [socket]);

  const send = async () => {
    if (!socket) return;
    setPending(true);
    setError(null);
    noteSend(payloadBytes([text]));
    const started = performance.now();
    try {
      const reply: unknown = await socket.timeout(ackTimeoutMs).emitWithAck("echo", text);
      const rttMs = performance.now() - started;
      setTrips((previous) =>
        [{ key: started, sent: text, reply: describeArgs([reply]), rttMs, matches: reply === text }, ...previous].slice(0, 5),
      );
    } catch (failure) {
      setError(ackFailureText(failure, "echo"));
    } finally {
      setPending(false);
    }
  };

  return (
    <Flex vertical gap={12}>
      <Typography.Text strong>echo with acknowledgement</Typography.Text>
      <Space.Compact style={{ width: "100%" }}>
        <Input
          value={text}
          onChange={(event) => setText(event.target.value)}
          onPressEnter={send}
          aria-label="Echo text"
          data-testid="echo-input"
        />
        <Button type="primary" onClick={send} loading={pending} disabled={!connected} data-testid="echo-send">
          Send echo
        </Button>
      </Space.Compact>
      {error && <Alert type="error" showIcon title={error} data-testid="echo-error" />}
      {trips.length > 0 && (
        <Flex vertical gap={4} data-testid="echo-results">
          {trips.map((trip) => (
            <Flex key={trip.key} gap={8} align="center" wrap data-testid="echo-result">
              <Tag color="blue" data-testid="echo-rtt">
                {trip.rttMs.toFixed(1)} ms
              </Tag>
              <Typography.Text className="mono" ellipsis style={{ flex: 1, minWidth: 0 }}>
                ack {trip.reply}
              </Typography.Text>
              {!trip.matches && <Tag color="warning">differs from what was sent</Tag>}
            </Flex>
          ))}
        </Flex>
      )}
    </Flex>
  );
}
