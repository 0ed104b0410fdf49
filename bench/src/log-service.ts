import { fileURLToPath } from "node:url";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { createBenchDatabase, type BenchDatabase } from "./bench-database.js";
import { BENCH_SECRET } from "./bench-token.js";

/** The log service's entry point in this checkout. */
export const LOG_SERVICE_SCRIPT = fileURLToPath(new URL("../../services/log/dist/main.js", import.meta.url));

/** A log service process (JWT auth with the bench secret) on a fresh database of its own; the database is dropped if the process does not start. */
export async function startBenchLogService(label: string): Promise<{ service: ServiceProcess; database: BenchDatabase }> {
  const database = await createBenchDatabase(label);
  try {
    const service = await startServiceProcess({ script: LOG_SERVICE_SCRIPT, env: { DATABASE_URL: database.url, ANNALS_AUTH_JWT_SECRET: BENCH_SECRET } });
    return { service, database };
  } catch (error) {
    await database.drop();
    throw error;
  }
}
