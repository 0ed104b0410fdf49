import { DatabaseError, type Database, type Queryable } from "@annals/db";
import { Code, ConnectError } from "@connectrpc/connect";
import { rpcError } from "@annals/runtime";
import { CONDITION_SCAN_LIMIT, conditionQuerySql, type ConditionQuerySql } from "./append-condition.js";
import { planAppends, type AppendPlan, type AppendRequest, type AppendedEntry } from "./append-plan.js";
import type { LogMetrics } from "./log-metrics.js";
import { growTree, treeMismatch } from "./merkle-tree.js";
import { appendGroup, findByKeys, firstConditionConflicts, insertEntries, lockHead, TreeTilesMismatch, type AppendGroupOutcome, type HeadRow } from "./store.js";

/** How concurrent appends to one log share a transaction. */
export interface GroupCommitOptions {
  /** Most entries written by one transaction; a larger single request still goes alone. Default 1000. */
  maxEntries: number;
  /**
   * How long, in milliseconds, the first append of an idle log waits for
   * company before its transaction starts. Default 0: appends that arrive
   * while a transaction is running form the next group anyway.
   */
  maxWaitMs: number;
}

export const DEFAULT_GROUP_COMMIT: GroupCommitOptions = { maxEntries: 1000, maxWaitMs: 0 };

/** Stale answers in a row (another writer keeps moving the head) after which a group takes the locked path. */
const MAX_STALE_IN_A_ROW = 2;
/** Logs whose head is kept in memory; the least recently appended beyond this are forgotten. */
const MAX_KNOWN_HEADS = 10_000;
/**
 * The longest a group waits for the company its predecessors had, in ms,
 * counted from the last group's answer (see LogQueue.expected). Measured on
 * the 2-core bench machine, the callers of a group of 16–64 come back within
 * about this; a wait bounded by the last group's commit time (a few ms) ended
 * before they did, and the alternation stayed.
 */
const COMPANY_WAIT_MS = 20;

interface Pending extends AppendRequest {
  resolve(results: AppendedEntry[]): void;
  reject(error: unknown): void;
  startedAt: number;
}

interface LogQueue {
  pending: Pending[];
  /** Entries in `pending`. */
  pendingEntries: number;
  busy: boolean;
  /**
   * Requests the next group waits for: as many as the larger of the last two
   * groups held. Callers that shared a group come back together (a closed
   * loop, a stream whose acks came in one commit); without the wait the
   * first one back goes alone, the rest follow in a second group, and groups
   * of one alternate with big ones for ever (issue 20: 63 and 1 at 64 callers).
   */
  expected: [number, number];
  /** When the last group was answered (performance.now()): its callers come back from then on. */
  lastAnswerAt: number;
  /** Ends a wait for company (set while the drain waits); append() calls it once the company is there. */
  wake: (() => void) | null;
}

/**
 * Group commit: appends to one log that arrive while its previous group is
 * in flight are written together by the next one (one multi-row INSERT, one
 * head update, one commit), so throughput rises with concurrency while a
 * lone append still commits at once. Each request keeps its own outcome.
 *
 * The fast path keeps each log's head in memory and plans a group against it
 * (sequence numbers, chain, tree) without a round trip; one statement,
 * log.append_group, then writes it as its own transaction, under the head
 * lock and only if the head and everything else the plan assumed still hold
 * (store.appendGroup): one round trip per group. So another replica, a
 * Redact or a Compact moving the head makes the group replan, never write
 * on a stale head (append-batcher.test.ts, replicas.test.ts). The locked
 * path (BEGIN, lock, lookups, insert, COMMIT) takes a group when no head is
 * known yet, when the head keeps moving, and when a stored entry holds one of
 * the group's keys or matches a condition.
 *
 * One group per log is in flight at a time. A second one sent behind it
 * would wait at the head lock anyway; measured on the 2-core bench machine,
 * sending it early only made groups smaller (more commits, more CPU per
 * entry) without raising throughput.
 */
