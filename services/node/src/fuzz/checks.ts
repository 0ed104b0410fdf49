// What must still hold after the fuzzing: nothing half-written. Every log
// verifies and its head agrees with the entries a reader gets; the KV store
// answers the same for a key on every read path; the canaries written before
// the run are untouched. Each check returns problems as sentences.
import { Buffer } from "node:buffer";
import { Code, ConnectError } from "@connectrpc/connect";
import type { KvClient, LogClient } from "@annals/client";
import { logV1 } from "@annals/proto";

/** Entries written before the fuzzing, to compare with afterwards. */
export interface Canaries {
  logId: string;
  checksums: string[];
  kv: Array<{ key: Uint8Array; value: Uint8Array }>;
}

export async function writeCanaries(log: LogClient, kv: KvClient | undefined): Promise<Canaries> {
  const logId = "fuzz-canary";
  const checksums: string[] = [];
  for (let n = 1; n <= 5; n++) {
    const { result } = await log.append({ logId, entry: { kind: "canary.written", body: { case: "payload", value: { n, text: `canary ${n}` } }, requestId: `canary-${n}` } });
    checksums.push(result!.checksum);
  }
  const entries = [];
  if (kv) {
    for (let n = 1; n <= 5; n++) {
      const entry = { key: Buffer.from(`canary/${n}`), value: Buffer.from(`canary value ${n}`) };
      await kv.set(entry);
      entries.push(entry);
    }
  }
  return { logId, checksums, kv: entries };
}

function describeError(error: unknown): string {
  const connectError = ConnectError.from(error);
  return `${Code[connectError.code]}: ${connectError.rawMessage.slice(0, 200)}`;
}

/**
 * Reads every entry of a log forward; a page too large for one message is
 * read again one entry at a time. A forward Read always hands out a next
 * page token, so the end is an empty page or one whose last seq reaches the
 * head the page came with.
 */
async function readAll(log: LogClient, logId: string, limit: number) {
  const entries = [];
  let pageToken = "";
  let pageSize = 200;
  for (;;) {
    let page;
    try {
      page = await log.read({ logId, pageSize, pageToken });
    } catch (error) {
      if (pageSize > 1 && ConnectError.from(error).code === Code.ResourceExhausted) {
        pageSize = 1;
        continue;
      }
      throw error;
    }
    entries.push(...page.entries);
    const last = page.entries.at(-1);
    if (last === undefined || last.seq >= (page.head?.lastSeq ?? 0n)) return { entries, complete: true };
    if (entries.length >= limit) return { entries, complete: false };
    pageToken = page.nextPageToken;
    pageSize = 200;
  }
}

/** Every log: Verify says valid and the head matches, and Read returns exactly the entries the head describes. */
export async function checkLogs(log: LogClient, canaries: Canaries | undefined, deadline: number): Promise<{ problems: string[]; checked: number; total: number }> {
  const problems: string[] = [];
  const heads = [];
  let pageToken = "";
  try {
    do {
      const page = await log.listLogs({ pageSize: 1000, pageToken });
      heads.push(...page.logs);
      pageToken = page.nextPageToken;
    } while (pageToken);
  } catch (error) {
    return { problems: [`ListLogs failed: ${describeError(error)}`], checked: 0, total: 0 };
  }
  let checked = 0;
  for (const head of heads) {
    if (Date.now() > deadline) break;
    checked++;
    const name = JSON.stringify(head.logId);
    try {
      const verify = await log.verify({ logId: head.logId });
      if (!verify.valid) {
        const findings = verify.findings.slice(0, 10).map((finding) => {
          const range = finding.endSeq > finding.seq ? `${finding.seq}..${finding.endSeq}` : String(finding.seq);
          return `${logV1.VerifyFindingKind[finding.kind] ?? finding.kind} at ${range}`;
        });
        problems.push(`log ${name}: Verify valid=false, findings: ${findings.join(", ")}${verify.findingsTruncated || verify.findings.length > 10 ? ", …" : ""}`);
      }
    } catch (error) {
      problems.push(`log ${name}: Verify failed: ${describeError(error)}`);
    }
    try {
      const { entries, complete } = await readAll(log, head.logId, 20_000);
      if (!complete) continue;
      const current = (await log.getLog({ logId: head.logId })).head!;
      const seqs = entries.map((entry) => entry.seq);
      const gaps = seqs.filter((seq, i) => i > 0 && seq !== seqs[i - 1]! + 1n);
      if (gaps.length > 0) problems.push(`log ${name}: Read skips before seqs ${gaps.slice(0, 5).join(", ")}`);
      if (BigInt(entries.length) !== current.entryCount) problems.push(`log ${name}: head says ${current.entryCount} entries, Read returned ${entries.length}`);
      const last = entries[entries.length - 1];
      if (last && (last.seq !== current.lastSeq || last.checksum !== current.lastChecksum)) {
        problems.push(`log ${name}: head is seq ${current.lastSeq} ${current.lastChecksum.slice(0, 12)}…, last entry read is seq ${last.seq} ${last.checksum.slice(0, 12)}…`);
      }
      if (entries[0] && entries[0].seq !== current.firstSeq) problems.push(`log ${name}: head's first_seq is ${current.firstSeq}, first entry read is ${entries[0].seq}`);
      if (canaries && head.logId === canaries.logId) {
        const found = entries.slice(0, canaries.checksums.length).map((entry) => entry.checksum);
        if (JSON.stringify(found) !== JSON.stringify(canaries.checksums)) problems.push(`log ${name}: the canary entries changed`);
      }
    } catch (error) {
      problems.push(`log ${name}: reading it back failed: ${describeError(error)}`);
    }
  }
  if (canaries && !heads.some((head) => head.logId === canaries.logId)) problems.push(`the canary log ${canaries.logId} is gone`);
  return { problems, checked, total: heads.length };
}

