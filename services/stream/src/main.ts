// The standalone stream service: `node services/stream/dist/main.js`.
import { runMain, serveComponents } from "@annals/runtime";
import { STREAM_SERVICE_NAME, createStreamComponent } from "./component.js";
import { readStreamServiceConfig } from "./config.js";

runMain(STREAM_SERVICE_NAME, async () => {
  const config = readStreamServiceConfig(process.env);
  return serveComponents({
    name: STREAM_SERVICE_NAME,
    server: config.server,
    components: async () => [
      await createStreamComponent({
        logUrl: config.logUrl,
        ...(config.logToken ? { logToken: config.logToken } : {}),
        auth: config.server.auth,
        settings: config.stream,
        logLevel: config.server.logLevel,
      }),
    ],
  });
});
