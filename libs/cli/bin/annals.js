#!/usr/bin/env node
// The `annals` command as npm links it (node_modules/.bin/annals). This file is
// committed, so `npm ci` can link it before anything is built; it runs the
// compiled CLI, or says how to build it.
import { existsSync } from "node:fs";

const main = new URL("../dist/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("annals: the CLI is not built yet; run `npm run build` (or `npm start`) in the repository first\n");
  process.exit(1);
}
await import(main.href);
