import { textProblem } from "@annals/chain";
import type { logV1 } from "@annals/proto";
import { Code, type ConnectError } from "@connectrpc/connect";
import { invalidArgument, rpcError } from "@annals/runtime";
import { KindFilter, patternProblem } from "@annals/topics";
import { seqCompacted } from "./log-errors.js";
import type { NewEntryRow } from "./store.js";

/** The most kind patterns one condition may hold: each costs index probes under the head lock. */
export const MAX_CONDITION_KINDS = 32;
/** The most source ids one condition may hold: each costs an index probe under the head lock. */
export const MAX_CONDITION_SOURCE_IDS = 100;
/**
 * When at most this many entries follow after_seq, the query walks them in
 * seq order (the usual case: the caller has just read the log) rather than
 * probing per kind or source (0005_append_conditions.sql).
 */
export const CONDITION_SCAN_LIMIT = 128n;

const MAX_SOURCE_ID_LENGTH = 255;

/** The query form of an AppendCondition: no entry after `afterSeq` whose kind and source match. */
export interface ConditionQuery {
  afterSeq: bigint;
  /** NATS-style kind patterns; empty: any kind. */
  kinds: readonly string[];
  /** Empty: any source. */
  sourceIds: readonly string[];
  filter: KindFilter;
}

/** A validated AppendCondition. */
export interface PreparedCondition {
  /** null: the head is not checked. */
  expectedLastSeq: bigint | null;
  /** null: no query. */
  query: ConditionQuery | null;
}

/**
 * Validates an AppendCondition; null when there is none (absent, or no field
 * set). `field` is its path in the request (`condition`, `frame[3].entry.condition`).
 */
export function prepareCondition(input: logV1.AppendCondition | undefined, field: string): PreparedCondition | null {
  if (!input) return null;
  const { expectedLastSeq, afterSeq, kinds, sourceIds } = input;
  if (expectedLastSeq !== undefined && expectedLastSeq < 0n) {
    throw invalidArgument(`${field}.expected_last_seq`, "must not be negative (0: the log must be empty)");
  }
  if (afterSeq !== undefined && afterSeq < 0n) throw invalidArgument(`${field}.after_seq`, "must not be negative (0: the whole log)");
  if (kinds.length > MAX_CONDITION_KINDS) {
    throw invalidArgument(`${field}.kinds`, `holds ${kinds.length} patterns; the limit is ${MAX_CONDITION_KINDS}`, { limit: String(MAX_CONDITION_KINDS) });
  }
  kinds.forEach((pattern, index) => {
    const problem = patternProblem(pattern);
    if (problem) throw invalidArgument(`${field}.kinds[${index}]`, `"${pattern}" ${problem}`);
  });
  if (sourceIds.length > MAX_CONDITION_SOURCE_IDS) {
    throw invalidArgument(`${field}.source_ids`, `holds ${sourceIds.length} source ids; the limit is ${MAX_CONDITION_SOURCE_IDS}`, {
      limit: String(MAX_CONDITION_SOURCE_IDS),
    });
  }
  sourceIds.forEach((sourceId, index) => {
    const problem = sourceId.length > MAX_SOURCE_ID_LENGTH ? `is longer than ${MAX_SOURCE_ID_LENGTH} characters` : textProblem(sourceId);
    if (problem) throw invalidArgument(`${field}.source_ids[${index}]`, problem);
  });
  const hasQuery = afterSeq !== undefined || kinds.length > 0 || sourceIds.length > 0;
  if (expectedLastSeq === undefined && !hasQuery) return null;
  return {
    expectedLastSeq: expectedLastSeq ?? null,
    query: hasQuery ? { afterSeq: afterSeq ?? 0n, kinds: [...new Set(kinds)], sourceIds: [...new Set(sourceIds)], filter: new KindFilter(kinds) } : null,
  };
}

/** A query in the form `log.first_condition_conflict` takes (0005_append_conditions.sql). */
export interface ConditionQuerySql {
  afterSeq: bigint;
  /** Patterns without a wildcard: kinds to probe directly. */
  kinds: string[];
  /** Per wildcard pattern: its literal prefix, the first string past every kind with it, and the pattern as a regular expression. */
  prefixLo: string[];
  prefixHi: string[];
  regexes: string[];
  sources: string[];
}

