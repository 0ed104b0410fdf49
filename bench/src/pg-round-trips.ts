// A TCP relay between a service and PostgreSQL that counts the round trips
// the service makes: every message a client sends that the server answers
// with ReadyForQuery ends one — a simple Query ('Q', e.g. BEGIN or COMMIT) or
// the Sync ('S') that closes an extended-protocol statement (Parse, Bind,
// Execute). It reads the frontend stream only, so it counts what the
// service sends whatever its code looks like.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface RoundTripRelay {
  /** postgres://… of the relay, with the target URL's user and database. */
  url: string;
  /** Round trips (Query + Sync messages) relayed so far, over every connection. */
  roundTrips(): number;
  close(): Promise<void>;
}

/** The protocol codes of a first message that is not the StartupMessage (SSLRequest, GSSENCRequest, CancelRequest). */
const PRE_STARTUP_CODES = new Set([80877103, 80877104, 80877102]);

/** Starts a relay on a loopback port in front of the server of `targetUrl`. */
export async function startRoundTripRelay(targetUrl: string): Promise<RoundTripRelay> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let roundTrips = 0;
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    sockets.add(client).add(upstream);
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", closeBoth).on("close", closeBoth);
    upstream.on("error", closeBoth).on("close", closeBoth);
    upstream.pipe(client);
    let typed = false;
    let buffered: Buffer = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      upstream.write(chunk);
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        if (!typed) {
          if (buffered.length < 8) break;
          const length = buffered.readInt32BE(0);
          if (buffered.length < length) break;
          if (!PRE_STARTUP_CODES.has(buffered.readInt32BE(4))) typed = true;
          buffered = buffered.subarray(length);
          continue;
        }
        if (buffered.length < 5) break;
        const length = buffered.readInt32BE(1);
        if (buffered.length < 1 + length) break;
        const type = buffered[0];
        if (type === 0x51 /* Q */ || type === 0x53 /* S */) roundTrips++;
        buffered = buffered.subarray(1 + length);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the relay has no TCP address");
  const url = new URL(targetUrl);
  url.hostname = "127.0.0.1";
  url.port = String(address.port);
  return {
    url: url.toString(),
    roundTrips: () => roundTrips,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
