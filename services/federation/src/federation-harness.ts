// Test support (not exported by the package): one annals node for federation
// tests — the log and federation services in this process on a database of
// their own, the federation service calling the log service in-process.
import { createAnnalsClients, type FederationClient, type LogClient } from "@annals/client";
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { logV1 } from "@annals/proto";
import type { Database } from "@annals/db";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { createLogComponent } from "@annals/log";
import { serveComponents, signDevToken, type RunningServer } from "@annals/runtime";
import { testServerConfig } from "@annals/runtime/testing";
import { createFederationComponent, type FederationComponentOptions } from "./component.js";

export const TEST_SECRET = "federation-service-test-secret-at-least-32-bytes";

export interface TestNode {
  nodeId: string;
  db: Database;
  server: RunningServer;
  baseUrl: string;
  /** Clients with an `admin` token. */
  federation: FederationClient;
  log: LogClient;
  clientsWith(roles: string[]): Promise<{ federation: FederationClient; log: LogClient }>;
  /** Stops the servers and starts them again on the same database (options and server settings may change). */
  restart(options?: Partial<FederationComponentOptions>, serverEnv?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

/**
 * A node; `serverEnv` adds server settings (ANNALS_TLS_* for a gRPC port
 * under TLS, whose clients then present `clientTls`).
 */
export async function startTestNode(
  label: string,
  nodeId: string,
  options: Partial<FederationComponentOptions> = {},
  serverEnv: Record<string, string> = {},
  clientTls?: { caFile: string; certFile: string; keyFile: string },
): Promise<TestNode> {
  const database: TestDatabase = await createTestDatabase(label);
  const db = await database.open();
  const node = { nodeId, db } as TestNode;
  let currentEnv = serverEnv;
  /** TLS options of this node's own clients (the admin clients). */
  let selfTls: typeof clientTls;
  const start = async (overrides: Partial<FederationComponentOptions>) => {
    const config = testServerConfig(TEST_SECRET, { ANNALS_SHUTDOWN_GRACE_MS: "1000", ...currentEnv });
    const tls = config.tls !== undefined;
    selfTls = tls ? clientTls : undefined;
    node.server = await serveComponents({
      name: `test-${label}`,
      server: config,
      components: async ({ local }) => [
        await createLogComponent({ db }),
        await createFederationComponent({
          db,
          nodeId,
          log: createAnnalsClients({ transport: local }).log,
          logLevel: "error",
          requirePeerCertificate: config.tls?.clientCaFile !== undefined,
          ...overrides,
        }),
      ],
    });
    node.baseUrl = `${tls ? "https" : "http"}://127.0.0.1:${node.server.grpcPort}`;
    Object.assign(node, await node.clientsWith(["admin"]));
  };
  node.clientsWith = async (roles) => {
    const token = await signDevToken({ secret: TEST_SECRET, subject: `test-${roles.join("+")}`, roles });
    const clients = createAnnalsClients({ baseUrl: node.baseUrl, token, unaryTimeoutMs: 60_000, ...(selfTls ? { tls: selfTls } : {}) });
    return { federation: clients.federation, log: clients.log };
  };
  node.restart = async (overrides = {}, env) => {
    await node.server.shutdown("restart");
    if (env) currentEnv = env;
    await start({ ...options, ...overrides });
  };
  node.close = async () => {
    await node.server.shutdown("test done");
    await database.drop();
  };
  await start(options);
  return node;
}

export { until } from "@annals/runtime/testing";

/** A log's last seq; 0 when it does not exist (yet). */
export async function headOf(log: LogClient, logId: string): Promise<bigint> {
  try {
    return (await log.getLog({ logId })).head?.lastSeq ?? 0n;
  } catch {
    return 0n;
  }
}

/** Every entry's seq and checksum, in order. */
export async function chainOf(log: LogClient, logId: string): Promise<string[]> {
  const out: string[] = [];
  let pageToken = "";
  do {
    const page = await log.read({ logId, pageSize: 1000, pageToken });
    out.push(...page.entries.map((entry) => `${entry.seq}:${entry.checksum}`));
    pageToken = page.entries.length > 0 ? page.nextPageToken : "";
  } while (pageToken);
  return out;
}

/** An entry to append with a JSON payload. */
export function jsonEntry(kind: string, payload: JsonObject): MessageInitShape<typeof logV1.EntryInputSchema> {
  return { kind, body: { case: "payload", value: payload } };
}
