// cert-manager renews the federation certificate with a new key (and a CA
// may be rotated); the kubelet swaps the mounted Secret's files. Real
// processes as in the prod overlay — the federation service serving mTLS,
// its log service beside it, and a pulling node presenting its own
// certificate — must take the new files without a restart and without
// cutting the calls already open.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createAnnalsClients, type AnnalsClients } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { federationV1 } from "@annals/proto";
import { signDevToken } from "@annals/runtime";
import { makeTestCertificates, startServiceProcess, tlsHandshake, until, writeSecretVolume, type ServiceProcess, type TestCertificate } from "@annals/runtime/testing";

const services = (path: string) => fileURLToPath(new URL(`../../services/${path}`, import.meta.url));
const SECRET = "certificate-reload-test-secret-32-bytes";
const A = "spiffe://acme.example/annals/eu-1";
const B = "spiffe://acme.example/annals/us-1";
const MIRROR = "mirror/acme.example/annals/eu-1/orders";

let dir: string;
const processes: ServiceProcess[] = [];
const databases: TestDatabase[] = [];
let aLog: AnnalsClients;
let aFederation: ServiceProcess;
let b: ServiceProcess;
let bClients: AnnalsClients;

const volumeOf = (certificate: TestCertificate, ca: string) => ({
  "tls.crt": readFileSync(certificate.certFile),
  "tls.key": readFileSync(certificate.keyFile),
  "ca.crt": readFileSync(ca),
});
const inVolume = (volume: string) => ({ caFile: join(volume, "ca.crt"), certFile: join(volume, "tls.crt"), keyFile: join(volume, "tls.key") });
const fingerprintOf = (certificate: TestCertificate) => new X509Certificate(readFileSync(certificate.certFile)).fingerprint256;
const notAfterOf = (certificate: TestCertificate) => new Date(new X509Certificate(readFileSync(certificate.certFile)).validTo).getTime() / 1000;

async function start(script: string, label: string, env: Record<string, string>): Promise<ServiceProcess> {
  const database = await createTestDatabase(label);
  databases.push(database);
  const started = await startServiceProcess({ script: services(script), env: { ...database.env, ANNALS_AUTH_JWT_SECRET: SECRET, ...env } });
  processes.push(started);
  return started;
}


/** The value of one series of a process's /metrics. */
async function metric(process: ServiceProcess, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await fetch(`http://127.0.0.1:${process.httpPort}/metrics`).then((response) => response.text());
  const line = text
    .split("\n")
    .find((candidate) => candidate.startsWith(`${name}{`) && Object.entries(labels).every(([key, value]) => candidate.includes(`${key}="${value}"`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

let certs: ReturnType<typeof makeTestCertificates>;
let renewed: ReturnType<typeof makeTestCertificates>;
let volumeA: string;
let volumeB: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "annals-reload-"));
  certs = makeTestCertificates(dir, { a: A, b: B });
  // The renewal comes from a new CA, so that only a process that took the new files can talk afterwards.
  renewed = makeTestCertificates(dir, { a2: A, b2: B }, "ca2");
  volumeA = join(dir, "volume-a");
  volumeB = join(dir, "volume-b");
  writeSecretVolume(volumeA, volumeOf(certs["a"]!, certs.ca));
  writeSecretVolume(volumeB, volumeOf(certs["b"]!, certs.ca));
  const internal = (subject: string) => signDevToken({ secret: SECRET, subject, roles: ["log.read", "log.write", "log.replicate", "log.relay"], expiresIn: "2h" });
  const admin = await signDevToken({ secret: SECRET, subject: "ops", roles: ["admin"], expiresIn: "2h" });

  // Node eu-1 as the prod overlay runs it: the log service, and the federation service under mTLS.
  const log = await start("log/dist/main.js", "reload_a_log", {});
  aLog = createAnnalsClients({ baseUrl: `http://127.0.0.1:${log.grpcPort}`, token: admin, unaryTimeoutMs: 60_000 });
  aFederation = await start("federation/dist/main.js", "reload_a_federation", {
    ANNALS_NODE_ID: A,
    ANNALS_LOG_URL: `http://127.0.0.1:${log.grpcPort}`,
    ANNALS_LOG_TOKEN: await internal("federation"),
    ANNALS_TLS_CERT_FILE: join(volumeA, "tls.crt"),
    ANNALS_TLS_KEY_FILE: join(volumeA, "tls.key"),
    ANNALS_TLS_CLIENT_CA_FILE: join(volumeA, "ca.crt"),
    ANNALS_TLS_RELOAD_INTERVAL_MS: "200",
  });
  // Node us-1: an all-in-one node whose puller presents its certificate from its own volume.
  b = await start("node/dist/main.js", "reload_b", {
    ANNALS_NODE_ID: B,
    ANNALS_FEDERATION_TLS_CA_FILE: join(volumeB, "ca.crt"),
    ANNALS_FEDERATION_TLS_CERT_FILE: join(volumeB, "tls.crt"),
    ANNALS_FEDERATION_TLS_KEY_FILE: join(volumeB, "tls.key"),
    ANNALS_TLS_RELOAD_INTERVAL_MS: "200",
  });
  bClients = createAnnalsClients({ baseUrl: `http://127.0.0.1:${b.grpcPort}`, token: admin, unaryTimeoutMs: 60_000 });
  // The operator's client to eu-1's federation port reads the volume too (it has to present a certificate of the CA in use).
  const aAdmin = () => createAnnalsClients({ baseUrl: `https://127.0.0.1:${aFederation.grpcPort}`, token: admin, unaryTimeoutMs: 60_000, tls: { ...inVolume(volumeB), serverUri: A } });
  const bKey = (await bClients.federation.getNodeInfo({})).publicKeyJwk;
  await aAdmin().federation.registerPeer({ peer: { nodeId: B, url: "https://127.0.0.1:1", publicKeyJwk: bKey, servedLogs: ["orders"] } });
  const aKey = (await aAdmin().federation.getNodeInfo({})).publicKeyJwk;
  await bClients.federation.registerPeer({ peer: { nodeId: A, url: `https://127.0.0.1:${aFederation.grpcPort}`, publicKeyJwk: aKey, mirroredLogs: ["orders"] } });
});

