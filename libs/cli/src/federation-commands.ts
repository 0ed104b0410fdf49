// `annals peers …` and `annals federation …`: the peer registry and replication status.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { FederationClient } from "@annals/client";
import { federationV1 } from "@annals/proto";
import { UsageError } from "./usage-error.js";

export const FEDERATION_USAGE = `  annals federation info            prints this node's id and the public key (JWK) a peer registers
  annals federation status [--peer NODE_ID]
                                    one line per replication; exit status 1 when one has an integrity error
  annals peers add --node-id NODE_ID --peer-url URL --key-file FILE [--serve LOG,…] [--mirror LOG,…]
                                    registers a peer (FILE: its public JWK, from its \`annals federation info\`)
  annals peers list                 one line per registered peer
  annals peers rm NODE_ID           removes a peer (its mirrors stay readable)`;

const list = (value: string | undefined) => (value ?? "").split(",").map((item) => item.trim()).filter(Boolean);

export async function peersCommand(connect: (url: string | undefined) => FederationClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      "node-id": { type: "string" },
      "peer-url": { type: "string" },
      "key-file": { type: "string" },
      serve: { type: "string" },
      mirror: { type: "string" },
    },
  });
  const [subcommand, ...operands] = positionals;
  switch (subcommand) {
    case "add": {
      // --url is the server this command talks to; the peer's own address comes as --peer-url, or as the operand.
      const peerUrl = values["peer-url"] ?? operands[0];
      if (!values["node-id"] || !peerUrl || !values["key-file"]) throw new UsageError("peers add needs --node-id, --peer-url and --key-file");
      const peer = await connect(values.url).registerPeer({
        peer: {
          nodeId: values["node-id"],
          url: peerUrl,
          publicKeyJwk: (await readFile(values["key-file"], "utf8")).trim(),
          servedLogs: list(values.serve),
          mirroredLogs: list(values.mirror),
        },
      });
      console.log(`registered ${peer.peer?.nodeId} at ${peer.peer?.url}`);
      return 0;
    }
    case "list": {
      const federation = connect(values.url);
      let pageToken = "";
      do {
        const page = await federation.listPeers({ pageToken });
        for (const peer of page.peers) {
          const status = peer.status === federationV1.PeerStatus.DISABLED ? "disabled" : "active";
          console.log(`${peer.nodeId}\t${peer.url}\t${status}\tserves: ${peer.servedLogs.join(",") || "-"}\tmirrors: ${peer.mirroredLogs.join(",") || "-"}`);
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return 0;
    }
    case "rm": {
      if (operands.length !== 1) throw new UsageError("peers rm takes one NODE_ID");
      const removed = (await connect(values.url).removePeer({ nodeId: operands[0]! })).removed;
      console.log(removed ? `removed ${operands[0]}` : `no peer ${operands[0]}`);
      return removed ? 0 : 1;
    }
    default:
      throw new UsageError(subcommand ? `unknown peers command "${subcommand}"` : "peers needs a command: add, list or rm");
  }
}

export async function federationCommand(connect: (url: string | undefined) => FederationClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { url: { type: "string" }, peer: { type: "string" } } });
  switch (positionals[0]) {
    case "info": {
      const info = await connect(values.url).getNodeInfo({});
      console.log(`node id: ${info.nodeId}\npublic key (JWK): ${info.publicKeyJwk}${info.witnessVerifierKey ? `\nwitness key: ${info.witnessVerifierKey}` : ""}`);
      return 0;
    }
    case "status": {
      const federation = connect(values.url);
      let broken = false;
      let listed = 0;
      let pageToken = "";
      do {
        const page = await federation.getReplicationStatus({ nodeId: values.peer ?? "", pageToken });
        for (const r of page.replications) {
          const state = federationV1.ReplicationState[r.state]?.toLowerCase() ?? "unknown";
          broken ||= r.state === federationV1.ReplicationState.INTEGRITY_ERROR;
          const error = r.lastError ? `\terror: ${r.lastError}` : "";
          const lagSeconds = (Number(r.lagMs) / 1000).toFixed(1);
          console.log(`${r.nodeId}\t${r.logId} → ${r.mirrorLogId}\t${state}\thead ${r.headSeq}\tpeer head ${r.peerHeadSeq}\tlag ${r.lagEntries} entries, ${lagSeconds} s${error}`);
          listed += 1;
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      if (listed === 0) console.log("no replications (no active peer has mirrored logs)");
      return broken ? 1 : 0;
    }
    default:
      throw new UsageError(positionals[0] ? `unknown federation command "${positionals[0]}"` : "federation needs a command: info or status");
  }
}
