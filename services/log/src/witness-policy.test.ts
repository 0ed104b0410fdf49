// ANNALS_LOG_WITNESSES: the policy's syntax, and the errors that name the variable and the entry.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SIGNATURE_TYPE_COSIGNATURE_V1, SIGNATURE_TYPE_ED25519, createVerifierKey, ed25519PrivateKeyFromSeed, formatVerifierKey } from "@annals/chain";
import { ConfigError } from "@annals/runtime";
import { readLogOptions } from "./config.js";
import { WitnessPolicyError, parseWitnessPolicy } from "./witness-policy.js";

const key = (n: number, type: typeof SIGNATURE_TYPE_COSIGNATURE_V1 | typeof SIGNATURE_TYPE_ED25519 = SIGNATURE_TYPE_COSIGNATURE_V1) =>
  formatVerifierKey(createVerifierKey(`w${n}.example/w`, type, ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(n))));

test("k and witnesses, separated by ';' or newlines; URLs lose a trailing slash", () => {
  const policy = parseWitnessPolicy(`k=2; ${key(1)} http://127.0.0.1:8080/witness/v1/\n${key(2)} https://w2.example/witness/v1 ;${key(3)} https://w3.example/w`);
  assert.equal(policy.threshold, 2);
  assert.deepEqual(policy.witnesses.map((witness) => [witness.key.name, witness.url, witness.id]), [
    ["w1.example/w", "http://127.0.0.1:8080/witness/v1", key(1)],
    ["w2.example/w", "https://w2.example/witness/v1", key(2)],
    ["w3.example/w", "https://w3.example/w", key(3)],
  ]);
});

test("bad policies are refused, saying what is wrong", () => {
  const cases: [string, RegExp][] = [
    [`${key(1)} http://a/`, /k=<K> is required/],
    [`k=2; ${key(1)} http://a/`, /k=2 is more than the 1 witnesses/],
    [`k=0; ${key(1)} http://a/`, /entry 1: expected k=/],
    [`k=1; k=1; ${key(1)} http://a/`, /k is given twice/],
    [`k=1`, /no witness listed/],
    [`k=1; ${key(1)}`, /entry 2: expected "<witness vkey> <submission prefix URL>"/],
    [`k=1; ${key(1, SIGNATURE_TYPE_ED25519)} http://a/`, /signature type 0x04/],
    [`k=1; ${key(1)} ftp://a/`, /http or https/],
    [`k=1; ${key(1)} not-a-url`, /is not a URL/],
    [`k=1; ${key(1)} http://a/; ${key(1)} http://b/`, /listed twice/],
    [`k=1; w1.example/w+00000000+BAAA http://a/`, /entry 2:/],
  ];
  for (const [text, message] of cases) assert.throws(() => parseWitnessPolicy(text), (error: unknown) => error instanceof WitnessPolicyError && message.test(error.message), text);
});

test("the environment: unset is no witnesses; a bad value is a ConfigError naming ANNALS_LOG_WITNESSES", () => {
  assert.equal(readLogOptions({}).witnesses, undefined);
  assert.equal(readLogOptions({ ANNALS_LOG_WITNESSES: `k=1; ${key(1)} http://a/` }).witnesses?.threshold, 1);
  assert.throws(() => readLogOptions({ ANNALS_LOG_WITNESSES: "k=1" }), (error: unknown) => error instanceof ConfigError && /ANNALS_LOG_WITNESSES/.test(error.message));
});
