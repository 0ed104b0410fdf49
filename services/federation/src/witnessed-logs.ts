// The logs a node witnesses (ANNALS_WITNESS_LOGS): entries separated by ";"
// or newlines, each `<vkey>` (the origin is the key's name, as for every
// annals log) or `<origin> <vkey>` (a log whose key is named otherwise).
// Several entries for one origin give it several trusted keys (a rotation).
import { SIGNATURE_TYPE_ED25519, parseVerifierKey, type VerifierKey } from "@annals/chain";

export interface WitnessedLog {
  /** The checkpoint origin line. */
  readonly origin: string;
  /** The log keys (signed-note type 0x01) whose signature the witness requires. */
  readonly keys: readonly VerifierKey[];
}

/** Thrown with the entry's position and what is wrong with it. */
export class WitnessedLogsError extends Error {
  override readonly name = "WitnessedLogsError";
}

export function parseWitnessedLogs(text: string): WitnessedLog[] {
  const byOrigin = new Map<string, VerifierKey[]>();
  const entries = text
    .split(/[;\n]/)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  entries.forEach((entry, i) => {
    const where = `entry ${i + 1}`;
    const parts = entry.split(/\s+/);
    if (parts.length > 2) throw new WitnessedLogsError(`${where}: expected "<vkey>" or "<origin> <vkey>"`);
    let key: VerifierKey;
    try {
      key = parseVerifierKey(parts[parts.length - 1]!);
    } catch (error) {
      throw new WitnessedLogsError(`${where}: ${(error as Error).message}`, { cause: error });
    }
    if (key.type !== SIGNATURE_TYPE_ED25519) throw new WitnessedLogsError(`${where}: a log's checkpoint key has signature type 0x01 (Ed25519), not 0x0${key.type}`);
    const origin = parts.length === 2 ? parts[0]! : key.name;
    byOrigin.set(origin, [...(byOrigin.get(origin) ?? []), key]);
  });
  return [...byOrigin].map(([origin, keys]) => ({ origin, keys }));
}
