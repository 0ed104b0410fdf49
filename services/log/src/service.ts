import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { contentTypeProblem, encodeRightEdge, payloadProblem } from "@annals/chain";
import type { Database } from "@annals/db";
import { logV1, rpcDetails } from "@annals/proto";
import {
  ADMIN_ROLE,
  callPrincipal,
  defineService,
  groupedResponses,
  invalidArgument,
  isAllowed,
  notFound,
  resourceExhausted,
  withEncoding,
  type Principal,
  type ServiceRegistration,
} from "@annals/runtime";
import { requireLogAccess } from "@annals/logs";
import { KindFilter, patternProblem } from "@annals/topics";
import type { AppendBatcher } from "./append-batcher.js";
import { prepareCondition, type PreparedCondition } from "./append-condition.js";
import type { AppendNotifier } from "./append-notifier.js";
import type { AppendedEntry } from "./append-plan.js";
import { OrderedAcks } from "./append-stream.js";
import { encodedResultMessage } from "./entry-encoding.js";
import { checkLocalLogId, checkLogId, prepareEntry, type LogLimits, type PreparedEntry } from "./entry-input.js";
import { appendResult, entryMessage, headMessage } from "./entry-mapping.js";
import { exportLines } from "./export.js";
import { seqCompacted, seqPastHead } from "./log-errors.js";
import type { LogMetrics } from "./log-metrics.js";
import type { Checkpointer } from "./checkpointer.js";
import type { WitnessPublisher } from "./witness-publisher.js";
import { compactLog, redactEntry } from "./maintenance.js";
import { checkpointAt, consistencyBetween, inclusionAt, receipts } from "./proofs.js";
import type { NodeSigner } from "./signing-key.js";
import { listByTimeRangePage, listBySourcePage, listLogsPage, readPage } from "./reads.js";
import { appendReplicated } from "./replicate.js";
import * as store from "./store.js";
import { subscription } from "./subscription.js";
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
  checkpointer: Checkpointer;
  /** Sends checkpoints to the witnesses and tells which one is published; undefined: no witnesses. */
  publisher: WitnessPublisher | undefined;
  signer: NodeSigner;
  notifier: AppendNotifier;
  limits: LogLimits;
  metrics: LogMetrics;
}

