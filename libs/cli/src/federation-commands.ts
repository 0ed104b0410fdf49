// `annals peers …`, `annals federation …` and `annals verify-evidence`: the
// peer registry, replication status, and the recovery from a forked peer.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { SIGNATURE_TYPE_ED25519, createVerifierKey, parseCheckpointNote, parseForkEvidence, parseLogOrigin, parseVerifierKey, verifyForkEvidence, type VerifierKey } from "@annals/chain";
import type { FederationClient } from "@annals/client";
import { federationV1 } from "@annals/proto";
import { UsageError } from "./usage-error.js";

export const FEDERATION_USAGE = `  annals federation info            prints this node's id, its public key (JWK) and its log verifier key; save the
                                    output as a file for the peer's \`annals peers add --key-file\`
  annals federation status [--peer NODE_ID]
                                    one line per replication; exit status 1 when one has an integrity error
  annals federation reset --peer NODE_ID --log LOG
                                    clears an integrity error (not a fork) and prints the replication's status
  annals federation evidence --peer NODE_ID --log LOG
                                    prints the fork-evidence bundle of a replication stopped by a fork
  annals federation quarantine --peer NODE_ID --log LOG
                                    sets a forked mirror aside: readable, marked quarantined, never written again
  annals federation re-mirror --peer NODE_ID --log LOG [--as MIRROR_LOG]
                                    mirrors the peer's log again from seq 1 into a new mirror
  annals verify-evidence FILE --key VKEY
                                    checks a fork-evidence bundle offline with the origin's log verifier key;
                                    exit status 0 when it proves misbehaviour, 1 otherwise (with the reason)
  annals peers add --node-id NODE_ID --peer-url URL --key-file FILE [--log-key VKEY] [--serve LOG,…] [--mirror LOG,…]
                                    registers a peer (FILE: its \`annals federation info\` output, or its public JWK;
                                    the log verifier key comes from --log-key, or from FILE)
  annals peers update NODE_ID [--peer-url URL] [--key-file FILE] [--log-key VKEY] [--serve LOG,…] [--mirror LOG,…]
                      [--enable | --disable]
                                    changes the given fields of a peer
  annals peers list                 one line per registered peer
  annals peers rm NODE_ID           removes a peer (its mirrors stay readable)`;

const list = (value: string | undefined) => (value ?? "").split(",").map((item) => item.trim()).filter(Boolean);

const INFO_JWK = "public key (JWK): ";
const INFO_LOG_KEY = "log verifier key: ";

/**
 * A peer's keys from a file: what `annals federation info` prints (all of
 * it, or its JWK line), or a bare JWK.
 */
export function parsePeerKeyFile(text: string, file: string): { publicKeyJwk: string; logVerifierKey: string | undefined } {
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  const jwkLine = lines.find((line) => line.startsWith(INFO_JWK));
  const logKeyLine = lines.find((line) => line.startsWith(INFO_LOG_KEY));
  const publicKeyJwk = jwkLine ? jwkLine.slice(INFO_JWK.length).trim() : text.trim();
  try {
    JSON.parse(publicKeyJwk);
  } catch {
    throw new UsageError(`${file} holds neither a JWK nor the output of \`annals federation info\` (no "${INFO_JWK.trim()}" line)`);
  }
  const logVerifierKey = logKeyLine?.slice(INFO_LOG_KEY.length).trim();
  return { publicKeyJwk, logVerifierKey: logVerifierKey === "" || logVerifierKey === "-" ? undefined : logVerifierKey };
}

const PEER_OPTIONS = {
  url: { type: "string" },
  "node-id": { type: "string" },
  "peer-url": { type: "string" },
  "key-file": { type: "string" },
  "log-key": { type: "string" },
  serve: { type: "string" },
  mirror: { type: "string" },
  enable: { type: "boolean" },
  disable: { type: "boolean" },
} as const;

