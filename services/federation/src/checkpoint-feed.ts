// What the serving side of Pull sends with each frame when the puller asks
// for checkpoints (PullRequest.send_checkpoints): the log's latest signed
// checkpoint, a consistency proof from the stream's position (what the puller
// has stored) to it, and one from the checkpoint sent before (at first, the
// puller's accepted one) to it with that size's root. The puller checks them
// against its mirror and its accepted checkpoint (checkpoint-guard.ts).
import { Code, ConnectError } from "@connectrpc/connect";
import type { LogClient } from "@annals/client";
import type { federationV1 } from "@annals/proto";
import { errorReason } from "@annals/runtime";
import type { MessageInitShape } from "@bufbuild/protobuf";

type PullCheckpoint = MessageInitShape<typeof federationV1.PullCheckpointSchema>;

/**
 * How long a checkpoint read for one frame serves the frames after it, in ms.
 * GetCheckpoint on a local log signs one at once when the latest does not
 * cover the tree; one read per frame of a fast stream would sign a
 * checkpoint per frame. Heartbeats and caught_up always read afresh.
 */
const REFRESH_MS = 200;

export class CheckpointFeed {
  private latest: { note: string; size: bigint; readMs: number } | undefined;

  /** `previous` is the size of the puller's accepted checkpoint (PullRequest.checkpoint_size). */
  constructor(
    private readonly log: LogClient,
    private readonly logId: string,
    private previous: bigint,
  ) {}

  /**
   * The checkpoint to send once the stream has sent up to `position`;
   * undefined while the log has none (it is empty). The calls are short
   * unary ones: they are not tied to the stream's signal, whose listeners
   * would pile up over a long stream.
   */
  async next(position: bigint, signal: AbortSignal, fresh: boolean): Promise<PullCheckpoint | undefined> {
    try {
      if (fresh || !this.latest || Date.now() - this.latest.readMs >= REFRESH_MS) {
        const read = await this.log.getCheckpoint({ logId: this.logId });
        this.latest = { note: read.note, size: read.treeSize, readMs: Date.now() };
      }
      const { note, size } = this.latest;
      const checkpoint: PullCheckpoint = { note, position, previousSize: this.previous };
      if (position > 0n && position < size) {
        checkpoint.positionProof = (await this.log.getConsistencyProof({ logId: this.logId, fromSize: position, toSize: size })).hashes;
      }
      if (this.previous > 0n && this.previous < size) {
        checkpoint.previousProof = (await this.log.getConsistencyProof({ logId: this.logId, fromSize: this.previous, toSize: size })).hashes;
        checkpoint.previousRoot = (await this.log.getCheckpoint({ logId: this.logId, treeSize: this.previous })).rootHash;
      }
      // The puller accepts it or stops: the next proof starts from here.
      this.previous = size;
      return checkpoint;
    } catch (error) {
      const failure = ConnectError.from(error);
      if (failure.code === Code.FailedPrecondition && errorReason(failure) === "NO_CHECKPOINT") return undefined;
      if (signal.aborted) throw error;
      // The log's own trouble (e.g. TREE_MISMATCH) is not the puller's integrity error: the puller retries.
      throw new ConnectError(`the served log's checkpoint cannot be read: ${failure.rawMessage}`, Code.Unavailable, undefined, undefined, failure);
    }
  }
}