const MAX_PATTERNS = 64;
/** The most entries a client may ask for in one `entries` frame. */
const MAX_ENTRIES_PER_FRAME = 1000;
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

  async function append(logId: string, entries: PreparedEntry[], condition: PreparedCondition | null): Promise<AppendedEntry[]> {
    return batcher.append(logId, { entries, condition });
  }

  /** The entries of a batch, checked: 1 to the configured limit, each valid. */
  function prepareBatch(entries: readonly logV1.EntryInput[], field: string): PreparedEntry[] {
    if (entries.length === 0) throw invalidArgument(field, "must hold at least one entry");
    if (entries.length > limits.maxBatchEntries) {
      throw invalidArgument(field, `holds ${entries.length} entries; the limit is ${limits.maxBatchEntries}`, { limit: String(limits.maxBatchEntries) });
    }
    return entries.map((entry, index) => prepareEntry(entry, limits, `${field}[${index}]`));
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
      getCheckpoint: LOG_READ,
      getInclusionProof: LOG_READ,
      getConsistencyProof: LOG_READ,
      getVerifierKey: LOG_READ,
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
        return listLogsPage(db, callPrincipal(context), request);
      },

      async append(request, context) {
        const logId = localLogFor(context, request.logId);
        const [result] = await append(logId, [prepareEntry(request.entry, limits, "entry")], prepareCondition(request.condition, "condition"));
        if (!request.wantReceipt) return withEncoding({ result: appendResult(result!), receipt: "" }, encodedResultMessage(result!));
        const [receipt] = await receipts(db, deps.checkpointer, logId, [result!.seq], deps.publisher);
        return { result: appendResult(result!), receipt };
      },

      async appendBatch(request, context) {
        const logId = localLogFor(context, request.logId);
        const results = await append(logId, prepareBatch(request.entries, "entries"), prepareCondition(request.condition, "condition"));
        return {
          results: results.map(appendResult),
          receipts: request.wantReceipt ? await receipts(db, deps.checkpointer, logId, results.map((result) => result.seq), deps.publisher) : [],
        };
      },

      async *appendStream(requests, context) {
        const acks = new OrderedAcks<AppendStreamAnswer>(APPEND_STREAM_WINDOW);
        const options = { logId: "", continueOnFailure: false };
        /** One entry or batch frame, appended; its answer, or with continue_on_failure its failure. */
        const answer = async (frame: logV1.AppendStreamRequest["frame"], index: number): Promise<AppendStreamAnswer> => {
          const field = `frame[${index}]`;
          try {
            if (frame.case === "entry") {
              const logId = localLogFor(context, frame.value.logId || options.logId, `${field}.entry.log_id`);
              const entries = [prepareEntry(frame.value.entry, limits, `${field}.entry.entry`)];
              const [appended] = await append(logId, entries, prepareCondition(frame.value.condition, `${field}.entry.condition`));
              return withEncoding({ frame: { case: "result", value: appendResult(appended!) } }, encodedResultMessage(appended!));
            }
            if (frame.case === "batch") {
              const logId = localLogFor(context, frame.value.logId || options.logId, `${field}.batch.log_id`);
              const entries = prepareBatch(frame.value.entries, `${field}.batch.entries`);
              const appended = await append(logId, entries, prepareCondition(frame.value.condition, `${field}.batch.condition`));
              return { frame: { case: "batchResult", value: { results: appended.map(appendResult) } } };
            }
            throw invalidArgument(field, frame.case === "options" ? "options may only be the first frame" : "is empty: send an entry or a batch");
          } catch (error) {
            if (!options.continueOnFailure) throw error;
            return { frame: { case: "failure", value: streamFailure(index, error) } };
          }
        };
        void (async () => {
          let index = 0;
          for await (const request of requests) {
            if (index === 0 && request.frame.case === "options") {
              options.logId = request.frame.value.logId;
              options.continueOnFailure = request.frame.value.continueOnFailure;
              index++;
              continue;
            }
            await acks.room();
            // The first refused frame ends the stream (unless the options say
            // to go on); what arrives after it is not appended (the proto says
            // how a client resends by request_id).
            if (acks.failed) return;
            acks.push(answer(request.frame, index++));
          }
        })().then(
          () => acks.end(),
          (error: unknown) => acks.fail(error),
        );
        yield* acks;
      },

      async read(request, context) {
        return readPage(db, await existingHead(logFor(context, request.logId)), request);
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
          return { entry: entryMessage(head, row) };
        }
        if (selector.case === "uuid") {
          const uuid = selector.value.toLowerCase();
          if (!isCanonicalUuid(uuid)) throw invalidArgument("uuid", "must be a hyphenated UUID");
          const head = await existingHead(logId);
          const row = await store.entryByUuid(db, logId, uuid);
          if (!row) throw notFound("entry", `${logId}/${uuid}`);
          return { entry: entryMessage(head, row) };
        }
        throw invalidArgument("selector", "set seq or uuid");
      },

      async findByRequestId(request, context) {
        const logId = logFor(context, request.logId);
        const head = await existingHead(logId);
        const row = await store.entryByReqId(db, logId, request.requestId);
        if (!row) throw notFound("request_id", request.requestId);
        return { entry: entryMessage(head, row) };
      },

      async listBySource(request, context) {
        return listBySourcePage(db, await existingHead(logFor(context, request.logId)), request);
      },

      async listByTimeRange(request, context) {
        return listByTimeRangePage(db, await existingHead(logFor(context, request.logId)), request);
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

      subscribe(request, context) {
        const logId = logFor(context, request.logId);
        if (request.afterSeq !== undefined && request.afterSeq < 0n) {
          throw invalidArgument("after_seq", "must not be negative (0: from the first stored entry; leave it out to start at the tail)");
        }
        if (request.kinds.length > MAX_PATTERNS) throw invalidArgument("kinds", `holds more than ${MAX_PATTERNS} patterns`);
        request.kinds.forEach((pattern, index) => {
          const problem = patternProblem(pattern);
          if (problem) throw invalidArgument(`kinds[${index}]`, `"${pattern}" ${problem}`);
        });
        const heartbeatMs = request.heartbeatIntervalMs === 0n ? 15_000 : Number(request.heartbeatIntervalMs);
        if (heartbeatMs < 1000 || heartbeatMs > 300_000) throw invalidArgument("heartbeat_interval_ms", "must be 0 (15000) or from 1000 to 300000");
        const maxEntriesPerFrame = request.maxEntriesPerFrame;
        if (maxEntriesPerFrame < 0 || maxEntriesPerFrame > MAX_ENTRIES_PER_FRAME) {
          throw invalidArgument("max_entries_per_frame", `must be from 0 (one entry per frame) to ${MAX_ENTRIES_PER_FRAME}`);
        }
        // The stream itself, not a generator around it: every layer costs
        // promises per frame, and catch-up sends one frame per entry.
        return groupedResponses(subscription({
          db,
          notifier: deps.notifier,
          logId,
          afterSeq: request.afterSeq,
          filter: new KindFilter(request.kinds),
          heartbeatMs,
          maxEntriesPerFrame,
          binaryWire: !isJsonWire(context.requestHeader),
          signal: context.signal,
          opened: () => {
            const release = subscriptionCaps.open(callPrincipal(context));
            deps.metrics.subscriberOpened();
            return () => {
              deps.metrics.subscriberClosed();
              release();
            };
          },
        }));
      },

      async verify(request, context) {
        const logId = logFor(context, request.logId);
        const head = await existingHead(logId);
        const [from, to] = seqRange(head, request.fromSeq, request.toSeq);
        const report = await verifyRange(db, head, from, to);
        deps.metrics.verified(report.valid);
        return report;
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
        const result = await redactEntry(
          db,
          { logId, seq: request.seq, reason: request.reason, reqId: request.requestId || null, subject: callPrincipal(context).subject },
          announce,
        );
        return { redaction: appendResult(result) };
      },

      async *export(request, context) {
        const logId = logFor(context, request.logId);
        const head = await existingHead(logId);
        const [from, to] = seqRange(head, request.fromSeq, request.toSeq);
        // The end line's checkpoint: a local log signs one of exactly the last seq; a mirror has its origin's, if one of that size arrived.
        const checkpointAt = async (size: bigint) =>
          head.origin === "local" ? (await deps.checkpointer.at(logId, size)).note : ((await store.getCheckpoint(db, logId, size))?.note ?? null);
        for await (const chunk of exportLines(db, head, from, to, checkpointAt)) yield { chunk };
      },

      async appendReplicated(request, context) {
        const logId = logFor(context, request.logId);
        if (request.originNode === "") throw invalidArgument("origin_node", "is required");
        if (request.entries.length === 0 && request.checkpoints.length === 0) throw invalidArgument("entries", "must hold at least one entry (or checkpoints)");
        if (request.checkpoints.length > 16) throw invalidArgument("checkpoints", `holds ${request.checkpoints.length} notes; the limit is 16`);
        if (request.entries.length > limits.maxBatchEntries) {
          throw invalidArgument("entries", `holds ${request.entries.length} entries; the limit is ${limits.maxBatchEntries}`);
        }
        request.entries.forEach((entry, index) => checkReplicatedEntry(entry, request.entries[0]!.chainLogId, `entries[${index}]`));
        if (request.anchor && request.anchor.treeEdge.length > 0) {
          try {
            encodeRightEdge({ size: request.anchor.seq, hashes: request.anchor.treeEdge });
          } catch (error) {
            throw invalidArgument("anchor.tree_edge", `is not the right edge of a tree of ${request.anchor.seq} leaves (${(error as Error).message})`);
          }
        }
        const anchor = request.anchor && request.anchor.seq > 0n ? { seq: request.anchor.seq, checksum: request.anchor.checksum, treeEdge: request.anchor.treeEdge } : null;
        const head = await appendReplicated(db, { logId, originNode: request.originNode, entries: request.entries, anchor, checkpoints: request.checkpoints }, announce);
        return { head: headMessage(head) };
      },

      async getCheckpoint(request, context) {
        const head = await existingHead(logFor(context, request.logId));
        const checkpoint = await checkpointAt(db, deps.checkpointer, head, request.treeSize, deps.publisher);
        return { ...checkpoint, verifierKey: head.origin === "local" ? deps.signer.verifierKey(head.log_id) : "" };
      },

      async getInclusionProof(request, context) {
        const head = await existingHead(logFor(context, request.logId));
        return inclusionAt(db, deps.checkpointer, head, request.seq, request.treeSize, deps.publisher);
      },

      async getConsistencyProof(request, context) {
        const head = await existingHead(logFor(context, request.logId));
        return consistencyBetween(db, head, request.fromSize, request.toSize);
      },

      async getVerifierKey(request, context) {
        if (request.logId === "") return { verifierKey: deps.signer.verifierKey() };
        const logId = localLogFor(context, request.logId);
        return { verifierKey: deps.signer.verifierKey(logId) };
      },
    },
  });
}

