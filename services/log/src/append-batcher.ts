import { DatabaseError, type Database, type Queryable } from "@annals/db";
import { Code, ConnectError } from "@connectrpc/connect";
import { rpcError } from "@annals/runtime";
import { CONDITION_SCAN_LIMIT, conditionQuerySql, type ConditionQuerySql } from "./append-condition.js";
import { planAppends, type AppendPlan, type AppendRequest, type AppendedEntry } from "./append-plan.js";
import type { LogMetrics } from "./log-metrics.js";
import { growTree, treeMismatch } from "./merkle-tree.js";
import { findByKeys, firstConditionConflicts, insertEntries, lockHead, TreeTilesMismatch, type HeadRow } from "./store.js";

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
}

/**
 * Group commit: appends to one log that arrive while its previous transaction
 * is in flight are written together by the next one (one multi-row INSERT,
 * one head update, one commit), so throughput rises with concurrency while a
 * lone append still commits at once. Each request keeps its own outcome.
 */
export class AppendBatcher {
  private readonly queues = new Map<string, LogQueue>();
  private readonly idle = new Set<() => void>();

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
        queue = { pending: [], pendingEntries: 0, busy: false };
        this.queues.set(logId, queue);
      }
      queue.pending.push({ ...request, resolve, reject, startedAt: performance.now() });
      queue.pendingEntries += request.entries.length;
      if (queue.busy) return;
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
    while (queue.pending.length > 0) {
      const group = this.takeGroup(queue);
      await this.commitGroup(logId, group);
    }
    queue.busy = false;
    this.queues.delete(logId);
    if (this.queues.size === 0) {
      for (const resolve of this.idle) resolve();
      this.idle.clear();
    }
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
    return queue.pending.splice(0, count);
  }

  private async commitGroup(logId: string, group: Pending[]): Promise<void> {
    let plan: AppendPlan;
    try {
      plan = await this.db.transaction(async (tx) => {
        const head = await lockHead(tx, logId, { origin: "local", originNode: null, chainLogId: null });
        refuseMirror(logId, head!);
        const reqIds: string[] = [];
        const uuids: string[] = [];
        for (const request of group) {
          for (const entry of request.entries) {
            if (entry.reqId !== null) reqIds.push(entry.reqId);
            if (entry.uuid !== null) uuids.push(entry.uuid);
          }
        }
        const existing = reqIds.length + uuids.length > 0 ? await findByKeys(tx, logId, reqIds, uuids) : [];
        const planned = planAppends(logId, head!, group, existing, undefined, await storedConflicts(tx, logId, head!, group));
        // Nothing to write (every request refused, or replays): roll back, so
        // that a refused append leaves nothing behind, not even the log that
        // lockHead created for it.
        if (planned.rows.length === 0) throw new NothingToWrite(planned);
        await insertEntries(tx, logId, planned.rows, planned.head, growTree(head!, planned.rows.map((row) => row.checksum)));
        return planned;
      });
    } catch (caught) {
      if (caught instanceof NothingToWrite) {
        plan = caught.plan;
      } else {
        await this.failGroup(logId, group, caught);
        return;
      }
    }
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

  /** The group's transaction failed: every request fails with the error, unless one request's data caused it. */
  private async failGroup(logId: string, group: Pending[], caught: unknown): Promise<void> {
    const error = caught instanceof TreeTilesMismatch ? treeMismatch(logId, -1n, -1n, "and its stored tiles disagree") : caught;
    if (group.length > 1 && isDataError(error)) {
      // Defence in depth: validation keeps what the database refuses out of
      // the queue, but should a row still be refused, one request's data
      // must not fail its neighbours' appends. Each runs alone, so only the
      // guilty one fails (log-service.test.ts "poison appends").
      for (const request of group) await this.commitGroup(logId, [request]);
      return;
    }
    for (const request of group) request.reject(error);
  }
}

/** Thrown inside a group's transaction to roll it back when the plan writes nothing. */
class NothingToWrite extends Error {
  override name = "NothingToWrite";
  constructor(readonly plan: AppendPlan) {
    super("the group writes no entry");
  }
}

/**
 * Per request of the group, the first stored entry that matches its
 * condition's query (null: none, or no query). One statement for the whole
 * group, and none when no request has a query: plain and expected_last_seq
 * appends cost no round trip more.
 */
async function storedConflicts(tx: Queryable, logId: string, head: HeadRow, group: readonly AppendRequest[]): Promise<(bigint | null)[]> {
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
  const conflicts: (bigint | null)[] = group.map(() => null);
  if (queries.length === 0) return conflicts;
  const found = await firstConditionConflicts(tx, logId, head.last_seq, CONDITION_SCAN_LIMIT, queries);
  found.forEach((seq, i) => (conflicts[positions[i]!] = seq));
  return conflicts;
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