export async function peersCommand(connect: (url: string | undefined) => FederationClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: PEER_OPTIONS });
  const [subcommand, ...operands] = positionals;
  const keys = async () => (values["key-file"] ? parsePeerKeyFile(await readFile(values["key-file"], "utf8"), values["key-file"]) : undefined);
  switch (subcommand) {
    case "add": {
      // --url is the server this command talks to; the peer's own address comes as --peer-url, or as the operand.
      const peerUrl = values["peer-url"] ?? operands[0];
      if (!values["node-id"] || !peerUrl || !values["key-file"]) throw new UsageError("peers add needs --node-id, --peer-url and --key-file");
      const fromFile = (await keys())!;
      const peer = await connect(values.url).registerPeer({
        peer: {
          nodeId: values["node-id"],
          url: peerUrl,
          publicKeyJwk: fromFile.publicKeyJwk,
          logVerifierKey: values["log-key"] ?? fromFile.logVerifierKey ?? "",
          servedLogs: list(values.serve),
          mirroredLogs: list(values.mirror),
        },
      });
      const checked = peer.peer?.logVerifierKey ? "; its checkpoints are checked with its log key" : "; no log key: its mirrors are checked by hash chain only";
      console.log(`registered ${peer.peer?.nodeId} at ${peer.peer?.url}${checked}`);
      return 0;
    }
    case "update": {
      const nodeId = values["node-id"] ?? operands[0];
      if (!nodeId) throw new UsageError("peers update needs the peer's NODE_ID");
      if (values.enable && values.disable) throw new UsageError("peers update takes --enable or --disable, not both");
      const fromFile = await keys();
      const peer: { nodeId: string; url?: string; publicKeyJwk?: string; logVerifierKey?: string; servedLogs?: string[]; mirroredLogs?: string[]; status?: federationV1.PeerStatus } = { nodeId };
      const paths: string[] = [];
      if (values["peer-url"] !== undefined) {
        peer.url = values["peer-url"];
        paths.push("url");
      }
      if (fromFile) {
        peer.publicKeyJwk = fromFile.publicKeyJwk;
        paths.push("public_key_jwk");
      }
      const logKey = values["log-key"] ?? fromFile?.logVerifierKey;
      if (logKey !== undefined) {
        peer.logVerifierKey = logKey;
        paths.push("log_verifier_key");
      }
      if (values.serve !== undefined) {
        peer.servedLogs = list(values.serve);
        paths.push("served_logs");
      }
      if (values.mirror !== undefined) {
        peer.mirroredLogs = list(values.mirror);
        paths.push("mirrored_logs");
      }
      if (values.enable || values.disable) {
        peer.status = values.enable ? federationV1.PeerStatus.ACTIVE : federationV1.PeerStatus.DISABLED;
        paths.push("status");
      }
      if (paths.length === 0) throw new UsageError("peers update needs at least one of --peer-url, --key-file, --log-key, --serve, --mirror, --enable, --disable");
      const updated = await connect(values.url).updatePeer({ peer, updateMask: { paths } });
      console.log(`updated ${updated.peer?.nodeId}: ${paths.join(", ")}`);
      return 0;
    }
    case "list": {
      const federation = connect(values.url);
      let pageToken = "";
      let listed = 0;
      do {
        const page = await federation.listPeers({ pageToken });
        for (const peer of page.peers) {
          const status = peer.status === federationV1.PeerStatus.DISABLED ? "disabled" : "active";
          console.log(
            `${peer.nodeId}\t${peer.url}\t${status}\tserves: ${peer.servedLogs.join(",") || "-"}\tmirrors: ${peer.mirroredLogs.join(",") || "-"}\tlog key: ${peer.logVerifierKey || "-"}`,
          );
          listed++;
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      if (listed === 0) console.log("no peers registered (add one with `annals peers add`)");
      return 0;
    }
    case "rm": {
      if (operands.length !== 1) throw new UsageError("peers rm takes one NODE_ID");
      const removed = (await connect(values.url).removePeer({ nodeId: operands[0]! })).removed;
      console.log(removed ? `removed ${operands[0]}` : `no peer ${operands[0]}`);
      return removed ? 0 : 1;
    }
    default:
      throw new UsageError(subcommand ? `unknown peers command "${subcommand}"` : "peers needs a command: add, update, list or rm");
  }
}

/** One line of `federation status`. */
function statusLine(r: federationV1.ReplicationStatus): string {
  const state = federationV1.ReplicationState[r.state]?.toLowerCase() ?? "unknown";
  const fork = r.forkSeq > 0n ? `\tfork at seq ${r.forkSeq}` : "";
  const checkpoint = r.checkpointSize > 0n ? `\tcheckpoint ${r.checkpointSize}` : "";
  const quarantined = r.quarantinedMirrorLogIds.length > 0 ? `\tquarantined: ${r.quarantinedMirrorLogIds.join(",")}` : "";
  const error = r.lastError ? `\terror: ${r.lastError}` : "";
  const lagSeconds = (Number(r.lagMs) / 1000).toFixed(1);
  return `${r.nodeId}\t${r.logId} → ${r.mirrorLogId}\t${state}\thead ${r.headSeq}\tpeer head ${r.peerHeadSeq}\tlag ${r.lagEntries} entries, ${lagSeconds} s${checkpoint}${fork}${quarantined}${error}`;
}

export async function federationCommand(connect: (url: string | undefined) => FederationClient, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { url: { type: "string" }, peer: { type: "string" }, log: { type: "string" }, as: { type: "string" } },
  });
  const target = (command: string) => {
    if (!values.peer || !values.log) throw new UsageError(`federation ${command} needs --peer NODE_ID and --log LOG`);
    return { nodeId: values.peer, logId: values.log };
  };
  switch (positionals[0]) {
    case "info": {
      const info = await connect(values.url).getNodeInfo({});
      // Each line is "<label>: <value>"; `peers add --key-file` reads this output as it is.
      console.log(`node id: ${info.nodeId}\n${INFO_JWK}${info.publicKeyJwk}\n${INFO_LOG_KEY}${info.logVerifierKey || "-"}${info.witnessVerifierKey ? `\nwitness key: ${info.witnessVerifierKey}` : ""}`);
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
          broken ||= r.state === federationV1.ReplicationState.INTEGRITY_ERROR || r.state === federationV1.ReplicationState.QUARANTINED;
          console.log(statusLine(r));
          listed += 1;
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      if (listed === 0) console.log("no replications (no active peer has mirrored logs)");
      return broken ? 1 : 0;
    }
    case "reset": {
      const { status } = await connect(values.url).resetReplication(target("reset"));
      if (status) console.log(statusLine(status));
      return 0;
    }
    case "evidence": {
      const fork = await connect(values.url).getForkEvidence(target("evidence"));
      console.error(`fork at seq ${fork.forkSeq}: ${fork.detail}`);
      if (fork.evidence === "") {
        console.error("no two checkpoints signed by the peer's key show this fork: there is no bundle to export");
        return 1;
      }
      if (!fork.provesMisbehaviour) console.error("note: this bundle does not prove misbehaviour by itself (see docs/merkle.md, \"Federation\")");
      process.stdout.write(fork.evidence);
      return 0;
    }
    case "quarantine": {
      const { status } = await connect(values.url).quarantineMirror(target("quarantine"));
      if (status) console.log(statusLine(status));
      return 0;
    }
    case "re-mirror": {
      const { status } = await connect(values.url).reMirror({ ...target("re-mirror"), mirrorLogId: values.as ?? "" });
      if (status) console.log(statusLine(status));
      return 0;
    }
    default:
      throw new UsageError(
        positionals[0] ? `unknown federation command "${positionals[0]}"` : "federation needs a command: info, status, reset, evidence, quarantine or re-mirror",
      );
  }
}

