// Test support (not exported by the package): one annals node for federation
// tests — the log and federation services in this process on a database of
// their own, the federation service calling the log service over gRPC.
import { createAnnalsClients, type FederationClient, type LogClient } from "@annals/client";
import type { Database } from "@annals/db";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { createLogComponent } from "@annals/log";
import { readServerConfig, serveComponents, signDevToken, type RunningServer } from "@annals/runtime";
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
  /** Stops the servers and starts them again on the same database (other options may change). */
  restart(options?: Partial<FederationComponentOptions>): Promise<void>;
  close(): Promise<void>;
}

export async function startTestNode(label: string, nodeId: string, options: Partial<FederationComponentOptions> = {}): Promise<TestNode> {
  const database: TestDatabase = await createTestDatabase(label);
  const db = await database.open();
  const internal = await signDevToken({ secret: TEST_SECRET, subject: "federation", roles: ["log.read", "log.replicate"] });
  const node = { nodeId, db } as TestNode;
  const start = async (overrides: Partial<FederationComponentOptions>) => {
    const config = readServerConfig(
      { ANNALS_PORT: "0", ANNALS_HTTP_PORT: "0", ANNALS_AUTH_JWT_SECRET: TEST_SECRET, ANNALS_LOG_LEVEL: "warn", ANNALS_SHUTDOWN_GRACE_MS: "1000" },
      { grpcPort: 0, httpPort: 0, allowAuthOff: false },
    );
    let grpcPort = 0;
    node.server = await serveComponents({
      name: `test-${label}`,
      server: config,
      components: async () => [
        await createLogComponent({ db }),
        await createFederationComponent({ db, nodeId, logUrl: () => `http://127.0.0.1:${grpcPort}`, logToken: internal, logLevel: "error", ...overrides }),
      ],
    });
    grpcPort = node.server.grpcPort;
    node.baseUrl = `http://127.0.0.1:${grpcPort}`;
    Object.assign(node, await node.clientsWith(["admin"]));
  };
  node.clientsWith = async (roles) => {
    const clients = createAnnalsClients({ baseUrl: node.baseUrl, token: await signDevToken({ secret: TEST_SECRET, subject: `test-${roles.join("+")}`, roles }), unaryTimeoutMs: 60_000 });
    return { federation: clients.federation, log: clients.log };
  };
  node.restart = async (overrides = {}) => {
    await node.server.shutdown("restart");
    await start({ ...options, ...overrides });
  };
  node.close = async () => {
    await node.server.shutdown("test done");
    await database.drop();
  };
  await start(options);
  return node;
}
