// The standalone stream service: `node services/stream/dist/main.js`.
import { createAnnalsClients } from "@annals/client";
import { runMain, serveComponents } from "@annals/runtime";
import { STREAM_SERVICE_NAME, createStreamComponent } from "./component.js";
import { readStreamServiceConfig } from "./config.js";

runMain(STREAM_SERVICE_NAME, async () => {
  const config = readStreamServiceConfig(process.env);
  return serveComponents({
    name: STREAM_SERVICE_NAME,
    server: config.server,
    components: async (context) => [
      await createStreamComponent(
        {
          log: createAnnalsClients({
            baseUrl: config.logService.baseUrl,
            ...(config.logService.token ? { token: config.logService.token } : {}),
            ...(config.logService.tls ? { tls: config.logService.tls } : {}),
          }).log,
          settings: config.stream,
        },
        context,
      ),
    ],
  });
});
