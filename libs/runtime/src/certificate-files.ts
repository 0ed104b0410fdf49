// PEM certificate, key and CA files that are read again while the process
// runs. cert-manager renews a certificate with a new key and the kubelet
// swaps the mounted Secret's files (an atomic rename of the `..data`
// symlink), so a process that read them once at start would serve an expired
// certificate, or refuse renewed peers, until someone restarted it.
//
// The files are polled: reading three small files every few seconds is cheap,
// and unlike fs.watch it follows symlink swaps on every file system. A new
// set is taken only when the certificate parses, matches the key and the CA
// parses; otherwise the last good set stays in use (a half-written update is
// retried at the next poll). See certificate-files.test.ts and
// deploy/src/certificate-reload.test.ts (real processes, openssl certificates).
import { readFile } from "node:fs/promises";
import { X509Certificate, createHash, createPrivateKey } from "node:crypto";
import { metrics, type Counter, type Meter } from "@opentelemetry/api";
import type { Logger } from "./logger.js";

export interface CertificateFilesOptions {
  /** PEM certificate chain; the first certificate is this side's. */
  certFile: string;
  /** PEM private key of that certificate. */
  keyFile: string;
  /** PEM CA bundle (peers' certificates must chain to it); unset: none. */
  caFile?: string;
  /** How often the files are read again, in ms. Default 10000. */
  reloadIntervalMs?: number;
  /** What the certificate is for, as the `role` label of the metrics: "server", "federation-client". */
  role: string;
  /** Where the expiry gauges and reload counts go (the server's; ComponentContext.meter); default: OpenTelemetry's global meter. */
  meter?: Meter;
  logger: Logger;
}

/** One consistent set read from the files. */
export interface CertificateMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
  /** Expiry of this side's certificate (the first of the chain). */
  notAfter: Date;
  /** Expiry of the CA bundle's certificate that expires first; undefined without a CA file. */
  caNotAfter: Date | undefined;
  /** SHA-256 fingerprint of this side's certificate, for logs. */
  fingerprint256: string;
}

/** The current material of a set of certificate files, kept up to date until `close()`. */
export interface CertificateFiles {
  readonly role: string;
  current(): CertificateMaterial;
  /** Calls `listener` with every new set taken after this call. Returns the function that removes it. */
  onChange(listener: (material: CertificateMaterial) => void): () => void;
  /** Reads the files now (the poll does this on its own); resolves to whether a new set was taken. */
  reload(): Promise<boolean>;
  close(): void;
}

/** A certificate or key file set that cannot be used. */
export class CertificateFilesError extends Error {
  override readonly name = "CertificateFilesError";
}

export const DEFAULT_TLS_RELOAD_INTERVAL_MS = 10_000;

interface TlsInstruments {
  reloads: Counter;
  /** Per role, the latest known expiries, exported as gauges (one callback for all watchers of a meter). */
  expiries: Map<string, { cert: number; ca: number | undefined }>;
}
const byMeter = new WeakMap<Meter, TlsInstruments>();

function instruments(meter: Meter): TlsInstruments {
  const known = byMeter.get(meter);
  if (known) return known;
  const expiries = new Map<string, { cert: number; ca: number | undefined }>();
  meter
    .createObservableGauge("annals.tls.certificate.expiry_timestamp_seconds", {
      description: "When the certificate in use expires (Unix time, seconds), per role; kind=ca for the CA bundle's first expiry",
    })
    .addCallback((result) => {
      for (const [role, expiry] of expiries) {
        result.observe(expiry.cert, { role, kind: "certificate" });
        if (expiry.ca !== undefined) result.observe(expiry.ca, { role, kind: "ca" });
      }
    });
  const reloads = meter.createCounter("annals.tls.reloads", { description: "Certificate file changes seen, by role and result (loaded, rejected)" });
  const made = { reloads, expiries };
  byMeter.set(meter, made);
  return made;
}

/**
 * Reads the files once (throwing CertificateFilesError when they are not a
 * usable set) and then every `reloadIntervalMs`, publishing each new set.
 */
