// The standalone federation service: `node services/federation/dist/main.js`.
import { openDatabase } from "@annals/db";
import { runMain, serveComponents } from "@annals/runtime";
import { FEDERATION_SERVICE_NAME, createFederationComponent } from "./component.js";
import { readFederationServiceConfig } from "./config.js";

runMain(FEDERATION_SERVICE_NAME, async () => {
  const config = readFederationServiceConfig(process.env);
  const db = await openDatabase(config.database);
  return serveComponents({
    name: FEDERATION_SERVICE_NAME,
    server: config.server,
    resources: [db],
    components: async () => [
      await createFederationComponent({
        db,
        ...config.federation,
        logUrl: config.logUrl,
        requirePeerCertificate: config.server.tls?.clientCaFile !== undefined,
        ...(config.logToken ? { logToken: config.logToken } : {}),
        logLevel: config.server.logLevel,
      }),
    ],
  });
});
