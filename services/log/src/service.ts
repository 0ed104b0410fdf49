import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import type { Database } from "@annals/db";
import { logV1 } from "@annals/proto";
import {
  ADMIN_ROLE,
  callPrincipal,
  decodePageToken,
  defineService,
  encodePageToken,
  grantsLog,
  invalidArgument,
  isAllowed,
  notFound,
  pagePositionInteger,
  requireLogAccess,
  resourceExhausted,
  type Principal,
  type ServiceRegistration,
} from "@annals/runtime";
import type { AppendBatcher } from "./append-batcher.js";
import type { AppendNotifier } from "./append-notifier.js";
import type { AppendedEntry } from "./append-plan.js";
import { payloadProblem } from "@annals/chain";
import { checkLocalLogId, checkLogId, prepareEntry, type LogLimits, type PreparedEntry } from "./entry-input.js";
import { OrderedAcks } from "./append-stream.js";
import { appendResult, entryMessage, headMessage } from "./entry-mapping.js";
import { exportLines } from "./export.js";
import { seqCompacted, seqPastHead } from "./log-errors.js";
import type { LogMetrics } from "./log-metrics.js";
import { compactLog, redactEntry } from "./maintenance.js";
import { appendReplicated } from "./replicate.js";
import * as store from "./store.js";
import { subscription } from "./subscription.js";
import { KindFilter, patternProblem } from "@annals/topics";
import { isCanonicalUuid } from "./uuid-v7.js";
import { verifyRange } from "./verify.js";

/** Roles of the log service (see the LogService comment in log_service.proto). */
export const LOG_READ = "log.read";
export const LOG_WRITE = "log.write";
export const LOG_REPLICATE = "log.replicate";
/** Held by services that relay log streams to many clients (stream, federation): Subscribe is not capped per subject for them. */
export const LOG_RELAY = "log.relay";

/** What the handlers work with; built by the component. */
export interface LogServiceDeps {
  db: Database;
  batcher: AppendBatcher;
  notifier: AppendNotifier;
  limits: LogLimits;
  metrics: LogMetrics;
}

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;
const MAX_PATTERNS = 64;
const MAX_REASON_LENGTH = 1024;
/** Entries one AppendStream keeps in flight before it stops reading (bounds memory per stream). */
const APPEND_STREAM_WINDOW = 1024;

