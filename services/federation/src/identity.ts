// This node's identity: its SPIFFE-style node id and the key pair it signs
// peer tokens with.
import { readFile } from "node:fs/promises";
import { importJWK, type JWK } from "jose";
import { keptEd25519Key, type Database } from "@annals/db";

export interface NodeIdentity {
  nodeId: string;
  /** Signs the tokens this node presents when it pulls from a peer. */
  privateKey: Awaited<ReturnType<typeof importJWK>>;
  /** What peers register for this node (no private part). */
  publicJwk: JWK;
}

/** Node ids follow one rule in every service (see @annals/runtime). */
export { nodeIdProblem } from "@annals/runtime";

/** The public half of a JWK: the members a verifier needs, nothing private. */
export function publicPart(jwk: JWK): JWK {
  const { kty, crv, x, y, n, e } = jwk;
  return Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, value]) => value !== undefined));
}

export interface IdentityOptions {
  nodeId: string;
  /** A JWK file holding the private key (Ed25519 `OKP` or P-256 `EC`); unset: a key kept in the database. */
  keyFile: string | undefined;
  db: Database;
  /** Told when a key was generated (so that the operator learns to configure one). */
  onGenerated?: () => void;
}

export async function loadIdentity(options: IdentityOptions): Promise<NodeIdentity> {
  let privateJwk: JWK;
  if (options.keyFile) {
    privateJwk = JSON.parse(await readFile(options.keyFile, "utf8")) as JWK;
    if (!privateJwk.d) throw new Error(`${options.keyFile} holds no private key (no "d" member)`);
  } else {
    privateJwk = await keptEd25519Key(options.db, "federation.identity", options.onGenerated);
  }
  return { nodeId: options.nodeId, privateKey: await importJWK(privateJwk, algorithmOf(privateJwk)), publicJwk: publicPart(privateJwk) };
}

/** The JWS algorithm of a key: EdDSA for Ed25519, ES256 for P-256. */
export function algorithmOf(jwk: JWK): string {
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ES256";
  throw new Error(`unsupported key type ${jwk.kty}/${jwk.crv}: use Ed25519 (OKP) or P-256 (EC)`);
}

/** The local mirror of a peer's log: `mirror/<trust domain>/<path>/<log>`, e.g. `mirror/acme.example/annals/us-1/orders`. */
export function mirrorLogId(peerNodeId: string, logId: string): string {
  return `mirror/${peerNodeId.slice("spiffe://".length)}/${logId}`;
}
