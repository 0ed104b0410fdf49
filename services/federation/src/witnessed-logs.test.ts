// ANNALS_WITNESS_LOGS: which origins a node witnesses, with which keys.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SIGNATURE_TYPE_COSIGNATURE_V1, SIGNATURE_TYPE_ED25519, createVerifierKey, ed25519PrivateKeyFromSeed, formatVerifierKey } from "@annals/chain";
import { ConfigError } from "@annals/runtime";
import { readFederationOptions } from "./config.js";
import { WitnessedLogsError, parseWitnessedLogs } from "./witnessed-logs.js";

const vkey = (name: string, seed: number, type: typeof SIGNATURE_TYPE_ED25519 | typeof SIGNATURE_TYPE_COSIGNATURE_V1 = SIGNATURE_TYPE_ED25519) =>
  formatVerifierKey(createVerifierKey(name, type, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(seed))));

test("an entry is a vkey (its name is the origin) or an origin and a vkey; one origin may have several keys", () => {
  const logs = parseWitnessedLogs(`${vkey("a.example/annals/eu-1:orders", 1)};\n  example.com/log ${vkey("log-key", 2)}; ${vkey("a.example/annals/eu-1:orders", 3)}`);
  assert.deepEqual(
    logs.map((log) => [log.origin, log.keys.map((key) => key.name)]),
    [
      ["a.example/annals/eu-1:orders", ["a.example/annals/eu-1:orders", "a.example/annals/eu-1:orders"]],
      ["example.com/log", ["log-key"]],
    ],
  );
});

test("bad entries are refused, naming the entry; the environment names the variable", () => {
  assert.throws(() => parseWitnessedLogs(`a b c`), (error: unknown) => error instanceof WitnessedLogsError && /entry 1: expected/.test(error.message));
  assert.throws(() => parseWitnessedLogs(`ok ${vkey("x", 1)}; not-a-key`), (error: unknown) => error instanceof WitnessedLogsError && /entry 2:/.test(error.message));
  assert.throws(() => parseWitnessedLogs(vkey("w", 1, SIGNATURE_TYPE_COSIGNATURE_V1)), /type 0x01/);
  assert.deepEqual(readFederationOptions({}).witness.logs, []);
  assert.throws(() => readFederationOptions({ ANNALS_WITNESS_LOGS: "nonsense" }), (error: unknown) => error instanceof ConfigError && /ANNALS_WITNESS_LOGS/.test(error.message));
  assert.throws(() => readFederationOptions({ ANNALS_WITNESS_NAME: "has space" }), (error: unknown) => error instanceof ConfigError && /ANNALS_WITNESS_NAME/.test(error.message));
});
