import { generateKeyPairSync, type JsonWebKey } from "node:crypto";
import type { Queryable } from "./database.js";

/**
 * A node's Ed25519 private key kept in a one-row table with a `private_jwk
 * jsonb` column (`table` is the schema-qualified name, a constant of the
 * caller): the stored key, or a new one, stored unless another replica stored
 * one first — both then use the key that was stored. `onGenerated` is told
 * when this call made a key, so that the operator learns to configure one.
 */
export async function keptEd25519Key(db: Queryable, table: string, onGenerated?: () => void): Promise<JsonWebKey> {
  const stored = async () => (await db.query<{ private_jwk: JsonWebKey }>(`select private_jwk from ${table}`)).rows[0]?.private_jwk;
  const jwk = await stored();
  if (jwk) return jwk;
  const generated = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
  await db.query(`insert into ${table} (private_jwk) values ($1::jsonb) on conflict do nothing`, [JSON.stringify(generated)]);
  onGenerated?.();
  return (await stored())!;
}
