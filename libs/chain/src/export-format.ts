import { ChainError, type JsonValue } from "./canonical-json.js";
import { ChainVerifier, type EntryProblem, type StoredEntry } from "./chain-verifier.js";
import { bytesEqual } from "./bytes.js";
import { openCheckpoint, parseLogOrigin } from "./checkpoint.js";
import { leafHash } from "./merkle-hash.js";
import { encodeRightEdge, rightEdgeRoot, type RightEdge } from "./right-edge.js";
import { appendLeaves } from "./tile-append.js";
import type { VerifierKey } from "./verifier-key.js";

// The JSON Lines export format (docs/hash-chain.md, "Export format"): a header
// line, one line per entry, an end line. Integers that may exceed 2^53 are
// decimal strings, as in the chain envelope.

export const EXPORT_FORMAT = "annals.export.v2";
/**
 * The format before binary payloads and the Merkle tree: no `tree_edge`, no
 * `content_type`, no end-line `checkpoint`. Such files still verify as a
 * chain; their completeness cannot be checked.
 */
export const EXPORT_FORMAT_V1 = "annals.export.v1";

export interface ExportHeader {
  logId: string;
  /** The log id the chain was computed with (differs from logId for a mirror). */
  chainLogId: string;
  /** The entry before the first exported one (or the compaction anchor). */
  anchorSeq: bigint;
  anchorChecksum: string;
  /**
   * The log's Merkle tree at anchorSeq leaves, as its right edge (the roots of
   * its complete subtrees, largest first; docs/merkle.md): with the entries'
   * checksums it gives the root at the end line's seq, which the end line's
   * signed checkpoint vouches for. null when the log has no tree.
   */
  treeEdge: readonly Uint8Array[] | null;
}

export interface ExportedEntry extends StoredEntry {
  redaction: { redactionSeq: bigint; reason: string } | null;
}

export function exportHeaderLine(header: ExportHeader): string {
  return (
    JSON.stringify({
      type: "header",
      format: EXPORT_FORMAT,
      log_id: header.logId,
      chain_log_id: header.chainLogId,
      anchor_seq: header.anchorSeq.toString(),
      anchor_checksum: header.anchorChecksum,
      tree_edge: header.treeEdge === null ? null : header.treeEdge.map((hash) => Buffer.from(hash).toString("hex")),
    }) + "\n"
  );
}

export function exportEntryLine(entry: ExportedEntry): string {
  return entryLine(entry, false);
}

/** An entry line of the earlier format (EXPORT_FORMAT_V1: JSON payloads only, no content_type). */
function exportEntryLineV1(entry: ExportedEntry): string {
  return entryLine(entry, true);
}

function entryLine(entry: ExportedEntry, v1: boolean): string {
  return (
    JSON.stringify({
      type: "entry",
      seq: entry.seq.toString(),
      uuid: entry.uuid,
      kind: entry.kind,
      source_id: entry.sourceId,
      sim_time: entry.simTime,
      wall_time: entry.wallTimeUs.toString(),
      req_id: entry.reqId,
      metadata: entry.metadata,
      ...(v1 ? {} : { content_type: entry.contentType }),
      payload: !v1 && entry.payload instanceof Uint8Array ? Buffer.from(entry.payload).toString("base64") : entry.payload,
      payload_digest: entry.payloadDigest,
      prev_checksum: entry.prevChecksum,
      checksum: entry.checksum,
      redaction: entry.redaction && { redaction_seq: entry.redaction.redactionSeq.toString(), reason: entry.redaction.reason },
    }) + "\n"
  );
}

/**
 * The last line: how many entries were written and where the chain ended, so
 * truncation is detected; and the log's signed checkpoint of exactly
 * last_seq leaves (null when it has none), so that a file whose tail was
 * dropped, and the end line rewritten to match, is still caught offline.
 */
