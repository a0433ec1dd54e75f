// Turns what a person typed in the connection form into the URL handed to
// socket.io-client, or into a sentence saying what to fix.

export type TransportChoice = "polling-upgrade" | "websocket" | "polling";

export interface ConnectionSettings {
  /** Server address; empty means the origin this page came from. */
  serverUrl: string;
  namespace: string;
  transport: TransportChoice;
}

export interface Endpoint {
  /** Scheme, host and port of the server, e.g. `http://localhost:3000`. */
  origin: string;
  namespace: string;
  /** What `io()` gets: the origin followed by the namespace. */
  url: string;
}

export type EndpointResult =
  | { ok: true; endpoint: Endpoint }
  | { ok: false; field: "serverUrl" | "namespace"; message: string };

const webSchemes = new Set(["http:", "https:", "ws:", "wss:"]);

export function resolveEndpoint(serverUrl: string, namespace: string, pageOrigin: string): EndpointResult {
  const origin = resolveOrigin(serverUrl.trim(), pageOrigin);
  if (!origin.ok) return { ok: false, field: "serverUrl", message: origin.message };

  const ns = namespace.trim() || "/";
  if (!/^\/[^\s?#]*$/.test(ns)) {
    return {
      ok: false,
      field: "namespace",
      message: 'A namespace starts with "/" and has no spaces, for example / or /chat.',
    };
  }
  return {
    ok: true,
    endpoint: { origin: origin.value, namespace: ns, url: ns === "/" ? origin.value : origin.value + ns },
  };
}

function resolveOrigin(input: string, pageOrigin: string): { ok: true; value: string } | { ok: false; message: string } {
  if (input === "") {
    if (!/^https?:\/\//.test(pageOrigin)) {
      return { ok: false, message: "This page was not loaded from a server: enter the iorelay address, for example http://localhost:3000." };
    }
    return { ok: true, value: pageOrigin };
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) {
    return { ok: false, message: `"${input}" has no scheme: start the address with http:// or https://, for example http://localhost:3000.` };
  }
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, message: `"${input}" is not a web address. Use the form http://host:port.` };
  }
  if (!webSchemes.has(url.protocol)) {
    return {
      ok: false,
      message: `iorelay speaks HTTP and WebSocket, so a ${url.protocol}// address cannot work. Use http:// or https:// instead.`,
    };
  }
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    return {
      ok: false,
      message: "Put only the server address here (scheme, host and port), without a path: choose the namespace in the field below.",
    };
  }
  return { ok: true, value: url.origin };
}

/** socket.io-client options for each transport choice of the form. */
export function transportOptions(choice: TransportChoice): { transports: string[]; upgrade: boolean } {
  switch (choice) {
    case "websocket":
      return { transports: ["websocket"], upgrade: false };
    case "polling":
      return { transports: ["polling"], upgrade: false };
    case "polling-upgrade":
      return { transports: ["polling", "websocket"], upgrade: true };
  }
}
