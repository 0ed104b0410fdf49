// The witness options of the verifying commands: `--witness-key VKEY`
// (repeatable) and `--witnesses K`, turned into the policy that
// @annals/chain's verifyCosignedCheckpoint and verifyTlogProof take.
import { parseVerifierKey, type WitnessPolicy } from "@annals/chain";
import { UsageError } from "./usage-error.js";

/** parseArgs option definitions, to spread into a command's options. */
export const WITNESS_OPTIONS = { "witness-key": { type: "string", multiple: true }, witnesses: { type: "string" } } as const;

export const WITNESS_USAGE = `[--witness-key VKEY]... [--witnesses K]
      With witness keys, the checkpoint must carry valid cosignatures from at
      least K of them (default: all of them).`;

/** The policy of the parsed options; undefined when no --witness-key was given. */
export function witnessPolicyOf(values: { "witness-key"?: string[] | undefined; witnesses?: string | undefined }): WitnessPolicy | undefined {
  const texts = values["witness-key"] ?? [];
  if (texts.length === 0) {
    if (values.witnesses !== undefined) throw new UsageError("--witnesses needs at least one --witness-key");
    return undefined;
  }
  const keys = texts.map((text) => {
    try {
      return parseVerifierKey(text);
    } catch (error) {
      throw new UsageError(`--witness-key ${JSON.stringify(text.slice(0, 80))}: ${(error as Error).message}`);
    }
  });
  const threshold = values.witnesses === undefined ? keys.length : Number(values.witnesses);
  if (!/^[0-9]+$/.test(values.witnesses ?? "0") || threshold > keys.length) {
    throw new UsageError(`--witnesses must be a number from 0 to ${keys.length} (the witness keys given)`);
  }
  return { keys, threshold };
}
