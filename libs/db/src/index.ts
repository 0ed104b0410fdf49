export { DatabaseError } from "./database.js";
export type { Database, DatabaseOptions, Queryable, QueryResult } from "./database.js";
export { loadMigrations, migrate } from "./migrate.js";
export type { MigrateOptions, Migration } from "./migrate.js";
export { openDatabase } from "./open.js";