/**
 * The KV store: Scan pages are in byte order without repeats, and a key
 * without expiry reads the same through Scan, Get, Exists and MGet. Keys with
 * a TTL may expire during the check and are compared only when present.
 */
export async function checkKv(kv: KvClient, canaries: Canaries | undefined, deadline: number): Promise<{ problems: string[]; checked: number; total: number }> {
  const problems: string[] = [];
  const scanned: Array<{ key: Uint8Array; value: Uint8Array }> = [];
  let cursor: Uint8Array = new Uint8Array();
  try {
    do {
      const page = await kv.scan({ pageSize: 500, cursor, includeValues: true });
      scanned.push(...page.entries.map((entry) => ({ key: entry.key, value: entry.value })));
      cursor = page.nextCursor;
    } while (cursor.length > 0 && scanned.length < 100_000);
  } catch (error) {
    return { problems: [`Scan failed: ${describeError(error)}`], checked: 0, total: 0 };
  }
  for (let i = 1; i < scanned.length; i++) {
    if (Buffer.compare(scanned[i - 1]!.key, scanned[i]!.key) >= 0) {
      problems.push(`Scan is not in strict byte order at ${hex(scanned[i - 1]!.key)} then ${hex(scanned[i]!.key)}`);
      break;
    }
  }
  let checked = 0;
  for (let start = 0; start < Math.min(scanned.length, 3000) && Date.now() < deadline; start += 100) {
    const batch = scanned.slice(start, start + 100);
    try {
      const many = await kv.mGet({ keys: batch.map((entry) => entry.key) });
      for (const [i, entry] of batch.entries()) {
        checked++;
        const ttl = (await kv.ttl({ key: entry.key })).ttlMs;
        if (ttl !== -1n) continue;
        const single = await kv.get({ key: entry.key });
        const exists = (await kv.exists({ key: entry.key })).exists;
        const viaMGet = many.values[i];
        const same = (value: Uint8Array | undefined) => value !== undefined && Buffer.compare(value, entry.value) === 0;
        if (!single.found || !same(single.value) || !exists || !viaMGet?.found || !same(viaMGet.value)) {
          problems.push(`kv key ${hex(entry.key)} (no expiry): Scan has it, Get found=${single.found} same=${same(single.value)}, Exists=${exists}, MGet found=${viaMGet?.found}`);
        }
      }
    } catch (error) {
      problems.push(`reading kv keys back failed: ${describeError(error)}`);
      break;
    }
  }
  for (const canary of canaries?.kv ?? []) {
    const got = await kv.get({ key: canary.key }).catch(() => undefined);
    if (!got?.found || Buffer.compare(got.value, canary.value) !== 0) problems.push(`the canary kv key ${Buffer.from(canary.key).toString()} changed or is gone`);
  }
  return { problems, checked, total: scanned.length };
}

function hex(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString("hex");
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