export class AppendBatcher {
  private readonly queues = new Map<string, LogQueue>();
  private readonly idle = new Set<() => void>();
  /** The head each log had after this process's last write to it (a hint: append_group checks it). */
  private readonly heads = new Map<string, HeadRow>();

  constructor(
    private readonly db: Database,
    private readonly options: GroupCommitOptions,
    private readonly metrics: LogMetrics,
    /** Called after each commit that added entries to the log. */
    private readonly onCommitted: (logId: string) => void,
  ) {}

  /** Sequences the entries atomically; resolves once they are committed. */
  append(logId: string, request: AppendRequest): Promise<AppendedEntry[]> {
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(logId);
      if (!queue) {
        queue = { pending: [], pendingEntries: 0, busy: false, expected: [1, 1], lastAnswerAt: 0, wake: null };
        this.queues.set(logId, queue);
      }
      queue.pending.push({ entries: request.entries, condition: request.condition ?? null, resolve, reject, startedAt: performance.now() });
      queue.pendingEntries += request.entries.length;
      if (queue.busy) {
        if (queue.wake && this.companyWait(queue) === 0) queue.wake();
        return;
      }
      queue.busy = true;
      if (this.options.maxWaitMs > 0 && queue.pendingEntries < this.options.maxEntries) {
        setTimeout(() => void this.drain(logId, queue), this.options.maxWaitMs);
      } else {
        void this.drain(logId, queue);
      }
    });
  }

  /** Resolves when no transaction is running or queued. */
  async settled(): Promise<void> {
    while (this.queues.size > 0) await new Promise<void>((resolve) => this.idle.add(resolve));
  }

  private async drain(logId: string, queue: LogQueue): Promise<void> {
    let staleInARow = 0;
    let lockedNext = false;
    let again = false;
    while (queue.pending.length > 0) {
      const head = this.heads.get(logId);
      if (head === undefined || lockedNext || staleInARow >= MAX_STALE_IN_A_ROW) {
        await this.commitLocked(logId, this.takeGroup(queue));
        staleInARow = 0;
        lockedNext = false;
        continue;
      }
      const waitMs = again ? 0 : this.companyWait(queue);
      if (waitMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => queue.wake?.(), waitMs);
          queue.wake = () => {
            clearTimeout(timer);
            queue.wake = null;
            resolve();
          };
        });
        continue;
      }
      const group = this.takeGroup(queue);
      again = false;
      const outcome = await this.commitFast(logId, group, head);
      queue.lastAnswerAt = performance.now();
      if (outcome === "written") {
        staleInARow = 0;
      } else if (outcome !== "failed") {
        // Nothing was written: the group goes back to the front of the queue,
        // replanned on the head append_group answered, or by the locked path.
        if (outcome === "stale") staleInARow += 1;
        else lockedNext = true;
        again = true;
        queue.pending.unshift(...group);
        queue.pendingEntries += group.reduce((sum, request) => sum + request.entries.length, 0);
      }
    }
    queue.busy = false;
    this.queues.delete(logId);
    if (this.queues.size === 0) {
      for (const resolve of this.idle) resolve();
      this.idle.clear();
    }
  }

  /**
   * How much longer, in ms, the next group should wait for company: 0 once
   * as many requests are pending as the last groups held, or a full group,
   * or once it has waited COMPANY_WAIT_MS since that group was answered.
   */
  private companyWait(queue: LogQueue): number {
    if (queue.pending.length >= Math.max(...queue.expected) || queue.pendingEntries >= this.options.maxEntries) return 0;
    const waited = performance.now() - Math.max(queue.pending[0]!.startedAt, queue.lastAnswerAt);
    return Math.max(0, COMPANY_WAIT_MS - waited);
  }

  private takeGroup(queue: LogQueue): Pending[] {
    let entries = 0;
    let count = 0;
    for (const request of queue.pending) {
      if (count > 0 && entries + request.entries.length > this.options.maxEntries) break;
      entries += request.entries.length;
      count += 1;
    }
    queue.pendingEntries -= entries;
    queue.expected = [queue.expected[1], count];
    return queue.pending.splice(0, count);
  }

  /**
   * The fast path: plans the group on the known head, assuming that no
   * stored entry holds one of its keys or matches one of its conditions, and
   * writes it with one statement that checks all of that under the head lock.
   * "written" and "failed" (the callers have their outcomes); otherwise
   * nothing was written and the group is to be sent again: "stale" (the
   * answered head is now the known one) or by the locked path.
   */
  private async commitFast(logId: string, group: Pending[], head: HeadRow): Promise<"written" | "failed" | Exclude<AppendGroupOutcome["status"], "ok">> {
    let outcome: AppendGroupOutcome;
    let plan: AppendPlan;
    let tree: ReturnType<typeof growTree>;
    try {
      refuseMirror(logId, head);
      plan = planAppends(logId, head, group, []);
      tree = growTree(head, plan.rows.map((row) => row.checksum));
      outcome = await appendGroup(this.db, logId, head, groupKeys(group), conditionQueries(head, group).queries, CONDITION_SCAN_LIMIT, plan.rows, plan.head, tree);
    } catch (error) {
      this.heads.delete(logId);
      await this.failGroup(logId, group, error);
      return "failed";
    }
    if (outcome.status === "stale") this.rememberHead(logId, outcome.head);
    if (outcome.status !== "ok") return outcome.status;
    this.rememberHead(logId, headAfter(head, plan, tree));
    this.settle(logId, group, plan);
    return "written";
  }

  /** The locked path: the group's transaction reads the head and the stored keys under the head lock. */
  private async commitLocked(logId: string, group: Pending[]): Promise<void> {
    let plan: AppendPlan;
    let after: HeadRow | null = null;
    try {
      plan = await this.db.transaction(async (tx) => {
        const head = (await lockHead(tx, logId, { origin: "local", originNode: null, chainLogId: null }))!;
        refuseMirror(logId, head);
        const { reqIds, uuids } = groupKeys(group);
        const existing = reqIds.length + uuids.length > 0 ? await findByKeys(tx, logId, reqIds, uuids) : [];
        const planned = planAppends(logId, head, group, existing, undefined, await storedConflicts(tx, logId, head, group));
        // Nothing to write (every request refused, or replays): roll back, so
        // that a refused append leaves nothing behind, not even the log that
        // lockHead created for it.
        // (A head remembered for a log that does not exist is harmless: append_group answers "absent".)
        if (planned.rows.length === 0) throw new NothingToWrite(planned, head);
        const tree = growTree(head, planned.rows.map((row) => row.checksum));
        await insertEntries(tx, logId, planned.rows, planned.head, tree);
        after = headAfter(head, planned, tree);
        return planned;
      });
    } catch (caught) {
      if (caught instanceof NothingToWrite) {
        plan = caught.plan;
        after = caught.head;
      } else {
        this.heads.delete(logId);
        await this.failGroup(logId, group, caught);
        return;
      }
    }
    if (after) this.rememberHead(logId, after);
    this.settle(logId, group, plan);
  }

  /** Tells each request of a group its outcome. */
  private settle(logId: string, group: Pending[], plan: AppendPlan): void {
    if (plan.rows.length > 0) {
      this.metrics.groupCommitted(plan.rows.length);
      this.onCommitted(logId);
    }
    const now = performance.now();
    plan.outcomes.forEach((outcome, index) => {
      const request = group[index]!;
      if (outcome instanceof ConnectError) {
        request.reject(outcome);
      } else {
        this.metrics.appendFinished((now - request.startedAt) / 1000);
        request.resolve(outcome);
      }
    });
  }

  private rememberHead(logId: string, head: HeadRow): void {
    this.heads.delete(logId);
    this.heads.set(logId, head);
    if (this.heads.size > MAX_KNOWN_HEADS) this.heads.delete(this.heads.keys().next().value!);
  }

  /** The group's transaction failed: every request fails with the error, unless one request's data caused it. */
  private async failGroup(logId: string, group: Pending[], caught: unknown): Promise<void> {
    const error = caught instanceof TreeTilesMismatch ? treeMismatch(logId, -1n, -1n, "and its stored tiles disagree") : caught;
    if (group.length > 1 && isDataError(error)) {
      // Defence in depth: validation keeps what the database refuses out of
      // the queue, but should a row still be refused, one request's data
      // must not fail its neighbours' appends. Each runs alone, so only the
      // guilty one fails (log-service.test.ts "poison appends").
      for (const request of group) await this.commitLocked(logId, [request]);
      return;
    }
    for (const request of group) request.reject(error);
  }
}

