#!/usr/bin/env node
// The container's entrypoint: `annals-entrypoint <log|kv|federation|stream|node>`
// runs that service; `annals-entrypoint annals …` runs the CLI. No shell: the
// argument picks a compiled main.js, which then reads its configuration from
// the environment.
import { fileURLToPath, pathToFileURL } from "node:url";

const MAINS = {
  log: "services/log/dist/main.js",
  kv: "services/kv/dist/main.js",
  federation: "services/federation/dist/main.js",
  stream: "services/stream/dist/main.js",
  node: "services/node/dist/main.js",
  annals: "libs/cli/dist/main.js",
};

const [command, ...rest] = process.argv.slice(2);
const main = MAINS[command ?? ""];
if (!main) {
  process.stderr.write(`usage: annals-entrypoint <${Object.keys(MAINS).join("|")}> [arguments]\n`);
  process.exit(2);
}
// The chosen program sees its own arguments, as if it had been started directly.
process.argv = [process.argv[0], fileURLToPath(new URL(`../../${main}`, import.meta.url)), ...rest];
await import(pathToFileURL(process.argv[1]).href);
