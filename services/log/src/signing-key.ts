// The node's checkpoint signing key: one Ed25519 key signs the checkpoints
// of every log of the node, each under its log's origin as the key name
// (docs/merkle.md, "The origin"). From ANNALS_LOG_SIGNING_KEY_FILE (an
// Ed25519 private JWK), or generated once and kept in the database.
import { createPrivateKey, createPublicKey, type JsonWebKey } from "node:crypto";
import { createNoteSigner, createVerifierKey, formatVerifierKey, logOrigin, SIGNATURE_TYPE_ED25519, type NoteSigner } from "@annals/chain";
import { keptEd25519Key, type Database } from "@annals/db";

export interface NodeSigner {
  readonly nodeId: string;
  /** The signer of one log's checkpoints (its key name is the log's origin). */
  forLog(logId: string): NoteSigner;
  /** The signed-note verifier key of one log, or of the node (named by its node id without spiffe://). */
  verifierKey(logId?: string): string;
}

export interface SigningKeyOptions {
  db: Database;
  nodeId: string;
  /** A private JWK (Ed25519) read from a file; undefined: the key kept in the database (generated on first use). */
  jwk: JsonWebKey | undefined;
  /** Told when a key was generated, so that the operator learns to configure one. */
  onGenerated?: () => void;
}

export async function loadNodeSigner(options: SigningKeyOptions): Promise<NodeSigner> {
  const jwk = options.jwk ?? (await keptEd25519Key(options.db, "log.signing_key", options.onGenerated));
  const privateKey = createPrivateKey({ key: jwk, format: "jwk" });
  const publicKey = createPublicKey(privateKey);
  const signers = new Map<string, NoteSigner>();
  return {
    nodeId: options.nodeId,
    forLog(logId) {
      let signer = signers.get(logId);
      if (!signer) signers.set(logId, (signer = createNoteSigner(logOrigin(options.nodeId, logId), privateKey)));
      return signer;
    },
    verifierKey(logId) {
      const name = logId === undefined ? options.nodeId.slice("spiffe://".length) : logOrigin(options.nodeId, logId);
      return formatVerifierKey(createVerifierKey(name, SIGNATURE_TYPE_ED25519, publicKey));
    },
  };
}
