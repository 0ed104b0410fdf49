// Test support: runs the command blocks of a documentation page (see
// doc-commands.ts for the markers) against processes the test starts.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { shellCommands, type DocBlock } from "./doc-commands.js";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/**
 * A block's own limit: a command that hangs fails with its output instead of
 * stalling the run. Generous, because `npm start` rebuilds what changed first.
 */
export const BLOCK_LIMIT_MS = 300_000;

/** This process's environment without settings that would change what the documented commands do. */
export function cleanEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name, value]) => value !== undefined && !/^(ANNALS_|DATABASE_URL$|REDIS_URL$|OTEL_)/.test(name)),
  ) as Record<string, string>;
}

export interface Started {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output holds `text`; rejects when the process exits first or after BLOCK_LIMIT_MS. */
  waitFor(text: string | RegExp): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` to its process group (or to the process alone) and waits for the exit. */
  stop(signal?: NodeJS.Signals, group?: boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function start(command: readonly string[], cwd: string, env: Record<string, string>): Started {
  // Its own process group, as a terminal would give it, so Ctrl-C (SIGINT to the group) can be sent.
  const child = spawn(command[0]!, command.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const waiters = new Set<() => void>();
  const wake = () => waiters.forEach((waiter) => waiter());
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    wake();
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      resolve({ code, signal });
      wake();
    }),
  );
  const signalGroup = (signal: NodeJS.Signals, group: boolean) => {
    try {
      process.kill(group ? -child.pid! : child.pid!, signal);
    } catch {
      // already gone
    }
  };
  return {
    child,
    output: () => output,
    exited,
    waitFor: (text) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`no ${text} in the output within ${BLOCK_LIMIT_MS} ms`)), BLOCK_LIMIT_MS);
        const check = () => {
          const found = typeof text === "string" ? output.includes(text) : text.test(output);
          if (found) finish();
          else if (child.exitCode !== null || child.signalCode !== null) finish(new Error(`it exited (${child.exitCode ?? child.signalCode}) before ${text} showed`));
        };
        const finish = (error?: Error) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(new Error(`${error.message}; output:\n${output}`));
          else resolve(output);
        };
        waiters.add(check);
        check();
      }),
    stop: async (signal = "SIGINT", group = true) => {
      if (child.exitCode === null && child.signalCode === null) signalGroup(signal, group);
      const timer = setTimeout(() => signalGroup("SIGKILL", true), BLOCK_LIMIT_MS);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}

/** Runs to the end; the result with everything it printed. */
export async function runToEnd(command: readonly string[], cwd: string, env: Record<string, string>) {
  const started = start(command, cwd, env);
  const timer = setTimeout(() => void started.stop("SIGKILL"), BLOCK_LIMIT_MS);
  const exit = await started.exited;
  clearTimeout(timer);
  return { ...exit, output: started.output() };
}

export const READY = /annals node ready: gRPC on 127\.0\.0\.1:(\d+) .*HTTP on http:\/\/127\.0\.0\.1:(\d+)/;

/**
 * Runs the blocks of one page in order. `addresses` maps documented
 * host:port pairs to the real ones (filled in as nodes start), `paths` maps
 * documented file names to real paths.
 */
export class PageRun {
  readonly background: Started[] = [];
  readonly notRun: string[] = [];
  commands = 0;
  private snippets = 0;
  /** With carryExports: the `export` lines of the blocks run so far, as a terminal session keeps them. */
  private readonly exports: string[] = [];

  constructor(
    readonly cwd: string,
    readonly env: Record<string, string>,
    readonly addresses: Map<string, string>,
    readonly paths: Array<[RegExp, string]>,
    readonly carryExports = false,
  ) {}

  private remember(block: DocBlock): void {
    if (!this.carryExports || block.language !== "sh") return;
    for (const line of block.code.split("\n")) if (line.startsWith("export ")) this.exports.push(`${line}\n`);
  }

  fill(code: string): string {
    let filled = code;
    for (const [pattern, path] of this.paths) filled = filled.replace(pattern, path);
    // A node the page starts gets free ports; which ones is known once it says it is ready.
    filled = filled.replace(/\b(ANNALS_PORT|ANNALS_HTTP_PORT)=(\d+)/g, (_, name: string) => `${name}=0`);
    for (const [documented, real] of this.addresses) filled = filled.replace(new RegExp(`\\b${documented.replace(/\./g, "\\.")}\\b`, "g"), real);
    return filled;
  }

  private command(block: DocBlock): string[] {
    const code = this.fill(block.code);
    if (block.language === "js") {
      const file = join(this.cwd, `snippet-${++this.snippets}.mjs`);
      writeFileSync(file, code);
      return [process.execPath, file];
    }
    return ["bash", "-c", `set -euo pipefail\n${this.fill(this.exports.join(""))}${code}`];
  }

  private describe(block: DocBlock, output: string, exit: { code: number | null; signal: NodeJS.Signals | null }): string {
    return `${block.file}:${block.line} failed (exit ${exit.code ?? exit.signal}):\n${this.fill(block.code)}\noutput:\n${output}`;
  }

  async run(block: DocBlock): Promise<void> {
    this.commands += block.language === "sh" ? shellCommands(block.code).length : 1;
    switch (block.mode.kind) {
      case "not-run":
        this.notRun.push(`${block.file}:${block.line}: ${block.mode.reason}`);
        return;
      case "run":
      case "at-end": {
        const result = await runToEnd(this.command(block), this.cwd, this.env);
        assert.equal(result.code, 0, this.describe(block, result.output, result));
        this.remember(block);
        return;
      }
      case "retry": {
        let result = await runToEnd(this.command(block), this.cwd, this.env);
        for (let attempt = 1; result.code !== 0 && attempt < 60; attempt++) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          result = await runToEnd(this.command(block), this.cwd, this.env);
        }
        assert.equal(result.code, 0, this.describe(block, result.output, result));
        return;
      }
      case "until": {
        const started = start(this.command(block), this.cwd, this.env);
        try {
          await started.waitFor(block.mode.text);
        } finally {
          await started.stop("SIGINT");
        }
        return;
      }
      case "background": {
        const started = start(this.command(block), this.cwd, this.env);
        this.background.push(started);
        const output = await started.waitFor(block.mode.text);
        const ready = READY.exec(output);
        if (ready) {
          // The ports the block asked for are the ports it got.
          const asked = (name: string) => new RegExp(`\\b${name}=(\\d+)`).exec(block.code)?.[1];
          const grpc = asked("ANNALS_PORT");
          const http = asked("ANNALS_HTTP_PORT");
          if (grpc) this.addresses.set(`127.0.0.1:${grpc}`, `127.0.0.1:${ready[1]}`);
          if (http) this.addresses.set(`127.0.0.1:${http}`, `127.0.0.1:${ready[2]}`);
        }
        return;
      }
    }
  }

  /** Ctrl-C to every process a block started; each must exit. */
  async stopBackground(): Promise<void> {
    for (const started of this.background.reverse()) {
      const exit = await started.stop("SIGINT");
      assert.notEqual(exit.signal, "SIGKILL", `a background block did not stop on SIGINT:\n${started.output()}`);
    }
  }
}

export function workDir(name: string): string {
  // Inside the repository, so that `npx annals` and `npx buf` resolve to its own bins.
  const dir = join(ROOT, ".doc-test", `${name}-${process.pid}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

