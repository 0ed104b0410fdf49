// Which of a subscriber's patterns match an entry's kind, and the event name
// the subscriber sees for it (stream_service.proto, Event.name).
import { KindFilter } from "@annals/topics";

/** How many tokens a pattern starts with before its first wildcard (`a.b.>` → 2, `*.x` → 0). */
function literalTokens(pattern: string): number {
  const tokens = pattern.split(".");
  const firstWildcard = tokens.findIndex((token) => token === "*" || token === ">");
  return firstWildcard === -1 ? tokens.length : firstWildcard;
}

/** Kinds whose names a subscriber keeps (a few hundred short strings). */
const NAMES_KEPT = 256;

/** Plain comparison of code units; patterns are ASCII, so this is byte order. */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A subscriber's patterns, most specific first: the most literal leading
 * tokens, then byte order. The first that matches a kind names its event, so
 * the order the request listed them in never matters
 * (stream-service.test.ts "the event name does not depend on the order of the patterns").
 */
export class EventNames {
  private readonly ordered: readonly { filter: KindFilter; literal: number }[];
  /** Names already worked out, by kind (null: no pattern matches); at most NAMES_KEPT. */
  private readonly named = new Map<string, string | null>();

  constructor(patterns: readonly string[]) {
    this.ordered = patterns
      .map((pattern) => ({ pattern, literal: literalTokens(pattern) }))
      .sort((a, b) => b.literal - a.literal || byteOrder(a.pattern, b.pattern))
      .map(({ pattern, literal }) => ({ filter: new KindFilter([pattern]), literal }));
  }

  /**
   * The kind minus the literal leading tokens of the most specific matching
   * pattern, keeping at least the last token (`identity.formed` under
   * `identity.>` is `formed`); undefined when no pattern matches.
   */
  nameOf(kind: string): string | undefined {
    // A subscriber sees few distinct kinds, again and again (one per delivery): remember the last ones.
    const known = this.named.get(kind);
    if (known !== undefined) return known === null ? undefined : known;
    const name = this.computeName(kind);
    if (this.named.size >= NAMES_KEPT) this.named.clear();
    this.named.set(kind, name ?? null);
    return name;
  }

  private computeName(kind: string): string | undefined {
    const found = this.ordered.find(({ filter }) => filter.matches(kind));
    if (!found) return undefined;
    const tokens = kind.split(".");
    return tokens.slice(Math.min(found.literal, tokens.length - 1)).join(".");
  }
}
