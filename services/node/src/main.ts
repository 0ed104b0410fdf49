// The all-in-one node: the four annals services in one process, on one gRPC
// port and one HTTP port. `npm start` runs this on embedded PGlite.
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
  // Wildcard binds are dialled on loopback; a specific address as it is.
  const dialHost = ["0.0.0.0", "::"].includes(config.server.host) ? "127.0.0.1" : config.server.host;
  let grpcPort = config.server.grpcPort;
  const logToken = config.internalToken;
  // The node's stream and federation services call its own log service over gRPC, on the port it gets.
  const logUrl = () => `http://${dialHost.includes(":") ? `[${dialHost}]` : dialHost}:${grpcPort}`;
  const server = await serveComponents({
    name: NODE_NAME,
    server: config.server,
    resources: [db],
    components: async () => [
      await createLogComponent({ db, ...config.log }),
      await createKvComponent({ db, ...config.kv, logLevel: config.server.logLevel }),
      await createFederationComponent({
        db,
        ...config.federation,
        logUrl,
        ...(logToken ? { logToken } : {}),
        requirePeerCertificate: config.server.tls?.clientCaFile !== undefined,
        logLevel: config.server.logLevel,
      }),
      await createStreamComponent({
        logUrl,
        ...(logToken ? { logToken } : {}),
        auth: config.server.auth,
        settings: config.stream,
        logLevel: config.server.logLevel,
      }),
      // The read-only web console at / (ANNALS_CONSOLE=false leaves it out).
      ...(config.console ? [{ name: "console", registrations: [], httpRoutes: [consoleRoute()], close: async () => {} }] : []),
    ],
  });
  grpcPort = server.grpcPort;
  const database = "url" in config.database ? "PostgreSQL (DATABASE_URL)" : "inMemory" in config.database ? "PGlite in memory" : `PGlite in ${config.database.dataDir}`;
  process.stdout.write(
    `annals node ready: gRPC on ${server.host}:${server.grpcPort} (health, reflection), ` +
      `HTTP on http://${server.host}:${server.httpPort} (Connect, gRPC-Web, /metrics${config.console ? ", web console at /" : ""}); data: ${database}\n`,
  );
  return server;
});
