// Helpers for tests that run an annals process for real and talk to it with
// independent clients (@grpc/grpc-js with proto-loader, buf curl). Exported as
// "@annals/runtime/testing"; not for production code.
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:tls";
import { once } from "node:events";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { Env } from "./config.js";
import { signDevToken } from "./auth.js";
import { serveComponents, type ServeOptions } from "./serve.js";
import { readServerConfig, type ServerConfig } from "./server-config.js";
import type { RunningServer } from "./server.js";

/** The repository's proto/ folder (this file runs from libs/runtime/dist). */
export const PROTO_ROOT = fileURLToPath(new URL("../../../proto", import.meta.url));
const REFLECTION_PROTO_ROOT = join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection")), "..", "proto");

export interface ServiceProcess {
  readonly pid: number;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The metrics-only port, when the process runs one (ANNALS_METRICS_PORT). */
  readonly metricsPort: number | undefined;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends a signal and waits for the exit; reports the exit and how long it took. */
  stop(signal?: NodeJS.Signals): Promise<ProcessExit & { elapsedMs: number }>;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartProcessOptions {
  /** The compiled main.js to run with node… */
  script?: string;
  /** …or a whole command, e.g. ["npm", "start"]. */
  command?: readonly string[];
  /** Added to this process's environment; ports default to 0 (free ones). */
  env?: Record<string, string>;
  /** How long to wait for the "listening" log line, in ms. Default 60000. */
  readyTimeoutMs?: number;
}

/**
 * Starts an annals process and resolves once it logs "listening" (both
 * listeners up, health SERVING), with the ports it reports.
 */
export async function startServiceProcess(options: StartProcessOptions): Promise<ServiceProcess> {
  const [file, ...args] = options.command ?? [process.execPath, options.script ?? "main.js"];
  // Its own process group, so that stop() reaches the node process behind `npm start` too.
  const child = spawn(file!, args, {
    env: { ...process.env, ANNALS_PORT: "0", ANNALS_HTTP_PORT: "0", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const exited = new Promise<ProcessExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const ports = await new Promise<{ grpcPort: number; httpPort: number; metricsPort: number | undefined }>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no "listening" line within ${options.readyTimeoutMs ?? 60_000} ms`)), options.readyTimeoutMs ?? 60_000);
    const fail = (error: Error) => {
      clearTimeout(timer);
      signalGroup(child, "SIGKILL");
      reject(new Error(`${error.message}; output:\n${output}`));
    };
    let pending = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        const record = parseJson(line);
        if (record?.msg === "listening") {
          clearTimeout(timer);
          resolve({ grpcPort: Number(record.grpcPort), httpPort: Number(record.httpPort), metricsPort: record.metricsPort === undefined ? undefined : Number(record.metricsPort) });
        }
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    void exited.then((exit) => fail(new Error(`process exited before listening (${JSON.stringify(exit)})`)));
  });
  return {
    pid: child.pid!,
    ...ports,
    output: () => output,
    stop: async (signal = "SIGTERM") => {
      const started = Date.now();
      if (child.exitCode === null && child.signalCode === null) signalGroup(child, signal);
      const exit = await exited;
      return { ...exit, elapsedMs: Date.now() - started };
    },
  };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is already gone.
  }
}

/** Runs `node ...nodeArgs` to its end (startup failures, CLI commands); kills it after `timeoutMs`. */
export async function runProcessToExit(
  nodeArgs: readonly string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<ProcessExit & { stdout: string; stderr: string }> {
  const child: ChildProcess = spawn(process.execPath, nodeArgs, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const exit = await new Promise<ProcessExit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  return { ...exit, stdout, stderr };
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** The string form of a health status as grpc-js with proto-loader reports it, e.g. "SERVING". */
export async function grpcJsHealthCheck(address: string, service: string): Promise<string> {
  const definition = protoLoader.loadSync("grpc/health/v1/health.proto", { includeDirs: [PROTO_ROOT], enums: String });
  const Health = (grpc.loadPackageDefinition(definition) as any).grpc.health.v1.Health;
  const client = new Health(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) =>
      client.Check({ service }, (error: Error | null, response: { status: string }) => (error ? reject(error) : resolve(response.status))),
    );
  } finally {
    client.close();
  }
}

/**
 * The services a server lists through gRPC reflection, asked with grpc-js and
 * the given protocol version ("v1" or "v1alpha").
 */
export async function grpcJsReflectionServices(address: string, version: "v1" | "v1alpha" = "v1"): Promise<string[]> {
  const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [REFLECTION_PROTO_ROOT] });
  const Reflection = (grpc.loadPackageDefinition(definition) as any).grpc.reflection[version].ServerReflection;
  const client = new Reflection(address, grpc.credentials.createInsecure());
  try {
    const call = client.ServerReflectionInfo();
    const answer = new Promise<string[]>((resolve, reject) => {
      call.on("data", (response: any) => {
        if (response.errorResponse) reject(new Error(response.errorResponse.errorMessage));
        else resolve(response.listServicesResponse.service.map((service: { name: string }) => service.name));
        call.end();
      });
      call.on("error", reject);
    });
    call.write({ listServices: "" });
    return await answer;
  } finally {
    client.close();
  }
}

/** Runs `buf curl` (the npm package's binary) and returns its stdout; throws with stderr on failure. */
export async function bufCurl(args: readonly string[]): Promise<string> {
  const buf = fileURLToPath(new URL("../../../node_modules/.bin/buf", import.meta.url));
  const child = spawn(buf, ["curl", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`buf curl ${args.join(" ")} exited with ${code}: ${stderr}`);
  return stdout;
}

/**
 * What independent clients see of one service on a gRPC port: its health
 * status (grpc-js), whether reflection v1 and v1alpha list it and Health
 * (grpc-js), and the methods `buf curl --list-methods` finds through
 * reflection with no schema files.
 */
export async function inspectService(grpcPort: number, service: string) {
  const address = `127.0.0.1:${grpcPort}`;
  const health = await grpcJsHealthCheck(address, service);
  const reflection = { v1: await grpcJsReflectionServices(address, "v1"), v1alpha: await grpcJsReflectionServices(address, "v1alpha") };
  const listed = (names: string[]) => names.includes(service) && names.includes("grpc.health.v1.Health");
  const methods = (await bufCurl(["--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", `http://${address}`]))
    .split("\n")
    .filter((line) => line.startsWith(`${service}/`));
  return { health, listedByReflection: listed(reflection.v1) && listed(reflection.v1alpha), methods };
}

/** Asserts that `call` fails with `code` (and a message matching `message`), and returns the error. */
export async function rejects(call: Promise<unknown>, code: Code, message?: RegExp): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    const connectError = ConnectError.from(error);
    assert.equal(Code[connectError.code], Code[code], `expected ${Code[code]}, got ${Code[connectError.code]}: ${connectError.message}`);
    if (message) assert.match(connectError.rawMessage, message);
    return connectError;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}

/**
 * The first message of a server stream, then the call is cancelled. connect-es
 * does not cancel a call when a `for await` loop breaks out of it (its
 * iterables have no `return`): the stream would stay open on the server until
 * its shutdown. undefined when the stream ends without a message.
 */
export async function firstFrame<T>(open: (signal: AbortSignal) => AsyncIterable<T>): Promise<T | undefined> {
  const controller = new AbortController();
  const messages = open(controller.signal)[Symbol.asyncIterator]();
  try {
    const first = await messages.next();
    return first.done ? undefined : first.value;
  } finally {
    // The abort reaches the server only once the call is read again.
    controller.abort();
    await messages.next().catch(() => undefined);
  }
}

/**
 * Settings of an in-process test server: free ports, JWT auth with `secret`,
 * quiet logs and a short shutdown; `env` adds or overrides variables.
 */
export function testServerConfig(secret: string, env: Env = {}): ServerConfig {
  return readServerConfig(
    { ANNALS_PORT: "0", ANNALS_HTTP_PORT: "0", ANNALS_AUTH_JWT_SECRET: secret, ANNALS_LOG_LEVEL: "warn", ANNALS_SHUTDOWN_GRACE_MS: "2000", ...env },
    { grpcPort: 0, httpPort: 0, allowAuthOff: false },
  );
}

/** A test certificate: PEM files made by openssl, and what they name. */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
}

/**
 * Test certificates made with openssl in `dir`: a CA called `ca` (files
 * `<ca>.pem`, `<ca>.key`) and, per entry of `names`, a P-256 key and a
 * certificate signed by that CA whose only URI SAN is the given SPIFFE ID
 * (plus IP 127.0.0.1), usable by servers and clients. A CA that exists in
 * `dir` already is reused, so a second call can add certificates to it.
 */
export function makeTestCertificates(dir: string, names: Record<string, string>, ca = "ca", days = 1): Record<string, TestCertificate> & { ca: string } {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  if (!existsSync(file(`${ca}.pem`))) {
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", file(`${ca}.key`), "-out", file(`${ca}.pem`), "-days", "2", "-subj", `/CN=annals test CA ${ca}`);
  }
  const made: Record<string, TestCertificate> = {};
  for (const [name, uri] of Object.entries(names)) {
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${name}`);
    writeFileSync(file(`${name}.ext`), `subjectAltName=URI:${uri},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n`);
    openssl("x509", "-req", "-in", file(`${name}.csr`), "-CA", file(`${ca}.pem`), "-CAkey", file(`${ca}.key`), "-CAcreateserial", "-out", file(`${name}.pem`), "-days", String(days), "-extfile", file(`${name}.ext`));
    made[name] = { certFile: file(`${name}.pem`), keyFile: file(`${name}.key`) };
  }
  return Object.assign(made, { ca: file(`${ca}.pem`) });
}

/**
 * Writes `files` into `dir` the way the kubelet updates a mounted Secret:
 * the contents go to a new hidden directory, a `..data` symlink is switched
 * to it with one rename, and each file name is a symlink through `..data`
 * (made once). Readers see the old set or the new one, never a mix.
 */
export function writeSecretVolume(dir: string, files: Record<string, string | Buffer>): void {
  mkdirSync(dir, { recursive: true });
  const version = `..${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
  mkdirSync(join(dir, version));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, version, name), content);
  symlinkSync(version, join(dir, "..data_tmp"));
  renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const name of Object.keys(files)) {
    if (!existsSync(join(dir, name))) symlinkSync(join("..data", name), join(dir, name));
  }
}

/**
 * What a new TLS connection presenting `client` gets: the fingerprint of the
 * server's certificate once the server answers the HTTP/2 preface, or
 * "refused". Under TLS 1.3 the server checks the client's certificate after
 * the client's side of the handshake is done, so only an answer tells.
 */
export function tlsHandshake(port: number, ca: string, client: TestCertificate): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      ca: readFileSync(ca),
      cert: readFileSync(client.certFile),
      key: readFileSync(client.keyFile),
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    const done = (result: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done("refused"), 1000);
    socket.once("secureConnect", () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.once("data", () => done(fingerprint));
      socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    });
    socket.once("error", () => done("refused"));
    socket.once("close", () => done("refused"));
  });
}

