import { createPrivateKey, type JsonWebKey } from "node:crypto";
import { accessSync, constants, readFileSync } from "node:fs";
/**
 * Helpers that read and validate configuration from an environment map.
 *
 * Only a service's own `config.ts` passes `process.env` in; everything else
 * takes typed options. Every helper throws a `ConfigError` naming the variable
 * and the expected form, so a bad value stops the process with one clear line.
 */

/** A configuration value that is missing or malformed. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    /** The environment variable at fault. */
    readonly variable: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${variable}: ${message}`, options);
  }
}

export type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

export function readString(env: Env, name: string, fallback: string): string;
export function readString(env: Env, name: string): string | undefined;
export function readString(env: Env, name: string, fallback?: string): string | undefined {
  return raw(env, name) ?? fallback;
}

/** The path of a file that exists and can be read now; undefined when the variable is unset. */
export function readFilePath(env: Env, name: string): string | undefined {
  const path = raw(env, name);
  if (path === undefined) return undefined;
  try {
    accessSync(path, constants.R_OK);
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    throw new ConfigError(name, code === "ENOENT" ? `file ${path} does not exist` : `file ${path} cannot be read (${code ?? "error"})`, { cause });
  }
  return path;
}

/** A file holding an Ed25519 private JWK ({"kty":"OKP","crv":"Ed25519","d":…,"x":…}), read and checked now. */
export function readEd25519KeyFile(env: Env, name: string): JsonWebKey | undefined {
  const path = readFilePath(env, name);
  if (path === undefined) return undefined;
  try {
    const jwk = JSON.parse(readFileSync(path, "utf8")) as JsonWebKey;
    const key = createPrivateKey({ key: jwk, format: "jwk" });
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`it is a ${key.asymmetricKeyType} key`);
    return jwk;
  } catch (cause) {
    throw new ConfigError(name, `file ${path} is not an Ed25519 private JWK (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
}

/** A TCP port, 0 to 65535 (0 picks a free port). */
export function readPort(env: Env, name: string, fallback: number): number {
  return readInteger(env, name, fallback, { min: 0, max: 65535, expected: "a TCP port number from 0 to 65535" });
}

/** A whole number within bounds. */
export function readInteger(
  env: Env,
  name: string,
  fallback: number,
  bounds: { min?: number; max?: number; expected?: string } = {},
): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const min = bounds.min ?? Number.MIN_SAFE_INTEGER;
  const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
  const expected = bounds.expected ?? `a whole number from ${min} to ${max}`;
  if (!/^-?\d+$/.test(value)) throw new ConfigError(name, `expected ${expected}, got "${value}"`);
  const parsed = Number(value);
  if (parsed < min || parsed > max) throw new ConfigError(name, `expected ${expected}, got ${value}`);
  return parsed;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration written with a unit (`500ms`, `30s`, `15m`, `12h`, `90d`), in
 * ms; a bare `0` is 0. Within bounds given in ms.
 */
export function readDurationMs(env: Env, name: string, fallbackMs: number, bounds: { minMs?: number; maxMs?: number } = {}): number {
  const value = raw(env, name);
  if (value === undefined) return fallbackMs;
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value);
  if (!match || (match[2] === undefined && match[1] !== "0")) {
    throw new ConfigError(name, `expected a duration such as 30s, 15m, 12h or 90d (or 0), got "${value}"`);
  }
  const ms = Number(match[1]) * DURATION_UNITS_MS[match[2] ?? "ms"]!;
  if (ms < (bounds.minMs ?? 0) || ms > (bounds.maxMs ?? Number.MAX_SAFE_INTEGER)) {
    throw new ConfigError(name, `expected a duration from ${bounds.minMs ?? 0} ms to ${bounds.maxMs ?? Number.MAX_SAFE_INTEGER} ms, got ${value}`);
  }
  return ms;
}

/** `true`/`false` (also 1/0, yes/no, on/off). */
export function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off"].includes(value)) return false;
  throw new ConfigError(name, `expected true or false, got "${value}"`);
}

/** One of a fixed set of words. */
export function readChoice<T extends string>(env: Env, name: string, choices: readonly T[], fallback: T): T {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) {
    throw new ConfigError(name, `expected one of ${choices.join(", ")}, got "${value}"`);
  }
  return value as T;
}

/** A URL with one of the given schemes. The message never repeats a password. */
export function readUrl(env: Env, name: string, schemes: readonly string[]): URL | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch (cause) {
    throw new ConfigError(name, `expected a URL such as ${schemes[0]}//host:port/..., got something that does not parse`, { cause });
  }
  if (!schemes.includes(url.protocol)) {
    throw new ConfigError(name, `expected a ${schemes.join(" or ")} URL, got a ${url.protocol} URL`);
  }
  return url;
}

/** Whether a bind address only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
