// Optimistic concurrency for services that keep their state in a log: read
// the state, decide what to append, append on the condition that what was
// read still holds, and on a conflict read again and decide again.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { rpcDetails, type logV1 } from "@annals/proto";
import { Backoff, sleep } from "@annals/runtime/retry";
import type { LogClient } from "./clients.js";

/** What to append, and on which condition (decided from a fresh read). */
export interface AppendDecision {
  /** One entry goes by Append; several by AppendBatch, atomically. */
  entries: MessageInitShape<typeof logV1.EntryInputSchema>[];
  /**
   * What must still hold when they are sequenced: usually
   * `{ expectedLastSeq }` with the last seq the decision read, or a query
   * (`{ afterSeq, kinds, sourceIds }`) over the entries it rests on.
   */
  condition: MessageInitShape<typeof logV1.AppendConditionSchema>;
}

export interface ConditionalAppendOptions {
  /** Attempts in all, the first included, before giving up with AppendConflictError. Default 10. */
  maxAttempts?: number;
  /** Backoff before the second attempt, in ms (jittered); doubled for each further one. Default 10. */
  baseDelayMs?: number;
  /** The longest backoff, in ms. Default 1000. */
  maxDelayMs?: number;
  /** Aborts the loop (and the call in flight) with CANCELED. */
  signal?: AbortSignal;
}

export interface ConditionalAppendResult {
  /** Where the entries were written, in order; empty when the decision was to append nothing. */
  results: logV1.AppendResult[];
  /** Attempts it took (1: no conflict). */
  attempts: number;
}

/** appendWithCondition gave up: every attempt met a conflict. */
export class AppendConflictError extends Error {
  override name = "AppendConflictError";
  constructor(
    readonly logId: string,
    readonly attempts: number,
    /** The last attempt's APPEND_CONDITION_FAILED error. */
    override readonly cause: ConnectError,
  ) {
    super(`gave up appending to log "${logId}" after ${attempts} conflicting attempts: ${cause.rawMessage}`, { cause });
  }
}

/** Whether an error is a failed AppendCondition (FAILED_PRECONDITION, reason APPEND_CONDITION_FAILED). */
export function isAppendConflict(error: unknown): error is ConnectError {
  return (
    error instanceof ConnectError &&
    error.code === Code.FailedPrecondition &&
    error.findDetails(rpcDetails.ErrorInfoSchema).some((info) => info.reason === "APPEND_CONDITION_FAILED")
  );
}

/**
 * The read–decide–append loop. `decide` reads what the decision rests on
 * and returns the entries with the condition that guards them, or null to
 * append nothing. When the condition fails (another writer got there
 * first), it waits a random, growing backoff and calls `decide` again, so
 * the next decision sees the other writer's entries; after `maxAttempts`
 * conflicts it throws AppendConflictError. Any other error ends the loop at
 * once.
 *
 * Give the entries request_ids derived from what the decision is about if
 * the caller itself may retry after an unknown outcome: a replay of a stored
 * append answers `duplicate` whatever its condition says by then.
 */
export async function appendWithCondition(
  log: LogClient,
  logId: string,
  decide: (attempt: number) => Promise<AppendDecision | null>,
  options: ConditionalAppendOptions = {},
): Promise<ConditionalAppendResult> {
  const maxAttempts = options.maxAttempts ?? 10;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`maxAttempts must be a positive integer, not ${maxAttempts}`);
  const baseDelayMs = options.baseDelayMs ?? 10;
  const maxDelayMs = options.maxDelayMs ?? 1000;
  const signal = options.signal;
  const backoff = new Backoff({ firstMs: baseDelayMs, maxMs: maxDelayMs });
  for (let attempt = 1; ; attempt++) {
    const decision = await decide(attempt);
    if (decision === null) return { results: [], attempts: attempt };
    if (decision.entries.length === 0) throw new RangeError("a decision holds at least one entry (return null to append nothing)");
    try {
      const results =
        decision.entries.length === 1
          ? [(await log.append({ logId, entry: decision.entries[0], condition: decision.condition }, { signal })).result!]
          : (await log.appendBatch({ logId, entries: decision.entries, condition: decision.condition }, { signal })).results;
      return { results, attempts: attempt };
    } catch (error) {
      if (!isAppendConflict(error)) throw error;
      if (attempt >= maxAttempts) throw new AppendConflictError(logId, attempt, error);
      await sleep(backoff.next(), signal);
      if (signal?.aborted) throw ConnectError.from(signal.reason ?? new Error("aborted"), Code.Canceled);
    }
  }
}

/** A log's state folded from its entries, and the last seq folded (0 for an empty or absent log). */
export interface FoldedLog<S> {
  state: S;
  lastSeq: bigint;
}

/**
 * Reads a log forward from its first stored entry (or after `afterSeq`) to
 * its head and folds every entry into a state, a page at a time: the read
 * half of an aggregate kept in a log. `lastSeq` is what an append made from
 * this state passes as `expectedLastSeq`. An absent log folds to `initial`.
 */
export async function foldLog<S>(
  log: LogClient,
  logId: string,
  initial: S,
  apply: (state: S, entry: logV1.Entry) => S,
  options: { afterSeq?: bigint; pageSize?: number; signal?: AbortSignal } = {},
): Promise<FoldedLog<S>> {
  let state = initial;
  let lastSeq = options.afterSeq ?? 0n;
  let pageToken = "";
  for (;;) {
    let page: logV1.ReadResponse;
    try {
      page = await log.read({ logId, fromSeq: lastSeq + 1n, pageToken, pageSize: options.pageSize ?? 1000 }, { signal: options.signal });
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.NotFound && lastSeq === (options.afterSeq ?? 0n)) return { state, lastSeq };
      throw error;
    }
    for (const entry of page.entries) {
      state = apply(state, entry);
      lastSeq = entry.seq;
    }
    if (page.entries.length === 0 || lastSeq >= (page.head?.lastSeq ?? 0n)) return { state, lastSeq };
    pageToken = page.nextPageToken;
  }
}
