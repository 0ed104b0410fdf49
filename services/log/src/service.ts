import { logV1 } from "@annals/proto";
import { ADMIN_ROLE, defineService, type ServiceRegistration } from "@annals/runtime";

/** Roles of the log service (see the LogService comment in log_service.proto). */
export const LOG_READ = "log.read";
export const LOG_WRITE = "log.write";
export const LOG_REPLICATE = "log.replicate";

/**
 * The LogService registration: who may call what. Handlers arrive with the
 * log service issue; until then every method answers UNIMPLEMENTED (after auth).
 */
export function logRegistration(): ServiceRegistration {
  return defineService({
    service: logV1.LogService,
    impl: {},
    access: {
      createLog: LOG_WRITE,
      getLog: LOG_READ,
      listLogs: LOG_READ,
      append: LOG_WRITE,
      appendBatch: LOG_WRITE,
      appendStream: LOG_WRITE,
      read: LOG_READ,
      getEntry: LOG_READ,
      findByRequestId: LOG_READ,
      listBySource: LOG_READ,
      listByTimeRange: LOG_READ,
      stats: LOG_READ,
      subscribe: LOG_READ,
      verify: LOG_READ,
      compact: ADMIN_ROLE,
      redact: ADMIN_ROLE,
      export: LOG_READ,
      appendReplicated: LOG_REPLICATE,
    },
  });
}
