import { createHash } from "node:crypto";
import { invalidArgument } from "./errors.js";

// Page tokens are opaque to clients: base64url JSON naming the listing they
// belong to, a digest of the request that listing answered (the log, the
// source, the prefix, the range…), and the position to resume after. A token
// from another listing, from the same listing with other parameters, or made
// by hand is refused with INVALID_ARGUMENT instead of being misread.

/** The token of the page after `position` in `listing`, for the request described by `scope`. */
export function encodePageToken(listing: string, scope: readonly unknown[], position: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify([listing, scopeDigest(scope), ...position])).toString("base64url");
}

/**
 * The position stored in a token of `listing` made for the same `scope`;
 * throws INVALID_ARGUMENT naming `field`. `arity` is how many position
 * values the listing's tokens hold.
 */
export function decodePageToken(field: string, listing: string, scope: readonly unknown[], token: string, arity = 1): string[] {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    decoded = undefined;
  }
  const valid =
    Array.isArray(decoded) &&
    decoded.length === arity + 2 &&
    decoded[0] === listing &&
    decoded[1] === scopeDigest(scope) &&
    decoded.slice(2).every((value) => typeof value === "string" || typeof value === "number");
  if (!valid) {
    throw invalidArgument(field, "is not a page token of this listing (pass next_page_token unchanged, with the same request)");
  }
  return (decoded as unknown[]).slice(2).map(String);
}

/** A decoded position that must be a non-negative integer (a seq, a time in µs). */
export function pagePositionInteger(field: string, value: string, { signed = false } = {}): bigint {
  if (!(signed ? /^-?[0-9]{1,19}$/ : /^[0-9]{1,19}$/).test(value)) {
    throw invalidArgument(field, "is not a page token of this listing (pass next_page_token unchanged, with the same request)");
  }
  return BigInt(value);
}

function scopeDigest(scope: readonly unknown[]): string {
  return createHash("sha256")
    .update(JSON.stringify(scope, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value)))
    .digest("base64url")
    .slice(0, 16);
}
