// The standalone kv service: `node services/kv/dist/main.js`.
import { openDatabase } from "@annals/db";
import { runMain, serveComponents } from "@annals/runtime";
import { KV_SERVICE_NAME, createKvComponent } from "./component.js";
import { readKvServiceConfig } from "./config.js";

runMain(KV_SERVICE_NAME, async () => {
  const config = readKvServiceConfig(process.env);
  // Redis and memory keep no state in a database: none is opened (no pool, no PGlite data directory).
  const db = config.database ? await openDatabase(config.database) : undefined;
  return serveComponents({
    name: KV_SERVICE_NAME,
    server: config.server,
    resources: db ? [db] : [],
    components: async (context) => [await createKvComponent({ ...(db ? { db } : {}), ...config.kv }, context)],
  });
});