/** The LogService registration: who may call what, and the handlers. */
export function logRegistration(deps: LogServiceDeps): ServiceRegistration {
  const { db, batcher, limits } = deps;
  const subscriptionCaps = new SubscriptionCaps(limits.maxSubscriptionsPerSubject);
  /** Wakes local subscribers after a commit outside the batcher (Redact, AppendReplicated). */
  const announce = (logId: string) => deps.notifier.announce(logId);

  /** Validates the log id and the caller's grant for it. */
  function logFor(context: HandlerContext, logId: string, field = "log_id"): string {
    checkLogId(logId, field);
    requireLogAccess(callPrincipal(context), logId);
    return logId;
  }

  /** logFor, for a log a client writes to: one it may create, not a federation mirror. */
  function localLogFor(context: HandlerContext, logId: string, field = "log_id"): string {
    checkLocalLogId(logId, field);
    requireLogAccess(callPrincipal(context), logId);
    return logId;
  }

  async function existingHead(logId: string): Promise<store.HeadRow> {
    const head = await store.getHead(db, logId);
    if (!head) throw notFound("log", logId);
    return head;
  }

  async function append(logId: string, entries: PreparedEntry[]): Promise<AppendedEntry[]> {
    return batcher.append(logId, { entries });
  }

  return defineService({
    service: logV1.LogService,
    access: {
      createLog: LOG_WRITE,
      getLog: LOG_READ,
      listLogs: LOG_READ,
      append: LOG_WRITE,
      appendBatch: LOG_WRITE,
      appendStream: LOG_WRITE,
      read: LOG_READ,
      getEntry: LOG_READ,
      findByRequestId: LOG_READ,
      listBySource: LOG_READ,
      listByTimeRange: LOG_READ,
      stats: LOG_READ,
      subscribe: LOG_READ,
      verify: LOG_READ,
      compact: ADMIN_ROLE,
      redact: ADMIN_ROLE,
      export: LOG_READ,
      appendReplicated: LOG_REPLICATE,
    },
    impl: {
      async createLog(request, context) {
        const { head, created } = await store.createLog(db, localLogFor(context, request.logId));
        return { head: headMessage(head), created };
      },

      async getLog(request, context) {
        return { head: headMessage(await existingHead(logFor(context, request.logId))) };
      },

      async listLogs(request, context) {
        const size = pageSize(request.pageSize);
        const scope = [request.prefix];
        const after = request.pageToken ? decodePageToken("page_token", "logs", scope, request.pageToken)[0]! : "";
        const principal = callPrincipal(context);
        const heads = await store.listHeads(db, request.prefix, after, size);
        const visible = heads.filter((head) => grantsLog(principal, head.log_id));
        return {
          logs: visible.map(headMessage),
          nextPageToken: heads.length === size ? encodePageToken("logs", scope, [heads.at(-1)!.log_id]) : "",
        };
      },

      async append(request, context) {
        const logId = localLogFor(context, request.logId);
        const [result] = await append(logId, [prepareEntry(request.entry, limits, "entry")]);
        return { result: appendResult(result!) };
      },

      async appendBatch(request, context) {
        const logId = localLogFor(context, request.logId);
        if (request.entries.length === 0) throw invalidArgument("entries", "must hold at least one entry");
        if (request.entries.length > limits.maxBatchEntries) {
          throw invalidArgument("entries", `holds ${request.entries.length} entries; the limit is ${limits.maxBatchEntries}`, {
            limit: String(limits.maxBatchEntries),
          });
        }
        const prepared = request.entries.map((entry, index) => prepareEntry(entry, limits, `entries[${index}]`));
        return { results: (await append(logId, prepared)).map(appendResult) };
      },

      async *appendStream(requests, context) {
        const acks = new OrderedAcks<AppendedEntry>(APPEND_STREAM_WINDOW);
        void (async () => {
          let index = 0;
          for await (const request of requests) {
            const field = `message[${index++}]`;
            await acks.room();
            // The first refused entry ends the stream; what arrives after it
            // is not appended (the proto says how a client resends by req_id).
            if (acks.failed) return;
            acks.push(
              (async () => {
                const logId = localLogFor(context, request.logId, `${field}.log_id`);
                const [appended] = await append(logId, [prepareEntry(request.entry, limits, `${field}.entry`)]);
                return appended!;
              })(),
            );
          }
        })().then(
          () => acks.end(),
          (error: unknown) => acks.fail(error),
        );
        for await (const appended of acks) yield { result: appendResult(appended) };
      },

      async read(request, context) {
        const logId = logFor(context, request.logId);
        const size = pageSize(request.pageSize);
        if (request.fromSeq < 0n) throw invalidArgument("from_seq", "must not be negative");
        const head = await existingHead(logId);
        const backward = request.direction === logV1.ReadDirection.BACKWARD;
        const listing = backward ? "read-backward" : "read-forward";
        const token = request.pageToken ? pagePositionInteger("page_token", decodePageToken("page_token", listing, [logId], request.pageToken)[0]!) : null;
        const first = head.checkpoint_seq + 1n;
        let from = token ?? request.fromSeq;
        if (from === 0n) from = backward ? head.last_seq : first;
        if (backward && head.entry_count === 0n) return { entries: [], nextPageToken: "", head: headMessage(head) };
        if (from < first) throw seqCompacted(logId, from, first);
        if (from > head.last_seq + 1n || (backward && from > head.last_seq)) throw seqPastHead(logId, "from_seq", from, head.last_seq);
        const rows = backward ? await store.readBackward(db, logId, from, size) : await store.readForward(db, logId, from, size);
        const last = rows.at(-1);
        let nextPageToken = "";
        if (last && rows.length === size) {
          if (!backward) nextPageToken = encodePageToken(listing, [logId], [String(last.seq + 1n)]);
          else if (last.seq > first) nextPageToken = encodePageToken(listing, [logId], [String(last.seq - 1n)]);
        }
        return { entries: rows.map((row) => entryMessage(logId, row)), nextPageToken, head: headMessage(head) };
      },

      async getEntry(request, context) {
        const logId = logFor(context, request.logId);
        const selector = request.selector;
        if (selector.case === "seq") {
          if (selector.value < 1n) throw invalidArgument("seq", "must be 1 or more");
          const head = await existingHead(logId);
          if (selector.value <= head.checkpoint_seq) throw seqCompacted(logId, selector.value, head.checkpoint_seq + 1n);
          const row = await store.entryBySeq(db, logId, selector.value);
          if (!row) throw notFound("entry", `${logId}#${selector.value}`);
          return { entry: entryMessage(logId, row) };
        }
        if (selector.case === "uuid") {
          const uuid = selector.value.toLowerCase();
          if (!isCanonicalUuid(uuid)) throw invalidArgument("uuid", "must be a hyphenated UUID");
          await existingHead(logId);
          const row = await store.entryByUuid(db, logId, uuid);
          if (!row) throw notFound("entry", `${logId}/${uuid}`);
          return { entry: entryMessage(logId, row) };
        }
        throw invalidArgument("selector", "set seq or uuid");
      },

      async findByRequestId(request, context) {
        const logId = logFor(context, request.logId);
        if (request.reqId === "") throw invalidArgument("req_id", "is required");
        await existingHead(logId);
        const row = await store.entryByReqId(db, logId, request.reqId);
        if (!row) throw notFound("req_id", request.reqId);
        return { entry: entryMessage(logId, row) };
      },

      async listBySource(request, context) {
        const logId = logFor(context, request.logId);
        const size = pageSize(request.pageSize);
        await existingHead(logId);
        const scope = [logId, request.sourceId];
        const after = request.pageToken ? pagePositionInteger("page_token", decodePageToken("page_token", "source", scope, request.pageToken)[0]!) : 0n;
        const rows = await store.listBySource(db, logId, request.sourceId, after, size);
        return {
          entries: rows.map((row) => entryMessage(logId, row)),
          nextPageToken: rows.length === size ? encodePageToken("source", scope, [String(rows.at(-1)!.seq)]) : "",
        };
      },

      async listByTimeRange(request, context) {
        const logId = logFor(context, request.logId);
        const size = pageSize(request.pageSize);
        const range = request.range;
        if (range.case === undefined) throw invalidArgument("range", "set sim_time or wall_time");
        await existingHead(logId);
        let rows: store.EntryRow[];
        let nextPageToken = "";
        if (range.case === "simTime") {
          const { from, to } = range.value;
          if (!Number.isFinite(from) || !Number.isFinite(to)) throw invalidArgument("sim_time", "bounds must be finite numbers");
          if (from > to) throw invalidArgument("sim_time", `from (${from}) is after to (${to})`);
          const scope = [logId, from, to];
          const position = request.pageToken ? decodePageToken("page_token", "sim-time", scope, request.pageToken, 2) : null;
          const after = position ? { time: pageTime(position[0]!), seq: pagePositionInteger("page_token", position[1]!) } : null;
          rows = await store.listBySimTime(db, logId, { from, to }, after, size);
          const last = rows.at(-1);
          if (last && rows.length === size) nextPageToken = encodePageToken("sim-time", scope, [last.sim_time!, String(last.seq)]);
        } else {
          const { fromUs, toUs } = range.value;
          if (fromUs > toUs) throw invalidArgument("wall_time", `from_us (${fromUs}) is after to_us (${toUs})`);
          const scope = [logId, fromUs, toUs];
          const position = request.pageToken ? decodePageToken("page_token", "wall-time", scope, request.pageToken, 2) : null;
          const after = position
            ? { time: pagePositionInteger("page_token", position[0]!, { signed: true }), seq: pagePositionInteger("page_token", position[1]!) }
            : null;
          rows = await store.listByWallTime(db, logId, { fromUs, toUs }, after, size);
          const last = rows.at(-1);
          if (last && rows.length === size) nextPageToken = encodePageToken("wall-time", scope, [String(last.wall_time_us), String(last.seq)]);
        }
        return { entries: rows.map((row) => entryMessage(logId, row)), nextPageToken };
      },

      async stats(request, context) {
        const logId = logFor(context, request.logId);
        const head = await existingHead(logId);
        const summary = await store.stats(db, logId);
        return {
          head: headMessage(head),
          redactedCount: head.redacted_count,
          sourceCount: summary.source_count,
          minWallTimeUs: summary.min_wall_time_us ?? 0n,
          maxWallTimeUs: summary.max_wall_time_us ?? 0n,
          minSimTime: summary.min_sim_time ?? undefined,
          maxSimTime: summary.max_sim_time ?? undefined,
        };
      },

      async *subscribe(request, context) {
        const logId = logFor(context, request.logId);
        if (request.fromSeq !== undefined && request.fromSeq < 0n) throw invalidArgument("from_seq", "must not be negative (0: the first stored entry; omit it to start at the tail)");
        if (request.kinds.length > MAX_PATTERNS) throw invalidArgument("kinds", `holds more than ${MAX_PATTERNS} patterns`);
        request.kinds.forEach((pattern, index) => {
          const problem = patternProblem(pattern);
          if (problem) throw invalidArgument(`kinds[${index}]`, `"${pattern}" ${problem}`);
        });
        const heartbeatMs = request.heartbeatIntervalMs === 0 ? 15_000 : request.heartbeatIntervalMs;
        if (heartbeatMs < 1000 || heartbeatMs > 300_000) throw invalidArgument("heartbeat_interval_ms", "must be 0 (15000) or from 1000 to 300000");
        const release = subscriptionCaps.open(callPrincipal(context));
        deps.metrics.subscriberOpened();
        try {
          yield* subscription({
            db,
            notifier: deps.notifier,
            logId,
            fromSeq: request.fromSeq,
            filter: new KindFilter(request.kinds),
            heartbeatMs,
            signal: context.signal,
          });
        } finally {
          deps.metrics.subscriberClosed();
          release();
        }
      },

      async verify(request, context) {
        const logId = logFor(context, request.logId);
        const head = await existingHead(logId);
        const [from, to] = seqRange(head, request.fromSeq, request.toSeq);
        const report = await verifyRange(db, head, from, to);
        deps.metrics.verified(report.valid);
        return create(logV1.VerifyResponseSchema, report);
      },

      async compact(request, context) {
        const logId = logFor(context, request.logId);
        const retain = request.retain;
        if (retain.case === "keepLast") {
          if (retain.value < 1n) throw invalidArgument("keep_last", "must be 1 or more");
        } else if (retain.case === "beforeSeq") {
          if (retain.value < 1n) throw invalidArgument("before_seq", "must be 1 or more");
        } else {
          throw invalidArgument("retain", "set keep_last or before_seq");
        }
        const target = retain.case === "keepLast" ? { keepLast: retain.value } : { beforeSeq: retain.value };
        const { removed, head } = await compactLog(db, logId, target);
        return { removedCount: removed, head: headMessage(head) };
      },

      async redact(request, context) {
        const logId = logFor(context, request.logId);
        if (request.seq < 1n) throw invalidArgument("seq", "must be 1 or more");
        if (request.reason.trim() === "") throw invalidArgument("reason", "is required");
        if (request.reason.length > MAX_REASON_LENGTH) throw invalidArgument("reason", `is longer than ${MAX_REASON_LENGTH} characters`);
        if (request.reason.includes("\u0000") || request.reqId.includes("\u0000")) throw invalidArgument("reason", "contains a NUL character");
        const result = await redactEntry(
          db,
          { logId, seq: request.seq, reason: request.reason, reqId: request.reqId || null, subject: callPrincipal(context).subject },
          announce,
        );
        return { redaction: appendResult(result) };
      },

      async *export(request, context) {
        const logId = logFor(context, request.logId);
        const head = await existingHead(logId);
        const [from, to] = seqRange(head, request.fromSeq, request.toSeq);
        for await (const chunk of exportLines(db, head, from, to)) yield { chunk };
      },

      async appendReplicated(request, context) {
        const logId = logFor(context, request.logId);
        if (request.originNode === "") throw invalidArgument("origin_node", "is required");
        if (request.entries.length === 0) throw invalidArgument("entries", "must hold at least one entry");
        if (request.entries.length > limits.maxBatchEntries) {
          throw invalidArgument("entries", `holds ${request.entries.length} entries; the limit is ${limits.maxBatchEntries}`);
        }
        request.entries.forEach((entry, index) => {
          if (entry.logId !== request.entries[0]!.logId) throw invalidArgument(`entries[${index}].log_id`, "differs from the first entry's");
          if (entry.payload === undefined && !entry.redaction) throw invalidArgument(`entries[${index}].payload`, "is required unless the entry is redacted");
          const problem = entry.payload === undefined ? null : payloadProblem(entry.payload);
          if (problem) throw invalidArgument(`entries[${index}].payload`, problem);
        });
        const anchor = request.anchorSeq > 0n ? { seq: request.anchorSeq, checksum: request.anchorChecksum } : null;
        const head = await appendReplicated(db, { logId, originNode: request.originNode, entries: request.entries, anchor }, announce);
        return { head: headMessage(head) };
      },
    },
  });
}

