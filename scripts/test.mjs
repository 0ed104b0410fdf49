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
//
// Test files named on the command line (e.g. `node scripts/test.mjs
// services/log/dist/reads.test.js`) run instead of all of them.
import { run } from "node:test";
import { spec } from "node:test/reporters";
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
    .map((entry) => relative(root, join(entry.parentPath ?? entry.path, entry.name))),
);

// The longest files (over about 45 s each on a loaded 2-core machine, from a
// timed run) start first: in name order, several of them came last and the
// run ended with one of them going on alone while the other slot stood idle.
const LONGEST_FIRST = [
  "services/node/dist/readme-commands.test.js",
  "services/log/dist/cli-verbs.test.js",
  "services/log/dist/replicas.test.js",
  "services/stream/dist/stream-service.test.js",
  "services/kv/dist/conformance.test.js",
  "services/node/dist/browser.test.js",
  "services/federation/dist/cli.test.js",
  "services/kv/dist/differential.test.js",
  "services/node/dist/fuzz.test.js",
  "services/node/dist/node.test.js",
  "services/kv/dist/main.test.js",
  "services/log/dist/append-condition.test.js",
  "services/federation/dist/crash.test.js",
  "services/federation/dist/replication.test.js",
  "services/node/dist/operations-commands.test.js",
  "services/node/dist/node-tls.test.js",
  "services/kv/dist/cli.test.js",
];
const rank = (file) => {
  const index = LONGEST_FIRST.indexOf(file);
  return index === -1 ? LONGEST_FIRST.length : index;
};
testFiles.sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));

const selected = process.argv.slice(2);
const files = selected.length > 0 ? selected : testFiles;
const target = process.env.ANNALS_TEST_DATABASE_URL ? "PostgreSQL (ANNALS_TEST_DATABASE_URL)" : "embedded PGlite";
console.log(`annals tests: ${files.length} files in ${testDirs.length} packages, database: ${target}, Node ${process.version}`);

// run() keeps the files in the order given (the --test command line sorts
// them by name), so that the longest start first.
const stream = run({
  files: files.map((file) => join(root, file)),
  concurrency: Number(process.env.ANNALS_TEST_CONCURRENCY ?? "2"),
  // Per test file: the longest (services/node/dist/readme-commands.test.js,
  // which runs every command README.md gives) took 4 minutes on a loaded machine.
  timeout: 600_000,
});
stream.on("test:fail", () => {
  process.exitCode = 1;
});
stream.compose(new spec()).pipe(process.stdout);

// How long each file ran, from the first to the last report that names it,
// printed after the summary: the list to start from when the suite grows too long.
const spans = new Map();
for (const event of ["test:dequeue", "test:pass", "test:fail"]) {
  stream.on(event, ({ file }) => {
    if (file === undefined) return;
    const span = spans.get(file);
    if (span === undefined) spans.set(file, { first: Date.now(), last: Date.now() });
    else span.last = Date.now();
  });
}
process.on("exit", () => {
  const slowest = [...spans].map(([file, { first, last }]) => [relative(root, file), (last - first) / 1000]);
  slowest.sort((a, b) => b[1] - a[1]);
  console.log("ℹ slowest test files (seconds from their first test to their last):");
  for (const [file, seconds] of slowest.slice(0, 20)) console.log(`ℹ   ${seconds.toFixed(1).padStart(6)}  ${file}`);
});
