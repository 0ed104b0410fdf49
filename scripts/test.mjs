// Runs every package's compiled tests (`dist/**/*.test.js`) in one node:test
// run, so that one summary covers the whole tree. The packages must be built
// first (`npm test` does that through turbo).
//
// Environment:
//   ANNALS_TEST_DATABASE_URL   run database tests against this PostgreSQL server
//                              (each test creates and drops its own database);
//                              unset: embedded PGlite.
//   ANNALS_TEST_REDIS_URL      the Redis server of the kv tests (default redis://127.0.0.1:6379);
//                              tests that need it are skipped, with the reason, when it does not answer
//   ANNALS_TEST_REQUIRE_REDIS=1 fail those tests instead of skipping them (CI sets it).
//   ANNALS_TEST_NATS_URL, ANNALS_TEST_REQUIRE_NATS=1  the same for the NATS server (default 127.0.0.1:4222)
//                              that subject matching is checked against.
//   ANNALS_TEST_CHROMIUM       the Chromium the browser tests drive (default /usr/bin/chromium, Debian's
//                              `chromium` package); tests that need it are skipped, with the reason, when it is missing
//   ANNALS_TEST_REQUIRE_BROWSER=1 fail those tests instead of skipping them (CI sets it).
//   ANNALS_TEST_CONCURRENCY    test files run at once (default 2).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const packages = ["libs", "services"]
  .flatMap((group) => readdirSync(join(root, group)).map((name) => join(group, name)))
  .concat("bench", "deploy");
const testDirs = packages.map((dir) => join(dir, "dist")).filter((dir) => existsSync(join(root, dir)));
// The test files themselves, not their folders: Node 20 searches a folder
// given to --test for test files, but Node 22 runs a folder as a module (its
// index.js), which ran one package's benchmarks and no test at all.
const testFiles = testDirs.flatMap((dir) =>
  readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".test.js"))
    .map((entry) => relative(root, join(entry.parentPath ?? entry.path, entry.name)))
    .sort(),
);

const target = process.env.ANNALS_TEST_DATABASE_URL ? "PostgreSQL (ANNALS_TEST_DATABASE_URL)" : "embedded PGlite";
console.log(`annals tests: ${testFiles.length} files in ${testDirs.length} packages, database: ${target}, Node ${process.version}`);

const result = spawnSync(
  process.execPath,
  [
    "--test",
    "--test-reporter=spec",
    `--test-concurrency=${process.env.ANNALS_TEST_CONCURRENCY ?? "2"}`,
    // Per test, and per test file: the files that run every documented command
    // (services/node: readme-commands, operations-commands) take 2–3 minutes.
    "--test-timeout=300000",
    ...process.argv.slice(2),
    ...testFiles,
  ],
  { cwd: root, stdio: "inherit" },
);
process.exit(result.status ?? 1);
