// A C2SP tlog-witness (docs/merkle.md, "Witnesses"): add-checkpoint applies
// the spec's checks (@annals/chain decideAddCheckpoint) to what this witness
// stored for the origin, stores the new checkpoint by compare-and-swap BEFORE
// answering, and answers with a timestamped Ed25519 cosignature
// (tlog-cosignature). It never cosigns two checkpoints that are not
// consistent: each one it accepts extends the one it stored, by a proof.
// A refused checkpoint the log did sign that contradicts the stored one is
// kept as evidence (witness_evidence).
import { createHash } from "node:crypto";
import {
  TLOG_SIZE_CONTENT_TYPE,
  WitnessRequestError,
  bytesEqual,
  decideAddCheckpoint,
  formatConflictBody,
  formatNote,
  formatSignatureLine,
  parseAddCheckpointRequest,
  type AddCheckpointRequest,
  type Cosigner,
  type NoteSignature,
  type VerifierKey,
} from "@annals/chain";
import type { Database } from "@annals/db";
import type { Logger } from "@annals/runtime";
import type { WitnessedLog } from "./witnessed-logs.js";
import { advanceWitnessCheckpoint, getWitnessCheckpoint, getWitnessCheckpointByOriginHash, insertWitnessEvidence, type WitnessCheckpointRow } from "./witness-store.js";

/** An HTTP answer: status, content type and body. */
export interface WitnessAnswer {
  readonly status: 200 | 400 | 403 | 404 | 409 | 413 | 422 | 503;
  readonly contentType: string;
  readonly body: string;
}

export interface WitnessOptions {
  db: Database;
  cosigner: Cosigner;
  /** The logs this witness cosigns, with their keys. */
  logs: readonly WitnessedLog[];
  /** POSIX seconds for the cosignature timestamps; default the system clock. */
  now?: () => bigint;
  logger: Logger;
}

const TEXT = "text/plain; charset=utf-8";
/** Compare-and-swap attempts before answering 503 (each lost attempt means another request advanced the origin). */
const MAX_CAS_ATTEMPTS = 8;

function answer(status: WitnessAnswer["status"], body: string, contentType = TEXT): WitnessAnswer {
  return { status, contentType, body: body.endsWith("\n") ? body : `${body}\n` };
}

export class Witness {
  private readonly keys: Map<string, readonly VerifierKey[]>;

  constructor(private readonly options: WitnessOptions) {
    this.keys = new Map(options.logs.map((log) => [log.origin, log.keys]));
  }

  /** The witness's verifier key (type 0x04), as operators publish it. */
  get cosigner(): Cosigner {
    return this.options.cosigner;
  }

  /** POST add-checkpoint with `body` (the bytes as received). */
  async addCheckpoint(body: Uint8Array): Promise<WitnessAnswer> {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(body);
    } catch {
      return answer(400, "the body must be valid UTF-8");
    }
    let request: AddCheckpointRequest;
    try {
      request = parseAddCheckpointRequest(text);
    } catch (error) {
      if (error instanceof WitnessRequestError) return answer(400, error.message);
      throw error;
    }
    const { origin } = request.checkpoint;
    const keys = this.keys.get(origin) ?? [];
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const stored = await getWitnessCheckpoint(this.options.db, origin);
      const decision = decideAddCheckpoint(request, keys, stored && { size: stored.tree_size, rootHash: stored.root_hash });
      if (decision.status !== 200) {
        await this.keepEvidence(request, decision, stored);
        return decision.status === 409 ? answer(409, formatConflictBody(decision.latestSize), TLOG_SIZE_CONTENT_TYPE) : answer(decision.status, decision.reason);
      }
      const timestamp = (this.options.now ?? systemSeconds)();
      const cosignature: NoteSignature = { name: this.cosigner.key.name, keyId: this.cosigner.key.keyId, signature: this.cosigner.sign(decision.text, timestamp) };
      // What the monitoring endpoint serves: the log's verified signatures and this cosignature.
      const note = formatNote({ text: decision.text, signatures: [...decision.signatures.map((verified) => verified.signature), cosignature] });
      const next = { tree_size: decision.checkpoint.size, root_hash: decision.checkpoint.rootHash, note };
      // Stored before answering, and only over the state the decision was made on (tlog-witness's rollback race).
      if (await advanceWitnessCheckpoint(this.options.db, origin, stored, next)) return answer(200, formatSignatureLine(cosignature));
    }
    return answer(503, "the checkpoint of this origin kept changing under the request; retry");
  }

  /** GET <origin hash>/checkpoint: the latest cosigned checkpoint, with the log's signatures and this witness's cosignature. */
  async latestCheckpoint(originHash: string): Promise<WitnessAnswer> {
    const stored = /^[0-9a-f]{64}$/.test(originHash) ? await getWitnessCheckpointByOriginHash(this.options.db, originHash) : null;
    if (!stored) return answer(404, "this witness never cosigned a checkpoint for that origin");
    return { status: 200, contentType: TEXT, body: stored.note };
  }

  /**
   * Keeps a refusal that may prove a fork: the log signed it (404 and 403
   * come before any consistency check) and it does not extend what this
   * witness cosigned — a failed proof (422), or a checkpoint of the stored
   * size with another root whatever old size it came with (409).
   */
  private async keepEvidence(request: AddCheckpointRequest, decision: { status: number; reason: string }, stored: WitnessCheckpointRow | null): Promise<void> {
    const sameSizeOtherRoot = stored !== null && request.checkpoint.size === stored.tree_size && !bytesEqual(request.checkpoint.rootHash, stored.root_hash);
    const status = decision.status === 422 ? 422 : decision.status === 409 && sameSizeOtherRoot ? 409 : null;
    if (status === null) return;
    await insertWitnessEvidence(this.options.db, {
      origin: request.checkpoint.origin,
      status,
      reason: sameSizeOtherRoot ? "same size as the cosigned checkpoint, different root" : decision.reason,
      old_size: request.oldSize,
      proof: request.proof.map((hash) => `${Buffer.from(hash).toString("base64")}\n`).join(""),
      submitted_note: request.note,
      cosigned_note: stored?.note ?? null,
    });
    this.options.logger.warn({ origin: request.checkpoint.origin, status: decision.status, size: String(request.checkpoint.size) }, "refused a checkpoint inconsistent with the one cosigned; kept as evidence");
  }
}

function systemSeconds(): bigint {
  return BigInt(Math.floor(Date.now() / 1000));
}

/** SHA-256 of an origin, lowercase hex: its path segment on the monitoring prefix. */
export function originHash(origin: string): string {
  return createHash("sha256").update(origin, "utf8").digest("hex");
}
