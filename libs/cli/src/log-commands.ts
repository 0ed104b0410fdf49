// `annals verify`, `annals export` and `annals import`: JSON Lines exports of
// a log (docs/hash-chain.md, "Export format").
import { createReadStream, createWriteStream, rmSync } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { ExportVerifier, type ExportReport, type ExportedEntry, type VerifierKey } from "@annals/chain";
import type { LogClient } from "@annals/client";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { logV1 } from "@annals/proto";
import { progress } from "./progress.js";

/** The lines of a file (or stdin for "-"), read one at a time. */
function lines(file: string): AsyncIterable<string> {
  const input = file === "-" ? process.stdin : createReadStream(file, { encoding: "utf8" });
  return createInterface({ input, crlfDelay: Infinity });
}

/**
 * Checks an export offline: the chain rules, and with the log's verifier key
 * (`logKey` gives it for the file's log origin) the end line's signed
 * checkpoint against the root of the file's entries. No server is involved.
 */
export async function verifyExportFile(file: string, logKey?: (origin: string) => VerifierKey): Promise<ExportReport> {
  const verifier = new ExportVerifier();
  const shown = progress(`verifying ${file}`, "lines");
  let count = 0;
  let origin: string | null = null;
  for await (const line of lines(file)) {
    verifier.line(line);
    count += 1;
    shown.update(count);
    // The end line's checkpoint names the origin (node and log) the key must be for.
    if (logKey && line.startsWith('{"type":"end"')) origin = checkpointOrigin(line);
  }
  shown.done();
  return verifier.finish(logKey ? { logKey: logKey(origin ?? "") } : {});
}

function checkpointOrigin(endLine: string): string | null {
  try {
    const checkpoint = (JSON.parse(endLine) as { checkpoint?: unknown }).checkpoint;
    return typeof checkpoint === "string" ? checkpoint.split("\n", 1)[0]! : null;
  } catch {
    return null;
  }
}

export function printReport(file: string, report: ExportReport, keyGiven = false): void {
  if (report.valid) {
    const range = report.lastSeq === null || report.checkedCount === 0 ? "no entries" : `${report.checkedCount} entries up to seq ${report.lastSeq}`;
    console.log(`${file}: valid export of log "${report.logId}", ${range}`);
    if (report.completenessChecked) console.log(`  complete: the log's signed checkpoint of seq ${report.lastSeq} has the root of these entries`);
    else if (!keyGiven) console.log("  completeness NOT checked: give the log's verifier key (--key) to check the end line's signed checkpoint");
    return;
  }
  console.log(`${file}: INVALID (${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}, ${report.checkedCount} entries read)`);
  for (const problem of report.problems) {
    console.log(`  line ${problem.line}${problem.seq === null ? "" : `, seq ${problem.seq}`}: ${problem.problem}: ${problem.detail}`);
  }
}

/** Streams the Export of a log to a file (or stdout for "-"); returns the bytes written. */
/** A failed export to a file removes what it wrote, so no partial file is left to mistake for an export. */
export async function exportLog(log: LogClient, request: { logId: string; fromSeq: bigint; toSeq: bigint }, file: string): Promise<number> {
  const output = file === "-" ? process.stdout : createWriteStream(file);
  const shown = progress(`exporting log "${request.logId}"`, "bytes");
  let bytes = 0;
  try {
    for await (const { chunk } of log.export(request)) {
      bytes += chunk.byteLength;
      shown.update(bytes);
      if (!output.write(chunk)) await once(output, "drain");
    }
  } catch (error) {
    if (output !== process.stdout) {
      output.destroy();
      rmSync(file, { force: true });
    }
    throw error;
  } finally {
    shown.done();
  }
  if (output !== process.stdout) {
    output.end();
    await once(output, "finish");
  }
  return bytes;
}

export interface ImportSummary {
  appended: number;
  duplicates: number;
  firstSeq: bigint | null;
  lastSeq: bigint | null;
  /** Entries whose payload was redacted at the source: there is nothing to import. */
  skippedRedacted: number;
  /** Entries the service wrote itself (kinds under "annals."), such as redaction records. */
  skippedService: number;
}

/**
 * Appends the entries of a verified export to `logId` as new entries (new
 * seqs, wall times and checksums in that log's own chain), keeping each
 * entry's uuid, kind, payload (a JSON object, or bytes with their content
 * type), source, sim time, metadata and request id. The whole file is
 * verified first, so a damaged export appends nothing. Entries go through one
 * AppendStream, which ends at the first refused entry: a retried import is
 * refused at the first entry whose uuid is already there.
 */
export async function importExport(log: LogClient, file: string, logId: string): Promise<ImportSummary> {
  const report = await verifyExportFile(file);
  if (!report.valid) {
    printReport(file, report);
    throw new Error(`${file} does not verify; nothing was imported`);
  }
  const summary: ImportSummary = { appended: 0, duplicates: 0, firstSeq: null, lastSeq: null, skippedRedacted: 0, skippedService: 0 };
  const verifier = new ExportVerifier();
  const shown = progress(`importing into log "${logId}"`, "entries");
  async function* requests(): AsyncGenerator<MessageInitShape<typeof logV1.AppendStreamRequestSchema>> {
    yield { frame: { case: "options", value: { logId } } };
    for await (const line of lines(file)) {
      const entry = verifier.line(line);
      if (!entry) continue;
      if (entry.kind.startsWith("annals.")) summary.skippedService += 1;
      else if (entry.payload === null) summary.skippedRedacted += 1;
      else yield { frame: { case: "entry", value: { entry: entryInput(entry) } } };
    }
  }
  for await (const { frame } of log.appendStream(requests())) {
    // Without continue_on_failure a refusal ends the stream with its status; any other frame is a contract breach.
    if (frame.case !== "result") throw new Error(`AppendStream answered an entry with a ${frame.case ?? "empty"} frame`);
    if (frame.value.duplicate) summary.duplicates += 1;
    else summary.appended += 1;
    summary.firstSeq ??= frame.value.seq;
    summary.lastSeq = frame.value.seq;
    shown.update(summary.appended + summary.duplicates);
  }
  shown.done();
  return summary;
}

function entryInput(entry: ExportedEntry): MessageInitShape<typeof logV1.EntryInputSchema> {
  // A binary entry (content_type set) is appended as bytes with its content
  // type, so its payload digest (SHA-256 of the bytes) stays what it was.
  const body =
    entry.payload instanceof Uint8Array
      ? { body: { case: "binaryPayload" as const, value: entry.payload }, contentType: entry.contentType ?? "" }
      : { body: { case: "payload" as const, value: entry.payload! } };
  return {
    uuid: entry.uuid,
    kind: entry.kind,
    ...body,
    sourceId: entry.sourceId,
    ...(entry.simTime === null ? {} : { simTime: entry.simTime }),
    metadata: entry.metadata,
    requestId: entry.reqId,
  };
}
