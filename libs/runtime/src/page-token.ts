import { invalidArgument } from "@annals/runtime";

// Page tokens are opaque to clients: base64url JSON naming the listing they
// belong to and the position to resume after, so a token from one listing
// (or a hand-made one) is refused with INVALID_ARGUMENT instead of misread.

export function encodePageToken(listing: string, position: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify([listing, ...position])).toString("base64url");
}

/** The position stored in a token of `listing`; throws INVALID_ARGUMENT naming `field`. */
export function decodePageToken(field: string, listing: string, token: string): (string | number)[] {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    decoded = undefined;
  }
  if (!Array.isArray(decoded) || decoded[0] !== listing) {
    throw invalidArgument(field, "is not a page token of this listing (pass next_page_token unchanged, with the same request)");
  }
  return decoded.slice(1) as (string | number)[];
}
