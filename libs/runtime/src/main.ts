import { ConfigError } from "./config.js";
import type { RunningServer } from "./server.js";

/**
 * Runs a process's main function: a configuration error prints one line
 * naming the variable and exits with status 2; SIGTERM and SIGINT shut the
 * server down gracefully and exit with 0.
 */
export function runMain(name: string, main: () => Promise<RunningServer>): void {
  main().then(
    (server) => {
      const stop = (signal: NodeJS.Signals) => {
        server.shutdown(`received ${signal}`).then(
          () => process.exit(0),
          (error: unknown) => {
            server.logger.fatal({ err: error }, "shutdown failed");
            process.exit(1);
          },
        );
      };
      process.once("SIGTERM", stop);
      process.once("SIGINT", stop);
    },
    (error: unknown) => {
      if (error instanceof ConfigError) {
        process.stderr.write(`${name}: configuration error: ${error.message}\n`);
        process.exit(2);
      }
      process.stderr.write(`${name}: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
      if (error instanceof Error && error.cause instanceof Error) process.stderr.write(`  cause: ${error.cause.message}\n`);
      process.exit(1);
    },
  );
}
