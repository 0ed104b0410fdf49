export { createAnnalsClients } from "./clients.js";
export type { AnnalsClients, DiagClient, FederationClient, HealthClient, KvClient, LogClient, StreamClient } from "./clients.js";
export { createAnnalsTransport, uriSans } from "./transport.js";
export type { TransportOptions } from "./transport.js";
export { alreadyProcessed, guardedGet, idempotentExecute, jsonCodec, rateLimit } from "./kv-helpers.js";
export type { Codec, GuardedGetOptions, IdempotentOptions, IdempotentResult, KvKey, RateLimitDecision, RateLimitOptions } from "./kv-helpers.js";
export { AppendConflictError, appendWithCondition, foldLog, isAppendConflict } from "./conditional-append.js";
export type { AppendDecision, ConditionalAppendOptions, ConditionalAppendResult, FoldedLog } from "./conditional-append.js";
