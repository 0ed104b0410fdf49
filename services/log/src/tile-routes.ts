// The C2SP tlog-tiles read API of every log, on the HTTP port, under the
// log's path (the log id percent-encoded as in the SSE route):
//   GET /v1/logs/{log}/checkpoint                 the latest signed checkpoint (text/plain)
//   GET /v1/logs/{log}/tile/{L}/{N}[.p/{W}]        a hash tile
//   GET /v1/logs/{log}/tile/entries/{N}[.p/{W}]    an entry bundle: the leaves' data (the entries' checksums)
// with the log's read grant (a bearer token in Authorization, or `token=` in
// the query: the runtime's pipeline checks it). Full tiles never change, so they are cacheable forever; partial
// tiles and the checkpoint are not for long.
import type { IncomingMessage } from "node:http";
import { TILE_WIDTH, encodeEntryBundle, parseTilePath, TileError } from "@annals/chain";
import type { Database } from "@annals/db";
import { Code, ConnectError } from "@connectrpc/connect";
import { requireLogAccess } from "@annals/logs";
import { invalidArgument, notFound, type HttpRoute, type RouteContext } from "@annals/runtime";
import type { Checkpointer } from "./checkpointer.js";
import type { WitnessPublisher } from "./witness-publisher.js";
import { checkLogId } from "./entry-input.js";
import { latestCheckpoint } from "./proofs.js";
import { getHead, readChecksums, readTiles } from "./store.js";

const CHECKPOINT = /^\/v1\/logs\/(.+)\/checkpoint$/;
const TILE = /^\/v1\/logs\/(.+)\/(tile\/(?:entries|\d+)\/(?:x\d{3}\/)*\d{3}(?:\.p\/\d+)?)$/;

const IMMUTABLE = "private, max-age=31536000, immutable";
const SHORT = "private, max-age=1";

export interface TileRouteDeps {
  db: Database;
  checkpointer: Checkpointer;
  /** The witness publisher, when checkpoints are cosigned before they are published. */
  publisher?: WitnessPublisher | undefined;
  /** The role a caller needs (log.read). */
  readRole: string;
}

export function tileRoutes(deps: TileRouteDeps): HttpRoute[] {
  return [
    {
      method: "GET",
      name: "GET /v1/logs/{log}/checkpoint",
      access: deps.readRole,
      matches: (path) => CHECKPOINT.test(path),
      handle: (request, response, context) => serve(request, context, CHECKPOINT, async (logId) => {
        const head = await existingHead(deps.db, logId);
        const checkpoint = await latestCheckpoint(deps.db, deps.checkpointer, head, deps.publisher);
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": SHORT });
        response.end(checkpoint.note);
      }),
    },
    {
      method: "GET",
      name: "GET /v1/logs/{log}/tile/{path}",
      access: deps.readRole,
      matches: (path) => TILE.test(path),
      handle: (request, response, context) => serve(request, context, TILE, async (logId, tilePart) => {
        let parsed;
        try {
          parsed = parseTilePath(tilePart!);
        } catch (error) {
          if (error instanceof TileError) throw invalidArgument("path", error.message);
          throw error;
        }
        await existingHead(deps.db, logId);
        const bytes = parsed.kind === "tile" ? await hashTile(deps.db, logId, parsed.tile) : await entryBundle(deps.db, logId, parsed.bundle);
        if (bytes === null) throw new ConnectError(`${tilePart} of log "${logId}" does not exist (yet, or any more)`, Code.NotFound);
        const width = parsed.kind === "tile" ? parsed.tile.width : parsed.bundle.width;
        response.writeHead(200, { "content-type": "application/octet-stream", "cache-control": width === TILE_WIDTH ? IMMUTABLE : SHORT });
        response.end(bytes);
      }),
    },
  ];
}

/** Checks the log id and the caller's grant for it, then runs the route (the pipeline answers any refusal as JSON). */
async function serve(
  request: IncomingMessage,
  context: RouteContext,
  pattern: RegExp,
  handler: (logId: string, part: string | undefined) => Promise<void>,
): Promise<void> {
  const [path = ""] = (request.url ?? "/").split("?", 1);
  const match = pattern.exec(path)!;
  let logId: string;
  try {
    logId = decodeURIComponent(match[1]!);
  } catch {
    throw invalidArgument("log_id", "the path's log id is not valid percent-encoded UTF-8");
  }
  checkLogId(logId);
  requireLogAccess(context.principal!, logId);
  await handler(logId, match[2]);
}

async function existingHead(db: Database, logId: string) {
  const head = await getHead(db, logId);
  if (!head) throw notFound("log", logId);
  return head;
}

/** A hash tile at the width asked: served when the stored tile is at least that wide (tiles only grow at their end). */
async function hashTile(db: Database, logId: string, tile: { level: number; index: bigint; width: number }): Promise<Uint8Array | null> {
  const [stored] = await readTiles(db, logId, [tile]);
  const bytes = tile.width * 32;
  return stored && stored.byteLength >= bytes ? stored.subarray(0, bytes) : null;
}

/** The leaves' data of one bundle: the checksums of seqs N·256 + 1 … while they are stored (compaction removes them). */
async function entryBundle(db: Database, logId: string, bundle: { index: bigint; width: number }): Promise<Uint8Array | null> {
  const first = bundle.index * BigInt(TILE_WIDTH) + 1n;
  const rows = await readChecksums(db, logId, first, first + BigInt(bundle.width) - 1n);
  if (rows.length !== bundle.width || rows[0]!.seq !== first) return null;
  return encodeEntryBundle(rows.map((row) => Buffer.from(row.checksum, "hex")));
}
