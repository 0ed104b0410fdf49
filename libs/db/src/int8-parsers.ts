// int8 → bigint on both drivers, so sequence numbers and counters past 2^53
// stay exact and code sees one type whatever the driver (database.test.ts
// "int8 comes out as bigint"). `pg` returns int8 as a string and PGlite as a
// number by default.
import pg from "pg";

const INT8 = 20;
const INT8_ARRAY = 1016;

type PgTypes = NonNullable<pg.PoolConfig["types"]>;
/** pg's built-in parsers, by any OID (its typings list only some OIDs). */
const builtinParser = pg.types.getTypeParser as (oid: number, format: "text" | "binary") => (value: string) => unknown;

const parseInt8 = (value: string) => BigInt(value);
const parseBuiltinInt8Array = builtinParser(INT8_ARRAY, "text");
const parseInt8Array = (value: string) => toBigInts(parseBuiltinInt8Array(value));

/**
 * Type parsers for one pool or client. Never the process-wide `pg.types`:
 * that would change every other `pg` user in the process.
 */
export const pgTypes: PgTypes = {
  getTypeParser: ((oid: number, format: "text" | "binary" = "text") => {
    // pg asks for text results unless a query sets `binary`, which we never do.
    if (format === "text" && oid === INT8) return parseInt8;
    if (format === "text" && oid === INT8_ARRAY) return parseInt8Array;
    return builtinParser(oid, format);
  }) as PgTypes["getTypeParser"],
};

/** PGlite's `parsers` option; PGlite applies element parsers inside arrays itself. */
export const pgliteParsers = { [INT8]: parseInt8 };

function toBigInts(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toBigInts);
  return typeof value === "string" ? BigInt(value) : value;
}
