/**
 * A database failure: a statement the server rejected, a connection that
 * failed, a migration that cannot apply. `cause` holds the driver's error.
 */
export class DatabaseError extends Error {
  override name = "DatabaseError";
  /**
   * The SQLSTATE of the server's error, e.g. "23505" for a unique violation
   * or "40001" for a serialization failure; undefined when the server did not
   * reject a statement (connection failures, misuse).
   */
  readonly code: string | undefined;
  /** The violated constraint, for integrity errors. */
  readonly constraint: string | undefined;
  /**
   * Whether the database could not be reached or was not accepting work (a
   * refused or dropped connection, a pool with no free connection in time, a
   * server shutting down or out of connections): worth retrying with backoff.
   * The service runtime answers such errors with UNAVAILABLE instead of INTERNAL.
   */
  readonly unavailable: boolean;

  constructor(message: string, options?: { cause?: unknown; code?: string | undefined; constraint?: string | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code;
    this.constraint = options?.constraint;
    this.unavailable = isUnavailable(this.code, options?.cause);
  }
}

/**
 * Wraps a driver error so callers see one error type with the SQLSTATE on
 * both drivers. Keeps the server's message (optionally after `context`), so
 * "duplicate key value violates unique constraint …" still reads as such.
 */
export function toDatabaseError(cause: unknown, context?: string): DatabaseError {
  if (cause instanceof DatabaseError && context === undefined) return cause;
  const message = cause instanceof Error ? cause.message : String(cause);
  const fields = typeof cause === "object" && cause !== null ? (cause as { code?: unknown; constraint?: unknown }) : {};
  // Node's own errors (ECONNREFUSED, EPIPE…) also have a `code`, all letters;
  // a SQLSTATE is five characters with at least one digit.
  const code = typeof fields.code === "string" && /^(?=.*\d)[0-9A-Z]{5}$/.test(fields.code) ? fields.code : undefined;
  const constraint = typeof fields.constraint === "string" ? fields.constraint : undefined;
  return new DatabaseError(context === undefined ? message : `${context}: ${message}`, { cause, code, constraint });
}

/** SQLSTATEs of a server that cannot take work now: connection exceptions (class 08), shutdowns, too many connections. */
const UNAVAILABLE_STATES = /^(08...|57P0[1-3]|53300)$/;
/** What `pg` says when the pool had no connection to give in time, or lost one. */
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|connection timeout/i;

function isUnavailable(code: string | undefined, cause: unknown): boolean {
  if (code !== undefined) return UNAVAILABLE_STATES.test(code);
  if (typeof cause !== "object" || cause === null) return false;
  const { code: systemCode, message } = cause as { code?: unknown; message?: unknown };
  // Node's socket errors: ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE, ENOTFOUND…
  if (typeof systemCode === "string" && /^E[A-Z]+$/.test(systemCode)) return true;
  return typeof message === "string" && UNAVAILABLE_MESSAGES.test(message);
}
