// What the browser tests share: the system Chromium (driven by
// playwright-core, which never downloads a browser), a tiny HTTP server for
// pages on another origin, and the node on fixed ports so that it can be
// restarted under a browser that keeps its URLs.
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { startServiceProcess, type ServiceProcess } from "@annals/runtime/testing";

export const NODE_MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

/**
 * The Chromium to drive: ANNALS_TEST_CHROMIUM, else Debian's /usr/bin/chromium.
 * Missing: a reason to skip, or an error when ANNALS_TEST_REQUIRE_BROWSER=1 (CI).
 */
export function systemChromium(): { path: string } | { skip: string } {
  const path = process.env.ANNALS_TEST_CHROMIUM ?? "/usr/bin/chromium";
  if (existsSync(path)) return { path };
  const reason = `no Chromium at ${path} (apt-get install chromium, or set ANNALS_TEST_CHROMIUM)`;
  if (process.env.ANNALS_TEST_REQUIRE_BROWSER === "1") throw new Error(`ANNALS_TEST_REQUIRE_BROWSER=1 but ${reason}`);
  return { skip: reason };
}

export async function launchChromium(path: string): Promise<Browser> {
  // Headless, and without Chromium's sandbox (playwright-core's default), which cannot start as root (CI runs as root).
  return chromium.launch({ executablePath: path, headless: true, timeout: 60_000 });
}

/** A port free right now on 127.0.0.1 (for a process that must get the same one back after a restart). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface PageServer {
  /** e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves fixed pages on another loopback port: another origin than the node's. */
export async function startPageServer(pages: Record<string, { type: string; body: string }>): Promise<PageServer> {
  const server: Server = createServer((request, response) => {
    const page = pages[(request.url ?? "/").split("?", 1)[0]!];
    if (!page) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": page.type, "cache-control": "no-store" }).end(page.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Starts the all-in-one node on the given ports with `env` (the database, CORS origins). */
export function startNode(ports: { grpc: number; http: number }, env: Record<string, string>): Promise<ServiceProcess> {
  return startServiceProcess({
    script: NODE_MAIN,
    env: { ANNALS_PORT: String(ports.grpc), ANNALS_HTTP_PORT: String(ports.http), ...env },
    readyTimeoutMs: 60_000,
  });
}

/** Appends JSON entries over the Connect protocol (as any HTTP client would); returns their seqs. */
export async function appendJson(
  httpUrl: string,
  logId: string,
  entries: { kind: string; payload: Record<string, unknown> }[],
  token?: string,
): Promise<string[]> {
  const response = await fetch(`${httpUrl}/annals.log.v1.LogService/AppendBatch`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ logId, entries }),
  });
  const body = (await response.json()) as { results?: { seq: string }[]; message?: string };
  if (response.status !== 200) throw new Error(`AppendBatch answered ${response.status}: ${body.message}`);
  return body.results!.map((result) => result.seq);
}
