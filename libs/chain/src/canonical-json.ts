import canonicalizeModule from "canonicalize";

// canonicalize 2.x is CommonJS (`module.exports = serialize`) while its typings
// declare an ES default export; under nodenext the default import is the
// function itself at run time, so only the type needs correcting.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** A JSON value as the chain hashes it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Thrown when a value cannot be hashed (not JSON, or a number JSON cannot carry). */
export class ChainError extends Error {
  override readonly name = "ChainError";
}

/**
 * RFC 8785 (JCS) canonical JSON: keys sorted by UTF-16 code units, no
 * whitespace, numbers as ECMAScript prints them, strings with the minimal
 * escapes. NaN and ±Infinity are refused (JSON has no spelling for them).
 */
export function canonicalJson(value: JsonValue): string {
  try {
    const text = canonicalize(value);
    if (text === undefined) throw new ChainError("value is not JSON");
    return text;
  } catch (error) {
    if (error instanceof ChainError) throw error;
    throw new ChainError(`value cannot be canonicalised: ${(error as Error).message}`, { cause: error });
  }
}
