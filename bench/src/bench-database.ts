import pg from "pg";

/** A database of its own for one benchmark, on ANNALS_BENCH_DATABASE_URL's server (default the local one). */
export interface BenchDatabase {
  name: string;
  /** postgres://…/<name>, for DATABASE_URL and pg clients. */
  url: string;
  /** host:port, for the description a benchmark prints. */
  host: string;
  drop(): Promise<void>;
}

export async function createBenchDatabase(label: string): Promise<BenchDatabase> {
  const serverUrl = process.env.ANNALS_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const name = `annals_bench_${label}_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    host: url.host,
    drop: async () => {
      const dropper = new pg.Client({ connectionString: serverUrl });
      await dropper.connect();
      try {
        await dropper.query(`drop database if exists ${name} with (force)`);
      } finally {
        await dropper.end();
      }
    },
  };
}
