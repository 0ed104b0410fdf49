export { NODE_DATA_DIR, NODE_GRPC_PORT, NODE_HTTP_PORT, readNodeConfig } from "./config.js";
export type { NodeConfig } from "./config.js";
