// The standalone federation service: `node services/federation/dist/main.js`.
import { createAnnalsClients, createAnnalsTransport } from "@annals/client";
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
    components: async (context) => {
      const logTransport = createAnnalsTransport({
        baseUrl: config.logService.baseUrl,
        ...(config.logService.token ? { token: config.logService.token } : {}),
        ...(config.logService.tls ? { tls: config.logService.tls } : {}),
      });
      return [
        await createFederationComponent(
          {
            db,
            ...config.federation,
            log: createAnnalsClients({ transport: logTransport }).log,
            logTransport,
            requirePeerCertificate: config.server.tls?.clientCaFile !== undefined,
          },
          context,
        ),
      ];
    },
  });
});
