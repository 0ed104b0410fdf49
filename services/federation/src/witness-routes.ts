// The witness on the HTTP port (C2SP tlog-witness), with one prefix for
// submission and monitoring, WITNESS_PREFIX:
//   POST /witness/v1/add-checkpoint             old size, proof, checkpoint → cosignature line
//   GET  /witness/v1/<sha256(origin) hex>/checkpoint   the latest checkpoint it cosigned
// No token: tlog-witness authenticates nothing but the log's signature on
// the checkpoint, and answers with its own status codes and bodies (not the
// JSON errors of the other routes).
import type { IncomingMessage, ServerResponse } from "node:http";
import { MAX_NOTE_SIZE } from "@annals/chain";
import { PUBLIC, type HttpRoute, type Logger } from "@annals/runtime";
import type { Witness, WitnessAnswer } from "./witness-endpoint.js";

/** The submission and monitoring prefix of every node's witness. */
export const WITNESS_PREFIX = "/witness/v1";

const ADD_CHECKPOINT = `${WITNESS_PREFIX}/add-checkpoint`;
const MONITORING = /^\/witness\/v1\/([0-9a-f]{64})\/checkpoint$/;
/** A request body: a note of at most MAX_NOTE_SIZE bytes after at most 64 short lines. */
const MAX_BODY_BYTES = MAX_NOTE_SIZE + 64 * 64;

export function witnessRoutes(witness: Witness, logger: Logger): HttpRoute[] {
  return [
    {
      method: "POST",
      name: "POST /witness/v1/add-checkpoint",
      access: PUBLIC,
      matches: (path) => path === ADD_CHECKPOINT,
      handle: async (request, response) => {
        const body = await readBody(request, MAX_BODY_BYTES);
        write(response, body === null ? { status: 413, contentType: "text/plain; charset=utf-8", body: `the body is larger than ${MAX_BODY_BYTES} bytes\n` } : await witness.addCheckpoint(body), logger);
      },
    },
    {
      method: "GET",
      name: "GET /witness/v1/{origin hash}/checkpoint",
      access: PUBLIC,
      matches: (path) => MONITORING.test(path),
      handle: async (request, response) => {
        const path = (request.url ?? "/").split("?", 1)[0]!;
        write(response, await witness.latestCheckpoint(MONITORING.exec(path)![1]!), logger);
      },
    },
  ];
}

function write(response: ServerResponse, answer: WitnessAnswer, logger: Logger): void {
  if (answer.status !== 200) logger.debug({ status: answer.status, reason: answer.body.trim().slice(0, 200) }, "witness refused a request");
  response.writeHead(answer.status, { "content-type": answer.contentType, "cache-control": "no-store" });
  response.end(answer.body);
}

/** The whole body, or null once it grows past `limit` bytes (the rest is drained, not kept). */
async function readBody(request: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size <= limit) chunks.push(chunk);
  }
  return size > limit ? null : Buffer.concat(chunks);
}
