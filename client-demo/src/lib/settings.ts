// Initial connection settings, optionally taken from the page's query string:
// ?server=http://host:3000&ns=/chat&transport=websocket&autoconnect=0
import type { ConnectionSettings, TransportChoice } from "./endpoint";

const transports: TransportChoice[] = ["polling-upgrade", "websocket", "polling"];

export interface InitialSettings {
  settings: ConnectionSettings;
  autoConnect: boolean;
}

export function readInitialSettings(search: string): InitialSettings {
  const params = new URLSearchParams(search);
  const transport = params.get("transport");
  return {
    settings: {
      serverUrl: params.get("server") ?? "",
      namespace: params.get("ns") ?? "/",
      transport: transports.find((t) => t === transport) ?? "polling-upgrade",
    },
    autoConnect: params.get("autoconnect") !== "0",
  };
}
