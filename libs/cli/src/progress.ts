// Progress of long operations (export, import, verify) on stderr, only when
// stderr is a terminal: scripts and pipes see nothing of it.

export interface Progress {
  /** Reports the running count (redrawn at most a few times a second). */
  update(count: number | bigint): void;
  /** Clears the progress line. */
  done(): void;
}

export function progress(label: string, unit: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update: () => undefined, done: () => undefined };
  let drawn = 0;
  let shown = false;
  return {
    update(count) {
      const now = Date.now();
      if (now - drawn < 200) return;
      drawn = now;
      shown = true;
      stream.write(`\r${label}: ${count} ${unit}\u001b[K`);
    },
    done() {
      if (shown) stream.write("\r\u001b[K");
    },
  };
}
