import { readFileSync } from "node:fs";
import type pg from "pg";

/** CPU seconds (user + system) a process has used so far, from /proc (Linux; ticks are 1/100 s); 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return 0;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds the PostgreSQL backends connected to `database` use while
 * `work` runs (backends of a server on this machine: their pids from
 * pg_stat_activity, their times from /proc). A backend that exits during the
 * work is not counted; one that starts is counted whole.
 */
export async function backendCpuSecondsDuring(client: pg.Client, database: string, work: () => Promise<void>): Promise<number> {
  const backends = async () => (await client.query<{ pid: number }>("select pid from pg_stat_activity where datname = $1", [database])).rows.map((row) => row.pid);
  const before = new Map((await backends()).map((pid) => [pid, processCpuSeconds(pid)]));
  await work();
  let used = 0;
  for (const pid of await backends()) used += processCpuSeconds(pid) - (before.get(pid) ?? 0);
  return used;
}

/**
 * CPU seconds the whole machine has spent busy so far, summed over its cores
 * (/proc/stat: every state but idle and iowait; ticks are 1/100 s).
 */
export function machineBusySeconds(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) / 100;
}
