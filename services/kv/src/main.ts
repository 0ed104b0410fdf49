// The standalone kv service: `node services/kv/dist/main.js`.
import { openDatabase } from "@annals/db";
import { runMain, serveComponents } from "@annals/runtime";
import { KV_SERVICE_NAME, createKvComponent } from "./component.js";
import { readKvServiceConfig } from "./config.js";

runMain(KV_SERVICE_NAME, async () => {
  const config = readKvServiceConfig(process.env);
  const db = await openDatabase(config.database);
  return serveComponents({
    name: KV_SERVICE_NAME,
    server: config.server,
    resources: [db],
    components: async () => [await createKvComponent({ db, ...config.kv, logLevel: config.server.logLevel })],
  });
});
