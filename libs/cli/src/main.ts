#!/usr/bin/env node
// The `annals` command-line tool. This first version checks a node's health
// and mints development tokens; later commands (peers, federation status,
// verify-export) are added by the issues that build those services.
import { parseArgs } from "node:util";
import { createAnnalsClients } from "@annals/client";
import { healthV1 } from "@annals/proto";
import { signDevToken } from "@annals/runtime";

const USAGE = `usage:
  annals health [--url http://127.0.0.1:50051] [--service annals.log.v1.LogService]
      Health/Check of a node or service; exit status 0 when SERVING.
  annals token --sub NAME --roles log.read,log.write [--logs orders,audit] [--expires 1h]
      Prints an HS256 development token signed with $ANNALS_AUTH_JWT_SECRET.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "health": {
      const { values } = parseArgs({ args: rest, options: { url: { type: "string" }, service: { type: "string" } } });
      const { health } = createAnnalsClients({ baseUrl: values.url ?? process.env.ANNALS_URL ?? "http://127.0.0.1:50051" });
      const response = await health.check({ service: values.service ?? "" });
      const status = healthV1.HealthCheckResponse_ServingStatus[response.status];
      console.log(`${values.service || "(server)"}: ${status}`);
      return response.status === healthV1.HealthCheckResponse_ServingStatus.SERVING ? 0 : 1;
    }
    case "token": {
      const { values } = parseArgs({
        args: rest,
        options: { sub: { type: "string" }, roles: { type: "string" }, logs: { type: "string" }, expires: { type: "string" } },
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
          expiresIn: values.expires ?? "1h",
        }),
      );
      return 0;
    }
    default:
      throw new UsageError(command ? `unknown command "${command}"` : "no command given");
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (error: unknown) => {
    process.stderr.write(`annals: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof UsageError) process.stderr.write(`${USAGE}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
