// The app behind iorelay's event webhook in the benchmark's `webhook` scenario: a bare
// `node:http` server that acknowledges every event at once with its own arguments
// (`{ "ack": args }`), as a `socket.on("work", (job, ack) => ack(job))` handler would, and
// answers `connect` and `disconnect` with `{}`.
//
// It checks each request's `X-Iorelay-Signature` (HMAC-SHA256 of the raw body, compared in
// constant time) as an app must, and answers 401 to a bad one, which the benchmark counts as a
// lost event. With --no-verify it skips the check, to see what the HMAC costs.
//
//   node tests/bench/webhook-app.mjs --secret S [--host 127.0.0.1] [--port 4000] [--path /hook]

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const { values: options } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "4000" },
    path: { type: "string", default: "/hook" },
    secret: { type: "string" },
    "no-verify": { type: "boolean", default: false },
  },
});
if (!options.secret) {
  console.error("webhook-app: --secret is required (iorelay signs with --webhook-secret)");
  process.exit(2);
}
const secret = options.secret;
const verify = !options["no-verify"];

function signatureMatches(body, header) {
  if (typeof header !== "string") return false;
  const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(body).digest("hex")}`);
  const presented = Buffer.from(header);
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

let rejected = 0;
const server = createServer((req, res) => {
  if (req.method !== "POST" || req.url !== options.path) return answer(res, 404, {});
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    if (verify && !signatureMatches(raw, req.headers["x-iorelay-signature"])) {
      rejected += 1;
      if (rejected === 1) console.error("webhook-app: a request with a bad signature (401)");
      return answer(res, 401, { message: "bad signature" });
    }
    let call;
    try {
      call = JSON.parse(raw);
    } catch {
      return answer(res, 400, { message: "not JSON" });
    }
    if (call.type === "event") return answer(res, 200, { ack: call.args ?? [] });
    return answer(res, 200, {});
  });
});
// iorelay keeps its connections alive; Node's default 5 s keep-alive timeout would close idle
// ones between the benchmark's phases.
server.keepAliveTimeout = 60_000;

server.listen(Number(options.port), options.host, () => {
  const { address, port } = server.address();
  console.error(`webhook-app listening on ${address}:${port}${options.path}; signatures ${verify ? "checked" : "not checked"}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (rejected > 0) console.error(`webhook-app: ${rejected} requests with a bad signature`);
    process.exit(0);
  });
}
