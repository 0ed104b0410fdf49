// The standalone log service: `node services/log/dist/main.js`.
import { openDatabase } from "@annals/db";
import { runMain, serveComponents } from "@annals/runtime";
import { LOG_SERVICE_NAME, createLogComponent } from "./component.js";
import { readLogServiceConfig } from "./config.js";

runMain(LOG_SERVICE_NAME, async () => {
  const config = readLogServiceConfig(process.env);
  const db = await openDatabase(config.database);
  return serveComponents({
    name: LOG_SERVICE_NAME,
    server: config.server,
    resources: [db],
    components: async (context) => [await createLogComponent({ db, ...config.log }, context)],
  });
});