/** The head a written plan leaves. */
function headAfter(head: HeadRow, plan: AppendPlan, tree: ReturnType<typeof growTree>): HeadRow {
  if (plan.rows.length === 0) return head;
  return {
    ...head,
    last_seq: plan.head.lastSeq,
    last_checksum: plan.head.lastChecksum,
    last_wall_time_us: plan.head.lastWallTimeUs,
    entry_count: head.entry_count + BigInt(plan.rows.length),
    tree_edge: tree ? tree.edge : head.tree_edge,
  };
}

/** Thrown inside a group's transaction to roll it back when the plan writes nothing. */
class NothingToWrite extends Error {
  override name = "NothingToWrite";
  constructor(
    readonly plan: AppendPlan,
    readonly head: HeadRow,
  ) {
    super("the group writes no entry");
  }
}

/**
 * The condition queries of a group that need a look at the stored entries
 * (those with entries stored after their after_seq), and the index of the
 * request each belongs to.
 */
function conditionQueries(head: HeadRow, group: readonly AppendRequest[]): { queries: ConditionQuerySql[]; positions: number[] } {
  const queries: ConditionQuerySql[] = [];
  const positions: number[] = [];
  group.forEach((request, index) => {
    const query = request.condition?.query;
    // Nothing stored after after_seq (or compacted away: the plan refuses it) needs no lookup.
    if (query && query.afterSeq < head.last_seq && query.afterSeq >= head.checkpoint_seq) {
      queries.push(conditionQuerySql(query));
      positions.push(index);
    }
  });
  return { queries, positions };
}

