import { canonicalJson, ChainError, type JsonValue } from "./canonical-json.js";
import { binaryPayloadDigest, entryChecksum, sha256Hex, type ChainFields } from "./hash-chain.js";

/** An entry as a verifier sees it: its chain fields, its stored checksum and, unless redacted, its payload. */
export interface StoredEntry extends ChainFields {
  checksum: string;
  /**
   * The payload: a JSON object (contentType null) or bytes (contentType set);
   * null when it was redacted (only the digest is left to check).
   */
  payload: { [key: string]: JsonValue } | Uint8Array | null;
}

/** What is wrong with one entry. */
export type EntryProblem =
  /** The payload does not hash to payload_digest. */
  | "payload_digest"
  /** The envelope does not hash to the stored checksum. */
  | "checksum"
  /** prev_checksum is not the checksum of the entry before it. */
  | "link";

export interface EntryCheck {
  seq: bigint;
  problems: EntryProblem[];
  /** Sequence numbers skipped between the previous entry and this one. */
  missingBefore: { from: bigint; to: bigint } | null;
}

/**
 * Walks a chain in ascending seq order from an anchor (the entry before the
 * first one checked, or a compaction checkpoint). Each entry is checked on its
 * own (payload digest, checksum) and against its predecessor (link, gap); a
 * corrupted entry is reported once, and the walk goes on from its stored
 * checksum so one bad row does not condemn the rest.
 */
export class ChainVerifier {
  private expectedSeq: bigint;
  private previousChecksum: string;

  constructor(anchor: { seq: bigint; checksum: string }) {
    this.expectedSeq = anchor.seq + 1n;
    this.previousChecksum = anchor.checksum;
  }

  /** The seq and checksum of the last entry seen (the anchor before any). */
  get position(): { seq: bigint; checksum: string } {
    return { seq: this.expectedSeq - 1n, checksum: this.previousChecksum };
  }

  check(entry: StoredEntry): EntryCheck {
    if (entry.seq < this.expectedSeq) {
      throw new ChainError(`entries out of order: seq ${entry.seq} after ${this.expectedSeq - 1n}`);
    }
    const problems: EntryProblem[] = [];
    const missingBefore = entry.seq > this.expectedSeq ? { from: this.expectedSeq, to: entry.seq - 1n } : null;
    // A payload of the other kind than the envelope says (bytes with no content type) cannot be the one hashed.
    const kindAgrees = entry.payload === null || (entry.payload instanceof Uint8Array) === (entry.contentType !== null);
    if (entry.payload !== null && (!kindAgrees || safeDigest(entry.payload) !== entry.payloadDigest)) problems.push("payload_digest");
    if (entryChecksum(entry) !== entry.checksum) problems.push("checksum");
    // Across a gap the predecessor is unknown, so the link cannot be judged.
    if (missingBefore === null && entry.prevChecksum !== this.previousChecksum) problems.push("link");
    this.expectedSeq = entry.seq + 1n;
    this.previousChecksum = entry.checksum;
    return { seq: entry.seq, problems, missingBefore };
  }
}

function safeDigest(payload: { [key: string]: JsonValue } | Uint8Array): string | null {
  if (payload instanceof Uint8Array) return binaryPayloadDigest(payload);
  try {
    return sha256Hex(canonicalJson(payload));
  } catch {
    return null;
  }
}
