export {
  KindFilter,
  kindProblem,
  patternProblem,
  subjectMatches,
} from "./topic.js";
export { SubjectTree } from "./subject-tree.js";