/**
 * Per request of the group, the first stored entry that matches its
 * condition's query (null: none, or no query). One statement for the whole
 * group, and none when no request has a query: plain and expected_last_seq
 * appends cost no round trip more.
 */
async function storedConflicts(tx: Queryable, logId: string, head: HeadRow, group: readonly AppendRequest[]): Promise<(bigint | null)[]> {
  const { queries, positions } = conditionQueries(head, group);
  const conflicts: (bigint | null)[] = group.map(() => null);
  if (queries.length === 0) return conflicts;
  const found = await firstConditionConflicts(tx, logId, head.last_seq, CONDITION_SCAN_LIMIT, queries);
  found.forEach((seq, i) => (conflicts[positions[i]!] = seq));
  return conflicts;
}

/** The req_ids and caller-chosen uuids of every entry of a group. */
function groupKeys(group: readonly AppendRequest[]): { reqIds: string[]; uuids: string[] } {
  const reqIds: string[] = [];
  const uuids: string[] = [];
  for (const request of group) {
    for (const entry of request.entries) {
      if (entry.reqId !== null) reqIds.push(entry.reqId);
      if (entry.uuid !== null) uuids.push(entry.uuid);
    }
  }
  return { reqIds, uuids };
}

/**
 * Whether the database refused the data of a statement (SQLSTATE class 22,
 * data exception: invalid JSON, a bad encoding, an out-of-range value; 23,
 * integrity constraint; 54, a program limit such as a too-deep jsonb), as
 * opposed to failing for reasons that would fail any request.
 */
function isDataError(error: unknown): boolean {
  return error instanceof DatabaseError && error.code !== undefined && /^(22|23|54)/.test(error.code);
}

/** Mirrors take entries only from federation (AppendReplicated). */
export function refuseMirror(logId: string, head: HeadRow): void {
  if (head.origin === "mirror") {
    throw rpcError(Code.FailedPrecondition, `log "${logId}" is a mirror of ${head.origin_node}; only federation writes to it`, {
      reason: "LOG_IS_MIRROR",
      metadata: { log: logId },
    });
  }
}
