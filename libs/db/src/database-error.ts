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

  constructor(message: string, options?: { cause?: unknown; code?: string | undefined; constraint?: string | undefined }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code;
    this.constraint = options?.constraint;
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
