// The all-in-one node: the four annals services in one process, on one gRPC
// port and one HTTP port. `npm start` runs this on embedded PGlite.
import { createAnnalsClients } from "@annals/client";
import { openDatabase } from "@annals/db";
import { createFederationComponent } from "@annals/federation";
import { createKvComponent } from "@annals/kv";
import { createLogComponent } from "@annals/log";
import { runMain, serveComponents } from "@annals/runtime";
import { createStreamComponent } from "@annals/stream";
import { readNodeConfig } from "./config.js";
import { consoleRoute } from "./console-route.js";

const NODE_NAME = "annals-node";

runMain(NODE_NAME, async () => {
  const config = readNodeConfig(process.env);
  const db = await openDatabase(config.database);
  const server = await serveComponents({
    name: NODE_NAME,
    server: config.server,
    resources: [db],
    components: async (context) => {
      // The stream and federation services call this node's log service in-process, as the internal principal.
      const log = createAnnalsClients({ transport: context.local }).log;
      return [
        await createLogComponent({ db, ...config.log }, context),
        await createKvComponent({ db, ...config.kv }, context),
        await createFederationComponent({ db, ...config.federation, log, logTransport: context.local, requirePeerCertificate: config.server.tls?.clientCaFile !== undefined }, context),
        await createStreamComponent({ log, settings: config.stream }, context),
        // The read-only web console at / (ANNALS_CONSOLE=false leaves it out).
        ...(config.console ? [{ name: "console", registrations: [], httpRoutes: [consoleRoute()], close: async () => {} }] : []),
      ];
    },
  });
  const database = "url" in config.database ? "PostgreSQL (DATABASE_URL)" : "inMemory" in config.database ? "PGlite in memory" : `PGlite in ${config.database.dataDir}`;
  process.stdout.write(
    `annals node ready: gRPC on ${server.host}:${server.grpcPort} (health, reflection), ` +
      `HTTP on http://${server.host}:${server.httpPort} (Connect, gRPC-Web, /metrics${config.console ? ", web console at /" : ""}); data: ${database}\n`,
  );
  return server;
});
