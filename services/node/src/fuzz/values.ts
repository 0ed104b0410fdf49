// What the fuzz suite puts into fields: plausible values by the role a field's
// name suggests (so that well-formed requests reach past validation), and the
// hostile values of each input class.
import { ScalarType, type DescField } from "@bufbuild/protobuf";

/**
 * What a field holds, guessed from its name and type. The guess only steers
 * values towards ones a handler accepts; any field still gets fuzzed.
 */
export type FieldRole =
  | "log-id"
  | "node-id"
  | "page-token"
  | "kind"
  | "kind-pattern"
  | "url"
  | "uuid"
  | "checksum"
  | "kv-key"
  | "secret"
  | "jwk"
  | "field-mask"
  | "content-type"
  | "service-name"
  | "position"
  | "size"
  | "duration"
  | "integer"
  | "double"
  | "text";

export function fieldRole(field: DescField): FieldRole {
  const name = field.name;
  const scalar = field.fieldKind === "scalar" || field.fieldKind === "list" ? field.scalar : undefined;
  if (scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) return "double";
  if (scalar !== undefined && isInteger(scalar)) {
    if (/seq|_us$/.test(name)) return "position";
    if (/_ms$/.test(name)) return "duration";
    if (/page_size|limit|count|cost|status/.test(name)) return "size";
    return "integer";
  }
  if (scalar === ScalarType.BYTES) return /cursor|token/.test(name) ? "page-token" : "kv-key";
  if (/(^|_)log_id$|^(served|mirrored)_logs$/.test(name)) return "log-id";
  if (/node_id$|^origin_node$/.test(name)) return "node-id";
  if (/page_token$|cursor$/.test(name)) return "page-token";
  if (name === "kind") return "kind";
  if (name === "kinds") return "kind-pattern";
  if (name === "content_type") return "content-type";
  if (/url$/.test(name)) return "url";
  if (/uuid$/.test(name)) return "uuid";
  if (/checksum$|digest$/.test(name)) return "checksum";
  if (/jwk$/.test(name)) return "jwk";
  if (/mask$/.test(name) || field.message?.typeName === "google.protobuf.FieldMask") return "field-mask";
  if (/token$|fingerprint$/.test(name)) return "secret";
  if (name === "service") return "service-name";
  return "text";
}

export function isInteger(scalar: ScalarType): boolean {
  return ![ScalarType.DOUBLE, ScalarType.FLOAT, ScalarType.BOOL, ScalarType.STRING, ScalarType.BYTES].includes(scalar);
}

export function is64Bit(scalar: ScalarType): boolean {
  return [ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64].includes(scalar);
}

function isUnsigned(scalar: ScalarType): boolean {
  return [ScalarType.UINT32, ScalarType.UINT64, ScalarType.FIXED32, ScalarType.FIXED64].includes(scalar);
}

/** Log ids the issue lists as wrongly accepted, and other edges of the naming rule. */
export const BAD_LOG_IDS = [
  ".",
  "..",
  "a/../b",
  "./a",
  "a/.",
  ".a",
  "a.",
  "mirror/x",
  "mirror/",
  "",
  "/a",
  "a/",
  "a//b",
  "a b",
  "a\u0000b",
  "\u0000",
  "a\ud800",
  "%2E%2E",
  "a".repeat(129),
  "é",
  "a\nb",
];

/** Node ids that are no SPIFFE-style URI, or carry bytes PostgreSQL refuses. */
export const BAD_NODE_IDS = ["", "spiffe://", "not a uri", "spiffe://a/\u0000b", "\u0000", "spiffe://x/\ud800", "x".repeat(5000), "../../etc/passwd"];

/** Page tokens and cursors no server issued. */
export const BAD_PAGE_TOKENS = ["x", "..", "%%%", "\u0000", "AAAA", "eyJ9", "eyJzZXEiOiItMSJ9", "bnVsbA", "=".repeat(40), "a".repeat(10_000), "\ud800"];

/** Strings that are valid UTF-16 but unusual: empty, control characters, bidi, long, SQL and path syntax. */
export const ODD_STRINGS = [
  "",
  " ",
  "..",
  "%00",
  "%2e%2e",
  "\u202eabc",
  "\ufeff",
  "\uffff",
  "😀".repeat(40),
  "a".repeat(4096),
  "\r\n\t",
  "\\",
  "\"'`",
  "' OR 1=1 --",
  "${x}",
  "%s%s%n",
  "*",
  ">",
  "a.>",
  "a..b",
  "null",
  "-1",
];

/** Byte sequences that are not UTF-8: a stray byte, a surrogate (CESU-8), beyond U+10FFFF, an overlong NUL, a cut sequence. */
export const INVALID_UTF8: readonly number[][] = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0x80], [0xe2, 0x82], [0x61, 0xfe, 0x62]];

export const LONE_SURROGATES = ["\ud800", "\udfff", "\udbff", "\udc00x", "x\ud83d"];

/** Extreme integers as proto3 JSON accepts them for the scalar type. */
export function extremeIntegers(scalar: ScalarType): Array<string | number> {
  if (is64Bit(scalar)) {
    return isUnsigned(scalar)
      ? ["18446744073709551615", "9223372036854775808", "1000000", "0"]
      : ["-1", "-9223372036854775808", "9223372036854775807", "1000000", "9007199254740993", "-1000000"];
  }
  return isUnsigned(scalar) ? [4294967295, 2147483648, 1_000_000] : [-1, -2147483648, 2147483647, 1_000_000];
}

export const EXTREME_DOUBLES: Array<string | number> = ["NaN", "Infinity", "-Infinity", 1.7976931348623157e308, -0, 5e-324, -1e300];
