import { randomFillSync } from "node:crypto";

const pool = new Uint8Array(16 * 256);
let poolOffset = pool.length;

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so
 * server-assigned uuids sort roughly by creation time.
 */
export function uuidV7(nowMs: number = Date.now()): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  const hex = Math.floor(nowMs).toString(16).padStart(12, "0");
  const random = Buffer.from(bytes).toString("hex");
  // version 7 in the high nibble of byte 6; variant 0b10 in the top bits of byte 8
  const variant = ((bytes[8]! & 0x3f) | 0x80).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${random.slice(13, 16)}-${variant}${random.slice(18, 20)}-${random.slice(20, 32)}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether text is a canonical (lowercase, hyphenated) UUID. */
export function isCanonicalUuid(text: string): boolean {
  return UUID.test(text);
}
