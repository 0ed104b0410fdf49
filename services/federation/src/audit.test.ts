// The audit trail's reasons: one vocabulary between federation.audit, the
// proto's AuditReason and the code, and records written before it (free text
// in `reason`) mapped to it by migration 0006.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { loadMigrations, migrate, type Database } from "@annals/db";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { federationV1 } from "@annals/proto";
import { audit, listAudit } from "./audit.js";
import { FEDERATION_SCHEMA } from "./component.js";

const { AuditReason } = federationV1;

let database: TestDatabase;
let db: Database;

before(async () => {
  database = await createTestDatabase("federation_audit");
  db = await database.open();
});
after(async () => {
  await database?.drop();
});

test("migration 0006 maps the records written before it by their prefix: the reason becomes the enum, the text its message", async () => {
  const migrations = await loadMigrations(fileURLToPath(new URL("../migrations", import.meta.url)));
  const before0006 = migrations.filter((migration) => migration.id < "0006");
  assert.ok(before0006.length < migrations.length);
  await migrate(db, { schema: FEDERATION_SCHEMA, migrations: before0006 });
  const old = [
    'ENTRY_REJECTED: replicated entry 12 of "ledger" does not verify: payload_digest, checksum',
    'ENTRY_REJECTED: replicated entry 12 of "ledger" does not verify: link',
    'ENTRY_REJECTED: replicated entry 12 of "ledger" does not verify: seqs 3..5 are missing',
    "PEER_CERT_REFUSED: the server's certificate names spiffe://x/y, not exactly spiffe://x/z",
    "PEER_CERT_MISMATCH: the client certificate must name exactly the peer's node id spiffe://x/z; it names spiffe://x/y",
    "RESET: integrity error cleared by ops",
    "REFUSALS_AGGREGATED: more than 20 different Pull refusals within 60000 ms; this record counts the others",
    'PEER_UNKNOWN: no peer "spiffe://x/n" is registered here',
    'LOG_NOT_SERVED: peer "spiffe://x/z" may not pull log "payments" (not in its served_logs)',
  ];
  for (const reason of old) await db.query("insert into federation.audit (node_id, reason) values ('spiffe://x/z', $1)", [reason]);
  await migrate(db, { schema: FEDERATION_SCHEMA, migrations });

  const { records } = await listAudit(db, { nodeId: "", limit: 100, before: undefined });
  assert.deepEqual(
    records.reverse().map((record) => [record.reason, record.message]),
    [
      [AuditReason.CHECKSUM_MISMATCH, 'replicated entry 12 of "ledger" does not verify: payload_digest, checksum'],
      [AuditReason.BROKEN_LINK, 'replicated entry 12 of "ledger" does not verify: link'],
      [AuditReason.SEQ_GAP, 'replicated entry 12 of "ledger" does not verify: seqs 3..5 are missing'],
      [AuditReason.CERTIFICATE_MISMATCH, "the server's certificate names spiffe://x/y, not exactly spiffe://x/z"],
      [AuditReason.CERTIFICATE_MISMATCH, old[4]],
      [AuditReason.RESET, "integrity error cleared by ops"],
      [AuditReason.REFUSALS_AGGREGATED, "more than 20 different Pull refusals within 60000 ms; this record counts the others"],
      [AuditReason.PULL_REFUSED, old[7]],
      [AuditReason.PULL_REFUSED, old[8]],
    ],
  );
});

test("every AuditReason is stored as its lowercase name and read back; the table refuses any other token", async () => {
  const reasons = Object.values(AuditReason).filter((value): value is federationV1.AuditReason => typeof value === "number" && value !== AuditReason.UNSPECIFIED);
  for (const reason of reasons) await audit(db, { nodeId: "spiffe://x/all", reason, message: `a ${AuditReason[reason]}` });
  const { records } = await listAudit(db, { nodeId: "spiffe://x/all", limit: 100, before: undefined });
  assert.deepEqual(records.map((record) => record.reason).reverse(), reasons);
  const { rows } = await db.query<{ reason: string }>("select reason from federation.audit where node_id = 'spiffe://x/all' order by id");
  assert.deepEqual(rows.map((row) => row.reason), reasons.map((reason) => AuditReason[reason].toLowerCase()));
  await assert.rejects(db.query("insert into federation.audit (node_id, reason) values ('spiffe://x/all', 'ENTRY_REJECTED: x')"), /audit_reason_known/);
});
