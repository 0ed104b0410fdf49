// `annals logs`, `append`, `read`, `tail` and `stats`: a log's entries from a shell.
import { readFileSync } from "node:fs";
import type { LogClient } from "@annals/client";
import { logV1 } from "@annals/proto";
import { toJson, type JsonObject } from "@bufbuild/protobuf";
import { UsageError } from "./usage-error.js";

/** A non-negative integer option (a seq, a count); `fallback` when absent. */
export function countOption(value: string | undefined, name: string, fallback: bigint): bigint {
  if (value === undefined) return fallback;
  if (!/^[0-9]{1,19}$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer (got ${JSON.stringify(value)})`);
  return BigInt(value);
}

function isoTime(wallTimeUs: bigint): string {
  return new Date(Number(wallTimeUs / 1000n)).toISOString();
}

/**
 * One line for an entry, readable in a terminal and easy to cut: seq, wall
 * time, kind, then the payload (compact JSON, `<N bytes type>` for a binary
 * one, `<redacted: reason>`), separated by tabs.
 */
export function entryLine(entry: logV1.Entry): string {
  let payload: string;
  if (entry.redaction) payload = `<redacted: ${entry.redaction.reason}>`;
  else if (entry.body.case === "payload") payload = JSON.stringify(entry.body.value);
  else if (entry.body.case === "binaryPayload") payload = `<${entry.body.value.byteLength} bytes ${entry.contentType}>`;
  else payload = "<no payload>";
  return `${entry.seq}\t${isoTime(entry.wallTimeUs)}\t${entry.kind}\t${payload}`;
}

function originText(head: logV1.LogHead): string {
  return head.origin === logV1.LogOrigin.MIRROR ? `mirror of ${head.chainLogId} on ${head.originNode}` : "local";
}

export async function logsCommand(log: LogClient, subcommand: string | undefined, operands: string[], prefix: string | undefined): Promise<number> {
  switch (subcommand) {
    case "list": {
      if (operands.length > 0) throw new UsageError("logs list takes no operands (use --prefix)");
      let pageToken = "";
      let listed = 0;
      do {
        const page = await log.listLogs({ prefix: prefix ?? "", pageToken, pageSize: 500 });
        for (const head of page.logs) {
          console.log(`${head.logId}\tlast seq ${head.lastSeq}\t${head.entryCount} entries\t${originText(head)}`);
          listed += 1;
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      if (listed === 0) console.error(prefix ? `no logs under "${prefix}"` : "no logs yet (appending to a log creates it)");
      return 0;
    }
    case "get":
    case "create": {
      if (operands.length !== 1) throw new UsageError(`logs ${subcommand} takes one LOG`);
      const logId = operands[0]!;
      const head = subcommand === "get" ? (await log.getLog({ logId })).head : (await log.createLog({ logId })).head;
      if (!head) throw new Error("the server answered without the log's head");
      if (subcommand === "create") console.error(`log "${logId}" ${head.lastSeq === 0n ? "is ready" : "exists already"}`);
      printHead(head);
      return 0;
    }
    default:
      throw new UsageError(subcommand ? `unknown logs command "${subcommand}"` : "logs needs a command: list, get or create");
  }
}

function printHead(head: logV1.LogHead): void {
  const created = head.createTime ? new Date(Number(head.createTime.seconds) * 1000).toISOString() : "-";
  console.log(
    [
      `log:           ${head.logId}`,
      `origin:        ${originText(head)}`,
      `last seq:      ${head.lastSeq}`,
      `last checksum: ${head.lastChecksum}`,
      `entries:       ${head.entryCount} stored, from seq ${head.firstSeq}`,
      `created:       ${created}`,
    ].join("\n"),
  );
}

export interface AppendOptions {
  logId: string;
  kind: string;
  /** The payload text, or undefined to read it from stdin. */
  payload: string | undefined;
  contentType: string | undefined;
  requestId: string | undefined;
  sourceId: string | undefined;
}

/** The payload of `annals append`: from the operand, or from stdin when it is absent or "-". */
function payloadBytes(payload: string | undefined): Buffer {
  if (payload !== undefined && payload !== "-") return Buffer.from(payload, "utf8");
  if (process.stdin.isTTY) throw new UsageError("append needs the payload as an argument or on stdin");
  return readFileSync(0);
}

export async function appendCommand(log: LogClient, options: AppendOptions): Promise<number> {
  const bytes = payloadBytes(options.payload);
  let body: logV1.EntryInput["body"];
  if (options.contentType !== undefined) {
    body = { case: "binaryPayload", value: new Uint8Array(bytes) };
  } else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString("utf8"));
    } catch (error) {
      throw new UsageError(`the payload is not JSON (${(error as Error).message}); give --content-type to append it as bytes`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new UsageError("a JSON payload must be an object ({…}); give --content-type to append other bytes");
    }
    body = { case: "payload", value: parsed as JsonObject };
  }
  const { result } = await log.append({
    logId: options.logId,
    entry: {
      kind: options.kind,
      body,
      contentType: options.contentType ?? "",
      requestId: options.requestId ?? "",
      sourceId: options.sourceId ?? "",
    },
  });
  if (!result) throw new Error("the server answered without a result");
  console.log(`${result.duplicate ? "duplicate of" : "appended"} seq ${result.seq} to log "${options.logId}" (checksum ${result.checksum})`);
  return 0;
}

export interface ReadOptions {
  logId: string;
  fromSeq: bigint;
  /** Most entries to print; 0 for all up to the head as it was when reading started. */
  limit: bigint;
  json: boolean;
}

/** An entry as one line: entryLine, or its protobuf JSON with --json. */
function printEntry(entry: logV1.Entry, json: boolean): void {
  console.log(json ? JSON.stringify(toJson(logV1.EntrySchema, entry)) : entryLine(entry));
}

export async function readCommand(log: LogClient, options: ReadOptions): Promise<number> {
  const head = (await log.getLog({ logId: options.logId })).head!;
  let printed = 0n;
  let pageToken = "";
  for (;;) {
    const remaining = options.limit === 0n ? 1000n : options.limit - printed;
    const page = await log.read({ logId: options.logId, fromSeq: options.fromSeq, pageToken, pageSize: Number(remaining < 1000n ? remaining : 1000n) });
    for (const entry of page.entries) {
      if (entry.seq > head.lastSeq && options.limit === 0n) return 0;
      printEntry(entry, options.json);
      printed += 1n;
      if (options.limit !== 0n && printed >= options.limit) return 0;
    }
    const last = page.entries.at(-1);
    if (!last || last.seq >= head.lastSeq || page.nextPageToken === "") break;
    pageToken = page.nextPageToken;
  }
  if (printed === 0n) console.error(`no entries in log "${options.logId}" from seq ${options.fromSeq}`);
  return 0;
}

export interface TailOptions {
  logId: string;
  topics: string[];
  /** Start after this seq; undefined: after head − last. */
  afterSeq: bigint | undefined;
  last: bigint;
  json: boolean;
}

/** Follows a log live (Subscribe), one line per entry, until interrupted or the server ends the stream. */
export async function tailCommand(log: LogClient, options: TailOptions): Promise<number> {
  let afterSeq = options.afterSeq;
  if (afterSeq === undefined) {
    const head = (await log.getLog({ logId: options.logId })).head!;
    afterSeq = head.lastSeq > options.last ? head.lastSeq - options.last : 0n;
  }
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  try {
    for await (const response of log.subscribe({ logId: options.logId, afterSeq, kinds: options.topics }, { signal: stop.signal })) {
      const frame = response.frame;
      if (frame.case === "entry") printEntry(frame.value, options.json);
      else if (frame.case === "entries") for (const entry of frame.value.entries) printEntry(entry, options.json);
    }
  } catch (error) {
    if (stop.signal.aborted) return 0;
    throw error;
  }
  return 0;
}

export async function statsCommand(log: LogClient, logId: string | undefined): Promise<number> {
  if (logId !== undefined) {
    const stats = await log.stats({ logId });
    printHead(stats.head!);
    const time = (us: bigint) => (us === 0n ? "-" : isoTime(us));
    console.log(
      [
        `redacted:      ${stats.redactedCount}`,
        `sources:       ${stats.sourceCount}`,
        `wall time:     ${time(stats.minWallTimeUs)} .. ${time(stats.maxWallTimeUs)}`,
        `sim time:      ${stats.minSimTime ?? "-"} .. ${stats.maxSimTime ?? "-"}`,
      ].join("\n"),
    );
    return 0;
  }
  let logs = 0;
  let mirrors = 0;
  let entries = 0n;
  let pageToken = "";
  do {
    const page = await log.listLogs({ pageToken, pageSize: 500 });
    for (const head of page.logs) {
      logs += 1;
      if (head.origin === logV1.LogOrigin.MIRROR) mirrors += 1;
      entries += head.entryCount;
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  console.log(`${logs} logs (${mirrors} mirrors), ${entries} entries stored`);
  return 0;
}
