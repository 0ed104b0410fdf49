export { KindFilter, kindProblem, logIdProblem, patternProblem, subjectMatches } from "./topic.js";
export { SubjectTree } from "./subject-tree.js";
