// Starts bench-server.js as its own process and reads the ports it prints.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { processCpuSeconds } from "./process-cpu.js";

/** The servers bench-server.js starts (see there). */
export type ServerKind = "bare-grpc" | "bare-connect" | "annals-off" | "annals-jwt" | "bare-grpc-fanout" | "bare-grpc-append";

export interface BenchServer {
  grpcPort: number;
  httpPort: number;
  pid: number;
  /** CPU seconds (user + system) the server process has used so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

export async function startBenchServer(kind: ServerKind): Promise<BenchServer> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(new URL("./bench-server.js", import.meta.url)), kind], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
  const ports = JSON.parse(line) as { grpcPort: number; httpPort: number };
  return {
    ...ports,
    pid: child.pid!,
    cpuSeconds: () => processCpuSeconds(child.pid!),
    stop: async () => {
      child.kill("SIGTERM");
      if (child.exitCode === null) await once(child, "exit");
    },
  };
}
