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
//   TMPDIR                     where tests put their scratch files; unset: a new folder in /dev/shm
//                              (removed at the end) when it has 4 GiB free, else the system's.
//
// Test files named on the command line (e.g. `node scripts/test.mjs
// services/log/dist/reads.test.js`) run instead of all of them.
import { run } from "node:test";
import { spec } from "node:test/reporters";
import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync } from "node:fs";
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
// Scratch files (PGlite test databases are 40 MB copies of a template, and
// PGlite writes through them) go to memory when the machine has room there:
// on this 2-core CI machine a copy took 0.8 s of system time on disk and
// 0.05 s on /dev/shm, and the PGlite pass 291 s instead of 319 s. A TMPDIR
// that is set is kept.
let scratch;
if (process.env.TMPDIR === undefined && hasRoom("/dev/shm", 4 * 2 ** 30)) {
  scratch = mkdtempSync("/dev/shm/annals-tests-");
  process.env.TMPDIR = scratch;
}
function hasRoom(dir, bytes) {
  try {
    const { bavail, bsize } = statfsSync(dir);
    return bavail * bsize >= bytes;
  } catch {
    return false;
  }
}

console.log(
  `annals tests: ${files.length} files in ${testDirs.length} packages, database: ${target}, Node ${process.version}` +
    (scratch ? `, scratch files in ${scratch}` : ""),
);

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

// How long each file's tests took (the sum of its top-level tests and suites),
// printed after the summary: the list to start from when the suite grows too long.
// (Reports of a file arrive in bursts, so their arrival times say little.)
const durations = new Map();
for (const event of ["test:pass", "test:fail"]) {
  stream.on(event, ({ file, nesting, details }) => {
    if (file === undefined || nesting !== 0) return;
    durations.set(file, (durations.get(file) ?? 0) + (details.duration_ms ?? 0) / 1000);
  });
}
process.on("exit", () => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  const slowest = [...durations].map(([file, seconds]) => [relative(root, file), seconds]).sort((a, b) => b[1] - a[1]);
  console.log("ℹ slowest test files (seconds, the sum of their top-level tests):");
  for (const [file, seconds] of slowest.slice(0, 20)) console.log(`ℹ   ${seconds.toFixed(1).padStart(6)}  ${file}`);
});
