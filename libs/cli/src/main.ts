#!/usr/bin/env node
// The `annals` command-line tool: logs (list, append, read, tail, stats),
// evidence (checkpoints, receipts, exports verified offline), the KV store,
// peers and federation status, health checks and development tokens.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { healthV1 } from "@annals/proto";
import { CONNECTION_OPTIONS, CONNECTION_USAGE, connect, takeTlsOptions } from "./connection.js";
import { appendCommand, countOption, logsCommand, readCommand, statsCommand, tailCommand } from "./entry-commands.js";
import { FEDERATION_USAGE, federationCommand, peersCommand, verifyEvidenceCommand } from "./federation-commands.js";
import { KV_USAGE, kvCommand } from "./kv-commands.js";
import { exportLog, importExport, printReport, verifyExportFile } from "./log-commands.js";
import { WITNESS_OPTIONS, witnessPolicyOf } from "./witness-options.js";
import { checkpointCommand, proveCommand, readVerifierKey, verifierKeyCommand, verifyReceiptCommand } from "./proof-commands.js";
import { UsageError } from "./usage-error.js";

/** The shortest HS256 secret the server accepts (ANNALS_AUTH_JWT_SECRET). */
const MIN_SECRET_BYTES = 32;

const USAGE = `usage: annals COMMAND [options]        (role each command needs in [brackets]; with auth off, none)

Logs:
  annals logs list [--prefix P]       one line per log: id, last seq, entries, origin   [log.read]
  annals logs get LOG                 a log's head                                       [log.read]
  annals logs create LOG              creates an empty log (appending creates one too)   [log.write]
  annals append --log LOG --kind KIND [PAYLOAD | -] [--content-type TYPE] [--request-id ID] [--source ID]
      Appends one entry; PAYLOAD (or stdin, when absent or "-") is a JSON object, or with
      --content-type the raw bytes of a binary payload. Prints its seq.              [log.write]
  annals read --log LOG [--from SEQ] [--limit N] [--json]
      Prints entries from SEQ (default: the first stored) up to the head, one per line:
      seq, wall time, kind, payload (tab-separated; --json: protobuf JSON).          [log.read]
  annals tail --log LOG [--topics PATTERN,…] [--last N | --after SEQ] [--json]
      Follows a log live, one line per entry, until Ctrl-C: starts with the entries of
      the last N seqs (default 10); --topics selects kinds (NATS patterns: * and >). [log.read]
  annals stats [--log LOG]            a log's counts and time ranges; without --log, all logs  [log.read]

Evidence (docs/merkle.md):
  annals checkpoint --log LOG [--size N]
      Prints the log's latest signed checkpoint (a C2SP signed note).               [log.read]
  annals verifier-key [--log LOG]     the key that verifies the log's (or the node's) checkpoints  [log.read]
  annals prove --log LOG --seq SEQ > RECEIPT
      Writes a C2SP tlog-proof receipt: the entry's inclusion in the latest checkpoint.  [log.read]
  annals verify-receipt RECEIPT --key VKEY [--checksum HEX] [--witness-key VKEY]... [--witnesses K]
      Offline: exit status 0 when RECEIPT proves the entry under the log's key VKEY (the key's
      text or a file holding it), 1 naming what failed.                             [none]
  annals verify FILE [--key VKEY]
      Offline: checks an export's hash chain; with the log's key also its end line's signed
      checkpoint, so a dropped tail is caught (without --key completeness is not checked).
      Exit status 0 when valid, 1 with the problems listed.                        [none]
  annals export --log LOG [--from SEQ] [--to SEQ] [--out FILE]
      Streams a log's export (JSON Lines) to FILE (default stdout).                 [log.read]
  annals import FILE --log LOG
      Verifies FILE, then appends its entries to LOG as new entries.                [log.write]

Key/value store:
${KV_USAGE}
                                    [kv.read for get, ttl, scan; kv.write for set, del, incr]
Federation:
${FEDERATION_USAGE}
                                    [info, status, peers list: federation.read; peers add, rm: admin]
Other:
  annals health [--service NAME]     Health/Check; exit status 0 when SERVING             [none]
  annals token --sub NAME --roles log.read,log.write [--logs orders,audit] [--kv-prefixes tenant-a:] [--expires 1h]
      Prints an HS256 development token signed with $ANNALS_AUTH_JWT_SECRET (at least
      ${MIN_SECRET_BYTES} bytes, as the server requires).                                   [none]

${CONNECTION_USAGE}
  On verify and verify-receipt, which call no server, --key is the log's verifier key.
  Long operations (export, import, verify) show progress on stderr when it is a terminal.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const parse = <const O extends NonNullable<ParseArgsConfig["options"]>>(options: O, positionals = false) =>
    parseArgs({ args: rest, allowPositionals: positionals, options: { ...CONNECTION_OPTIONS, ...options } });
  switch (command) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    case "health": {
      const { values } = parse({ service: { type: "string" } });
      const { health } = connect(values);
      const response = await health.check({ service: values.service ?? "" });
      const status = healthV1.HealthCheckResponse_ServingStatus[response.status];
      console.log(`${values.service || "(server)"}: ${status}`);
      return response.status === healthV1.HealthCheckResponse_ServingStatus.SERVING ? 0 : 1;
    }
    case "token": {
      const { values } = parseArgs({
        args: rest,
        options: { sub: { type: "string" }, roles: { type: "string" }, logs: { type: "string" }, "kv-prefixes": { type: "string" }, expires: { type: "string" } },
      });
      const secret = process.env.ANNALS_AUTH_JWT_SECRET;
      if (!secret) throw new UsageError("ANNALS_AUTH_JWT_SECRET is not set (the node's HS256 secret)");
      const length = Buffer.byteLength(secret, "utf8");
      if (length < MIN_SECRET_BYTES) {
        throw new UsageError(`ANNALS_AUTH_JWT_SECRET is ${length} bytes long; the server refuses secrets shorter than ${MIN_SECRET_BYTES} bytes, so no token is made`);
      }
      if (!values.sub || !values.roles) throw new UsageError("--sub and --roles are required");
      const list = (value: string) => value.split(",").map((item) => item.trim()).filter(Boolean);
      // Loaded here, not at the top: the runtime is a third of every other verb's start-up time.
      const { signDevToken } = await import("@annals/runtime");
      console.log(
        await signDevToken({
          secret,
          subject: values.sub,
          roles: list(values.roles),
          claims: {
            ...(values.logs ? { logs: list(values.logs) } : {}),
            ...(values["kv-prefixes"] ? { kv_prefixes: list(values["kv-prefixes"]) } : {}),
          },
          expiresIn: values.expires ?? "1h",
        }),
      );
      return 0;
    }
    case "logs": {
      const { values, positionals } = parse({ prefix: { type: "string" } }, true);
      const [subcommand, ...operands] = positionals;
      return logsCommand(connect(values).log, subcommand, operands, values.prefix);
    }
    case "append": {
      const { values, positionals } = parse(
        {
          log: { type: "string" },
          kind: { type: "string" },
          "content-type": { type: "string" },
          "request-id": { type: "string" },
          source: { type: "string" },
        },
        true,
      );
      if (!values.log || !values.kind) throw new UsageError("append needs --log and --kind");
      if (positionals.length > 1) throw new UsageError("append takes at most one PAYLOAD (quote it)");
      return appendCommand(connect(values).log, {
        logId: values.log,
        kind: values.kind,
        payload: positionals[0],
        contentType: values["content-type"],
        requestId: values["request-id"],
        sourceId: values.source,
      });
    }
    case "read": {
      const { values } = parse({ log: { type: "string" }, from: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" } });
      if (!values.log) throw new UsageError("read needs --log");
      return readCommand(connect(values).log, {
        logId: values.log,
        fromSeq: countOption(values.from, "from", 0n),
        limit: countOption(values.limit, "limit", 0n),
        json: values.json ?? false,
      });
    }
    case "tail": {
      const { values } = parse({ log: { type: "string" }, topics: { type: "string" }, last: { type: "string" }, after: { type: "string" }, json: { type: "boolean" } });
      if (!values.log) throw new UsageError("tail needs --log");
      if (values.last !== undefined && values.after !== undefined) throw new UsageError("--last and --after exclude each other");
      return tailCommand(connect(values).log, {
        logId: values.log,
        topics: (values.topics ?? "").split(",").map((topic) => topic.trim()).filter(Boolean),
        afterSeq: values.after === undefined ? undefined : countOption(values.after, "after", 0n),
        last: countOption(values.last, "last", 10n),
        json: values.json ?? false,
      });
    }
    case "stats": {
      const { values } = parse({ log: { type: "string" } });
      return statsCommand(connect(values).log, values.log);
    }
    case "checkpoint": {
      const { values } = parse({ log: { type: "string" }, size: { type: "string" } });
      if (!values.log) throw new UsageError("checkpoint needs --log");
      return checkpointCommand(connect(values).log, values.log, values.size === undefined ? undefined : countOption(values.size, "size", 0n));
    }
    case "verifier-key": {
      const { values } = parse({ log: { type: "string" } });
      return verifierKeyCommand(connect(values).log, values.log);
    }
    case "prove": {
      const { values } = parse({ log: { type: "string" }, seq: { type: "string" } });
      if (!values.log || values.seq === undefined) throw new UsageError("prove needs --log and --seq");
      return proveCommand(connect(values).log, values.log, countOption(values.seq, "seq", 0n));
    }
    case "verify-receipt": {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { key: { type: "string" }, checksum: { type: "string" }, ...WITNESS_OPTIONS } });
      if (positionals.length !== 1) throw new UsageError("verify-receipt takes one RECEIPT file");
      if (!values.key) throw new UsageError("verify-receipt needs --key VKEY (the log's verifier key: `annals verifier-key --log LOG`)");
      return verifyReceiptCommand(positionals[0]!, values.key, values.checksum, witnessPolicyOf(values));
    }
    case "verify": {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { key: { type: "string" } } });
      if (positionals.length !== 1) throw new UsageError("verify takes one FILE");
      const keyValue = values.key;
      if (keyValue !== undefined) readVerifierKey(keyValue); // a bad key is a usage error before the file is read
      const report = await verifyExportFile(positionals[0]!, keyValue === undefined ? undefined : (origin) => readVerifierKey(keyValue, origin || undefined));
      printReport(positionals[0]!, report, keyValue !== undefined);
      return report.valid ? 0 : 1;
    }
    case "export": {
      const { values } = parse({ log: { type: "string" }, from: { type: "string" }, to: { type: "string" }, out: { type: "string" } });
      if (!values.log) throw new UsageError("--log is required");
      const request = { logId: values.log, fromSeq: countOption(values.from, "from", 0n), toSeq: countOption(values.to, "to", 0n) };
      const bytes = await exportLog(connect(values).log, request, values.out ?? "-");
      if (values.out) console.error(`exported log "${values.log}" to ${values.out} (${bytes} bytes)`);
      return 0;
    }
    case "import": {
      const { values, positionals } = parse({ log: { type: "string" } }, true);
      if (positionals.length !== 1) throw new UsageError("import takes one FILE");
      if (!values.log) throw new UsageError("--log is required");
      const summary = await importExport(connect(values).log, positionals[0]!, values.log);
      const seqs = summary.firstSeq === null ? "" : ` (seqs ${summary.firstSeq}..${summary.lastSeq})`;
      console.log(
        `imported ${summary.appended} entries into log "${values.log}"${seqs}; already there: ${summary.duplicates}; ` +
          `skipped ${summary.skippedRedacted} redacted and ${summary.skippedService} service entries`,
      );
      return 0;
    }
    case "kv":
      return kvCommand((values) => connect(values).kv, rest);
    case "peers":
    case "federation": {
      // Their parsers (federation-commands.ts) know --url; the TLS options are taken out here.
      const { rest: args, values: tls } = takeTlsOptions(rest);
      const federation = (url: string | undefined) => connect({ ...tls, url }).federation;
      return command === "peers" ? peersCommand(federation, args) : federationCommand(federation, args);
    }
    case "verify-evidence":
      return verifyEvidenceCommand(rest);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** Roles of the verbs whose usage lines come from other modules. */
const ROLE_NOTES: Record<string, string> = {
  kv: "  Roles: kv.read for get, ttl and scan; kv.write for set, del and incr.",
  peers: "  Roles: peers add and rm need admin; peers list federation.read.",
  federation: "  Roles: federation.read.",
};
const OFFLINE = new Set(["verify", "verify-receipt", "token"]);

/** The usage lines of one command (with their continuation lines), or null for an unknown one. */
function verbUsage(verb: string): string | null {
  const lines = USAGE.split("\n");
  const picked: string[] = [];
  let inside = false;
  for (const line of lines) {
    if (/^ {2}annals /.test(line)) inside = line.startsWith(`  annals ${verb} `) || line === `  annals ${verb}`;
    else if (!/^ {4,}/.test(line)) inside = false;
    if (inside) picked.push(line);
  }
  if (picked.length === 0) return null;
  const connection = OFFLINE.has(verb) ? [] : ["", CONNECTION_USAGE];
  return ["usage:", ...picked, ...(ROLE_NOTES[verb] ? [ROLE_NOTES[verb]] : []), ...connection].join("\n");
}

function commandHelp(verb: string): number {
  console.log(verbUsage(verb) ?? USAGE);
  return 0;
}

/** `annals COMMAND --help`: the usage text, exit status 0. */
function wantsHelp(argv: readonly string[]): boolean {
  return argv.length > 0 && argv.slice(1).some((arg) => arg === "--help" || arg === "-h");
}

const argv = process.argv.slice(2);
(wantsHelp(argv) ? Promise.resolve(commandHelp(argv[0]!)) : main(argv)).then(
  (status) => process.exit(status),
  (error: unknown) => {
    // node:util parseArgs reports unknown or malformed options with ERR_PARSE_ARGS_* codes.
    const usage = error instanceof UsageError || String((error as { code?: unknown })?.code).startsWith("ERR_PARSE_ARGS");
    process.stderr.write(`annals: ${error instanceof Error ? error.message : String(error)}\n`);
    if (usage) process.stderr.write(`${(argv[0] && verbUsage(argv[0])) || USAGE}\n`);
    process.exit(usage ? 2 : 1);
  },
);
