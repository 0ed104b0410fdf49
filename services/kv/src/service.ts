import { kvV1 } from "@annals/proto";
import { defineService, type ServiceRegistration } from "@annals/runtime";

/** Roles of the KV service. */
export const KV_READ = "kv.read";
export const KV_WRITE = "kv.write";

/**
 * The KvService registration: who may call what. Handlers arrive with the KV
 * service issue; until then every method answers UNIMPLEMENTED (after auth).
 */
export function kvRegistration(): ServiceRegistration {
  return defineService({
    service: kvV1.KvService,
    impl: {},
    access: {
      getInfo: KV_READ,
      get: KV_READ,
      set: KV_WRITE,
      delete: KV_WRITE,
      exists: KV_READ,
      mGet: KV_READ,
      mSet: KV_WRITE,
      deleteMany: KV_WRITE,
      ttl: KV_READ,
      expire: KV_WRITE,
      setNx: KV_WRITE,
      incr: KV_WRITE,
      incrBy: KV_WRITE,
      scan: KV_READ,
      rateLimit: KV_WRITE,
      acquireLock: KV_WRITE,
      releaseLock: KV_WRITE,
      refreshLock: KV_WRITE,
      beginIdempotent: KV_WRITE,
      completeIdempotent: KV_WRITE,
      alreadyProcessed: KV_WRITE,
    },
  });
}
