export type { Database, DatabaseOptions, ListenOptions, PostgresOptions, Queryable, QueryResult } from "./database.js";
export { DatabaseError } from "./database-error.js";
export { loadMigrations, migrate } from "./migrate.js";
export type { MigrateOptions, Migration } from "./migrate.js";
export { openDatabase } from "./open-database.js";
export { DEFAULT_DATABASE_POOL_SIZE, readDatabaseConfig } from "./config.js";
export { keptEd25519Key } from "./kept-key.js";
