// The web console's static files, served by the node on its HTTP port:
// GET / is the page, GET /console/<file> its scripts and style. The files
// are read once at start from dist/console (copied from src/console by the
// build) into a table keyed by URL path, so only those exact paths are ever
// served: no path from a request reaches the file system (no traversal, no
// directory listing), and every other path falls through to the node's
// other routes (Connect under /annals.*, /v1/logs/…, /metrics).
//
// The console itself is plain HTML, CSS and JavaScript modules with no build
// step; it holds no secret and calls the same public APIs as any client,
// with the user's token (see src/console/api.js). Its Content-Security-Policy
// allows scripts, styles and connections to this origin only.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PUBLIC, type HttpRoute } from "@annals/runtime";

/** Where the build puts the console's files (next to this module in dist/). */
export const CONSOLE_DIR = fileURLToPath(new URL("./console/", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** Scripts, styles, images and calls from this origin only; no frames, no forms, no plugins. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

interface StaticFile {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

/**
 * The console's route: the files of `dir` (default CONSOLE_DIR) by their
 * exact URL paths, `/` for index.html. Throws at start when the folder or
 * its index.html is missing (a broken build), rather than serving 404s.
 */
export function consoleRoute(dir: string = CONSOLE_DIR): HttpRoute {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (contentType === undefined) continue;
    const body = readFileSync(join(dir, name));
    const file = { body, contentType, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"` };
    files.set(name === "index.html" ? "/" : `/console/${name}`, file);
  }
  if (!files.has("/")) throw new Error(`the web console's index.html is missing from ${dir}: run the build (npm run build)`);
  return {
    method: "GET",
    name: "GET / (web console)",
    access: PUBLIC,
    matches: (path) => files.has(path),
    handle(request, response) {
      const path = (request.url ?? "/").split("?", 1)[0]!;
      const file = files.get(path)!;
      const headers: Record<string, string> = {
        "content-type": file.contentType,
        // Revalidated on every load: a node upgrade must not leave a tab on old scripts.
        "cache-control": "no-cache",
        etag: file.etag,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "content-security-policy": CONSOLE_CSP,
      };
      if (request.headers["if-none-match"] === file.etag) {
        response.writeHead(304, headers);
        response.end();
        return;
      }
      response.writeHead(200, { ...headers, "content-length": String(file.body.byteLength) });
      response.end(file.body);
    },
  };
}
