// Kinds are dotted topics; subscribers select them with NATS subject patterns
// (`*` one token, `>` one or more trailing tokens). nats-matching.test.ts
// checks the matching against the real NATS server.

const TOKEN = /^[A-Za-z0-9_-]+$/;
/** Segments of letters, digits, `.`, `_` and `-` between single slashes; no segment starts or ends with a dot. */
const LOG_ID = /^[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?(\/[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?)*$/;
/** The longest name of a log that clients create. */
export const MAX_LOCAL_LOG_ID_LENGTH = 128;
/**
 * The longest log id at all: a federation mirror is named
 * `mirror/<node id without spiffe://>/<origin log>`, which for the longest
 * node id (100 characters) and origin name (128) is 227 characters.
 */
export const MAX_LOG_ID_LENGTH = 256;
/** Log ids under this prefix are federation mirrors; only federation creates them. */
export const MIRROR_PREFIX = "mirror/";

/**
 * Why a log id is invalid, or null when it is valid. Every service that takes
 * a log id uses this rule. Dots may not start or end a segment, so `.`, `..`
 * and `a/../b` never name a log (a path with them would be normalised away by
 * URLs, e.g. in the SSE route).
 */
export function logIdProblem(logId: string): string | null {
  if (logId === "") return "is required";
  if (logId.length > MAX_LOG_ID_LENGTH) return `is longer than ${MAX_LOG_ID_LENGTH} characters`;
  if (!LOG_ID.test(logId)) {
    return "may hold only letters, digits, '.', '_', '-' and '/' (no '/' at either end or doubled, no segment starting or ending with '.')";
  }
  return null;
}

/** Why a name is not one a client may create a log under, or null: logIdProblem, at most 128 characters, not under `mirror/`. */
export function localLogIdProblem(logId: string): string | null {
  const problem = logIdProblem(logId);
  if (problem) return problem;
  if (logId.length > MAX_LOCAL_LOG_ID_LENGTH) return `is longer than ${MAX_LOCAL_LOG_ID_LENGTH} characters`;
  if (logId.startsWith(MIRROR_PREFIX)) return `names under "${MIRROR_PREFIX}" are reserved for federation mirrors`;
  return null;
}
const MAX_KIND_LENGTH = 255;

/** Why a kind is not a valid topic, or null when it is. */
export function kindProblem(kind: string): string | null {
  if (kind === "") return "is required";
  if (kind.length > MAX_KIND_LENGTH) return `is longer than ${MAX_KIND_LENGTH} characters`;
  const tokens = kind.split(".");
  if (tokens.some((token) => token === "")) return "must be dot-separated tokens with no empty token (e.g. order.placed)";
  if (!tokens.every((token) => TOKEN.test(token))) return "tokens may hold only letters, digits, _ and -";
  return null;
}

/** Why a subscription pattern is invalid, or null when it is valid. */
export function patternProblem(pattern: string): string | null {
  if (pattern === "") return "is empty";
  if (pattern.length > MAX_KIND_LENGTH) return `is longer than ${MAX_KIND_LENGTH} characters`;
  const tokens = pattern.split(".");
  for (const [index, token] of tokens.entries()) {
    if (token === "") return "has an empty token";
    if (token === ">" && index !== tokens.length - 1) return "may use > only as the last token";
    // NATS would read `b*` as a literal token, which no valid kind contains: refuse it rather than match nothing.
    if (token !== "*" && token !== ">" && !TOKEN.test(token)) return `token "${token}" may hold only letters, digits, _ and - (or be * or >)`;
  }
  return null;
}

/** A compiled set of patterns; an empty set matches every kind. */
export class KindFilter {
  private readonly patterns: readonly string[][];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.map((pattern) => pattern.split("."));
  }

  matches(kind: string): boolean {
    if (this.patterns.length === 0) return true;
    const tokens = kind.split(".");
    return this.patterns.some((pattern) => tokensMatch(pattern, tokens));
  }
}

/** Whether one pattern matches one subject, with NATS semantics (any tokens, literal unless exactly `*` or `>`). */
export function subjectMatches(pattern: string, subject: string): boolean {
  return tokensMatch(pattern.split("."), subject.split("."));
}

function tokensMatch(pattern: readonly string[], tokens: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const token = pattern[i];
    if (token === ">") return tokens.length > i;
    if (i >= tokens.length) return false;
    if (token !== "*" && token !== tokens[i]) return false;
  }
  return pattern.length === tokens.length;
}
