// A mirror keeps its origin's signed checkpoints (docs/merkle.md, "In the log
// service"): its tree is the origin's tree, so the origin's notes are the
// mirror's checkpoints too, served by GetCheckpoint and put into exports and
// proofs unchanged. The federation service verified their signatures; here
// each is checked against the mirror's own tree before it is kept, so a
// mirror never serves a checkpoint its entries contradict.
import { bytesEqual, logOrigin, parseCheckpointNote, rightEdgeRoot, treeRoot } from "@annals/chain";
import type { Queryable } from "@annals/db";
import { invalidArgument } from "@annals/runtime";
import { tileReader, treeEdge } from "./merkle-tree.js";
import { insertCheckpoint, type HeadRow } from "./store.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/**
 * Under the mirror's head lock, after its entries were inserted: stores each
 * note (field `checkpoints[i]`) whose origin is the mirror's origin, whose
 * size is from 1 to the mirror's head and whose root the mirror's tree has
 * at that size; INVALID_ARGUMENT naming the first that is not.
 */
export async function keepOriginCheckpoints(tx: Queryable, head: HeadRow, notes: readonly string[]): Promise<void> {
  if (notes.length === 0) return;
  const edge = treeEdge(head);
  if (edge === null) throw invalidArgument("checkpoints", `mirror "${head.log_id}" has no Merkle tree to hold checkpoints`);
  const origin = logOrigin(head.origin_node ?? "", head.chain_log_id ?? head.log_id);
  const reader = tileReader(tx, head.log_id);
  for (const [i, note] of notes.entries()) {
    const field = `checkpoints[${i}]`;
    let checkpoint;
    try {
      checkpoint = parseCheckpointNote(note);
    } catch (error) {
      throw invalidArgument(field, `is not a signed checkpoint note: ${(error as Error).message}`);
    }
    if (checkpoint.origin !== origin) throw invalidArgument(field, `is for origin ${JSON.stringify(checkpoint.origin.slice(0, 200))}, not the mirror's origin ${origin}`);
    if (checkpoint.size < 1n || checkpoint.size > edge.size) throw invalidArgument(field, `has size ${checkpoint.size}; the mirror holds 1 to ${edge.size} leaves`);
    const root = checkpoint.size === edge.size ? rightEdgeRoot(edge) : await treeRoot(checkpoint.size, reader);
    if (!bytesEqual(root, checkpoint.rootHash)) {
      throw invalidArgument(field, `has root ${hex(checkpoint.rootHash)} at size ${checkpoint.size}, but the mirror's tree has ${hex(root)}`);
    }
    await insertCheckpoint(tx, head.log_id, { tree_size: checkpoint.size, root_hash: checkpoint.rootHash, note });
  }
}
