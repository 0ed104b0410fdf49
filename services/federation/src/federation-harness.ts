// Test support (not exported by the package): one annals node for federation
// tests — the log and federation services in this process on a database of
// their own, the federation service calling the log service in-process.
import { createAnnalsClients, type FederationClient, type LogClient } from "@annals/client";
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { logV1 } from "@annals/proto";
import type { Database } from "@annals/db";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { createLogComponent, type LogComponentOptions } from "@annals/log";
import type { RunningServer } from "@annals/runtime";
import { startTestServer, type TestServer } from "@annals/runtime/testing";
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
  logOptions: Omit<LogComponentOptions, "db"> = {},
): Promise<TestNode> {
  const database: TestDatabase = await createTestDatabase(label);
  const db = await database.open();
  const node = { nodeId, db } as TestNode;
  let currentEnv = serverEnv;
  /** TLS options of this node's own clients (the admin clients). */
  let selfTls: typeof clientTls;
  let running: TestServer;
  const start = async (overrides: Partial<FederationComponentOptions>) => {
    running = await startTestServer({
      label,
      secret: TEST_SECRET,
      env: { ANNALS_SHUTDOWN_GRACE_MS: "1000", ...currentEnv },
      components: async (context) => [
        await createLogComponent({ db, nodeId, ...logOptions }, context),
        await createFederationComponent(
          {
            db,
            nodeId,
            log: createAnnalsClients({ transport: context.local }).log,
            logTransport: context.local,
            requirePeerCertificate: currentEnv["ANNALS_TLS_CLIENT_CA_FILE"] !== undefined,
            ...overrides,
          },
          context,
        ),
      ],
    });
    selfTls = running.baseUrl.startsWith("https:") ? clientTls : undefined;
    node.server = running.server;
    node.baseUrl = running.baseUrl;
    Object.assign(node, await node.clientsWith(["admin"]));
  };
  node.clientsWith = async (roles) => {
    const clients = createAnnalsClients({ baseUrl: node.baseUrl, token: await running.tokenWith(roles), unaryTimeoutMs: 60_000, ...(selfTls ? { tls: selfTls } : {}) });
    return { federation: clients.federation, log: clients.log };
  };
  node.restart = async (overrides = {}, env) => {
    await running.close();
    if (env) currentEnv = env;
    await start({ ...options, ...overrides });
  };
  node.close = async () => {
    await running.close();
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