export function exportEndLine(count: bigint, last: { seq: bigint; checksum: string }, checkpoint: string | null = null): string {
  return (
    JSON.stringify({ type: "end", count: count.toString(), last_seq: last.seq.toString(), last_checksum: last.checksum, checkpoint }) + "\n"
  );
}

/** One finding of an export check. */
export interface ExportProblem {
  /** 1-based line number in the file. */
  line: number;
  /** The entry's seq when known (for a line that does not parse: the seq it should have held). */
  seq: bigint | null;
  problem: EntryProblem | "missing" | "malformed" | "truncated" | "checkpoint";
  detail: string;
}

export interface ExportReport {
  valid: boolean;
  logId: string | null;
  checkedCount: number;
  lastSeq: bigint | null;
  problems: ExportProblem[];
  /**
   * Whether the file was checked against the log's signed checkpoint (only
   * with a verifier key, and when the file carries a tree edge and a
   * checkpoint): only then is a dropped tail with a rewritten end line caught.
   */
  completenessChecked: boolean;
}

/** What finish() checks the file against: the log's verifier key, for its signed checkpoint. */
export interface ExportCheckOptions {
  logKey?: VerifierKey;
}

/**
 * Checks an export line by line with the chain rules alone (no server):
 * feed every line to `line`, then call `finish`. Memory stays constant
 * except for the list of problems (capped at `maxProblems`).
 */
export class ExportVerifier {
  private header: ExportHeader | null = null;
  private verifier: ChainVerifier | null = null;
  private lineNumber = 0;
  private checked = 0;
  private ended = false;
  private readonly problems: ExportProblem[] = [];
  /** The tree grown from the header's edge by every entry line, when the header has one. */
  private edge: RightEdge | null = null;
  private checkpoint: string | null = null;
  /** The file is in the earlier format (EXPORT_FORMAT_V1). */
  private v1 = false;

  constructor(private readonly maxProblems = 1000) {}

