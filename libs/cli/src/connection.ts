// How every verb that calls a server reaches it: the URL, TLS and mTLS
// options (or their environment variables), and the bearer token.
import { createAnnalsClients, type AnnalsClients, type TransportOptions } from "@annals/client";
import { UsageError } from "./usage-error.js";

/** The parseArgs options every server verb takes. */
export const CONNECTION_OPTIONS = {
  url: { type: "string" },
  ca: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  "server-name": { type: "string" },
} as const;

export const CONNECTION_USAGE = `Connection (every verb that calls a server):
  --url URL            the node's gRPC port (default $ANNALS_URL or http://127.0.0.1:50051;
                       https://… for TLS)
  --ca FILE            PEM CA bundle that the server's certificate chains to ($ANNALS_CA_FILE)
  --cert FILE          PEM client certificate, for mTLS ($ANNALS_CERT_FILE)
  --key FILE           its PEM private key ($ANNALS_KEY_FILE)
  --server-name NAME   the name the server's certificate must carry, instead of the URL's host
                       ($ANNALS_SERVER_NAME): a host name, or a URI such as
                       spiffe://acme.example/annals/eu-1 (then the certificate's only URI SAN
                       must be exactly it, as federation checks)
  $ANNALS_TOKEN        sent as the bearer token when set (make one with \`annals token\`)`;

export interface ConnectionValues {
  url?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  "server-name"?: string | undefined;
}

/** The transport options of a command line, with the environment filling what it leaves out. */
export function transportOptions(values: ConnectionValues, env: NodeJS.ProcessEnv = process.env): TransportOptions {
  const baseUrl = values.url ?? env.ANNALS_URL ?? "http://127.0.0.1:50051";
  const ca = values.ca ?? env.ANNALS_CA_FILE;
  const cert = values.cert ?? env.ANNALS_CERT_FILE;
  const key = values.key ?? env.ANNALS_KEY_FILE;
  const serverName = values["server-name"] ?? env.ANNALS_SERVER_NAME;
  if (!/^https?:\/\/[^/]+\/?$/.test(baseUrl)) throw new UsageError(`--url must be http://host:port or https://host:port (got ${JSON.stringify(baseUrl)})`);
  const secure = baseUrl.startsWith("https://");
  const given = [ca && "--ca", cert && "--cert", key && "--key", serverName && "--server-name"].filter(Boolean);
  if (!secure && given.length > 0) {
    throw new UsageError(`${given.join(", ")} only apply to TLS: use an https:// URL (the URL is ${baseUrl})`);
  }
  if ((cert === undefined) !== (key === undefined)) throw new UsageError("--cert and --key go together (the client certificate and its private key)");
  const token = env.ANNALS_TOKEN;
  const tls: NonNullable<TransportOptions["tls"]> = {
    ...(ca ? { caFile: ca } : {}),
    ...(cert ? { certFile: cert } : {}),
    ...(key ? { keyFile: key } : {}),
    ...(serverName ? (serverName.includes("://") ? { serverUri: serverName } : { serverName }) : {}),
  };
  return { baseUrl, ...(token ? { token } : {}), ...(secure ? { tls } : {}) };
}

export function connect(values: ConnectionValues): AnnalsClients {
  return createAnnalsClients(transportOptions(values));
}

/**
 * Takes the TLS options out of a command line whose own parser knows only
 * --url (the federation and peers verbs): `--ca X`, `--ca=X` and the like.
 */
export function takeTlsOptions(args: readonly string[]): { rest: string[]; values: ConnectionValues } {
  const names = ["ca", "cert", "key", "server-name"] as const;
  const rest: string[] = [];
  const values: ConnectionValues = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    const name = names.find((candidate) => arg === `--${candidate}` || arg.startsWith(`--${candidate}=`));
    if (name === undefined) {
      rest.push(arg);
      continue;
    }
    if (arg.includes("=")) values[name] = arg.slice(arg.indexOf("=") + 1);
    else if (i + 1 < args.length) values[name] = args[++i]!;
    else throw new UsageError(`--${name} needs a value`);
  }
  return { rest, values };
}
