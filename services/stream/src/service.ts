import { streamV1 } from "@annals/proto";
import { defineService, type ServiceRegistration } from "@annals/runtime";

/** Roles of the stream service. */
export const STREAM_VIEW = "stream.view";
export const STREAM_PUBLISH = "log.write";

/**
 * The StreamService registration: who may call what. Handlers arrive with the
 * stream issue; until then every method answers UNIMPLEMENTED (after auth).
 */
export function streamRegistration(): ServiceRegistration {
  return defineService({
    service: streamV1.StreamService,
    impl: {},
    access: { subscribe: STREAM_VIEW, publish: STREAM_PUBLISH },
  });
}
