// The memory backend: a Map in this process, for tests and ephemeral use.
// Every operation runs to completion synchronously, so each one is atomic.
import {
  badCursor,
  decideIncr,
  decideSet,
  hasPrefix,
  isLive,
  type Decide,
  type KvBackend,
  type ScanPage,
  type SetOptions,
  type StateSpace,
  type Stored,
} from "./backend.js";

/** Map keys are the bytes as latin1 strings: one char per byte, so string order is byte order. */
const mapKey = (key: Uint8Array) => Buffer.from(key).toString("latin1");

export interface MemoryBackendOptions {
  /** The clock, ms since the epoch; tests may pass their own. */
  now?: () => number;
}

export class MemoryBackend implements KvBackend {
  readonly name = "memory";
  readonly supports = { ttl: true, scan: true, batch: true };
  private readonly entries = new Map<string, Stored>();
  private readonly states = new Map<string, Stored>();
  /** The entry keys in byte order, rebuilt by the first scan after a key was added or removed. */
  private sortedKeys: string[] | undefined;
  private readonly now: () => number;

  constructor(options: MemoryBackendOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /** The live entry under `key`; an expired one is removed on the way. */
  private live(key: string, nowMs = this.now()): Stored | undefined {
    const stored = this.entries.get(key);
    if (stored && !isLive(stored, nowMs)) {
      this.remove(key);
      return undefined;
    }
    return stored;
  }

  private put(key: string, stored: Stored): void {
    if (!this.entries.has(key)) this.sortedKeys = undefined;
    this.entries.set(key, stored);
  }

  private remove(key: string): boolean {
    const removed = this.entries.delete(key);
    if (removed) this.sortedKeys = undefined;
    return removed;
  }

  async get(key: Uint8Array) {
    return this.live(mapKey(key))?.value;
  }

  async mget(keys: readonly Uint8Array[]) {
    const nowMs = this.now();
    return keys.map((key) => this.live(mapKey(key), nowMs)?.value);
  }

  async exists(key: Uint8Array) {
    return this.live(mapKey(key)) !== undefined;
  }

  async set(key: Uint8Array, value: Uint8Array, options: SetOptions) {
    const k = mapKey(key);
    const nowMs = this.now();
    const { result, write } = decideSet(this.live(k, nowMs), nowMs, Uint8Array.from(value), options);
    if (write && write !== "delete") this.put(k, write);
    return result;
  }

  async mset(entries: readonly (readonly [Uint8Array, Uint8Array])[], ttlMs: number) {
    const expiresAtMs = ttlMs > 0 ? this.now() + ttlMs : null;
    for (const [key, value] of entries) this.put(mapKey(key), { value: Uint8Array.from(value), expiresAtMs });
  }

  async delete(keys: readonly Uint8Array[]) {
    const nowMs = this.now();
    let deleted = 0;
    for (const key of keys) {
      const k = mapKey(key);
      if (this.live(k, nowMs)) deleted++;
      this.remove(k);
    }
    return deleted;
  }

  async ttl(key: Uint8Array) {
    const nowMs = this.now();
    const stored = this.live(mapKey(key), nowMs);
    if (!stored) return -2;
    return stored.expiresAtMs === null ? -1 : stored.expiresAtMs - nowMs;
  }

  async expire(key: Uint8Array, ttlMs: number) {
    const k = mapKey(key);
    const nowMs = this.now();
    const stored = this.live(k, nowMs);
    if (!stored) return false;
    if (ttlMs <= 0) this.remove(k);
    else stored.expiresAtMs = nowMs + ttlMs;
    return true;
  }

  async incrBy(key: Uint8Array, delta: bigint) {
    const k = mapKey(key);
    const { result, write } = decideIncr(this.live(k), delta);
    if (write && write !== "delete") this.put(k, write);
    return result;
  }

  async scan(prefix: Uint8Array, cursor: Uint8Array, limit: number, includeValues: boolean): Promise<ScanPage> {
    if (cursor.length > 0 && !hasPrefix(cursor, prefix)) throw badCursor("it does not start with the prefix");
    this.sortedKeys ??= [...this.entries.keys()].sort();
    const keys = this.sortedKeys;
    const start = mapKey(cursor.length > 0 ? cursor : prefix);
    // The first key after the cursor (or at or after the prefix), by binary search.
    let low = 0;
    let high = keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const candidate = keys[middle]!;
      if (candidate < start || (cursor.length > 0 && candidate === start)) low = middle + 1;
      else high = middle;
    }
    const prefixKey = mapKey(prefix);
    const nowMs = this.now();
    const page: ScanPage = { entries: [], nextCursor: new Uint8Array() };
    for (let i = low; i < keys.length; i++) {
      const k = keys[i]!;
      if (!k.startsWith(prefixKey)) break;
      const stored = this.entries.get(k);
      if (!stored || !isLive(stored, nowMs)) continue;
      if (page.entries.length === limit) {
        page.nextCursor = Buffer.from(page.entries.at(-1)!.key);
        break;
      }
      const key = Buffer.from(k, "latin1");
      page.entries.push(includeValues ? { key, value: stored.value } : { key });
    }
    return page;
  }

  async transact<R>(space: StateSpace, key: Uint8Array, decide: Decide<R>): Promise<R> {
    const k = `${space}:${mapKey(key)}`;
    const nowMs = this.now();
    const stored = this.states.get(k);
    const { result, write } = decide(stored && isLive(stored, nowMs) ? stored : undefined, nowMs);
    if (write === "delete") this.states.delete(k);
    else if (write) this.states.set(k, write);
    return result;
  }

  async sweep() {
    const nowMs = this.now();
    let swept = 0;
    for (const [k, stored] of this.entries) {
      if (!isLive(stored, nowMs)) swept += Number(this.remove(k));
    }
    for (const [k, stored] of this.states) {
      if (!isLive(stored, nowMs) && this.states.delete(k)) swept++;
    }
    return swept;
  }

  async close() {
    this.entries.clear();
    this.states.clear();
  }
}
