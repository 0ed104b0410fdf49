import { signDevToken } from "@annals/runtime";

/** The shared secret of the benchmark's JWT server; benchmarks only. */
export const BENCH_SECRET = "annals-benchmark-secret-of-at-least-32-bytes";

export function benchToken(roles: string[] = []): Promise<string> {
  return signDevToken({ secret: BENCH_SECRET, subject: "bench", roles });
}