  /** Checks one line; returns the entry it holds (checked or not), or null for other lines. */
  line(raw: string): ExportedEntry | null {
    this.lineNumber += 1;
    if (raw.trim() === "") return null;
    const expectedSeq = this.verifier ? this.verifier.position.seq + 1n : null;
    let record: Record<string, JsonValue>;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new ChainError("not a JSON object");
      record = parsed as Record<string, JsonValue>;
    } catch (error) {
      this.report(expectedSeq, "malformed", `line does not parse: ${(error as Error).message}`);
      return null;
    }
    try {
      if (this.ended) throw new ChainError("content after the end line");
      if (this.header === null) {
        this.readHeader(record);
        return null;
      }
      if (record["type"] === "end") {
        this.readEnd(record);
        return null;
      }
      return this.readEntry(record, raw);
    } catch (error) {
      if (!(error instanceof ChainError)) throw error;
      this.report(expectedSeq, "malformed", error.message);
      return null;
    }
  }

  finish(options: ExportCheckOptions = {}): ExportReport {
    if (this.header === null) this.report(null, "malformed", "no header line");
    else if (!this.ended) this.report(this.verifier!.position.seq + 1n, "truncated", "no end line: the export is incomplete");
    const completenessChecked = options.logKey !== undefined && this.checkCheckpoint(options.logKey);
    return {
      valid: this.problems.length === 0,
      logId: this.header?.logId ?? null,
      checkedCount: this.checked,
      lastSeq: this.verifier ? this.verifier.position.seq : null,
      problems: this.problems,
      completenessChecked,
    };
  }

  /**
   * The end line's checkpoint, signed with `logKey` for this log's origin,
   * must be of exactly the last seq's tree, and its root the one the header's
   * edge and the entries' checksums give. Returns whether it could be checked.
   */
  private checkCheckpoint(logKey: VerifierKey): boolean {
    if (this.header === null || !this.ended) return false;
    const seq = this.verifier!.position.seq;
    if (this.edge === null || this.checkpoint === null) {
      this.report(seq, "checkpoint", "the file carries no tree edge or no signed checkpoint, so its completeness cannot be checked");
      return false;
    }
    try {
      const { checkpoint } = openCheckpoint(this.checkpoint, [logKey]);
      const { logId } = parseLogOrigin(checkpoint.origin);
      if (logId !== this.header.chainLogId) throw new ChainError(`it is for log "${logId}", not "${this.header.chainLogId}"`);
      if (checkpoint.size !== seq) throw new ChainError(`it covers ${checkpoint.size} entries, the file ends at seq ${seq}`);
      if (!bytesEqual(checkpoint.rootHash, rightEdgeRoot(this.edge))) throw new ChainError("its root is not the root of the file's entries");
    } catch (error) {
      this.report(seq, "checkpoint", `the signed checkpoint does not vouch for this file: ${(error as Error).message}`);
    }
    return true;
  }

  private readHeader(record: Record<string, JsonValue>): void {
    if (record["type"] !== "header" || (record["format"] !== EXPORT_FORMAT && record["format"] !== EXPORT_FORMAT_V1)) {
      throw new ChainError(`first line is not an ${EXPORT_FORMAT} (or ${EXPORT_FORMAT_V1}) header`);
    }
    this.v1 = record["format"] === EXPORT_FORMAT_V1;
    if (this.v1 && record["tree_edge"] !== undefined) throw new ChainError(`an ${EXPORT_FORMAT_V1} header has no tree_edge`);
    this.header = {
      logId: text(record, "log_id"),
      chainLogId: text(record, "chain_log_id"),
      anchorSeq: integer(record, "anchor_seq"),
      anchorChecksum: text(record, "anchor_checksum"),
      treeEdge: hashList(record, "tree_edge"),
    };
    this.verifier = new ChainVerifier({ seq: this.header.anchorSeq, checksum: this.header.anchorChecksum });
    this.edge = this.header.treeEdge === null ? null : { size: this.header.anchorSeq, hashes: this.header.treeEdge };
    if (this.edge) checkRightEdgeOf(this.edge);
  }

  private readEntry(record: Record<string, JsonValue>, line: string): ExportedEntry {
    if (record["type"] !== "entry") throw new ChainError(`unknown line type ${JSON.stringify(record["type"])}`);
    if (this.v1 && record["content_type"] !== undefined) throw new ChainError(`an ${EXPORT_FORMAT_V1} entry has no content_type`);
    const contentType = this.v1 ? null : record["content_type"];
    if (contentType !== null && typeof contentType !== "string") throw new ChainError("content_type is not a string or null");
    const payload = record["payload"];
    if (contentType === null && payload !== null && (typeof payload !== "object" || Array.isArray(payload))) {
      throw new ChainError("payload is not an object or null (the entry has no content_type, so its payload is JSON)");
    }
    if (contentType !== null && payload !== null && (typeof payload !== "string" || !BASE64.test(payload))) {
      throw new ChainError("payload is not base64 or null (the entry has a content_type, so its payload is bytes)");
    }
    const simTime = record["sim_time"];
    if (simTime !== null && typeof simTime !== "number") throw new ChainError("sim_time is not a number or null");
    const entry: StoredEntry = {
      logId: this.header!.chainLogId,
      seq: integer(record, "seq"),
      uuid: text(record, "uuid"),
      kind: text(record, "kind"),
      sourceId: text(record, "source_id"),
      simTime,
      wallTimeUs: integer(record, "wall_time"),
      reqId: text(record, "req_id"),
      metadata: stringMap(record, "metadata"),
      contentType,
      payload: typeof payload === "string" ? Buffer.from(payload, "base64") : (payload as { [key: string]: JsonValue } | null),
      payloadDigest: text(record, "payload_digest"),
      prevChecksum: text(record, "prev_checksum"),
      checksum: text(record, "checksum"),
    };
    const redaction = record["redaction"];
    const exported: ExportedEntry = {
      ...entry,
      redaction:
        redaction === null || redaction === undefined
          ? null
          : { redactionSeq: integer(redaction as Record<string, JsonValue>, "redaction_seq"), reason: text(redaction as Record<string, JsonValue>, "reason") },
    };
    const result = this.verifier!.check(entry);
    this.checked += 1;
    // The tree grows by the stored checksum, as the log's did; a changed entry shows up in the chain checks.
    if (this.edge !== null) this.edge = appendLeaves(this.edge, [leafHash(Buffer.from(entry.checksum, "hex"))]).edge;
    // The format is deterministic, so a line that is not exactly the rendering
    // of its own content was edited, even where the edit keeps the meaning
    // (2.3333333333333335 and ...36 parse to the same double).
    if ((this.v1 ? exportEntryLineV1(exported) : exportEntryLine(exported)) !== line + "\n") {
      this.report(entry.seq, "malformed", "the line is not in the exact form annals writes (it was edited)");
    }
    if (result.missingBefore) {
      this.report(result.missingBefore.from, "missing", `seqs ${result.missingBefore.from}..${result.missingBefore.to} are missing`);
    }
    for (const problem of result.problems) this.report(entry.seq, problem, describe(problem));
    return exported;
  }

  private readEnd(record: Record<string, JsonValue>): void {
    this.ended = true;
    const checkpoint = record["checkpoint"];
    if (checkpoint !== undefined && checkpoint !== null && typeof checkpoint !== "string") throw new ChainError("checkpoint is not a string or null");
    this.checkpoint = checkpoint ?? null;
    const position = this.verifier!.position;
    const count = integer(record, "count");
    if (count !== BigInt(this.checked)) throw new ChainError(`end line counts ${count} entries, the file holds ${this.checked}`);
    if (integer(record, "last_seq") !== position.seq || text(record, "last_checksum") !== position.checksum) {
      throw new ChainError(`end line names seq ${JSON.stringify(record["last_seq"])}, the chain ends at seq ${position.seq}`);
    }
  }

  private report(seq: bigint | null, problem: ExportProblem["problem"], detail: string): void {
    if (this.problems.length < this.maxProblems) this.problems.push({ line: this.lineNumber, seq, problem, detail });
  }
}

