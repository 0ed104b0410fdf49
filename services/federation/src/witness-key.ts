// The witness's cosigning key (C2SP tlog-cosignature, Ed25519): from
// ANNALS_WITNESS_KEY_FILE (an Ed25519 private JWK), or generated once and
// kept in the database. It is a key of its own, never the node's checkpoint
// or federation key: tlog-cosignature asks for a distinct key per cosigner,
// and signed-note for one key per signature type.
import { createPrivateKey, type JsonWebKey } from "node:crypto";
import { createCosigner, type Cosigner } from "@annals/chain";
import { keptEd25519Key, type Database } from "@annals/db";

export interface WitnessKeyOptions {
  db: Database;
  /** The key name of the cosignatures (a schema-less URL naming the witness). */
  name: string;
  /** An Ed25519 private JWK; undefined: the one kept in the database (generated on first use). */
  jwk: JsonWebKey | undefined;
  /** Told when a key was generated, so that the operator learns to configure one. */
  onGenerated?: () => void;
}

export async function loadWitnessCosigner(options: WitnessKeyOptions): Promise<Cosigner> {
  const jwk = options.jwk ?? (await keptEd25519Key(options.db, "federation.witness_key", options.onGenerated));
  return createCosigner(options.name, createPrivateKey({ key: jwk, format: "jwk" }));
}

/**
 * The default witness name: the node id without spiffe:// (docs/merkle.md,
 * "Cosignatures"; never an origin, which has a colon). The node's log key
 * under that name has type 0x01, so its key ID differs.
 */
export function defaultWitnessName(nodeId: string): string {
  return nodeId.replace(/^spiffe:\/\//, "");
}
