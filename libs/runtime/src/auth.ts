import { Code, createContextKey } from "@connectrpc/connect";
import { createLocalJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { rpcError } from "./errors.js";

/** The caller of an RPC, as established from its bearer token. */
export interface Principal {
  /** The token's `sub`, or "anonymous" when auth is off. */
  readonly subject: string;
  /** Roles granted by the token (`log.read`, `kv.write`, `admin`, ...). */
  readonly roles: ReadonlySet<string>;
  /**
   * The token's verified claims (empty when auth is off or in-process). The
   * services read their own grants from them (claimList): the log rules read
   * `logs`, the KV service `kv_prefixes`; the runtime knows none of them.
   */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Whether auth is off and this principal stands for every caller. */
  readonly unauthenticated: boolean;
  /** Whether this is another service of the same process, calling in-process (INTERNAL_PRINCIPAL). */
  readonly internal?: boolean;
}

/** The role that grants every method. */
export const ADMIN_ROLE = "admin";

/**
 * What a method requires: a role name, `"authenticated"` (any valid token),
 * or `"public"` (no token at all).
 */
export type AccessRule = string;
export const PUBLIC = "public";
export const AUTHENTICATED = "authenticated";

/** The principal of the current call, set by the auth middleware. */
export const principalKey = createContextKey<Principal | undefined>(undefined, {
  description: "annals principal",
});

export type AuthOptions =
  | { mode: "off" }
  | {
      mode: "jwt";
      /** A shared HS256 secret (development); at least 32 bytes. */
      secret?: string;
      /** A JWKS document of public keys (production). */
      jwks?: { keys: unknown[] };
      /** Expected `iss`, if set. */
      issuer?: string;
      /** Expected `aud`, if set. */
      audience?: string;
      /** Refuse tokens without `exp` (they would never expire). Default true. */
      requireExpiry?: boolean;
      /** How far the issuer's clock may be off when `exp`, `nbf` and `iat` are checked, in ms. Default 60000. */
      clockSkewMs?: number;
    };

/** Default allowance for clock differences between a token's issuer and this server, in ms. */
export const DEFAULT_CLOCK_SKEW_MS = 60_000;

const ANONYMOUS: Principal = {
  subject: "anonymous",
  roles: new Set([ADMIN_ROLE]),
  claims: {},
  unauthenticated: true,
};

/**
 * The caller of in-process calls between the services of one process (the
 * node's stream and federation services calling its log service). Only the
 * in-process transport produces it; every access rule admits it.
 */
export const INTERNAL_PRINCIPAL: Principal = {
  subject: "annals-internal",
  roles: new Set(),
  claims: {},
  unauthenticated: false,
  internal: true,
};

export interface Authenticator {
  readonly enabled: boolean;
  /** Verifies the `authorization` header; UNAUTHENTICATED when it fails. */
  authenticate(authorization: string | null): Promise<Principal>;
}

/** How long a verified token is trusted without verifying it again, in ms. */
const VERIFIED_CACHE_MS = 60_000;
/** How many verified tokens are remembered. */
const VERIFIED_CACHE_ENTRIES = 10_000;

export function createAuthenticator(options: AuthOptions): Authenticator {
  if (options.mode === "off") {
    return { enabled: false, authenticate: async () => ANONYMOUS };
  }
  let key: Uint8Array | JWTVerifyGetKey;
  if (options.jwks) {
    key = createLocalJWKSet(options.jwks as Parameters<typeof createLocalJWKSet>[0]);
  } else if (options.secret) {
    key = new TextEncoder().encode(options.secret);
  } else {
    throw new Error("jwt auth needs a secret or a JWKS");
  }
  const skewSeconds = Math.ceil((options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS) / 1000);
  const verifyOptions = {
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
    algorithms: options.jwks ? ["ES256", "ES384", "EdDSA", "RS256", "PS256"] : ["HS256"],
    clockTolerance: skewSeconds,
    ...(options.requireExpiry === false ? {} : { requiredClaims: ["exp"] }),
  };
  // A token's signature and claims cannot change, so a verified token is
  // remembered until it expires (at most VERIFIED_CACHE_MS): verifying an
  // HMAC or signature on every call was the largest cost of a no-op call
  // (bench rpc-overhead, "JWT" rows).
  const verified = new Map<string, { principal: Principal; expiresAtMs: number }>();
  const remember = (token: string, principal: Principal, payload: JWTPayload) => {
    const now = Date.now();
    const expiresAtMs = Math.min(payload.exp !== undefined ? payload.exp * 1000 : Infinity, now + VERIFIED_CACHE_MS);
    if (verified.size >= VERIFIED_CACHE_ENTRIES) {
      // Evict the oldest insertion; a Map iterates in insertion order.
      verified.delete(verified.keys().next().value!);
    }
    verified.set(token, { principal, expiresAtMs });
  };
  return {
    enabled: true,
    async authenticate(authorization) {
      const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
      if (!match?.[1]) {
        throw rpcError(Code.Unauthenticated, "missing bearer token (send `authorization: Bearer <jwt>`)", {
          reason: "TOKEN_MISSING",
        });
      }
      const token = match[1];
      const cached = verified.get(token);
      if (cached && cached.expiresAtMs > Date.now()) return cached.principal;
      let payload: JWTPayload;
      try {
        // jose accepts either a key or a key-set function; the union is fine at runtime.
        ({ payload } = await jwtVerify(token, key as Uint8Array, verifyOptions));
        // jose checks `iat` only against a maximum age; a token issued in the future is refused here.
        if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + skewSeconds) {
          throw new joseErrors.JWTClaimValidationFailed('"iat" is in the future', payload, "iat", "check_failed");
        }
      } catch (cause) {
        verified.delete(token);
        throw rpcError(Code.Unauthenticated, `invalid bearer token: ${describeJoseError(cause)}`, {
          reason: "TOKEN_INVALID",
        });
      }
      const principal = principalFromClaims(payload);
      remember(token, principal, payload);
      return principal;
    },
  };
}

