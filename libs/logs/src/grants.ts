// The log grant: a token's `logs` claim (a list of patterns), when present,
// narrows the logs its roles reach. The log service, the stream service and
// the tile routes check it; the runtime only hands over the claims.
import { Code } from "@connectrpc/connect";
import { ADMIN_ROLE, claimList, rpcError, type Principal } from "@annals/runtime";

/** The claim that lists the logs a token may touch. */
export const LOGS_CLAIM = "logs";

/** Whether the token may touch this log: no `logs` claim, an admin, or a pattern that names it. */
export function grantsLog(principal: Principal, logId: string): boolean {
  const patterns = claimList(principal, LOGS_CLAIM);
  if (patterns === undefined || principal.roles.has(ADMIN_ROLE)) return true;
  return patterns.some((pattern) => logPatternMatches(pattern, logId));
}

/** PERMISSION_DENIED unless the token may touch this log. */
export function requireLogAccess(principal: Principal, logId: string): void {
  if (!grantsLog(principal, logId)) {
    throw rpcError(Code.PermissionDenied, `token does not grant access to log "${logId}"`, {
      reason: "LOG_NOT_GRANTED",
      metadata: { log: logId },
    });
  }
}

/** `orders` matches itself; `eu/*` matches every log under `eu/`; `*` matches all. */
function logPatternMatches(pattern: string, logId: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("/*")) return logId.startsWith(pattern.slice(0, -1));
  return pattern === logId;
}
