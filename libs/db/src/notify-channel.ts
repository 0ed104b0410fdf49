import { DatabaseError } from "./database-error.js";

/**
 * A LISTEN channel as a quoted identifier, so that names are case-sensitive
 * and may hold any character, exactly as `pg_notify(name, …)` takes them.
 * Refuses names PostgreSQL would truncate (over 63 bytes) and names with `"`,
 * which PGlite's LISTEN bookkeeping cannot unquote.
 */
export function quoteChannel(channel: string): string {
  if (channel.length === 0 || Buffer.byteLength(channel) > 63 || channel.includes('"') || channel.includes("\0")) {
    throw new DatabaseError(`invalid channel name ${JSON.stringify(channel)}: expected 1 to 63 bytes without '"'`);
  }
  return `"${channel}"`;
}