function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "expired";
  if (error instanceof joseErrors.JWTClaimValidationFailed && error.reason === "missing") return `claim "${error.claim}" is required`;
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim "${error.claim}" rejected`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "signature does not verify";
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "algorithm not allowed";
  if (error instanceof joseErrors.JWKSNoMatchingKey) return "no matching key";
  return "malformed";
}

function stringList(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value;
  return [];
}

/**
 * Roles come from the `roles` claim (array or space-separated string) or the
 * OAuth `scope` claim; the other claims stay with the principal for the
 * services' own grants.
 */
export function principalFromClaims(claims: JWTPayload): Principal {
  const roles = stringList(claims["roles"]) ?? stringList(claims["scope"]) ?? [];
  return {
    subject: claims.sub ?? "unknown",
    roles: new Set(roles),
    claims,
    unauthenticated: false,
  };
}

/**
 * A grant claim of the principal's token as a list of strings (an array, or
 * a space-separated string): undefined when the token has no such claim (no
 * narrowing), [] when the claim is malformed (nothing granted).
 */
export function claimList(principal: Principal, claim: string): readonly string[] | undefined {
  return stringList(principal.claims[claim]);
}

/** Whether a principal satisfies an access rule. */
export function isAllowed(principal: Principal, rule: AccessRule): boolean {
  if (rule === PUBLIC || rule === AUTHENTICATED || principal.internal === true) return true;
  return principal.roles.has(ADMIN_ROLE) || principal.roles.has(rule);
}

/** PERMISSION_DENIED unless the principal holds the role. */
export function requireRole(principal: Principal, rule: AccessRule, procedure: string): void {
  if (!isAllowed(principal, rule)) {
    throw rpcError(Code.PermissionDenied, `${procedure} requires the role "${rule}"`, {
      reason: "ROLE_MISSING",
      metadata: { role: rule },
    });
  }
}

export interface DevTokenOptions {
  /** The HS256 shared secret the server is configured with. */
  secret: string;
  subject: string;
  roles: readonly string[];
  /** More claims, e.g. a service's grants (`logs`, `kv_prefixes`). */
  claims?: Readonly<Record<string, unknown>>;
  /** Lifetime, as jose reads it ("1h", "15m") or seconds; default "1h". Negative values make expired tokens for tests. */
  expiresIn?: string | number;
  issuer?: string;
  audience?: string;
}

/** Signs an HS256 token for development, tests and the CLI. */
export async function signDevToken(options: DevTokenOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const lifetime = options.expiresIn ?? "1h";
  let jwt = new SignJWT({ ...options.claims, roles: [...options.roles] })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(options.subject)
    .setIssuedAt(now)
    .setExpirationTime(typeof lifetime === "number" ? now + lifetime : lifetime);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret));
}
