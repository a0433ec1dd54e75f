import { Tag } from "antd";
import type { ReadyStateName } from "./frames";

const colors: Record<ReadyStateName, string> = {
  CONNECTING: "processing",
  OPEN: "success",
  CLOSING: "warning",
  CLOSED: "default",
};

/** The browser WebSocket's `readyState`, by its constant's name. */
export function ReadyStateTag({ readyState, testId }: { readyState: ReadyStateName; testId?: string }) {
  return (
    <Tag color={colors[readyState]} data-testid={testId} style={{ marginInlineEnd: 0 }}>
      {readyState}
    </Tag>
  );
}
