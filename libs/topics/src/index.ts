export {
  KindFilter,
  MAX_LOCAL_LOG_ID_LENGTH,
  MAX_LOG_ID_LENGTH,
  MIRROR_PREFIX,
  kindProblem,
  localLogIdProblem,
  logIdProblem,
  patternProblem,
  subjectMatches,
} from "./topic.js";
export { SubjectTree } from "./subject-tree.js";
