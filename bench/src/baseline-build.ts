// A build of an earlier commit, for benchmarks that compare a change with the
// code before it in the same run. The commit's tree is unpacked into
// .bench-baseline/<commit>/ at the repository's root (git archive, npm ci,
// a build of the one workspace asked for) once, and reused by later runs.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface BaselineBuild {
  /** The full commit id. */
  commit: string;
  /** The absolute path of the requested file in the baseline build. */
  path: string;
}

/** `file` of `workspace` (a package name) built at `commit`. */
export async function baselineBuild(commit: string, workspace: string, file: string): Promise<BaselineBuild> {
  const full = execFileSync("git", ["rev-parse", "--verify", `${commit}^{commit}`], { cwd: ROOT, encoding: "utf8" }).trim();
  const dir = join(ROOT, ".bench-baseline", full);
  const path = join(dir, file);
  if (existsSync(path)) return { commit: full, path };
  process.stderr.write(`building the baseline ${full} in ${dir} (once; later runs reuse it)\n`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const run = (command: string, args: string[]) => execFileSync(command, args, { cwd: dir, stdio: ["ignore", process.stderr, process.stderr] });
  execFileSync("sh", ["-c", `git -C "${ROOT}" archive ${full} | tar -x -C "${dir}"`], { stdio: ["ignore", process.stderr, process.stderr] });
  run("npm", ["ci", "--no-audit", "--no-fund"]);
  run("npx", ["turbo", "run", "build", `--filter=${workspace}`, "--output-logs=errors-only"]);
  if (!existsSync(path)) throw new Error(`the baseline build of ${full} has no ${file}`);
  return { commit: full, path };
}
