import { Alert } from "antd";
import type { Problem } from "../lib/problems";

interface Props {
  problem: Problem;
  onClose?: () => void;
}

/** One problem, in plain words, with what to do about it. */
export function ProblemAlert({ problem, onClose }: Props) {
  const type = problem.kind === "server-disconnect" || problem.kind === "connection-lost" ? "warning" : "error";
  return (
    <Alert
      data-testid="connection-problem"
      type={type}
      showIcon
      title={problem.title}
      description={problem.detail}
      closable={onClose ? { onClose } : false}
    />
  );
}
