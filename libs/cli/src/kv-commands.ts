// `annals kv …`: the KV service from a shell. Keys and values are UTF-8 text.
import { parseArgs } from "node:util";
import type { KvClient } from "@annals/client";
import { CONNECTION_OPTIONS, type ConnectionValues } from "./connection.js";
import { kvV1 } from "@annals/proto";
import { UsageError } from "./usage-error.js";

export const KV_USAGE = `  annals kv get KEY                 prints the value; exit status 1 when the key is absent
  annals kv set KEY VALUE [--ttl MS] [--nx | --xx]
                                    exit status 1 when --nx or --xx kept it from writing
  annals kv del KEY...              prints how many keys existed
  annals kv ttl KEY                 prints the remaining ms (-1: no expiry, -2: no such key)
  annals kv incr KEY [--by N]       prints the new value
  annals kv scan [--prefix P] [--values]
                                    prints every key under P (with its value after a tab)`;


const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function integerOption(value: string | undefined, name: string): bigint | undefined {
  if (value === undefined) return undefined;
  if (!/^-?[0-9]{1,19}$/.test(value)) throw new UsageError(`--${name} must be an integer`);
  return BigInt(value);
}

/** Runs one `annals kv` subcommand with a client for the --url given; returns the exit status. */
export async function kvCommand(connect: (values: ConnectionValues) => KvClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...CONNECTION_OPTIONS,
      ttl: { type: "string" },
      nx: { type: "boolean" },
      xx: { type: "boolean" },
      by: { type: "string" },
      prefix: { type: "string" },
      values: { type: "boolean" },
    },
  });
  const [subcommand, ...operands] = positionals;
  const kv = () => connect(values);
  const arity = (count: number) => {
    if (operands.length !== count) throw new UsageError(`kv ${subcommand} takes ${count === 1 ? "one KEY" : "KEY VALUE"}`);
  };
  switch (subcommand) {
    case "get": {
      arity(1);
      const got = await kv().get({ key: encode(operands[0]!) });
      if (!got.found) {
        console.error(`no key "${operands[0]}"`);
        return 1;
      }
      process.stdout.write(`${decode(got.value)}\n`);
      return 0;
    }
    case "set": {
      arity(2);
      if (values.nx && values.xx) throw new UsageError("--nx and --xx exclude each other");
      const condition = values.nx ? kvV1.SetCondition.IF_ABSENT : values.xx ? kvV1.SetCondition.IF_PRESENT : kvV1.SetCondition.UNSPECIFIED;
      const set = await kv().set({ key: encode(operands[0]!), value: encode(operands[1]!), ttlMs: integerOption(values.ttl, "ttl") ?? 0n, condition });
      console.log(set.written ? "OK" : `not written (${values.nx ? "the key exists" : "the key does not exist"})`);
      return set.written ? 0 : 1;
    }
    case "del": {
      if (operands.length === 0) throw new UsageError("kv del takes at least one KEY");
      console.log(String((await kv().deleteMany({ keys: operands.map(encode) })).deletedCount));
      return 0;
    }
    case "ttl": {
      arity(1);
      console.log(String((await kv().ttl({ key: encode(operands[0]!) })).ttlMs));
      return 0;
    }
    case "incr": {
      arity(1);
      console.log(String((await kv().incrBy({ key: encode(operands[0]!), delta: integerOption(values.by, "by") ?? 1n })).value));
      return 0;
    }
    case "scan": {
      if (operands.length > 0) throw new UsageError("kv scan takes no operands (use --prefix)");
      let cursor: Uint8Array = new Uint8Array();
      do {
        const page = await kv().scan({ prefix: encode(values.prefix ?? ""), cursor, includeValues: values.values ?? false });
        for (const entry of page.entries) console.log(values.values ? `${decode(entry.key)}\t${decode(entry.value)}` : decode(entry.key));
        cursor = page.nextCursor;
      } while (cursor.length > 0);
      return 0;
    }
    default:
      throw new UsageError(subcommand ? `unknown kv command "${subcommand}"` : "kv needs a command: get, set, del, ttl, incr or scan");
  }
}
