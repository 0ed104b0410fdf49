// A server for the benchmarks, run as its own process so that the load
// generator does not share its event loop. `node bench-server.js <kind>`
// prints one JSON line {"grpcPort":…,"httpPort":…} once it listens.
//   bare-grpc      @grpc/grpc-js with the Ping handler and nothing else (rpc-overhead's baseline)
//   bare-connect   connectNodeAdapter on node:http with the same handler, nothing else
//   annals-off     the annals runtime, auth off (loopback)
//   annals-jwt     the annals runtime, JWT auth on
//   bare-grpc-fanout  stream-fanout's baseline: @grpc/grpc-js and its subscribers (bare-fanout.ts)
//   bare-grpc-append  log-append's AppendStream baseline: @grpc/grpc-js answering each entry at once
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { diagV1, logV1 } from "@annals/proto";
import { createLogger, grpcServiceDefinition, startServer } from "@annals/runtime";
import { serveBareFanout } from "./bare-fanout.js";
import { BENCH_SECRET } from "./bench-token.js";

const kind = process.argv[2];
const report = (ports: { grpcPort: number; httpPort: number }) => process.stdout.write(`${JSON.stringify(ports)}\n`);

switch (kind) {
  case "bare-grpc": {
    const server = new grpc.Server();
    // The same descriptor-built definition (protobuf-es serialisers) as the runtime mounts.
    const ping: grpc.handleUnaryCall<diagV1.PingRequest, diagV1.PingResponse> = (call, callback) =>
      callback(null, create(diagV1.PingResponseSchema, { data: call.request.data }));
    server.addService(grpcServiceDefinition(diagV1.DiagService), { ping });
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) throw error;
      report({ grpcPort: port, httpPort: 0 });
    });
    break;
  }
  case "bare-connect": {
    const handler = connectNodeAdapter({
      grpc: false,
      routes: (router) => router.service(diagV1.DiagService, { ping: (request) => ({ data: request.data }) }),
    });
    const server = createServer(handler).listen(0, "127.0.0.1", () => report({ grpcPort: 0, httpPort: (server.address() as AddressInfo).port }));
    break;
  }
  case "annals-off":
  case "annals-jwt": {
    const server = await startServer({
      name: "annals-bench",
      services: [],
      grpcPort: 0,
      httpPort: 0,
      auth: kind === "annals-off" ? { mode: "off" } : { mode: "jwt", secret: BENCH_SECRET },
      logger: createLogger({ name: "annals-bench", level: "error" }),
    });
    report({ grpcPort: server.grpcPort, httpPort: server.httpPort });
    break;
  }
  case "bare-grpc-append": {
    // Each request decoded with the same protobuf-es definition the runtime mounts and answered at
    // once with a result of the same size as the log service's (a 64-hex checksum, a uuid): nothing
    // checked, hashed or stored. What the transport and the bench's client cost, with no log behind them.
    const server = new grpc.Server();
    let seq = 0n;
    const checksum = "0".repeat(64);
    const uuid = "00000000-0000-7000-8000-000000000000";
    const appendStream: grpc.handleBidiStreamingCall<logV1.AppendStreamRequest, logV1.AppendStreamResponse> = (call) => {
      call.on("data", (request: logV1.AppendStreamRequest) => {
        if (request.frame.case !== "entry") return;
        seq++;
        call.write(create(logV1.AppendStreamResponseSchema, { frame: { case: "result", value: { seq, checksum, wallTimeUs: BigInt(Date.now()) * 1000n, uuid } } }));
      });
      call.on("end", () => call.end());
    };
    server.addService(grpcServiceDefinition(logV1.LogService), { appendStream });
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error) throw error;
      report({ grpcPort: port, httpPort: 0 });
    });
    break;
  }
  case "bare-grpc-fanout":
    serveBareFanout((port) => report({ grpcPort: port, httpPort: 0 }));
    break;
  default:
    process.stderr.write(`unknown server kind ${kind}\n`);
    process.exit(2);
}
