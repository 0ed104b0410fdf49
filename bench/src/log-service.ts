import { fileURLToPath } from "node:url";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { createBenchDatabase, type BenchDatabase } from "./bench-database.js";
import { BENCH_SECRET } from "./bench-token.js";

/**
 * The log service's entry point: this checkout's, or another build's named by
 * ANNALS_BENCH_LOG_SERVICE_SCRIPT (to measure two versions with the same bench).
 */
export const LOG_SERVICE_SCRIPT = process.env.ANNALS_BENCH_LOG_SERVICE_SCRIPT ?? fileURLToPath(new URL("../../services/log/dist/main.js", import.meta.url));
/** Node options for the log service process only, space-separated (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), from ANNALS_BENCH_LOG_SERVICE_NODE_ARGS. */
const LOG_SERVICE_NODE_ARGS = (process.env.ANNALS_BENCH_LOG_SERVICE_NODE_ARGS ?? "").split(" ").filter((arg) => arg !== "");

/** A log service process (JWT auth with the bench secret) on the database at `databaseUrl`. */
export function startLogServiceProcess(databaseUrl: string): Promise<ServiceProcess> {
  return startServiceProcess({
    command: [process.execPath, ...LOG_SERVICE_NODE_ARGS, LOG_SERVICE_SCRIPT],
    env: { DATABASE_URL: databaseUrl, ANNALS_AUTH_JWT_SECRET: BENCH_SECRET },
  });
}

/** A log service process (JWT auth with the bench secret) on a fresh database of its own; the database is dropped if the process does not start. */
export async function startBenchLogService(label: string): Promise<{ service: ServiceProcess; database: BenchDatabase }> {
  const database = await createBenchDatabase(label);
  try {
    const service = await startLogServiceProcess(database.url);
    return { service, database };
  } catch (error) {
    await database.drop();
    throw error;
  }
}