export async function watchCertificateFiles(options: CertificateFilesOptions): Promise<CertificateFiles> {
  const { reloads, expiries } = instruments(options.meter ?? metrics.getMeter("annals.tls"));
  let raw = await readAll(options);
  let material = parseMaterial(raw, options);
  const listeners = new Set<(material: CertificateMaterial) => void>();
  const publish = () => expiries.set(options.role, { cert: material.notAfter.getTime() / 1000, ca: material.caNotAfter && material.caNotAfter.getTime() / 1000 });
  publish();
  reloads.add(0, { role: options.role, result: "loaded" });
  reloads.add(0, { role: options.role, result: "rejected" });
  options.logger.info({ role: options.role, fingerprint: material.fingerprint256, notAfter: material.notAfter.toISOString() }, "TLS certificate loaded");

  let rejected: string | undefined;
  let reading: Promise<boolean> | undefined;
  const reload = () =>
    (reading ??= (async () => {
      try {
        let next: RawFiles;
        try {
          next = await readAll(options);
        } catch (error) {
          // A file missing for a moment (mid-swap) is not worth a warning unless it persists.
          if (rejected !== "unreadable") options.logger.warn({ role: options.role, err: error }, "cannot read the TLS files; keeping the certificate in use");
          rejected = "unreadable";
          return false;
        }
        if (sameFiles(next, raw)) return false;
        const fingerprint = digestOf(next);
        let parsed: CertificateMaterial;
        try {
          parsed = parseMaterial(next, options);
        } catch (error) {
          if (rejected !== fingerprint) {
            reloads.add(1, { role: options.role, result: "rejected" });
            options.logger.warn({ role: options.role, err: error }, "the TLS files changed but are not a usable set; keeping the certificate in use");
          }
          rejected = fingerprint;
          return false;
        }
        raw = next;
        material = parsed;
        rejected = undefined;
        publish();
        reloads.add(1, { role: options.role, result: "loaded" });
        options.logger.info({ role: options.role, fingerprint: material.fingerprint256, notAfter: material.notAfter.toISOString() }, "TLS certificate reloaded");
        for (const listener of listeners) listener(material);
        return true;
      } finally {
        reading = undefined;
      }
    })());
  const timer = setInterval(() => void reload(), options.reloadIntervalMs ?? DEFAULT_TLS_RELOAD_INTERVAL_MS);
  timer.unref();
  return {
    role: options.role,
    current: () => material,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    reload,
    close() {
      clearInterval(timer);
      listeners.clear();
    },
  };
}

interface RawFiles {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
}

async function readAll(options: CertificateFilesOptions): Promise<RawFiles> {
  const [cert, key, ca] = await Promise.all([
    readFile(options.certFile),
    readFile(options.keyFile),
    options.caFile === undefined ? Promise.resolve(undefined) : readFile(options.caFile),
  ]);
  return { cert, key, ca };
}

const sameFiles = (a: RawFiles, b: RawFiles) => a.cert.equals(b.cert) && a.key.equals(b.key) && (a.ca === undefined ? b.ca === undefined : b.ca !== undefined && a.ca.equals(b.ca));

const digestOf = (files: RawFiles) => createHash("sha256").update(files.cert).update(files.key).update(files.ca ?? "").digest("hex");

function parseMaterial(files: RawFiles, options: CertificateFilesOptions): CertificateMaterial {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(files.cert);
  } catch (cause) {
    throw new CertificateFilesError(`${options.certFile} holds no PEM certificate`, { cause });
  }
  let key;
  try {
    key = createPrivateKey(files.key);
  } catch (cause) {
    throw new CertificateFilesError(`${options.keyFile} holds no PEM private key`, { cause });
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new CertificateFilesError(`the key in ${options.keyFile} does not belong to the certificate in ${options.certFile}`);
  }
  let caNotAfter: Date | undefined;
  if (files.ca !== undefined) {
    const bundle = splitPem(files.ca.toString("utf8"));
    if (bundle.length === 0) throw new CertificateFilesError(`${options.caFile} holds no PEM certificate`);
    try {
      caNotAfter = new Date(Math.min(...bundle.map((pem) => new Date(new X509Certificate(pem).validTo).getTime())));
    } catch (cause) {
      throw new CertificateFilesError(`${options.caFile} holds a certificate that does not parse`, { cause });
    }
  }
  return { ...files, notAfter: new Date(certificate.validTo), caNotAfter, fingerprint256: certificate.fingerprint256 };
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
