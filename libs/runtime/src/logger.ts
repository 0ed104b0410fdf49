import { pino, type Logger } from "pino";

export type { Logger };

export interface LoggerOptions {
  /** Name of the process or service, in every line. */
  name: string;
  /** pino level: trace, debug, info, warn, error, fatal, silent. Default info. */
  level?: string;
}

/**
 * JSON logs on stdout, one object a line. Authorization headers and tokens are
 * redacted wherever they might appear in logged objects.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino({
    name: options.name,
    level: options.level ?? "info",
    base: { pid: process.pid },
    redact: {
      paths: ["authorization", "token", "*.authorization", "*.token", "headers.authorization", "req.headers.authorization"],
      censor: "[redacted]",
    },
  });
}
