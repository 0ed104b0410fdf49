import { ChainError, type JsonValue } from "./canonical-json.js";
import { ChainVerifier, type EntryProblem, type StoredEntry } from "./chain-verifier.js";

// The JSON Lines export format (docs/hash-chain.md, "Export format"): a header
// line, one line per entry, an end line. Integers that may exceed 2^53 are
// decimal strings, as in the chain envelope.

export const EXPORT_FORMAT = "annals.export.v1";

export interface ExportHeader {
  logId: string;
  /** The log id the chain was computed with (differs from logId for a mirror). */
  chainLogId: string;
  /** The entry before the first exported one (or the compaction checkpoint). */
  anchorSeq: bigint;
  anchorChecksum: string;
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
    }) + "\n"
  );
}

export function exportEntryLine(entry: ExportedEntry): string {
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
      payload: entry.payload,
      payload_digest: entry.payloadDigest,
      prev_checksum: entry.prevChecksum,
      checksum: entry.checksum,
      redaction: entry.redaction && { redaction_seq: entry.redaction.redactionSeq.toString(), reason: entry.redaction.reason },
    }) + "\n"
  );
}

/** The last line: how many entries were written and where the chain ended, so truncation is detected. */
export function exportEndLine(count: bigint, last: { seq: bigint; checksum: string }): string {
  return JSON.stringify({ type: "end", count: count.toString(), last_seq: last.seq.toString(), last_checksum: last.checksum }) + "\n";
}

/** One finding of an export check. */
export interface ExportProblem {
  /** 1-based line number in the file. */
  line: number;
  /** The entry's seq when known (for a line that does not parse: the seq it should have held). */
  seq: bigint | null;
  problem: EntryProblem | "missing" | "malformed" | "truncated";
  detail: string;
}

export interface ExportReport {
  valid: boolean;
  logId: string | null;
  checkedCount: number;
  lastSeq: bigint | null;
  problems: ExportProblem[];
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

  finish(): ExportReport {
    if (this.header === null) this.report(null, "malformed", "no header line");
    else if (!this.ended) this.report(this.verifier!.position.seq + 1n, "truncated", "no end line: the export is incomplete");
    return {
      valid: this.problems.length === 0,
      logId: this.header?.logId ?? null,
      checkedCount: this.checked,
      lastSeq: this.verifier ? this.verifier.position.seq : null,
      problems: this.problems,
    };
  }

  private readHeader(record: Record<string, JsonValue>): void {
    if (record["type"] !== "header" || record["format"] !== EXPORT_FORMAT) {
      throw new ChainError(`first line is not an ${EXPORT_FORMAT} header`);
    }
    this.header = {
      logId: text(record, "log_id"),
      chainLogId: text(record, "chain_log_id"),
      anchorSeq: integer(record, "anchor_seq"),
      anchorChecksum: text(record, "anchor_checksum"),
    };
    this.verifier = new ChainVerifier({ seq: this.header.anchorSeq, checksum: this.header.anchorChecksum });
  }

  private readEntry(record: Record<string, JsonValue>, line: string): ExportedEntry {
    if (record["type"] !== "entry") throw new ChainError(`unknown line type ${JSON.stringify(record["type"])}`);
    const payload = record["payload"];
    if (payload !== null && (typeof payload !== "object" || Array.isArray(payload))) throw new ChainError("payload is not an object or null");
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
      payload: payload as { [key: string]: JsonValue } | null,
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
    // The format is deterministic, so a line that is not exactly the rendering
    // of its own content was edited, even where the edit keeps the meaning
    // (2.3333333333333335 and ...36 parse to the same double).
    if (exportEntryLine(exported) !== line + "\n") {
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
    const position = this.verifier!.position;
    const count = integer(record, "count");
    if (count !== BigInt(this.checked)) throw new ChainError(`end line counts ${count} entries, the file holds ${this.checked}`);
    if (integer(record, "last_seq") !== position.seq || text(record, "last_checksum") !== position.checksum) {
      throw new ChainError(`end line names seq ${record["last_seq"]}, the chain ends at seq ${position.seq}`);
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
