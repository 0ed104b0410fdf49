// Kinds are dotted topics; subscribers select them with NATS subject patterns
// (`*` one token, `>` one or more trailing tokens). nats-matching.test.ts
// checks the matching against the real NATS server.

const TOKEN = /^[A-Za-z0-9_-]+$/;
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
