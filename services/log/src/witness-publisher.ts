// The origin side of C2SP tlog-witness (docs/merkle.md, "Witnesses"): each
// new checkpoint of a local log goes to every configured witness with the
// consistency proof from the size that witness cosigned last (a 409 tells
// the witness's size: the request is sent again from there); the
// cosignatures that verify are stored. A checkpoint is published once
// `threshold` witnesses cosigned it: GetCheckpoint, the tile API and
// receipts serve the latest published one, with its cosignature lines.
// Witnesses that failed are asked again after a growing delay (with jitter),
// with whatever checkpoint is latest then.
import { checkNoteSignatures, consistencyProof, formatAddCheckpointRequest, formatSignatureLine } from "@annals/chain";
import type { Database } from "@annals/db";
import type { Logger } from "@annals/runtime";
import { tileReader } from "./merkle-tree.js";
import type { PolicyWitness, WitnessPolicy } from "./witness-policy.js";
import {
  cosignersOf,
  getCheckpoint,
  insertCosignature,
  latestCosignedCheckpoint,
  setWitnessPosition,
  witnessPositions,
  type CheckpointRow,
} from "./store.js";

export interface WitnessPublisherOptions {
  db: Database;
  policy: WitnessPolicy;
  /** How long one add-checkpoint request may take, in ms. Default 5000. */
  timeoutMs?: number;
  /** First and longest delay before asking failed witnesses again, in ms. Defaults 500 and 30000. */
  retryFirstMs?: number;
  retryMaxMs?: number;
  logger: Logger;
}

export const DEFAULT_WITNESS_TIMEOUT_MS = 5000;
/** 409 answers followed in one request to a witness before giving up until the next round. */
const MAX_CONFLICTS = 3;

/** A published checkpoint: the stored one, and its note with the cosignature lines appended. */
export interface PublishedCheckpoint extends CheckpointRow {
  /** Witnesses whose cosignatures the note carries. */
  readonly cosignatures: number;
}

interface LogRounds {
  /** The round that has not started yet (callers in the meantime share it). */
  queued: Promise<void> | null;
  /** The end of the last round asked for (rounds of one log never overlap). */
  tail: Promise<void>;
  retry: NodeJS.Timeout | null;
  failures: number;
}

export class WitnessPublisher {
  private readonly logs = new Map<string, LogRounds>();
  private readonly ids: string[];
  private closed = false;

  constructor(private readonly options: WitnessPublisherOptions) {
    this.ids = options.policy.witnesses.map((witness) => witness.id);
  }

  /** The latest checkpoint that meets the policy, its note carrying the cosignatures; null when none does yet. */
  async published(logId: string): Promise<PublishedCheckpoint | null> {
    const row = await latestCosignedCheckpoint(this.options.db, logId, this.ids, this.options.policy.threshold);
    if (row === null) return null;
    return { tree_size: BigInt(row.tree_size), root_hash: row.root_hash, note: publishedNote(row.note, row.lines), cosignatures: row.lines.length };
  }

  /**
   * Sends the log's latest checkpoint to the witnesses that have not cosigned
   * it. Resolves when a round that started after this call has ended (every
   * witness answered, failed or timed out); never rejects.
   */
  publish(logId: string): Promise<void> {
    let rounds = this.logs.get(logId);
    if (!rounds) this.logs.set(logId, (rounds = { queued: null, tail: Promise.resolve(), retry: null, failures: 0 }));
    if (rounds.queued) return rounds.queued;
    const state = rounds;
    const round = state.tail.then(() => {
      state.queued = null;
      return this.closed ? undefined : this.round(logId, state);
    });
    state.queued = round;
    state.tail = round;
    return round;
  }

  close(): void {
    this.closed = true;
    for (const rounds of this.logs.values()) if (rounds.retry) clearTimeout(rounds.retry);
  }

