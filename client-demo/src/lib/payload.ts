// Sizes and display of the values that travel over the socket.

const encoder = new TextEncoder();

/** Approximate number of bytes `args` take on the wire (text as UTF-8, binary as is). */
export function payloadBytes(args: unknown[]): number {
  return args.reduce<number>((total, arg) => total + valueBytes(arg), 0);
}

function valueBytes(value: unknown): number {
  if (typeof value === "string") return encoder.encode(value).length;
  if (value instanceof ArrayBuffer) return value.byteLength;
  if (ArrayBuffer.isView(value)) return value.byteLength;
  try {
    return encoder.encode(JSON.stringify(value) ?? "").length;
  } catch {
    return 0;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(2)} MB`;
}

const maxShown = 160;

/** One line of text for a list of event arguments; long values are shortened. */
export function describeArgs(args: unknown[]): string {
  if (args.length === 0) return "(no arguments)";
  return args.map(describeValue).join(", ");
}

function describeValue(value: unknown): string {
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return `<binary, ${formatBytes(value.byteLength)}>`;
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  if (text.length <= maxShown) return text;
  return `${text.slice(0, maxShown)}… (${formatBytes(valueBytes(value))})`;
}

export function formatClock(ms: number): string {
  const date = new Date(ms);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
