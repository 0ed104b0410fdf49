// Log ids: what names a log, which names clients may create, and the
// namespace of federation mirrors. Every service that takes a log id uses
// these rules.

/** Segments of letters, digits, `.`, `_` and `-` between single slashes; no segment starts or ends with a dot. */
const LOG_ID = /^[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?(\/[A-Za-z0-9_-]([A-Za-z0-9._-]*[A-Za-z0-9_-])?)*$/;
/** The longest name of a log that clients create. */
export const MAX_LOCAL_LOG_ID_LENGTH = 128;
/**
 * The longest log id at all: a federation mirror is named
 * `mirror/<node id without spiffe://>/<origin log>`, which for the longest
 * node id (100 characters) and origin name (128) is 227 characters.
 */
export const MAX_LOG_ID_LENGTH = 256;
/** Log ids under this prefix are federation mirrors; only federation creates them. */
export const MIRROR_PREFIX = "mirror/";

/**
 * Why a log id is invalid, or null when it is valid. Every service that takes
 * a log id uses this rule. Dots may not start or end a segment, so `.`, `..`
 * and `a/../b` never name a log (a path with them would be normalised away by
 * URLs, e.g. in the SSE route).
 */
export function logIdProblem(logId: string): string | null {
  if (logId === "") return "is required";
  if (logId.length > MAX_LOG_ID_LENGTH) return `is longer than ${MAX_LOG_ID_LENGTH} characters`;
  if (!LOG_ID.test(logId)) {
    return "may hold only letters, digits, '.', '_', '-' and '/' (no '/' at either end or doubled, no segment starting or ending with '.')";
  }
  return null;
}

/** Why a name is not one a client may create a log under, or null: logIdProblem, at most 128 characters, not under `mirror/`. */
export function localLogIdProblem(logId: string): string | null {
  const problem = logIdProblem(logId);
  if (problem) return problem;
  if (logId.length > MAX_LOCAL_LOG_ID_LENGTH) return `is longer than ${MAX_LOCAL_LOG_ID_LENGTH} characters`;
  if (logId.startsWith(MIRROR_PREFIX)) return `names under "${MIRROR_PREFIX}" are reserved for federation mirrors`;
  return null;
}