/** Polls `check` every 20 ms until it holds; fails the test after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface TestServer {
  server: RunningServer;
  /** The gRPC port, `http://127.0.0.1:<port>` (`https://` under TLS). */
  baseUrl: string;
  /** The HTTP port (Connect, SSE, /metrics). */
  httpUrl: string;
  /** A token of `roles` signed with the test secret; subject `test-<roles>` unless given. */
  /** A token with these roles, its subject (default from the roles) and more claims (a service's grants: `logs`, `kv_prefixes`). */
  tokenWith: (roles: readonly string[], claims?: { subject?: string; [claim: string]: unknown }) => Promise<string>;
  /** This server's Prometheus scrape (its own registry). */
  metrics: () => Promise<string>;
  /** Shuts the server down, then runs `onClose` (drop the database, clear Redis keys). */
  close: () => Promise<void>;
}

/**
 * The one harness of the service tests: components served in this process
 * as a process serves them (serveComponents, with JWT auth on `secret`,
 * free ports and quiet logs; `env` adds server settings), the URLs, tokens
 * and the metrics scrape. The log, kv, stream and federation harnesses build
 * their typed clients on it.
 */
export async function startTestServer(options: {
  label: string;
  secret: string;
  env?: Env;
  components: ServeOptions["components"];
  onClose?: () => Promise<void>;
}): Promise<TestServer> {
  const config = testServerConfig(options.secret, options.env);
  const server = await serveComponents({ name: `test-${options.label}`, server: config, components: options.components });
  const httpUrl = `http://127.0.0.1:${server.httpPort}`;
  let closing: Promise<void> | undefined;
  return {
    server,
    baseUrl: `${config.tls ? "https" : "http"}://127.0.0.1:${server.grpcPort}`,
    httpUrl,
    tokenWith: (roles, { subject, ...claims } = {}) => signDevToken({ secret: options.secret, subject: subject ?? `test-${roles.join("+")}`, roles, claims }),
    metrics: async () => (await fetch(`${httpUrl}/metrics`)).text(),
    close: () =>
      (closing ??= (async () => {
        await server.shutdown("test done");
        await options.onClose?.();
      })()),
  };
}

/**
 * Waits on state that events change (the messages of a stream), without
 * polling: `until` checks at once and again at each `changed()`, fails once
 * `ended()` is called while it does not hold (the source will change no
 * more), or after `timeoutMs`. The stream harnesses' `until` is this.
 */
export function eventWaiter(describe: () => string = () => "") {
  const checks = new Set<() => void>();
  let end: string | undefined;
  const changed = () => {
    for (const check of [...checks]) check();
  };
  return {
    changed,
    /** The source ended (`how`: cleanly, or its error); waits that do not hold now fail. */
    ended(how: string) {
      end = how;
      changed();
    },
    until(what: string, predicate: () => boolean, timeoutMs = 30_000): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const settle = (error?: Error) => {
          checks.delete(check);
          clearTimeout(timer);
          if (error) reject(error);
          else resolve();
        };
        const check = () => {
          if (predicate()) settle();
          else if (end !== undefined) settle(new Error(`the stream ended (${end}) before ${what}; ${describe()}`));
        };
        const timer = setTimeout(() => settle(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${describe()}`)), timeoutMs);
        checks.add(check);
        check();
      });
    },
  };
}
