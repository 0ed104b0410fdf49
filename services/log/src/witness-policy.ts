// Which witnesses cosign this node's checkpoints, and how many must
// (ANNALS_LOG_WITNESSES, docs/operations.md): `k=<K>` and one entry per
// witness, `<witness vkey> <submission prefix URL>`, separated by ";" or
// newlines:
//   k=2; w1.example/w+0a1b2c3d+BA…= https://w1.example/witness/v1; w2…
// The vkey has signature type 0x04 (tlog-cosignature, Ed25519); the URL is
// the witness's submission prefix, to which `/add-checkpoint` is appended.
import { SIGNATURE_TYPE_COSIGNATURE_V1, formatVerifierKey, parseVerifierKey, type VerifierKey } from "@annals/chain";

export interface PolicyWitness {
  readonly key: VerifierKey;
  /** The vkey as text: how the witness is named in the database. */
  readonly id: string;
  /** The submission prefix, without a trailing slash. */
  readonly url: string;
}

export interface WitnessPolicy {
  /** How many of the witnesses must cosign a checkpoint before it is published (1 to N). */
  readonly threshold: number;
  readonly witnesses: readonly PolicyWitness[];
}

export class WitnessPolicyError extends Error {
  override readonly name = "WitnessPolicyError";
}

export function parseWitnessPolicy(text: string): WitnessPolicy {
  let threshold: number | undefined;
  const witnesses: PolicyWitness[] = [];
  const entries = text
    .split(/[;\n]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  for (const [i, entry] of entries.entries()) {
    const where = `entry ${i + 1}`;
    if (entry.startsWith("k=")) {
      if (threshold !== undefined) throw new WitnessPolicyError(`${where}: k is given twice`);
      if (!/^k=[1-9][0-9]{0,2}$/.test(entry)) throw new WitnessPolicyError(`${where}: expected k=<number of witnesses that must cosign>`);
      threshold = Number(entry.slice(2));
      continue;
    }
    const parts = entry.split(/\s+/);
    if (parts.length !== 2) throw new WitnessPolicyError(`${where}: expected "<witness vkey> <submission prefix URL>"`);
    let key: VerifierKey;
    try {
      key = parseVerifierKey(parts[0]!);
    } catch (error) {
      throw new WitnessPolicyError(`${where}: ${(error as Error).message}`, { cause: error });
    }
    if (key.type !== SIGNATURE_TYPE_COSIGNATURE_V1) throw new WitnessPolicyError(`${where}: a witness key has signature type 0x04 (tlog-cosignature), not 0x0${key.type}`);
    let url: URL;
    try {
      url = new URL(parts[1]!);
    } catch {
      throw new WitnessPolicyError(`${where}: ${JSON.stringify(parts[1]!.slice(0, 100))} is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new WitnessPolicyError(`${where}: the witness URL must be http or https`);
    const id = formatVerifierKey(key);
    if (witnesses.some((witness) => witness.id === id)) throw new WitnessPolicyError(`${where}: the witness ${key.name} is listed twice`);
    witnesses.push({ key, id, url: url.href.replace(/\/+$/, "") });
  }
  if (witnesses.length === 0) throw new WitnessPolicyError("no witness listed");
  if (threshold === undefined) throw new WitnessPolicyError("k=<K> is required");
  if (threshold > witnesses.length) throw new WitnessPolicyError(`k=${threshold} is more than the ${witnesses.length} witnesses listed`);
  return { threshold, witnesses };
}