after(async () => {
  for (const process of processes.reverse()) await process.stop();
  for (const database of databases) await database.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The mirror's last seq; 0 while it does not exist yet. */
const mirrorHead = async () => (await bClients.log.getLog({ logId: MIRROR }).catch(() => undefined))?.head?.lastSeq ?? 0n;
const append = (i: number) => aLog.log.append({ logId: "orders", entry: { kind: "order.placed", body: { case: "payload", value: { i } } } });

test("renewed certificates and a rotated CA are taken without a restart; open calls go on", async () => {
  for (let i = 1; i <= 5; i++) await append(i);
  await until("us-1 to mirror 5 entries over mTLS", async () => (await mirrorHead()) === 5n);
  assert.equal(await metric(aFederation, "annals_tls_certificate_expiry_timestamp_seconds", { role: "server", kind: "certificate" }), notAfterOf(certs["a"]!));
  assert.equal(await metric(b, "annals_tls_certificate_expiry_timestamp_seconds", { role: "federation-client", kind: "certificate" }), notAfterOf(certs["b"]!));

  // A call open across the renewal: ticks from eu-1's federation port over the first certificates.
  const token = await signDevToken({ secret: SECRET, subject: "ops", roles: [], expiresIn: "1h" });
  const first = createAnnalsClients({ baseUrl: `https://127.0.0.1:${aFederation.grpcPort}`, token, tls: { caFile: certs.ca, certFile: certs["b"]!.certFile, keyFile: certs["b"]!.keyFile, serverUri: A } });
  const ticks = first.diag.ticks({ count: 30, intervalMs: 100n })[Symbol.asyncIterator]();
  assert.equal((await ticks.next()).value?.number, 1n);

  // cert-manager renews both certificates, from the new CA; the kubelet swaps the volumes.
  writeSecretVolume(volumeA, volumeOf(renewed["a2"]!, renewed.ca));
  writeSecretVolume(volumeB, volumeOf(renewed["b2"]!, renewed.ca));
  await until("eu-1 to present its renewed certificate", async () => (await tlsHandshake(aFederation.grpcPort, renewed.ca, renewed["b2"]!)) === fingerprintOf(renewed["a2"]!));
  assert.equal(await tlsHandshake(aFederation.grpcPort, renewed.ca, certs["b"]!), "refused", "eu-1 now trusts only the new CA");

  // The Pull stream opened before the renewal goes on: a new entry arrives over it.
  await append(6);
  await until("entry 6 to arrive over the open Pull stream", async () => (await mirrorHead()) === 6n);
  const [status] = (await bClients.federation.getReplicationStatus({ nodeId: A })).replications;
  assert.equal(status?.state, federationV1.ReplicationState.RUNNING);
  let last = 1n;
  for (let tick = await ticks.next(); !tick.done; tick = await ticks.next()) last = tick.value.number;
  assert.equal(last, 30n, "the call open across the renewal got every tick");

  // A new connection from us-1 must present its renewed certificate (eu-1 refuses the old CA's)
  // and trust eu-1's renewed one: pause the peer and resume it, which reconnects.
  await bClients.federation.updatePeer({ peer: { nodeId: A, status: federationV1.PeerStatus.DISABLED }, updateMask: { paths: ["status"] } });
  await until("us-1 to stop pulling", async () => (await bClients.federation.getReplicationStatus({ nodeId: A })).replications.length === 0);
  await bClients.federation.updatePeer({ peer: { nodeId: A, status: federationV1.PeerStatus.ACTIVE }, updateMask: { paths: ["status"] } });
  await append(7);
  await until("entry 7 to arrive over a new connection with the renewed certificates", async () => (await mirrorHead()) === 7n);

  assert.equal(await metric(aFederation, "annals_tls_certificate_expiry_timestamp_seconds", { role: "server", kind: "certificate" }), notAfterOf(renewed["a2"]!));
  assert.equal(await metric(b, "annals_tls_certificate_expiry_timestamp_seconds", { role: "federation-client", kind: "certificate" }), notAfterOf(renewed["b2"]!));
  assert.equal(await metric(aFederation, "annals_tls_reloads_total", { role: "server", result: "loaded" }), 1);
});
