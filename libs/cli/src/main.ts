#!/usr/bin/env node
// The `annals` command-line tool: health checks, development tokens, exports
// of logs (verify offline, export, import), the KV store, peers and federation status.
import { parseArgs } from "node:util";
import { createAnnalsClients, type AnnalsClients } from "@annals/client";
import { healthV1 } from "@annals/proto";
import { signDevToken } from "@annals/runtime";
import { FEDERATION_USAGE, federationCommand, peersCommand, verifyEvidenceCommand } from "./federation-commands.js";
import { KV_USAGE, kvCommand } from "./kv-commands.js";
import { exportLog, importExport, printReport, verifyExportFile } from "./log-commands.js";
import { UsageError } from "./usage-error.js";

const USAGE = `usage:
  annals health [--url http://127.0.0.1:50051] [--service annals.log.v1.LogService]
      Health/Check of a node or service; exit status 0 when SERVING.
  annals token --sub NAME --roles log.read,log.write [--logs orders,audit] [--kv-prefixes tenant-a:] [--expires 1h]
      Prints an HS256 development token signed with $ANNALS_AUTH_JWT_SECRET.
  annals verify FILE
      Checks a JSON Lines export offline with the hash-chain rules alone;
      exit status 0 when valid, 1 with the problems listed otherwise.
  annals export --log NAME [--from SEQ] [--to SEQ] [--out FILE]
      Streams a log's export to FILE (default stdout).
  annals import FILE --log NAME
      Verifies FILE, then appends its entries to log NAME as new entries
      (keeping uuid, kind, payload — JSON or binary with its content type —
      source, sim time, metadata and request id).
${KV_USAGE}
${FEDERATION_USAGE}

  Commands that call a server take --url (default $ANNALS_URL or
  http://127.0.0.1:50051) and send $ANNALS_TOKEN as the bearer token.`;

const SERVER_OPTIONS = { url: { type: "string" } } as const;

function connect(url: string | undefined): AnnalsClients {
  const token = process.env.ANNALS_TOKEN;
  return createAnnalsClients({ baseUrl: url ?? process.env.ANNALS_URL ?? "http://127.0.0.1:50051", ...(token ? { token } : {}) });
}

function seqOption(value: string | undefined, name: string): bigint {
  if (value === undefined) return 0n;
  if (!/^[0-9]{1,19}$/.test(value)) throw new UsageError(`--${name} must be a seq (a non-negative integer)`);
  return BigInt(value);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "health": {
      const { values } = parseArgs({ args: rest, options: { ...SERVER_OPTIONS, service: { type: "string" } } });
      const { health } = connect(values.url);
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
      if (!secret) throw new UsageError("ANNALS_AUTH_JWT_SECRET is not set");
      if (!values.sub || !values.roles) throw new UsageError("--sub and --roles are required");
      const list = (value: string) => value.split(",").map((item) => item.trim()).filter(Boolean);
      console.log(
        await signDevToken({
          secret,
          subject: values.sub,
          roles: list(values.roles),
          ...(values.logs ? { logs: list(values.logs) } : {}),
          ...(values["kv-prefixes"] ? { keyPrefixes: list(values["kv-prefixes"]) } : {}),
          expiresIn: values.expires ?? "1h",
        }),
      );
      return 0;
    }
    case "verify": {
      const { positionals } = parseArgs({ args: rest, allowPositionals: true });
      if (positionals.length !== 1) throw new UsageError("verify takes one FILE");
      const report = await verifyExportFile(positionals[0]!);
      printReport(positionals[0]!, report);
      return report.valid ? 0 : 1;
    }
    case "export": {
      const { values } = parseArgs({
        args: rest,
        options: { ...SERVER_OPTIONS, log: { type: "string" }, from: { type: "string" }, to: { type: "string" }, out: { type: "string" } },
      });
      if (!values.log) throw new UsageError("--log is required");
      const request = { logId: values.log, fromSeq: seqOption(values.from, "from"), toSeq: seqOption(values.to, "to") };
      const bytes = await exportLog(connect(values.url).log, request, values.out ?? "-");
      if (values.out) console.error(`exported log "${values.log}" to ${values.out} (${bytes} bytes)`);
      return 0;
    }
    case "import": {
      const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { ...SERVER_OPTIONS, log: { type: "string" } } });
      if (positionals.length !== 1) throw new UsageError("import takes one FILE");
      if (!values.log) throw new UsageError("--log is required");
      const summary = await importExport(connect(values.url).log, positionals[0]!, values.log);
      const seqs = summary.firstSeq === null ? "" : ` (seqs ${summary.firstSeq}..${summary.lastSeq})`;
      console.log(
        `imported ${summary.appended} entries into log "${values.log}"${seqs}; already there: ${summary.duplicates}; ` +
          `skipped ${summary.skippedRedacted} redacted and ${summary.skippedService} service entries`,
      );
      return 0;
    }
    case "kv":
      return kvCommand((url) => connect(url).kv, rest);
    case "peers":
      return peersCommand((url) => connect(url).federation, rest);
    case "federation":
      return federationCommand((url) => connect(url).federation, rest);
    case "verify-evidence":
      return verifyEvidenceCommand(rest);
    default:
      throw new UsageError(command ? `unknown command "${command}"` : "no command given");
  }
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error: unknown) => {
    // node:util parseArgs reports unknown or malformed options with ERR_PARSE_ARGS_* codes.
    const usage = error instanceof UsageError || String((error as { code?: unknown })?.code).startsWith("ERR_PARSE_ARGS");
    process.stderr.write(`annals: ${error instanceof Error ? error.message : String(error)}\n`);
    if (usage) process.stderr.write(`${USAGE}\n`);
    process.exit(usage ? 2 : 1);
  },
);
