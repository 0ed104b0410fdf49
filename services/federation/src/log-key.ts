// A peer's checkpoint verifier key (Peer.log_verifier_key). One Ed25519 key
// signs all of a node's logs, each under the log's origin as the key name
// (docs/merkle.md, "The origin"), so the node's vkey (named by the node id
// without spiffe://) verifies a log once renamed to the log's origin, and
// the key ID recomputed for that name.
import { SIGNATURE_TYPE_ED25519, createVerifierKey, logOrigin, parseLogOrigin, parseVerifierKey, type VerifierKey } from "@annals/chain";

const SPIFFE = "spiffe://";

/** Why `vkey` cannot be a peer's log verifier key, or null. */
export function logVerifierKeyProblem(vkey: string, peerNodeId: string): string | null {
  let key: VerifierKey;
  try {
    key = parseVerifierKey(vkey);
  } catch (error) {
    return `is not a signed-note verifier key <name>+<key id>+<base64 key> (${(error as Error).message}); register what the peer's \`annals federation info\` prints as its log verifier key`;
  }
  if (key.type !== SIGNATURE_TYPE_ED25519) return "must be an Ed25519 note key (type 0x01), not a witness cosignature key";
  const node = peerNodeId.slice(SPIFFE.length);
  if (key.name === node) return null;
  try {
    if (parseLogOrigin(key.name).nodeId === peerNodeId) return null;
  } catch {
    // not an origin: refused below
  }
  return `is named ${JSON.stringify(key.name.slice(0, 200))}; it must be named by the peer's node id without spiffe:// (${node}) or by one of its logs' origins (${node}:<log>)`;
}

/** The key that verifies the checkpoints of the peer's log `logId`, from its registered vkey. */
export function peerLogKey(vkey: string, peerNodeId: string, logId: string): VerifierKey {
  const key = parseVerifierKey(vkey);
  return createVerifierKey(logOrigin(peerNodeId, logId), SIGNATURE_TYPE_ED25519, key.publicKey);
}
