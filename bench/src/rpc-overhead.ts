// The runtime's own cost: a no-op unary call (DiagService.Ping) through the
// annals runtime, on its gRPC port and on its HTTP port, against the same call
// on servers with no middleware at all.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { diagV1 } from "@annals/proto";
import { grpcServiceDefinition } from "@annals/runtime";
import { startBenchServer, type ServerKind } from "./bench-server-process.js";
import { benchToken } from "./bench-token.js";
import { runLoad, type LoadResult } from "./load.js";
import { formatTable } from "./table.js";

const DiagClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(diagV1.DiagService), "DiagService");

/** A grpc-js client (the same one for every gRPC-port server, so only the server differs). */
function grpcPing(port: number, token: string | undefined) {
  const client = new DiagClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    ping(request: object, metadata: grpc.Metadata, callback: (error: Error | null) => void): void;
    close(): void;
  };
  const metadata = new grpc.Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  const request = { data: new Uint8Array(0) };
  return {
    call: () => new Promise<void>((resolve, reject) => client.ping(request, metadata, (error) => (error ? reject(error) : resolve()))),
    close: () => client.close(),
  };
}

/** A connect-es client speaking the Connect protocol (binary) over HTTP/1.1. */
function connectPing(port: number, token: string | undefined) {
  const client = createClient(
    diagV1.DiagService,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: "1.1",
      interceptors: token ? [(next) => (request) => (request.header.set("authorization", `Bearer ${token}`), next(request))] : [],
    }),
  );
  return { call: () => client.ping({}), close: () => {} };
}

interface Case {
  label: string;
  server: ServerKind;
  port: "grpc" | "http";
  auth: boolean;
}

const CASES: Case[] = [
  { label: "bare grpc-js (baseline)", server: "bare-grpc", port: "grpc", auth: false },
  { label: "annals gRPC port, auth off", server: "annals-off", port: "grpc", auth: false },
  { label: "annals gRPC port, JWT", server: "annals-jwt", port: "grpc", auth: true },
  { label: "bare connect-node HTTP/1.1", server: "bare-connect", port: "http", auth: false },
  { label: "annals HTTP port, auth off", server: "annals-off", port: "http", auth: false },
  { label: "annals HTTP port, JWT", server: "annals-jwt", port: "http", auth: true },
];

export interface RpcOverheadOptions {
  concurrencies: number[];
  durationMs: number;
  warmupMs: number;
}

export async function rpcOverhead(options: RpcOverheadOptions): Promise<void> {
  console.log(
    `rpc-overhead: no-op unary DiagService.Ping, closed loop, ${options.durationMs} ms per cell after ${options.warmupMs} ms warm-up;\n` +
      "server in its own process, grpc-js client for gRPC ports, connect-es Connect-protocol client for HTTP ports.\n" +
      "ratio = calls/s ÷ calls/s of the bare grpc-js server at the same concurrency (1.00 = no overhead);\n" +
      "srv CPU = the server process's CPU time per call (/proc, warm-up included); CPU ratio against the same baseline.\n",
  );
  const token = await benchToken();
  const results = new Map<string, LoadResult & { serverCpuUsPerCall: number }>();
  for (const benchCase of CASES) {
    const server = await startBenchServer(benchCase.server);
    try {
      for (const concurrency of options.concurrencies) {
        const port = benchCase.port === "grpc" ? server.grpcPort : server.httpPort;
        const client = benchCase.port === "grpc" ? grpcPing(port, benchCase.auth ? token : undefined) : connectPing(port, benchCase.auth ? token : undefined);
        const cpuBefore = server.cpuSeconds();
        const load = await runLoad(client.call, concurrency, options.durationMs, options.warmupMs);
        const serverCpuUsPerCall = ((server.cpuSeconds() - cpuBefore) * 1e6) / (load.calls + load.warmupCalls);
        results.set(`${benchCase.label}@${concurrency}`, { ...load, serverCpuUsPerCall });
        client.close();
      }
    } finally {
      await server.stop();
    }
  }
  const rows = CASES.flatMap((benchCase) =>
    options.concurrencies.map((concurrency) => {
      const result = results.get(`${benchCase.label}@${concurrency}`)!;
      const baseline = results.get(`${CASES[0]!.label}@${concurrency}`)!;
      return [
        benchCase.label,
        String(concurrency),
        result.callsPerSecond.toFixed(0),
        result.p50Ms.toFixed(3),
        result.p99Ms.toFixed(3),
        String(result.errors),
        (result.callsPerSecond / baseline.callsPerSecond).toFixed(2),
        result.serverCpuUsPerCall.toFixed(0),
        (result.serverCpuUsPerCall / baseline.serverCpuUsPerCall).toFixed(2),
      ];
    }),
  );
  console.log(formatTable(["server", "callers", "calls/s", "p50 ms", "p99 ms", "errors", "ratio", "srv CPU µs/call", "CPU ratio"], rows));
}
