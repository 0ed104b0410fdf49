// C2SP tlog-tiles entry bundles: the leaves of one level-0 tile, each as a
// big-endian uint16 length followed by the entry's bytes. An annals leaf is
// the 32 raw bytes of an entry's chain checksum, so every length is 0x0020.
import { TileError } from "./tlog-error.js";
import { TILE_WIDTH } from "./tiles.js";

/** The longest entry a uint16 length prefix can carry. */
export const MAX_BUNDLE_ENTRY_SIZE = 0xffff;

/** Encodes 1–256 entries as an entry bundle. */
export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  if (entries.length === 0 || entries.length > TILE_WIDTH) throw new TileError("bad-bundle", `an entry bundle holds 1 to ${TILE_WIDTH} entries (got ${entries.length})`);
  let size = 0;
  for (const [i, entry] of entries.entries()) {
    if (entry.length > MAX_BUNDLE_ENTRY_SIZE) throw new TileError("bad-bundle", `entry ${i} has ${entry.length} bytes; a bundle entry has at most ${MAX_BUNDLE_ENTRY_SIZE}`);
    size += 2 + entry.length;
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const entry of entries) {
    out[offset] = entry.length >> 8;
    out[offset + 1] = entry.length & 0xff;
    out.set(entry, offset + 2);
    offset += 2 + entry.length;
  }
  return out;
}

/** Splits an entry bundle into its entries; throws TileError when a length runs past the end or there are more than 256. */
export function decodeEntryBundle(bundle: Uint8Array): Uint8Array[] {
  const entries: Uint8Array[] = [];
  let offset = 0;
  while (offset < bundle.length) {
    if (offset + 2 > bundle.length) throw new TileError("bad-bundle", `entry bundle ends inside the length of entry ${entries.length}`);
    const length = (bundle[offset]! << 8) | bundle[offset + 1]!;
    if (offset + 2 + length > bundle.length) throw new TileError("bad-bundle", `entry ${entries.length} of the bundle is truncated (needs ${length} bytes)`);
    entries.push(bundle.slice(offset + 2, offset + 2 + length));
    offset += 2 + length;
    if (entries.length > TILE_WIDTH) throw new TileError("bad-bundle", `an entry bundle holds at most ${TILE_WIDTH} entries`);
  }
  if (entries.length === 0) throw new TileError("bad-bundle", "an entry bundle holds at least one entry");
  return entries;
}