/**
 * The key that verifies a bundle's checkpoints: the given vkey, or, when it
 * is a node's key (named by the node id), the same key under the bundle's
 * origin when that origin is one of the node's logs.
 */
function keyForBundle(vkey: VerifierKey, bundle: string): VerifierKey {
  if (vkey.name.includes(":")) return vkey;
  let origin: string;
  try {
    origin = parseCheckpointNote(parseForkEvidence(bundle).smaller).origin;
    if (parseLogOrigin(origin).nodeId !== `spiffe://${vkey.name}`) return vkey;
  } catch {
    return vkey;
  }
  return createVerifierKey(origin, SIGNATURE_TYPE_ED25519, vkey.publicKey);
}

/** `annals verify-evidence FILE --key VKEY`: 0 when the bundle proves misbehaviour, 1 otherwise. */
export async function verifyEvidenceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { key: { type: "string" } } });
  if (positionals.length !== 1 || !values.key) throw new UsageError("verify-evidence takes one FILE and --key VKEY (the origin's log verifier key)");
  let vkey: VerifierKey;
  try {
    vkey = parseVerifierKey(values.key.trim());
  } catch (error) {
    throw new UsageError(`--key is not a verifier key: ${(error as Error).message}`);
  }
  const file = positionals[0]!;
  const bundle = await readFile(file, "utf8");
  const verdict = verifyForkEvidence(bundle, keyForBundle(vkey, bundle));
  if (!verdict.provesMisbehaviour) {
    console.log(`${file}: proves nothing: ${verdict.reason}`);
    return 1;
  }
  console.log(`${file}: proves misbehaviour of ${verdict.origin} (${verdict.kind}): ${verdict.explanation}`);
  return 0;
}
