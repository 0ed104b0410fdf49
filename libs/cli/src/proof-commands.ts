// `annals checkpoint`, `verifier-key`, `prove` and `verify-receipt`: a log's
// signed checkpoints and offline receipts (docs/merkle.md).
import { existsSync, readFileSync } from "node:fs";
import {
  createVerifierKey,
  formatTlogProof,
  parseLogOrigin,
  parseTlogProof,
  parseVerifierKey,
  TlogError,
  verifyTlogProof,
  type VerifierKey,
  type WitnessPolicy,
} from "@annals/chain";
import type { LogClient } from "@annals/client";
import { parseCheckpointNote } from "@annals/chain";
import { UsageError } from "./usage-error.js";

/**
 * A verifier key given as its text (`<name>+<hex id>+<base64>`) or as a file
 * holding it. A node's key (named after the node) is turned into the key of
 * `origin` (a log of that node), which the same public key verifies.
 */
export function readVerifierKey(value: string, origin?: string): VerifierKey {
  const text = existsSync(value) ? readFileSync(value, "utf8").trim() : value.trim();
  let key: VerifierKey;
  try {
    key = parseVerifierKey(text);
  } catch (error) {
    throw new UsageError(`--key is not a verifier key (<name>+<hex key id>+<base64 key>) nor a file holding one: ${(error as Error).message}`);
  }
  if (origin === undefined || key.name === origin || key.name.includes(":")) return key;
  const node = `spiffe://${key.name}`;
  let originNode: string;
  try {
    originNode = parseLogOrigin(origin).nodeId;
  } catch {
    return key;
  }
  return originNode === node ? createVerifierKey(origin, key.type, key.publicKey) : key;
}

export async function checkpointCommand(log: LogClient, logId: string, size: bigint | undefined): Promise<number> {
  const checkpoint = await log.getCheckpoint({ logId, ...(size === undefined ? {} : { treeSize: size }) });
  if (checkpoint.note === "") {
    console.error(`log "${logId}" has no signed checkpoint of size ${checkpoint.treeSize}; its root there is ${Buffer.from(checkpoint.rootHash).toString("base64")}`);
    return 1;
  }
  process.stdout.write(checkpoint.note);
  return 0;
}

export async function verifierKeyCommand(log: LogClient, logId: string | undefined): Promise<number> {
  console.log((await log.getVerifierKey({ logId: logId ?? "" })).verifierKey);
  return 0;
}

/**
 * Writes a C2SP tlog-proof for entry `seq` to stdout: its index (seq − 1),
 * its inclusion proof and the latest signed checkpoint. The entry's 32-byte
 * checksum (the leaf) goes in the proof's `extra` line, so that
 * `annals verify-receipt` needs nothing but the file and the log's key.
 */
export async function proveCommand(log: LogClient, logId: string, seq: bigint): Promise<number> {
  if (seq < 1n) throw new UsageError("--seq must be 1 or more");
  // The latest checkpoint covers an entry within the node's checkpoint interval (at most a second by default).
  let checkpoint = await log.getCheckpoint({ logId });
  for (let wait = 50; checkpoint.treeSize < seq && wait <= 1600; wait *= 2) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    checkpoint = await log.getCheckpoint({ logId });
  }
  if (checkpoint.treeSize < seq) throw new Error(`log "${logId}": the latest signed checkpoint covers ${checkpoint.treeSize} entries, not yet seq ${seq}`);
  const proof = await log.getInclusionProof({ logId, seq, treeSize: checkpoint.treeSize });
  const entry = await log.getEntry({ logId, selector: { case: "seq", value: seq } }).catch(() => null);
  const checksum = entry?.entry?.checksum;
  process.stdout.write(
    formatTlogProof({
      index: proof.leafIndex,
      hashes: proof.hashes,
      checkpoint: checkpoint.note,
      ...(checksum ? { extra: Buffer.from(checksum, "hex") } : {}),
    }),
  );
  console.error(`receipt for seq ${seq} of log "${logId}" in its checkpoint of ${checkpoint.treeSize} entries${checksum ? ` (entry checksum ${checksum})` : ""}`);
  return 0;
}

/**
 * Checks a receipt offline against the log's key: exit status 0 when it
 * proves the entry, 1 naming what failed (malformed, wrong-origin,
 * bad-signature, inclusion).
 */
export function verifyReceiptCommand(file: string, keyValue: string, checksumHex: string | undefined, witnesses?: WitnessPolicy): number {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  const fail = (reason: string, detail: string) => {
    console.log(`${file}: INVALID receipt (${reason}): ${detail}`);
    return 1;
  };
  let proof;
  let origin: string;
  try {
    proof = parseTlogProof(text);
    origin = parseCheckpointNote(proof.checkpoint).origin;
  } catch (error) {
    return fail("malformed", (error as Error).message);
  }
  const key = readVerifierKey(keyValue, origin);
  let leaf: Uint8Array;
  if (checksumHex !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(checksumHex)) throw new UsageError("--checksum must be 64 lowercase hex digits (the entry's checksum)");
    leaf = Buffer.from(checksumHex, "hex");
    if (proof.extra !== undefined && !Buffer.from(proof.extra).equals(Buffer.from(leaf))) {
      return fail("checksum", `the receipt is for the entry with checksum ${Buffer.from(proof.extra).toString("hex")}, not ${checksumHex}`);
    }
  } else if (proof.extra?.length === 32) {
    leaf = proof.extra;
  } else {
    throw new UsageError("the receipt does not carry the entry's checksum: give it with --checksum HEX");
  }
  try {
    const verified = verifyTlogProof(proof, leaf, { logKey: key, origin, ...(witnesses ? { witnesses } : {}) });
    const { logId } = parseLogOrigin(verified.checkpoint.origin);
    console.log(
      `${file}: valid receipt: seq ${verified.index + 1n} of log "${logId}" (checksum ${Buffer.from(leaf).toString("hex")}) ` +
        `is in the checkpoint of ${verified.checkpoint.size} entries signed by ${key.name}` +
        (witnesses ? ` and cosigned by at least ${witnesses.threshold} of the ${witnesses.keys.length} witnesses given` : ""),
    );
    return 0;
  } catch (error) {
    if (error instanceof TlogError) return fail(error.reason, error.message);
    throw error;
  }
}
