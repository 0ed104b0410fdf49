// The puller hands on entries in the wire form the peer sent them in. Pull's
// `entries` frames are read without decoding their entries (a JSON payload is
// a google.protobuf.Struct, whose decoding and re-encoding cost more than all
// the rest of a puller's work), and each entry's bytes go into the
// AppendReplicated request as they came: the log service decodes them there
// and checks every one (replicate.ts), exactly as it checks decoded ones.
// Protobuf keeps the fields a schema does not declare, byte for byte, and
// writes them back (protobuf-es `$unknown`): PullResponse read through a copy
// of its schema without `entries` keeps the frame's EntryBatch as such a
// field, and an AppendReplicatedRequest given its entries as such fields
// encodes them without a look at their contents.
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { clone, create, createFileRegistry, toBinary, type DescFile, type DescMessage, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { federationV1, logV1 } from "@annals/proto";

/** SubscribeResponse.entries and PullResponse.entries (the EntryBatch frames), EntryBatch.entries, AppendReplicatedRequest.entries. */
const SUBSCRIBE_RESPONSE_ENTRIES = 4;
const PULL_RESPONSE_ENTRIES = 5;
const ENTRY_BATCH_ENTRIES = 1;
const APPEND_REPLICATED_ENTRIES = 3;
/** Entry.seq and Entry.wall_time_us. */
const ENTRY_SEQ = 2;
const ENTRY_WALL_TIME_US = 8;

/** One entry as the peer encoded it, with what the puller reads of it. */
export interface WireEntry {
  seq: bigint;
  wallTimeUs: bigint;
  /** The entry's length-delimited encoding (its length, then its bytes): a repeated message field's value. */
  encoded: Uint8Array;
}

/** A copy of `file`'s message `messageName` whose field `fieldName` is left out (it is then read as an unknown field). */
function messageWithout(file: DescFile, messageName: string, fieldName: string): DescMessage {
  const proto = clone(FileDescriptorProtoSchema, file.proto);
  const message = proto.messageType.find((candidate) => candidate.name === messageName);
  if (!message?.field.some((field) => field.name === fieldName)) throw new Error(`${file.name} has no field ${messageName}.${fieldName}`);
  message.field = message.field.filter((field) => field.name !== fieldName);
  const imports = new Map<string, DescFile>();
  const collect = (of: DescFile) => of.dependencies.forEach((dependency) => (imports.set(dependency.name + ".proto", dependency), collect(dependency)));
  collect(file);
  return createFileRegistry(proto, (name) => imports.get(name)).getMessage(`${proto.package}.${messageName}`)!;
}

const pullResponseFile = federationV1.file_annals_federation_v1_federation_service;
/** PullResponse without `entries`: an `entries` frame arrives in `$unknown`, undecoded. */
const WirePullResponseSchema = messageWithout(pullResponseFile, "PullResponse", "entries");
const pullMethod = { ...federationV1.FederationService.method.pull, output: WirePullResponseSchema };
const wirePullService = { ...federationV1.FederationService, methods: [pullMethod], method: { pull: pullMethod } } as unknown as DescService;

/** A frame of Pull as the wire client gives it: the decoded frame, or the entries of an `entries` frame undecoded. */
export interface WirePullFrame {
  frame: federationV1.PullResponse["frame"] | { case: "wireEntries"; value: WireEntry[] };
  checkpoint: federationV1.PullCheckpoint | undefined;
}

/** A client of a peer's Pull whose `entries` frames come as WireEntry lists. */
export function wirePullClient(transport: Transport): (request: MessageInitShape<typeof federationV1.PullRequestSchema>, options: { signal: AbortSignal }) => AsyncIterable<WirePullFrame> {
  const client = createClient(wirePullService, transport) as unknown as Client<typeof federationV1.FederationService>;
  return async function* (request, options) {
    for await (const response of client.pull(request, options)) {
      // A frame holds one batch (were there more, the last would win, as protobuf reads a oneof).
      const batch = response.$unknown?.findLast((field) => field.no === PULL_RESPONSE_ENTRIES && field.wireType === WireType.LengthDelimited);
      yield { frame: batch ? { case: "wireEntries", value: readEntryBatch(batch.data) } : response.frame, checkpoint: response.checkpoint };
    }
  };
}

/** SubscribeResponse without `entries`: an `entries` frame arrives in `$unknown`, undecoded. */
const WireSubscribeResponseSchema = messageWithout(logV1.file_annals_log_v1_log_service, "SubscribeResponse", "entries");
const subscribeMethod = { ...logV1.LogService.method.subscribe, output: WireSubscribeResponseSchema };
const wireSubscribeService = { ...logV1.LogService, methods: [subscribeMethod], method: { subscribe: subscribeMethod } } as unknown as DescService;

/** A frame of Subscribe as the wire client gives it: the decoded frame, or an `entries` frame undecoded with its last seq. */
export type WireSubscribeFrame = logV1.SubscribeResponse["frame"] | { case: "wireEntries"; value: { lastSeq: bigint; encoded: Uint8Array } };

/** Subscribe through `transport`, whose `entries` frames come undecoded, to be passed on as Pull frames (pullFrame). */
export type WireSubscribe = (request: MessageInitShape<typeof logV1.SubscribeRequestSchema>, options: { signal: AbortSignal }) => AsyncIterable<WireSubscribeFrame>;

/** A Subscribe of the log service through `transport` whose `entries` frames stay undecoded. */
export function wireSubscribeClient(transport: Transport): WireSubscribe {
  const client = createClient(wireSubscribeService, transport) as unknown as Client<typeof logV1.LogService>;
  return async function* (request, options) {
    for await (const response of client.subscribe(request, options)) {
      const batch = response.$unknown?.findLast((field) => field.no === SUBSCRIBE_RESPONSE_ENTRIES && field.wireType === WireType.LengthDelimited);
      yield batch ? { case: "wireEntries", value: { lastSeq: lastSeqOf(batch.data), encoded: batch.data } } : response.frame;
    }
  };
}

/** A Pull frame carrying an EntryBatch as Subscribe encoded it (length-delimited), and a checkpoint when given. */
export function wirePullResponse(encodedBatch: Uint8Array, checkpoint: MessageInitShape<typeof federationV1.PullCheckpointSchema> | undefined): federationV1.PullResponse {
  const response = create(federationV1.PullResponseSchema, checkpoint ? { checkpoint } : {});
  response.$unknown = [{ no: PULL_RESPONSE_ENTRIES, wireType: WireType.LengthDelimited, data: encodedBatch }];
  return response;
}

/** The seq of an EntryBatch's last entry (0 for none), from its length-delimited encoding. */
function lastSeqOf(delimited: Uint8Array): bigint {
  const batch = new BinaryReader(new BinaryReader(delimited).bytes());
  let last: Uint8Array | undefined;
  while (batch.pos < batch.len) {
    const [no, wireType] = batch.tag();
    if (no === ENTRY_BATCH_ENTRIES && wireType === WireType.LengthDelimited) last = batch.bytes();
    else batch.skip(wireType, no);
  }
  return last ? entryPosition(last).seq : 0n;
}

/** The entries of an EntryBatch given as its length-delimited encoding, each with its seq and wall time read. */
export function readEntryBatch(delimited: Uint8Array): WireEntry[] {
  const encoded = new BinaryReader(delimited).bytes();
  const batch = new BinaryReader(encoded);
  const entries: WireEntry[] = [];
  while (batch.pos < batch.len) {
    const [no, wireType] = batch.tag();
    if (no !== ENTRY_BATCH_ENTRIES || wireType !== WireType.LengthDelimited) {
      batch.skip(wireType, no);
      continue;
    }
    const start = batch.pos;
    const body = batch.bytes();
    entries.push({ ...entryPosition(body), encoded: encoded.subarray(start, batch.pos) });
  }
  return entries;
}

/** An Entry's seq and wall_time_us, read from its encoding (0 when absent, as protobuf reads them). */
function entryPosition(body: Uint8Array): { seq: bigint; wallTimeUs: bigint } {
  const reader = new BinaryReader(body);
  let seq = 0n;
  let wallTimeUs = 0n;
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === ENTRY_SEQ && wireType === WireType.Varint) seq = BigInt(reader.int64());
    else if (no === ENTRY_WALL_TIME_US && wireType === WireType.Varint) wallTimeUs = BigInt(reader.int64());
    else reader.skip(wireType, no);
  }
  return { seq, wallTimeUs };
}

/** A decoded entry (a peer's `entry` frame) in the wire form of the others. */
export function wireEntryOf(entry: logV1.Entry): WireEntry {
  return { seq: entry.seq, wallTimeUs: entry.wallTimeUs, encoded: new BinaryWriter().bytes(toBinary(logV1.EntrySchema, entry)).finish() };
}

/** An AppendReplicatedRequest whose entries are `entries`, encoded as the peer sent them. */
export function appendReplicatedRequest(init: { logId: string; originNode: string; anchor?: logV1.Anchor }, entries: readonly WireEntry[]): logV1.AppendReplicatedRequest {
  const request = create(logV1.AppendReplicatedRequestSchema, init);
  request.$unknown = entries.map(({ encoded }) => ({ no: APPEND_REPLICATED_ENTRIES, wireType: WireType.LengthDelimited, data: encoded }));
  return request;
}
