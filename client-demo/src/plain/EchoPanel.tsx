import { useEffect, useState } from "react";
import { Button, Card, Empty, Flex, Input, List, Space, Typography } from "antd";
import type { PlainSocket } from "./usePlainSocket";

interface Echo {
  key: number;
  text: string;
}

const kept = 20;

/** Sends raw text and binary frames; the server sends each one back unchanged. */
export function EchoPanel({ plain }: { plain: PlainSocket }) {
  const [text, setText] = useState("hello, plain WebSocket");
  const [echoes, setEchoes] = useState<Echo[]>([]);
  const open = plain.state.readyState === "OPEN";

  useEffect(() => {
    let seq = 0;
    setEchoes([]);
    return plain.subscribe((frame) => {
      let shown: string | null = null;
      if (frame.kind === "text") shown = frame.text;
      if (frame.kind === "binary") shown = `<binary ${frame.bytes.length} bytes: ${[...frame.bytes].join(" ")}>`;
      if (frame.kind === "error") shown = `error: ${frame.message}`;
      if (shown !== null) {
        const echo = { key: ++seq, text: shown };
        setEchoes((previous) => [echo, ...previous].slice(0, kept));
      }
    });
  }, [plain.subscribe, plain.generation]);

  const sendBinary = () => plain.send(new Uint8Array([1, 2, 3, 254, 255]).buffer);

  return (
    <Card title="Echo" extra={<Typography.Text type="secondary">frames sent back</Typography.Text>}>
      <Flex vertical gap={12}>
        <Space.Compact style={{ width: "100%" }}>
          <Input value={text} onChange={(e) => setText(e.target.value)} onPressEnter={() => plain.send(text)} aria-label="Text frame" data-testid="plain-echo-input" />
          <Button type="primary" onClick={() => plain.send(text)} disabled={!open} data-testid="plain-echo-send">
            Send text
          </Button>
          <Button onClick={sendBinary} disabled={!open} data-testid="plain-binary-send">
            Send bytes
          </Button>
        </Space.Compact>
        <List
          size="small"
          className="scroll-list"
          dataSource={echoes}
          locale={{ emptyText: <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description="Nothing received yet." /> }}
          renderItem={(echo) => (
            <List.Item data-testid="plain-echo-row">
              <Typography.Text className="mono">{echo.text}</Typography.Text>
            </List.Item>
          )}
        />
      </Flex>
    </Card>
  );
}
