// The fuzz suite (issue 14, section 6): every RPC of every service the
// process serves, enumerated from the protobuf descriptors, on both ports and
// every protocol, fed malformed and well-formed requests from a seeded
// corpus; then the process must be alive and SERVING, and nothing may be
// half-written. Runs against the all-in-one node and the standalone log service.
//
// Environment:
//   ANNALS_FUZZ_SEED         the seed (default 14); the same seed plans the same cases
//   ANNALS_FUZZ_CASES        cases against the node (default 5000); the log service gets a quarter
//   ANNALS_FUZZ_CONCURRENCY  calls in flight (default 8)
//   ANNALS_FUZZ_BUDGET_MS    time allowed for sending cases, shared by the processes in proportion
//                            to their cases (default 60000); cases left when a process's share
//                            runs out are reported as not run
//   ANNALS_FUZZ_ONLY         comma-separated case numbers (the table's "case" column): run just those
//   ANNALS_FUZZ_TARGETS      which processes to fuzz: "node", "log" or both (default "node,log")
//   ANNALS_FUZZ_LOG          a file to write every case's outcome to, one JSON object a line
// and ANNALS_TEST_DATABASE_URL as for every test (PGlite when unset).
import assert from "node:assert/strict";
import { appendFileSync, writeFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create, toJson, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { createClient, type Transport as ConnectTransport } from "@connectrpc/connect";
import { createAnnalsClients, createAnnalsTransport } from "@annals/client";
import { createTestDatabase, type TestDatabase } from "@annals/db/testing";
import { allFiles } from "@annals/proto";
import { signDevToken } from "@annals/runtime";
import { grpcJsHealthCheck, grpcJsReflectionServices, startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";
import { checkKv, checkLogs, writeCanaries, type Canaries } from "./fuzz/checks.js";
import { buildRpcCase, buildSseCase } from "./fuzz/corpus.js";
import { methodName, methodsOf, planCases, type AuthCase, type CasePlan } from "./fuzz/plan.js";
import { Tally } from "./fuzz/report.js";
import { fieldRole } from "./fuzz/values.js";
import { Wire } from "./fuzz/wire.js";

const SECRET = "fuzz-suite-jwt-secret-of-at-least-32-bytes";
const SEED = Number(process.env.ANNALS_FUZZ_SEED ?? 14) >>> 0;
const NODE_CASES = Number(process.env.ANNALS_FUZZ_CASES ?? 5000);
const CONCURRENCY = Math.max(1, Number(process.env.ANNALS_FUZZ_CONCURRENCY ?? 8));
const BUDGET_MS = Number(process.env.ANNALS_FUZZ_BUDGET_MS ?? 60_000);
const ONLY = process.env.ANNALS_FUZZ_ONLY ? new Set(process.env.ANNALS_FUZZ_ONLY.split(",").map(Number)) : undefined;
const LOG_FILE = process.env.ANNALS_FUZZ_LOG;
/** Log ids that exist (written before the run) and pass validation; the generator draws from them. */
const LOG_IDS = ["fuzz-a", "fuzz/b", "fuzz_c", "orders"];
/** How often health is asked while the cases run, in ms. */
const HEALTH_WATCH_MS = 2000;
/** How long the checks after the run may take, in ms. */
const CHECKS_MS = 45_000;

interface Target {
  /** Short name in the tables. */
  name: string;
  script: string;
  cases: number;
  /** Whether it serves the SSE route and the KV service (checked afterwards). */
  sse: boolean;
  kv: boolean;
}

const TARGETS: Target[] = [
  { name: "node", script: fileURLToPath(new URL("./main.js", import.meta.url)), cases: NODE_CASES, sse: true, kv: true },
  { name: "log", script: fileURLToPath(new URL("../../log/dist/main.js", import.meta.url)), cases: Math.ceil(NODE_CASES / 4), sse: false, kv: false },
].filter((target) => (process.env.ANNALS_FUZZ_TARGETS ?? "node,log").split(",").includes(target.name));
const TOTAL_CASES = TARGETS.reduce((sum, target) => sum + target.cases, 0);
/** A process's share of the sending budget, in ms. */
const budgetOf = (target: Target) => Math.round((BUDGET_MS * target.cases) / TOTAL_CASES);

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function authorizations(): Promise<Record<AuthCase, string | undefined>> {
  const sign = (options: { secret?: string; roles?: string[]; expiresIn?: string | number }) =>
    signDevToken({ secret: options.secret ?? SECRET, subject: "fuzz", roles: options.roles ?? ["admin"], expiresIn: options.expiresIn ?? "2h" });
  return {
    admin: `Bearer ${await sign({})}`,
    none: undefined,
    garbage: "Bearer not-a-jwt",
    forged: `Bearer ${await sign({ secret: `${SECRET}-forged` })}`,
    expired: `Bearer ${await sign({ expiresIn: -60 })}`,
    "no-role": `Bearer ${await sign({ roles: [] })}`,
  };
}

/** The services the process lists through reflection, as descriptors (so new ones are fuzzed without a change here). */
async function servedServices(grpcPort: number): Promise<DescService[]> {
  const listed = new Set(await grpcJsReflectionServices(`127.0.0.1:${grpcPort}`));
  const services = new Map<string, DescService>();
  const visit = (file: (typeof allFiles)[number]) => {
    for (const service of file.services) if (listed.has(service.typeName)) services.set(service.typeName, service);
    file.dependencies.forEach(visit);
  };
  allFiles.forEach(visit);
  return [...services.values()].sort((a, b) => a.typeName.localeCompare(b.typeName));
}

/**
 * Page tokens and cursors as the process issues them, one page of size 1
 * from every listing, so that tokens of one listing can be tried on another.
 */
async function harvestPageTokens(methods: readonly DescMethod[], transport: ConnectTransport): Promise<Map<string, string[]>> {
  const tokens = new Map<string, string[]>();
  for (const method of methods) {
    if (method.methodKind !== "unary" || !method.input.fields.some((field) => fieldRole(field) === "page-token")) continue;
    const request: Record<string, unknown> = {};
    for (const field of method.input.fields) {
      if (fieldRole(field) === "size") request[field.localName] = 1;
      if (fieldRole(field) === "log-id") request[field.localName] = LOG_IDS[0];
    }
    const client = createClient(method.parent, transport) as unknown as Record<string, (input: unknown) => Promise<unknown>>;
    try {
      const response = await client[method.localName]!(create(method.input, request as never));
      const json = toJson(method.output, response as never) as Record<string, unknown>;
      const found = Object.entries(json)
        .filter(([key, value]) => /(PageToken|Cursor)$/.test(key) && typeof value === "string" && value !== "")
        .map(([, value]) => value as string);
      if (found.length > 0) tokens.set(methodName(method), found);
    } catch {
      // A listing that needs more than this to answer simply gives no token.
    }
  }
  return tokens;
}

async function runCases(
  target: Target,
  plans: readonly CasePlan[],
  wire: Wire,
  build: (plan: CasePlan) => ReturnType<typeof buildRpcCase>,
  auth: Record<AuthCase, string | undefined>,
  tally: Tally,
  deadline: number,
): Promise<number> {
  let next = 0;
  let run = 0;
  const lane = async () => {
    while (next < plans.length && Date.now() < deadline) {
      const plan = plans[next++]!;
      const request = build(plan);
      let authorization = auth[plan.auth];
      if (plan.transport === "http-get" && authorization !== undefined && plan.seed % 2 === 0) {
        // EventSource cannot set headers: half the SSE cases carry the token in the query.
        request.path = `${request.path}${request.path!.includes("?") ? "&" : "?"}token=${authorization.slice("Bearer ".length)}`;
        authorization = undefined;
      }
      const outcome = await wire.send(plan, request, authorization);
      run++;
      tally.record({
        target: target.name,
        plan,
        inputClass: request.inputClass,
        outcome,
        reproducer: request.reproducer,
        ...(request.expectedInternal ? { expectedInternal: request.expectedInternal } : {}),
      });
      if (LOG_FILE) {
        const { index, method, transport, auth: credentials } = plan;
        appendFileSync(LOG_FILE, `${JSON.stringify({ target: target.name, index, method, transport, auth: credentials, inputClass: request.inputClass, ...outcome, reproducer: request.reproducer })}\n`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  return run;
}

/** A process under test, started on a database of its own, with the admin clients the checks use. */
async function startTarget(target: Target, auth: Record<AuthCase, string | undefined>) {
  const database: TestDatabase = await createTestDatabase(`fuzz_${target.name}`);
  cleanups.push(() => database.drop());
  const adminToken = auth.admin!.slice("Bearer ".length);
  const child: ServiceProcess = await startServiceProcess({
    script: target.script,
    env: { ...database.env, ANNALS_AUTH_JWT_SECRET: SECRET, ANNALS_SHUTDOWN_GRACE_MS: "2000" },
    readyTimeoutMs: 120_000,
  });
  cleanups.push(() => child.stop("SIGKILL"));
  const address = `127.0.0.1:${child.grpcPort}`;
  const transport = createAnnalsTransport({ baseUrl: `http://${address}`, token: adminToken, maxRetries: 0, unaryTimeoutMs: 30_000 });
  return { child, address, transport, clients: createAnnalsClients({ transport }) };
}

type Started = Awaited<ReturnType<typeof startTarget>>;

/** Whether the process is alive, SERVING for every service, and its data whole (the checks in fuzz/checks.ts). */
async function checkAfterwards(target: Target, started: Started, services: readonly DescService[], canaries: Canaries) {
  const problems: string[] = [];
  try {
    process.kill(started.child.pid, 0);
  } catch {
    return { problems: [`the process died; its last output:\n${started.child.output().slice(-3000)}`], checked: "" };
  }
  // The health service reports on the others, not on itself.
  for (const service of ["", ...services.map((candidate) => candidate.typeName).filter((name) => !name.startsWith("grpc.health."))]) {
    const status = await grpcJsHealthCheck(started.address, service).catch((error: Error) => `failed: ${error.message}`);
    if (status !== "SERVING") problems.push(`health of ${service || "(server)"} is ${status}`);
  }
  const deadline = Date.now() + CHECKS_MS;
  const logs = await checkLogs(started.clients.log, canaries, deadline);
  problems.push(...logs.problems);
  let checked = `checked afterwards: ${logs.checked} of ${logs.total} logs`;
  if (target.kv) {
    const kv = await checkKv(started.clients.kv, canaries, deadline);
    problems.push(...kv.problems);
    checked += `, ${kv.checked} of ${kv.total} kv keys`;
  }
  return { problems, checked };
}

function failureReport(tally: Tally, target: Target, ran: number): string {
  if (tally.failures === 0) return "";
  return [
    `${tally.failures} of ${ran} calls answered INTERNAL, UNKNOWN or HTTP 500 (rerun one: ANNALS_FUZZ_SEED=${SEED} ANNALS_FUZZ_TARGETS=${target.name} ANNALS_FUZZ_ONLY=<case>).`,
    "",
    "by cause:",
    tally.causeTable(),
    "",
    `by method (${tally.distinctFailures} distinct method, input class and status):`,
    tally.methodTable(),
    "",
  ].join("\n");
}

describe(`fuzz (seed ${SEED}; ANNALS_FUZZ_SEED, ANNALS_FUZZ_CASES, ANNALS_FUZZ_ONLY to change)`, () => {
  for (const target of TARGETS) {
    test(`${target.name}: no input gets INTERNAL, UNKNOWN or HTTP 500; the process stays up and SERVING; nothing is half-written`, { timeout: budgetOf(target) + 110_000 }, async () => {
      const startedAt = Date.now();
      const auth = await authorizations();
      const started = await startTarget(target, auth);
      const services = await servedServices(started.child.grpcPort);
      const methods = methodsOf(services);

      const canaries = await writeCanaries(started.clients.log, target.kv ? started.clients.kv : undefined);
      for (const [i, logId] of LOG_IDS.entries()) {
        for (let n = 0; n < 3; n++) {
          await started.clients.log.append({ logId, entry: { kind: "fuzz.seeded", body: { case: "payload", value: { n } }, sourceId: `source-${n % 2}`, simTime: i * 10 + n } });
        }
      }
      const context = { logIds: LOG_IDS, pageTokens: await harvestPageTokens(methods, started.transport), serviceNames: services.map((service) => service.typeName) };
      const plans = planCases({ seed: (SEED ^ hash(target.name)) >>> 0, cases: target.cases, methods, sse: target.sse }).filter((plan) => !ONLY || ONLY.has(plan.index));

      if (LOG_FILE && target === TARGETS[0]) writeFileSync(LOG_FILE, "");
      const wire = new Wire({ host: "127.0.0.1", grpcPort: started.child.grpcPort, httpPort: started.child.httpPort, callTimeoutMs: 10_000, streamWindowMs: 300 });
      cleanups.push(async () => wire.close());
      const tally = new Tally();
      const problems: string[] = [];
      // Health is asked throughout the run, not only at its end.
      const healthWatch = setInterval(() => {
        void grpcJsHealthCheck(started.address, "").then(
          (status) => status === "SERVING" || problems.push(`health was ${status} during the run`),
          (error: Error) => problems.push(`health check failed during the run: ${error.message}`),
        );
      }, HEALTH_WATCH_MS);
      const fuzzStartedAt = Date.now();
      const build = (plan: CasePlan) => (plan.rpc ? buildRpcCase(plan, context) : buildSseCase(plan, context));
      const ran = await runCases(target, plans, wire, build, auth, tally, fuzzStartedAt + budgetOf(target)).finally(() => clearInterval(healthWatch));
      const fuzzSeconds = (Date.now() - fuzzStartedAt) / 1000;

      const afterwards = await checkAfterwards(target, started, services, canaries);
      problems.push(...afterwards.problems);

      const notRun = plans.length - ran;
      const summary = [
        `fuzz ${target.name}: seed ${SEED}, ${ran} of ${plans.length} cases in ${fuzzSeconds.toFixed(1)} s (${methods.length} RPCs of ${services.length} services${target.sse ? " + the SSE route" : ""}, ${CONCURRENCY} in flight), ${((Date.now() - startedAt) / 1000).toFixed(1)} s in all`,
        ...(notRun > 0 ? [`WARNING: ${notRun} cases not run: this process's ${budgetOf(target)} ms share of the budget ran out (ANNALS_FUZZ_BUDGET_MS)`] : []),
        ...(afterwards.checked ? [afterwards.checked] : []),
        "calls by status and port:",
        tally.countsTable(),
      ].join("\n");
      process.stdout.write(`${summary.replace(/^/gm, "# ")}\n`);

      const failures = failureReport(tally, target, ran);
      const broken = problems.length > 0 ? `process, health and data:\n${[...new Set(problems)].map((problem) => `  - ${problem}`).join("\n")}\n` : "";
      if (failures || broken) assert.fail(`fuzz ${target.name} (seed ${SEED}):\n${failures}${broken}`);
    });
  }
});

function hash(text: string): number {
  let value = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) value = Math.imul(value ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return value;
}
