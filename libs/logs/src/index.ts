export { LOGS_CLAIM, grantsLog, requireLogAccess } from "./grants.js";
export { MAX_LOCAL_LOG_ID_LENGTH, MAX_LOG_ID_LENGTH, MIRROR_PREFIX, localLogIdProblem, logIdProblem } from "./log-id.js";