function describe(problem: EntryProblem): string {
  switch (problem) {
    case "payload_digest":
      return "the payload does not hash to payload_digest";
    case "checksum":
      return "the entry does not hash to its checksum";
    case "link":
      return "prev_checksum is not the checksum of the entry before";
  }
}

/** Standard base64 with padding, as the export writes bytes. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A list of 32-byte hashes in hex, or null. */
function hashList(record: Record<string, JsonValue>, field: string): Uint8Array[] | null {
  const value = record[field];
  if (value === null || value === undefined) return null;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string" && /^[0-9a-f]{64}$/.test(item))) {
    throw new ChainError(`${field} is not a list of hex SHA-256 hashes`);
  }
  return (value as string[]).map((item) => Buffer.from(item, "hex"));
}

function checkRightEdgeOf(edge: RightEdge): void {
  try {
    encodeRightEdge(edge);
  } catch (error) {
    throw new ChainError(`tree_edge is not the right edge of a tree of ${edge.size} leaves: ${(error as Error).message}`);
  }
}

function text(record: Record<string, JsonValue>, field: string): string {
  const value = record[field];
  if (typeof value !== "string") throw new ChainError(`${field} is not a string`);
  return value;
}

function integer(record: Record<string, JsonValue>, field: string): bigint {
  const value = text(record, field);
  if (!/^(0|[1-9][0-9]{0,18})$/.test(value)) throw new ChainError(`${field} is not a decimal integer string`);
  return BigInt(value);
}

function stringMap(record: Record<string, JsonValue>, field: string): Record<string, string> {
  const value = record[field];
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ChainError(`${field} is not an object`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") throw new ChainError(`${field}.${key} is not a string`);
  }
  return value as Record<string, string>;
}
