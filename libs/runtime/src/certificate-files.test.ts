// Certificates that change while the server runs: renewed ones reach new
// connections, open calls go on, a broken update is refused.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { diagV1 } from "@annals/proto";
import { signDevToken } from "./auth.js";
import { watchCertificateFiles } from "./certificate-files.js";
import { createLogger } from "./logger.js";
import { startServer, type RunningServer } from "./server.js";
import { makeTestCertificates, tlsHandshake as handshake, until, writeSecretVolume, type TestCertificate } from "./testing.js";

const SECRET = "certificate-files-test-secret-of-32-bytes";
const logger = createLogger({ name: "certificate-files-test", level: "silent" });

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "annals-certs-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const fingerprintOf = (certificate: TestCertificate) => new X509Certificate(readFileSync(certificate.certFile)).fingerprint256;
const volumeFiles = (certificate: TestCertificate, ca: string) => ({
  "tls.crt": readFileSync(certificate.certFile),
  "tls.key": readFileSync(certificate.keyFile),
  "ca.crt": readFileSync(ca),
});


describe("a TLS server whose certificate files change", () => {
  let server: RunningServer;
  let volume: string;
  let certs: ReturnType<typeof makeTestCertificates>;

  before(async () => {
    certs = makeTestCertificates(dir, { one: "spiffe://test/one", two: "spiffe://test/two", client: "spiffe://test/client" });
    volume = join(dir, "volume");
    writeSecretVolume(volume, volumeFiles(certs["one"]!, certs.ca));
    server = await startServer({
      name: "certificate-files-test",
      services: [],
      grpcPort: 0,
      httpPort: 0,
      auth: { mode: "jwt", secret: SECRET },
      tls: { certFile: join(volume, "tls.crt"), keyFile: join(volume, "tls.key"), clientCaFile: join(volume, "ca.crt"), reloadIntervalMs: 100 },
      logger,
      shutdownGraceMs: 1000,
    });
  });
  after(() => server?.shutdown());

  test("serves the renewed certificate to new connections while an open stream goes on to its end (mTLS)", async () => {
    const client = certs["client"]!;
    assert.equal(await handshake(server.grpcPort, certs.ca, client), fingerprintOf(certs["one"]!));
    const token = await signDevToken({ secret: SECRET, subject: "t", roles: [] });
    const transport = createGrpcTransport({
      baseUrl: `https://127.0.0.1:${server.grpcPort}`,
      nodeOptions: { ca: readFileSync(certs.ca), cert: readFileSync(client.certFile), key: readFileSync(client.keyFile), checkServerIdentity: () => undefined },
      interceptors: [(next) => (request) => (request.header.set("authorization", `Bearer ${token}`), next(request))],
    });
    const ticks = createClient(diagV1.DiagService, transport).ticks({ count: 20, intervalMs: 100n })[Symbol.asyncIterator]();
    assert.equal((await ticks.next()).value?.number, 1n);

    writeSecretVolume(volume, volumeFiles(certs["two"]!, certs.ca));
    await until("new connections to get certificate two", async () => (await handshake(server.grpcPort, certs.ca, client)) === fingerprintOf(certs["two"]!));
    let last = 1n;
    for (let tick = await ticks.next(); !tick.done; tick = await ticks.next()) last = tick.value.number;
    assert.equal(last, 20n, "the stream opened before the renewal delivered every tick");
  });

  test("a new client CA takes effect: clients of the old CA are refused, those of the new one accepted", async () => {
    const next = makeTestCertificates(join(dir), { three: "spiffe://test/three", client2: "spiffe://test/client2" }, "ca2");
    writeSecretVolume(volume, volumeFiles(next["three"]!, next.ca));
    await until("the server to present certificate three", async () => (await handshake(server.grpcPort, next.ca, next["client2"]!)) === fingerprintOf(next["three"]!));
    // The server now trusts only ca2: a client certificate of the first CA is refused.
    assert.equal(await handshake(server.grpcPort, next.ca, certs["client"]!), "refused");
  });

  test("a certificate and key that do not belong together are not taken; the last good set stays", async () => {
    const current = await handshake(server.grpcPort, join(dir, "ca2.pem"), { certFile: join(dir, "client2.pem"), keyFile: join(dir, "client2.key") });
    writeSecretVolume(volume, { "tls.crt": readFileSync(certs["two"]!.certFile), "tls.key": readFileSync(certs["one"]!.keyFile), "ca.crt": readFileSync(join(dir, "ca2.pem")) });
    await delay(500);
    assert.equal(await handshake(server.grpcPort, join(dir, "ca2.pem"), { certFile: join(dir, "client2.pem"), keyFile: join(dir, "client2.key") }), current);
  });
});

describe("watchCertificateFiles", () => {
  test("refuses to start on a key that does not match, and reports a renewal once", async () => {
    const certs = makeTestCertificates(dir, { four: "spiffe://test/four", five: "spiffe://test/five" });
    await assert.rejects(
      watchCertificateFiles({ certFile: certs["four"]!.certFile, keyFile: certs["five"]!.keyFile, role: "test", logger }),
      /does not belong to the certificate/,
    );
    const volume = join(dir, "watch-volume");
    writeSecretVolume(volume, volumeFiles(certs["four"]!, certs.ca));
    const watcher = await watchCertificateFiles({ certFile: join(volume, "tls.crt"), keyFile: join(volume, "tls.key"), caFile: join(volume, "ca.crt"), reloadIntervalMs: 3_600_000, role: "test", logger });
    try {
      const seen: string[] = [];
      watcher.onChange((material) => seen.push(material.fingerprint256));
      assert.equal(await watcher.reload(), false, "unchanged files are no news");
      writeSecretVolume(volume, volumeFiles(certs["five"]!, certs.ca));
      assert.equal(await watcher.reload(), true);
      assert.equal(await watcher.reload(), false);
      assert.deepEqual(seen, [fingerprintOf(certs["five"]!)]);
      assert.equal(watcher.current().notAfter.getTime(), new Date(new X509Certificate(readFileSync(certs["five"]!.certFile)).validTo).getTime());
    } finally {
      watcher.close();
    }
  });
});