/** What one AppendStream frame is answered with. */
type AppendStreamAnswer = MessageInitShape<typeof logV1.AppendStreamResponseSchema>;

/** A refused AppendStream frame, said as a failure frame (with continue_on_failure). */
function streamFailure(frameIndex: number, error: unknown): MessageInitShape<typeof logV1.AppendStreamFailureSchema> {
  const failure = ConnectError.from(error);
  const [info] = failure.findDetails(rpcDetails.ErrorInfoSchema);
  if (failure.code === Code.Internal || failure.code === Code.Unknown) {
    // Not the frame's fault: the stream ends instead, with the server's error.
    throw error;
  }
  return { frameIndex: BigInt(frameIndex), code: failure.code, message: failure.rawMessage, reason: info?.reason ?? "", metadata: info?.metadata ?? {} };
}

/** An entry AppendReplicated takes: the same chain log as the batch's first, and a payload unless it was redacted. */
function checkReplicatedEntry(entry: logV1.Entry, chainLogId: string, field: string): void {
  if (entry.chainLogId === "") throw invalidArgument(`${field}.chain_log_id`, "is required (the origin's log id)");
  if (entry.chainLogId !== chainLogId) throw invalidArgument(`${field}.chain_log_id`, "differs from the first entry's");
  const body = entry.body;
  if (body.case === undefined && !entry.redaction) throw invalidArgument(`${field}.payload`, "is required unless the entry is redacted");
  if (body.case === "payload") {
    const problem = payloadProblem(body.value);
    if (problem) throw invalidArgument(`${field}.payload`, problem);
  }
  if (entry.contentType !== "" || body.case === "binaryPayload") {
    const problem = contentTypeProblem(entry.contentType);
    if (problem) throw invalidArgument(`${field}.content_type`, problem);
  }
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

/** [from, to] of Verify and Export: 0 means the first stored entry / the head. */
function seqRange(head: store.HeadRow, fromSeq: bigint, toSeq: bigint): [bigint, bigint] {
  if (fromSeq < 0n) throw invalidArgument("from_seq", "must not be negative");
  if (toSeq < 0n) throw invalidArgument("to_seq", "must not be negative");
  const to = toSeq === 0n ? head.last_seq : toSeq;
  if (to > head.last_seq) throw seqPastHead(head.log_id, "to_seq", to, head.last_seq);
  if (fromSeq !== 0n && fromSeq > to) throw invalidArgument("from_seq", `(${fromSeq}) is after to_seq (${to})`);
  return [fromSeq, to];
}

/**
 * Whether the client reads JSON (Connect or gRPC-web with a `+json` or
 * `application/json` content type) rather than protobuf binary. A call on
 * the gRPC listener is binary whatever it says (grpc-mount encodes binary).
 */
function isJsonWire(requestHeader: Headers): boolean {
  return /json/i.test(requestHeader.get("content-type") ?? "");
}
