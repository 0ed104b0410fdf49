// Tallies fuzz outcomes and prints them: counts by status and port; failures
// grouped by cause (same status and message across methods) for reading, and
// one row per (method, input class, status) for the whole picture, so that a
// single run shows everything that is wrong.
import { portOf, type CasePlan } from "./plan.js";
import type { Outcome } from "./wire.js";

/** The answers no input may produce: the server's "I failed" statuses. */
const FAILURE_CODES = new Set(["INTERNAL", "UNKNOWN", "HTTP_500"]);

function isFailure(outcome: Outcome): boolean {
  return FAILURE_CODES.has(outcome.code);
}

export interface CaseResult {
  /** Which process was fuzzed ("node", "log"). */
  target: string;
  plan: CasePlan;
  /** The class, with its variant after a colon (`bad-envelope:length-over`). */
  inputClass: string;
  outcome: Outcome;
  reproducer: string;
  /** Why INTERNAL is the right answer to this input, when it is (see FuzzRequest.expectedInternal). */
  expectedInternal?: string;
}

interface Group {
  code: string;
  count: number;
  methods: Set<string>;
  /** Input classes, with their variants, and non-admin credentials seen. */
  details: Set<string>;
  transports: Set<string>;
  firstCase: number;
  message: string;
  reproducer: string;
}

/** A message with its changing parts (ids, numbers) blanked, so one cause groups as one. */
function messageShape(message: string): string {
  return message
    .replace(/request id [0-9a-f-]+/gi, "request id …")
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\d+/g, "#")
    .slice(0, 120);
}

export class Tally {
  /** code → calls on each port */
  private readonly byCode = new Map<string, { grpc: number; http: number }>();
  /** (method, base class, code) → group */
  private readonly byMethod = new Map<string, Group>();
  /** (code, message shape) → group */
  private readonly byCause = new Map<string, Group>();
  /** Why some INTERNAL answers were the right ones. */
  private readonly expected = new Set<string>();
  total = 0;
  failures = 0;

  record(result: CaseResult): void {
    this.total++;
    const port = portOf(result.plan.transport);
    const expected = isFailure(result.outcome) && result.expectedInternal !== undefined;
    if (expected) this.expected.add(result.expectedInternal!);
    const label = expected ? `${result.outcome.code} (expected)` : result.outcome.code;
    const counts = this.byCode.get(label) ?? { grpc: 0, http: 0 };
    counts[port]++;
    this.byCode.set(label, counts);
    if (!isFailure(result.outcome) || expected) return;
    this.failures++;
    const method = `${result.target === "node" ? "" : `${result.target}: `}${result.plan.method.replace(/^annals\./, "")}`;
    const baseClass = result.inputClass.split(":")[0]!;
    const detail = result.inputClass + (result.plan.auth === "admin" ? "" : ` [${result.plan.auth}]`);
    const add = (groups: Map<string, Group>, key: string) => {
      const group = groups.get(key) ?? {
        code: result.outcome.code,
        count: 0,
        methods: new Set<string>(),
        details: new Set<string>(),
        transports: new Set<string>(),
        firstCase: result.plan.index,
        message: result.outcome.message,
        reproducer: result.reproducer,
      };
      group.count++;
      group.methods.add(method);
      group.details.add(detail);
      group.transports.add(result.plan.transport);
      groups.set(key, group);
    };
    add(this.byMethod, [method, baseClass, result.outcome.code].join("|"));
    add(this.byCause, [result.outcome.code, messageShape(result.outcome.message)].join("|"));
  }

  /** Calls by status code and port, most frequent first. */
  countsTable(): string {
    const lines = [...this.byCode].sort((a, b) => b[1].grpc + b[1].http - (a[1].grpc + a[1].http) || a[0].localeCompare(b[0]));
    const totals = { grpc: 0, http: 0 };
    for (const [, counts] of lines) {
      totals.grpc += counts.grpc;
      totals.http += counts.http;
    }
    const notes = [...this.expected].map((reason) => `(expected): ${reason}`);
    return [
      table(
        ["status", "gRPC port", "HTTP port", "total"],
        [...lines.map(([code, counts]) => [code, String(counts.grpc), String(counts.http), String(counts.grpc + counts.http)]), ["(all)", String(totals.grpc), String(totals.http), String(totals.grpc + totals.http)]],
      ),
      ...notes,
    ].join("\n");
  }

  /** Failures grouped by status and message shape, biggest first. */
  causeTable(): string {
    const groups = [...this.byCause.values()].sort((a, b) => b.count - a.count || a.message.localeCompare(b.message));
    // A cause few methods share names them; one most methods share is a count.
    const methods = (group: Group) =>
      group.methods.size > 3 ? `${group.methods.size} methods` : [...group.methods].map((method) => method.replace(/^[a-z.0-9]+\./, "")).sort().join(", ");
    return table(
      ["status", "calls", "methods", "message (first seen)", "input classes", "case"],
      groups.map((group) => [
        group.code,
        String(group.count),
        oneLine(methods(group), 60),
        oneLine(group.message, 80),
        oneLine([...new Set([...group.details].map((detail) => detail.replace(/ \[.*\]$/, "")))].sort().join(","), 70),
        `#${group.firstCase}`,
      ]),
    );
  }

  /** One row per (method, input class, status), sorted by method. */
  methodTable(): string {
    const groups = [...this.byMethod.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    return table(
      ["method", "input class", "status", "calls", "transports", "case", "message", "reproducer"],
      groups.map(([key, group]) => [
        key.split("|")[0]!,
        oneLine([...group.details].sort().join(","), 44),
        group.code,
        String(group.count),
        [...group.transports].sort().join(","),
        `#${group.firstCase}`,
        oneLine(group.message, 64),
        oneLine(group.reproducer, 56),
      ]),
    );
  }

  get distinctFailures(): number {
    return this.byMethod.size;
  }
}

function oneLine(text: string, max: number): string {
  // Control characters (a NUL from a request echoed in a message) would break the table.
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]/g, " ").replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const format = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd();
  return [format(header), format(widths.map((width) => "-".repeat(width))), ...rows.map(format)].join("\n");
}