  private async round(logId: string, state: LogRounds): Promise<void> {
    try {
      const latest = await getCheckpoint(this.options.db, logId);
      if (!latest) return;
      const size = BigInt(latest.tree_size);
      const done = await cosignersOf(this.options.db, logId, size, this.ids);
      const positions = await witnessPositions(this.options.db, logId);
      const pending = this.options.policy.witnesses.filter((witness) => !done.has(witness.id));
      const results = await Promise.allSettled(pending.map((witness) => this.ask(logId, witness, { ...latest, tree_size: size }, positions.get(witness.id) ?? 0n)));
      const failed = results.flatMap((result, i) => (result.status === "rejected" ? [{ witness: pending[i]!.key.name, error: (result.reason as Error).message }] : []));
      if (failed.length === 0) {
        state.failures = 0;
        return;
      }
      if (done.size + pending.length - failed.length >= this.options.policy.threshold) {
        // Published all the same: the witnesses that failed get the next checkpoint, not a retry of this one.
        state.failures = 0;
        this.options.logger.info({ log: logId, size: String(size), failed }, "some witnesses did not cosign the checkpoint; it met the policy without them");
        return;
      }
      this.options.logger.warn({ log: logId, size: String(size), failed }, "too few witnesses cosigned the checkpoint; asking again later");
      this.retryLater(logId, state);
    } catch (error) {
      this.options.logger.error({ err: error, log: logId }, "could not send the checkpoint to the witnesses");
      this.retryLater(logId, state);
    }
  }

  private retryLater(logId: string, state: LogRounds): void {
    if (this.closed || state.retry) return;
    const first = this.options.retryFirstMs ?? 500;
    const cap = this.options.retryMaxMs ?? 30_000;
    const delay = Math.min(cap, first * 2 ** Math.min(state.failures, 16));
    state.failures += 1;
    // Between half the delay and all of it, so that many logs do not ask at the same moment.
    state.retry = setTimeout(() => {
      state.retry = null;
      void this.publish(logId);
    }, delay / 2 + Math.random() * (delay / 2));
    state.retry.unref();
  }

  /** add-checkpoint to one witness, from the size it holds; stores the cosignature. Throws why it failed. */
  private async ask(logId: string, witness: PolicyWitness, checkpoint: CheckpointRow, position: bigint): Promise<void> {
    let oldSize = position;
    for (let conflicts = 0; conflicts <= MAX_CONFLICTS; conflicts++) {
      if (oldSize > checkpoint.tree_size) throw new Error(`it holds size ${oldSize}, beyond this log's latest checkpoint (${checkpoint.tree_size})`);
      const proof = oldSize === 0n ? [] : await consistencyProof(oldSize, checkpoint.tree_size, tileReader(this.options.db, logId));
      const response = await fetch(`${witness.url}/add-checkpoint`, {
        method: "POST",
        headers: { "content-type": "text/plain; charset=utf-8" },
        body: formatAddCheckpointRequest({ oldSize, proof, note: checkpoint.note }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? DEFAULT_WITNESS_TIMEOUT_MS),
      });
      const body = await response.text();
      if (response.status === 409) {
        // tlog-witness: the body is the size the witness cosigned last, and a newline.
        if (!/^(0|[1-9][0-9]{0,18})\n$/.test(body)) throw new Error(`409 with a body that is not a tree size: ${JSON.stringify(body.slice(0, 40))}`);
        oldSize = BigInt(body.slice(0, -1));
        await setWitnessPosition(this.options.db, logId, witness.id, oldSize);
        continue;
      }
      if (response.status !== 200) throw new Error(`answered ${response.status}: ${body.slice(0, 200).trim()}`);
      // The answer is signature lines: appended to the note, the witness's own must verify (others are ignored).
      const { verified } = checkNoteSignatures(checkpoint.note + body, [witness.key]);
      const cosignature = verified[0];
      if (!cosignature || cosignature.timestamp === undefined || cosignature.timestamp === 0n) throw new Error("answered 200 without a timestamped cosignature from its key");
      const { signature, timestamp } = cosignature;
      // Together: once the cosignature completes a quorum the checkpoint is published, and the witness's size must be known by then.
      await this.options.db.transaction(async (tx) => {
        await insertCosignature(tx, logId, checkpoint.tree_size, witness.id, formatSignatureLine(signature).trimEnd(), timestamp);
        await setWitnessPosition(tx, logId, witness.id, checkpoint.tree_size);
      });
      return;
    }
    throw new Error(`its size kept changing (${MAX_CONFLICTS + 1} answers 409)`);
  }
}

/** A checkpoint's note with cosignature lines appended, in code-unit order of the lines (the same on every database). */
export function publishedNote(note: string, lines: readonly string[]): string {
  return note + [...lines].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)).map((line) => `${line}\n`).join("");
}
