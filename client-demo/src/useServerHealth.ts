// Reads the server's GET /healthz for the cards that show what the server reports.
import { useEffect, useState } from "react";
import { isRecord } from "./lib/payload";

export interface HealthReport {
  version: string;
  connections: number;
  /**
   * Milliseconds between two ticks; null when the server runs without a ticker, and
   * undefined when the server does not say (a version that predates the field).
   */
  tickIntervalMs: number | null | undefined;
}

/** The health of the server at `origin`, read again whenever `refreshKey` changes to a non-null value. */
export function useServerHealth(origin: string | null, refreshKey: string | null): HealthReport | null {
  const [read, setRead] = useState<{ origin: string; health: HealthReport } | null>(null);
  // A page from another origin would need that server to allow it (CORS); only read our own.
  const readable = origin !== null && origin === window.location.origin;

  useEffect(() => {
    if (!readable || refreshKey === null) return;
    const controller = new AbortController();
    fetch(`${origin}/healthz`, { signal: controller.signal })
      .then((res) => (res.ok ? res.json() : null))
      .then((body: unknown) => {
        const health = parseHealth(body);
        if (health) setRead({ origin, health });
      })
      .catch(() => {
        if (!controller.signal.aborted) setRead(null);
      });
    return () => controller.abort();
  }, [origin, readable, refreshKey]);

  // What was read from an earlier server says nothing about this one.
  return readable && read?.origin === origin ? read.health : null;
}

function parseHealth(body: unknown): HealthReport | null {
  if (!isRecord(body) || typeof body.version !== "string" || typeof body.connections !== "number") return null;
  const interval = body.tick_interval_ms;
  let tickIntervalMs: number | null | undefined;
  if (interval === null || interval === 0) tickIntervalMs = null;
  else if (typeof interval === "number" && interval > 0) tickIntervalMs = interval;
  return { version: body.version, connections: body.connections, tickIntervalMs };
}
