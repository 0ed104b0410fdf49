// An index of subscriptions by NATS subject pattern, so that finding who gets
// an entry costs a walk over the entry's tokens, not a test of every pattern.

interface TreeNode<T> {
  /** Children by literal token. */
  literal: Map<string, TreeNode<T>>;
  /** The child for `*`. */
  star: TreeNode<T> | undefined;
  /** Values whose pattern ends here with `>`. */
  rest: Set<T>;
  /** Values whose pattern ends exactly here. */
  here: Set<T>;
}

const node = <T>(): TreeNode<T> => ({ literal: new Map(), star: undefined, rest: new Set(), here: new Set() });

export class SubjectTree<T> {
  private readonly root = node<T>();

  /** Files `value` under a valid pattern (see patternProblem); adding it twice is the same as once. */
  add(pattern: string, value: T): void {
    const tokens = pattern.split(".");
    let at = this.root;
    for (const [i, token] of tokens.entries()) {
      if (token === ">" && i === tokens.length - 1) {
        at.rest.add(value);
        return;
      }
      if (token === "*") {
        at = at.star ??= node();
      } else {
        let next = at.literal.get(token);
        if (!next) at.literal.set(token, (next = node()));
        at = next;
      }
    }
    at.here.add(value);
  }

  /** Removes `value` from a pattern, and the branches left empty. */
  remove(pattern: string, value: T): void {
    const tokens = pattern.split(".");
    const prune = (at: TreeNode<T>, i: number): boolean => {
      if (i === tokens.length) {
        at.here.delete(value);
      } else if (tokens[i] === ">" && i === tokens.length - 1) {
        at.rest.delete(value);
      } else if (tokens[i] === "*") {
        if (at.star && prune(at.star, i + 1)) at.star = undefined;
      } else {
        const child = at.literal.get(tokens[i]!);
        if (child && prune(child, i + 1)) at.literal.delete(tokens[i]!);
      }
      return at.here.size === 0 && at.rest.size === 0 && at.literal.size === 0 && at.star === undefined;
    };
    prune(this.root, 0);
  }

  /** Every value with a pattern matching `subject`, each once. */
  match(subject: string): Set<T> {
    const tokens = subject.split(".");
    const found = new Set<T>();
    const walk = (at: TreeNode<T>, i: number) => {
      if (i === tokens.length) {
        for (const value of at.here) found.add(value);
        return;
      }
      // `>` needs at least one more token, which there is.
      for (const value of at.rest) found.add(value);
      const literal = at.literal.get(tokens[i]!);
      if (literal) walk(literal, i + 1);
      if (at.star) walk(at.star, i + 1);
    };
    walk(this.root, 0);
    return found;
  }

  /** Whether nothing is filed. */
  get empty(): boolean {
    return this.root.here.size === 0 && this.root.rest.size === 0 && this.root.literal.size === 0 && this.root.star === undefined;
  }
}