/** Open Subscribe streams per token subject, capped unless the caller relays for others. */
class SubscriptionCaps {
  private readonly open_ = new Map<string, number>();

  constructor(private readonly maxPerSubject: number) {}

  /** Counts a new stream of this caller, or refuses it; returns the function that ends it. */
  open(principal: Principal): () => void {
    if (isAllowed(principal, LOG_RELAY)) return () => {};
    const subject = principal.subject;
    const count = this.open_.get(subject) ?? 0;
    if (count >= this.maxPerSubject) {
      throw resourceExhausted(
        `subject "${subject}" has ${count} Subscribe streams open; the limit is ${this.maxPerSubject} (close one, or retry later)`,
        { reason: "SUBSCRIPTION_LIMIT_PER_SUBJECT", metadata: { limit: String(this.maxPerSubject) } },
        SUBSCRIPTION_RETRY_MS,
      );
    }
    this.open_.set(subject, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open_.get(subject) ?? 1) - 1;
      if (left === 0) this.open_.delete(subject);
      else this.open_.set(subject, left);
    };
  }
}

/** How long a capped subscriber is told to wait before trying again. */
const SUBSCRIPTION_RETRY_MS = 1000;

/** A sim_time position of a page token: a finite number. */
function pageTime(value: string): number {
  const time = Number(value);
  if (value === "" || !Number.isFinite(time)) throw invalidArgument("page_token", "is not a page token of this listing (pass next_page_token unchanged, with the same request)");
  return time;
}

function pageSize(requested: number): number {
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  if (requested > MAX_PAGE_SIZE) throw invalidArgument("page_size", `is ${requested}; the most is ${MAX_PAGE_SIZE} (0 means ${DEFAULT_PAGE_SIZE})`);
  return requested;
}

/** [from, to] of Verify and Export: 0 means the first stored entry / the head. */
function seqRange(head: store.HeadRow, fromSeq: bigint, toSeq: bigint): [bigint, bigint] {
  if (fromSeq < 0n) throw invalidArgument("from_seq", "must not be negative");
  if (toSeq < 0n) throw invalidArgument("to_seq", "must not be negative");
  const to = toSeq === 0n ? head.last_seq : toSeq;
  if (to > head.last_seq) throw seqPastHead(head.log_id, "to_seq", to, head.last_seq);
  if (fromSeq !== 0n && fromSeq > to) throw invalidArgument("from_seq", `(${fromSeq}) is after to_seq (${to})`);
  return [fromSeq, to];
}
