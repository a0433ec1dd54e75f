// SIGTERM: every connection is closed by the server, as Node's io.close() does, so clients see a
// transport-level disconnect and reconnect on their own once a server is back.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";

import { ClientSet, nextEvent } from "../support/clients.mjs";
import { startIorelay } from "../support/iorelay.mjs";

describe("graceful shutdown", () => {
  let server;
  const clients = new ClientSet();

  after(async () => {
    clients.closeAll();
    await server?.stop();
  });

  it("disconnects every socket, exits with code 0 and clients come back after a restart", async (t) => {
    server = await startIorelay({ args: ["--tick-interval-ms", "0"] });
    const connected = [];
    for (const transports of [["websocket"], ["polling"]]) {
      const options = { transports, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 };
      connected.push({ transport: transports[0], ...(await clients.connect(server.url, options)) });
    }
    const disconnects = connected.map(({ socket }) => nextEvent(socket, "disconnect", 10_000));

    const started = Date.now();
    const { code, signal } = await server.stop(10_000);
    const exitMs = Date.now() - started;
    const reasons = (await Promise.all(disconnects)).map(([reason]) => reason);

    connected.forEach(({ transport }, i) => t.diagnostic(`${transport} client: disconnect "${reasons[i]}"`));
    t.diagnostic(`exit code ${code}, signal ${signal}, ${exitMs} ms after SIGTERM`);
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    assert.ok(exitMs < 5_000, `exited ${exitMs} ms after SIGTERM`);
    // "io server disconnect" would stop socket.io-client from reconnecting; these do not.
    for (const reason of reasons) assert.ok(["transport close", "transport error"].includes(reason), reason);
    for (const { socket } of connected) assert.equal(socket.active, true, "client keeps trying to reconnect");

    const reconnected = connected.map(({ socket }) => nextEvent(socket, "connect", 15_000));
    server = await startIorelay({ args: ["--tick-interval-ms", "0"], port: server.port });
    await Promise.all(reconnected);
    for (const { socket } of connected) assert.equal(socket.connected, true);
  });
});