/** Kinds are ASCII (kindProblem), so every kind sorts below this in the "C" collation. */
const AFTER_EVERY_KIND = "\u007f";

/** The query as the database function takes it. */
export function conditionQuerySql(query: ConditionQuery): ConditionQuerySql {
  const sql: ConditionQuerySql = { afterSeq: query.afterSeq, kinds: [], prefixLo: [], prefixHi: [], regexes: [], sources: [...query.sourceIds] };
  for (const pattern of query.kinds) {
    const tokens = pattern.split(".");
    const wildcard = tokens.findIndex((token) => token === "*" || token === ">");
    if (wildcard === -1) {
      sql.kinds.push(pattern);
      continue;
    }
    const prefix = tokens.slice(0, wildcard).map((token) => `${token}.`).join("");
    sql.prefixLo.push(prefix);
    // The prefix ends with "." (0x2e): every kind under it sorts below the prefix ending in "/" (0x2f).
    sql.prefixHi.push(prefix === "" ? AFTER_EVERY_KIND : `${prefix.slice(0, -1)}/`);
    sql.regexes.push(patternRegex(tokens));
  }
  return sql;
}

/**
 * A pattern's tokens as an anchored POSIX regular expression over kinds.
 * Literal tokens hold only letters, digits, `_` and `-` (patternProblem),
 * none of which is special outside a bracket; kinds have no empty token, so
 * `>` (one or more tokens) is any non-empty rest.
 */
function patternRegex(tokens: readonly string[]): string {
  return "^" + tokens.map((token) => (token === "*" ? "[^.]+" : token === ">" ? ".+" : token)).join("\\.") + "$";
}

/** Whether an entry matches the query's kinds and sources (seq aside). */
export function queryMatches(query: ConditionQuery, kind: string, sourceId: string): boolean {
  return query.filter.matches(kind) && (query.sourceIds.length === 0 || query.sourceIds.includes(sourceId));
}

/**
 * Why a request's condition fails, or null when it holds, against the log as
 * the earlier requests of its group leave it: `lastSeq` is that head,
 * `storedConflict` the first stored entry (at or before the locked head)
 * that matches the query, and `planned` the rows the group sequenced before
 * this request, in seq order.
 */
export function conditionRefusal(
  logId: string,
  condition: PreparedCondition,
  log: { lastSeq: bigint; checkpointSeq: bigint },
  storedConflict: bigint | null,
  planned: readonly NewEntryRow[],
): ConnectError | null {
  const { expectedLastSeq, query } = condition;
  if (expectedLastSeq !== null && expectedLastSeq !== log.lastSeq) {
    return conditionFailed(logId, log.lastSeq, null, `the log's last seq is ${log.lastSeq}, not the expected ${expectedLastSeq}`);
  }
  if (query === null) return null;
  if (query.afterSeq < log.checkpointSeq) {
    // Entries after after_seq are gone: whether one of them matched cannot be known.
    return seqCompacted(logId, query.afterSeq + 1n, log.checkpointSeq + 1n);
  }
  let conflict = storedConflict;
  if (conflict === null) {
    conflict = planned.find((row) => row.seq > query.afterSeq && queryMatches(query, row.kind, row.source_id))?.seq ?? null;
  }
  if (conflict === null) return null;
  return conditionFailed(logId, log.lastSeq, conflict, `entry ${conflict} (after seq ${query.afterSeq}) matches the condition's query`);
}

/** FAILED_PRECONDITION (APPEND_CONDITION_FAILED) naming the head and, for a query, the first conflicting seq. */
export function conditionFailed(logId: string, head: bigint, conflictingSeq: bigint | null, why: string): ConnectError {
  const metadata: Record<string, string> = { log: logId, head: String(head) };
  if (conflictingSeq !== null) metadata.conflicting_seq = String(conflictingSeq);
  return rpcError(Code.FailedPrecondition, `append condition failed on log "${logId}": ${why}; nothing was written`, {
    reason: "APPEND_CONDITION_FAILED",
    metadata,
  });
}
