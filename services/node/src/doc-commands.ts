// Test support: the shell (and JavaScript) commands of a Markdown page, with
// the markers that say how a test runs them.
//
// A fenced block of language `sh` or `js` is a block of commands. The HTML
// comment on the line before its fence says how it is run:
//   (none)                                  run; must exit with status 0
//   <!-- not-run: REASON -->                not run; counted and reported with the reason
//   <!-- doc-test: until "TEXT" -->         run until its output shows TEXT, then Ctrl-C (SIGINT)
//   <!-- doc-test: background until "TEXT" -->
//                                           started; once TEXT shows it keeps running until the page is done
//   <!-- doc-test: retries while it fails (WHY) -->
//                                           run again (a bounded number of times) until it exits with 0
//   <!-- doc-test: at the end, … -->        run after every other block, once the nodes were stopped

export type BlockMode =
  | { kind: "run" }
  | { kind: "not-run"; reason: string }
  | { kind: "until"; text: string }
  | { kind: "background"; text: string }
  | { kind: "retry" }
  | { kind: "at-end" };

export interface DocBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  language: "sh" | "js";
  code: string;
  mode: BlockMode;
}

function modeOf(marker: string | undefined, where: string): BlockMode {
  if (marker === undefined) return { kind: "run" };
  const notRun = /^<!--\s*not-run:\s*(.+?)\s*-->$/.exec(marker);
  if (notRun) return { kind: "not-run", reason: notRun[1]! };
  const docTest = /^<!--\s*doc-test:\s*(.+?)\s*-->$/.exec(marker);
  if (!docTest) return { kind: "run" };
  const directive = docTest[1]!;
  const until = /^(background )?until "([^"]+)"$/.exec(directive);
  if (until) return until[1] ? { kind: "background", text: until[2]! } : { kind: "until", text: until[2]! };
  if (directive.startsWith("retries while it fails")) return { kind: "retry" };
  if (directive.startsWith("at the end")) return { kind: "at-end" };
  throw new Error(`${where}: unknown doc-test marker ${JSON.stringify(directive)}`);
}

/**
 * The `sh` and `js` blocks of `markdown` (or of its section from the heading
 * `section` to the next heading of the same level), with their markers.
 */
export function docBlocks(file: string, markdown: string, section?: string): DocBlock[] {
  let lines = markdown.split("\n");
  let offset = 0;
  if (section !== undefined) {
    const start = lines.findIndex((line) => line.trim() === section);
    if (start < 0) throw new Error(`${file}: no heading ${JSON.stringify(section)}`);
    const level = /^#+/.exec(section)![0];
    const end = lines.findIndex((line, i) => i > start && new RegExp(`^${level} `).test(line));
    lines = lines.slice(start, end < 0 ? undefined : end);
    offset = start;
  }
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    // A fence may be indented (a block inside a list item); its lines lose that indentation.
    const fence = /^( *)```(\w*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const indent = fence[1]!.length;
    const close = lines.findIndex((line, j) => j > i && /^ *```\s*$/.test(line));
    if (close < 0) throw new Error(`${file}:${offset + i + 1}: a code block is not closed`);
    const language = fence[2];
    if (language === "sh" || language === "js") {
      const previous = lines[i - 1]?.trim();
      const marker = previous?.startsWith("<!--") ? previous : undefined;
      const where = `${file}:${offset + i + 1}`;
      blocks.push({ file, line: offset + i + 1, language, code: lines.slice(i + 1, close).map((line) => line.slice(Math.min(indent, /^ */.exec(line)![0].length))).join("\n") + "\n", mode: modeOf(marker, where) });
    }
    i = close;
  }
  return blocks;
}

/** The commands of a shell block (a line ending in `\` continues on the next), for reports. */
export function shellCommands(code: string): string[] {
  return code
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
}
