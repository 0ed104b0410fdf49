// Test support (not exported by the package): the log service in this process
// on a database of its own, and connect clients with tokens of chosen roles.
import { createAnnalsClients, type LogClient } from "@annals/client";
import type { logV1 } from "@annals/proto";
import type { Database } from "@annals/db";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import type { RunningServer } from "@annals/runtime";
import { createLogComponent, type LogComponentOptions } from "./component.js";

import { startTestServer } from "@annals/runtime/testing";

export { firstFrame, rejects } from "@annals/runtime/testing";

export const TEST_SECRET = "log-service-test-secret-at-least-32-bytes";

export interface LogHarness {
  /** A client whose token holds `admin` (every method). */
  admin: LogClient;
  /** A client with the given roles (and log grants). */
  clientWith(roles: string[], logs?: string[]): Promise<LogClient>;
  /** The database the service runs on, for checks and tampering in SQL (tables in schema `log`). */
  db: Database;
  database: TestDatabase;
  server: RunningServer;
  baseUrl: string;
  close(): Promise<void>;
}

/** `serverEnv`: extra ANNALS_* server settings, e.g. ANNALS_TLS_* (the harness's own clients speak h2c, so leave them unused then). */
export async function startLogHarness(label: string, options: Omit<LogComponentOptions, "db"> = {}, serverEnv: Record<string, string> = {}): Promise<LogHarness> {
  const database = await createTestDatabase(label);
  const db = await database.open();
  const { server, baseUrl, tokenWith, close } = await startTestServer({
    label,
    secret: TEST_SECRET,
    env: serverEnv,
    components: async (context) => [await createLogComponent({ db, ...options }, context)],
    onClose: () => database.drop(),
  });
  const clientWith = async (roles: string[], logs?: string[]) =>
    createAnnalsClients({ baseUrl, token: await tokenWith(roles, logs ? { logs } : {}), unaryTimeoutMs: 60_000 }).log;
  return { admin: await clientWith(["admin"]), clientWith, db, database, server, baseUrl, close };
}


export type EntryInit = { uuid?: string; sourceId?: string; simTime?: number; metadata?: Record<string, string>; requestId?: string };

/** An EntryInput with a JSON payload. */
export function entry(kind: string, payload: Record<string, unknown>, extra: EntryInit = {}) {
  return { kind, body: { case: "payload" as const, value: payload as never }, ...extra };
}

/** An EntryInput with a binary payload. */
export function binaryEntry(kind: string, bytes: Uint8Array, contentType: string, extra: EntryInit = {}) {
  return { kind, body: { case: "binaryPayload" as const, value: bytes }, contentType, ...extra };
}

/** An entry's JSON payload (undefined when it is binary or redacted). */
export function payloadOf(entry: logV1.Entry | undefined): unknown {
  return entry?.body.case === "payload" ? entry.body.value : undefined;
}

/** The entries of Subscribe frames, whether sent one per frame or in batches. */
export function entriesOf(response: logV1.SubscribeResponse): logV1.Entry[] {
  if (response.frame.case === "entry") return [response.frame.value];
  if (response.frame.case === "entries") return response.frame.value.entries;
  return [];
}
