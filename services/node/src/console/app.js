// The console's views, one per URL hash: #/logs, #/log/<log>[/<from seq>],
// #/tail[/<log>], #/peers, #/kv[/<prefix>]. Everything read from the node is
// put on the page as text (textContent), never as HTML.
import { ApiError, base64ToBytes, federationApi, follow, getToken, kvApi, logApi, setToken, showBytes, textToBase64 } from "./api.js";
import { lineChart } from "./chart.js";

const PAGE = 25;
const TAIL_KEEP = 500;
const PEERS_POLL_MS = 5000;
const LAG_SAMPLES = 120;

/** Builds an element: h("td", { class: "num" }, "12"). Children are nodes or text. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) if (child !== undefined && child !== null && child !== false) element.append(child);
  return element;
}

const row = (...cells) => h("tr", {}, ...cells);
const td = (content, attributes = {}) => h("td", attributes, content ?? "");
const num = (content) => td(content ?? "0", { class: "num" });
const table = (id, headings, numeric = []) => {
  const body = h("tbody");
  const element = h("table", { id }, h("thead", {}, row(...headings.map((heading) => h("th", { class: numeric.includes(heading) ? "num" : undefined }, heading)))), body);
  return { element, body };
};
const short = (hex) => (hex ? `${hex.slice(0, 12)}…` : "");
const hexOf = (base64) => Array.from(base64ToBytes(base64), (byte) => byte.toString(16).padStart(2, "0")).join("");
const time = (micros) => (micros ? new Date(Number(BigInt(micros) / 1000n)).toISOString().replace("T", " ").replace("Z", "") : "");
const logLink = (logId) => h("a", { href: `#/log/${encodeURIComponent(logId)}` }, logId);
const errorBox = (error) => h("div", { class: "error", role: "alert" }, error instanceof ApiError ? error.message : String(error), tokenHint(error));
const tokenHint = (error) =>
  error instanceof ApiError && ["unauthenticated", "permission_denied"].includes(error.code) ? " — give a token with the needed role above." : "";

function payloadText(entry) {
  if (entry.redaction) return `redacted at seq ${entry.redaction.redactionSeq ?? "?"}: ${entry.redaction.reason ?? ""}`;
  if (entry.binaryPayload !== undefined) return `${entry.contentType || "binary"}, ${base64ToBytes(entry.binaryPayload).length} bytes`;
  const text = JSON.stringify(entry.payload ?? {});
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

// ---- logs ----

async function logsView(root) {
  const prefix = h("input", { id: "logs-prefix", placeholder: "log id prefix" });
  const { element, body } = table("logs", ["Log", "Origin", "Entries", "First seq", "Last seq", "Last checksum", "Latest checkpoint", "Created"], ["Entries", "First seq", "Last seq"]);
  const more = h("button", { type: "button", hidden: true }, "More");
  const status = h("div");
  let pageToken = "";
  const load = async () => {
    status.replaceChildren();
    try {
      const page = await logApi("ListLogs", { prefix: prefix.value, pageSize: 50, pageToken });
      for (const head of page.logs ?? []) {
        const checkpoint = td("…", { class: "mono" });
        body.append(
          row(
            td(logLink(head.logId)),
            td(head.origin === "LOG_ORIGIN_MIRROR" ? `mirror of ${head.originNode}` : "local"),
            num(head.entryCount),
            num(head.firstSeq),
            num(head.lastSeq),
            td(short(head.lastChecksum), { class: "mono" }),
            checkpoint,
            td(head.createTime?.replace("T", " ").replace(/\..*|Z$/, "") ?? ""),
          ),
        );
        logApi("GetCheckpoint", { logId: head.logId }).then(
          (signed) => checkpoint.replaceChildren(`size ${signed.treeSize ?? 0} · root ${short(hexOf(signed.rootHash))}`),
          (error) => checkpoint.replaceChildren(h("span", { class: "muted" }, error.code ?? "—")),
        );
      }
      pageToken = page.nextPageToken ?? "";
      more.hidden = pageToken === "";
      if (body.childElementCount === 0) status.append(h("p", { class: "muted" }, "No logs yet."));
    } catch (error) {
      status.append(errorBox(error));
    }
  };
  const reload = () => {
    body.replaceChildren();
    pageToken = "";
    void load();
  };
  root.append(
    h("h2", {}, "Logs"),
    h("form", { class: "toolbar", onsubmit: (event) => (event.preventDefault(), reload()) }, prefix, h("button", { type: "submit" }, "Filter")),
    element,
    status,
    h("div", { class: "toolbar" }, more),
  );
  more.addEventListener("click", () => void load());
  await load();
}

// ---- one log: entries page by page, Verify ----

async function logView(root, [logId = "", fromText]) {
  root.append(h("h2", {}, "Log ", h("code", {}, logId)));
  let head;
  try {
    head = (await logApi("GetLog", { logId })).head ?? {};
  } catch (error) {
    root.append(errorBox(error));
    return;
  }
  const firstSeq = BigInt(head.firstSeq ?? "0");
  const lastSeq = BigInt(head.lastSeq ?? "0");
  const from = fromText && /^[0-9]+$/.test(fromText) ? BigInt(fromText) : firstSeq;
  const go = (seq) => (location.hash = `#/log/${encodeURIComponent(logId)}/${seq}`);
  const verifyResult = h("div", { id: "verify-result" });
  const verify = h("button", { type: "button", id: "verify" }, "Verify");
  verify.addEventListener("click", async () => {
    verify.disabled = true;
    verifyResult.replaceChildren(h("div", { class: "result" }, "Verifying…"));
    try {
      verifyResult.replaceChildren(verifyReport(await logApi("Verify", { logId })));
    } catch (error) {
      verifyResult.replaceChildren(errorBox(error));
    } finally {
      verify.disabled = false;
    }
  });
  root.append(
    h(
      "p",
      {},
      `${head.entryCount ?? 0} entries, seq ${head.firstSeq ?? 0}–${head.lastSeq ?? 0}, head checksum `,
      h("code", {}, short(head.lastChecksum)),
      head.origin === "LOG_ORIGIN_MIRROR" ? ` · mirror of ${head.originNode}` : "",
      " · ",
      h("a", { href: `#/tail/${encodeURIComponent(logId)}` }, "live tail"),
    ),
    h("div", { class: "toolbar" }, verify),
    verifyResult,
  );
  const { element, body } = table("entries", ["Seq", "Time (UTC)", "Kind", "Source", "Payload", "Checksum"], ["Seq"]);
  const nav = h(
    "div",
    { class: "toolbar" },
    h("button", { type: "button", id: "page-first", disabled: from <= firstSeq, onclick: () => go(firstSeq) }, "First"),
    h("button", { type: "button", id: "page-previous", disabled: from <= firstSeq, onclick: () => go(from - BigInt(PAGE) > firstSeq ? from - BigInt(PAGE) : firstSeq) }, "Previous"),
    h("button", { type: "button", id: "page-next", disabled: from + BigInt(PAGE) > lastSeq, onclick: () => go(from + BigInt(PAGE)) }, "Next"),
    h("button", { type: "button", id: "page-latest", onclick: () => go(lastSeq - BigInt(PAGE) + 1n > firstSeq ? lastSeq - BigInt(PAGE) + 1n : firstSeq) }, "Latest"),
    h("span", { class: "muted" }, lastSeq === 0n ? "empty log" : `seq ${from}–${from + BigInt(PAGE) - 1n > lastSeq ? lastSeq : from + BigInt(PAGE) - 1n} of ${lastSeq}`),
  );
  root.append(h("h3", {}, "Entries"), nav, element);
  if (lastSeq === 0n) return;
  try {
    const page = await logApi("Read", { logId, fromSeq: String(from), pageSize: PAGE });
    for (const entry of page.entries ?? []) {
      body.append(row(num(entry.seq), td(time(entry.wallTimeUs)), td(entry.kind), td(entry.sourceId), td(payloadText(entry), { class: "payload mono" }), td(short(entry.checksum), { class: "mono" })));
    }
  } catch (error) {
    root.append(errorBox(error));
  }
}

function verifyReport(report) {
  const findings = report.findings ?? [];
  const summary = report.valid
    ? `Valid: ${report.checkedCount ?? 0} entries checked (anchor seq ${report.anchorSeq ?? 0}, last seq ${report.lastSeq ?? 0}).`
    : `INVALID: ${findings.length}${report.findingsTruncated ? "+" : ""} finding(s) in ${report.checkedCount ?? 0} entries checked.`;
  return h(
    "div",
    { class: `result ${report.valid ? "valid" : "invalid"}` },
    h("strong", {}, summary),
    findings.length === 0
      ? ""
      : h(
          "ul",
          {},
          findings.map((finding) =>
            h(
              "li",
              {},
              `seq ${finding.seq ?? 0}${finding.endSeq && finding.endSeq !== finding.seq ? `–${finding.endSeq}` : ""}: ${(finding.kind ?? "").replace("VERIFY_FINDING_KIND_", "")}`,
              finding.expected ? h("span", { class: "mono" }, ` expected ${short(finding.expected)}, stored ${short(finding.actual)}`) : "",
            ),
          ),
        ),
  );
}

// ---- live tail over SSE ----

function tailView(root, [logId = ""], cleanup) {
  const log = h("input", { id: "tail-log", required: true, placeholder: "log id", value: logId });
  const kinds = h("input", { id: "tail-kinds", placeholder: "kinds, e.g. order.> (empty: all)", value: ">" });
  const snapshot = h("input", { id: "tail-snapshot", type: "number", min: 0, max: 1000, value: 10, size: 5 });
  const state = h("span", { id: "tail-state", class: "muted" }, "stopped");
  const list = h("ol", { id: "tail-events", reversed: true });
  let stop = () => {};
  const start = (event) => {
    event?.preventDefault();
    stop();
    list.replaceChildren();
    stop = follow(log.value, {
      kinds: kinds.value.trim() || ">",
      snapshot: Number(snapshot.value) || 0,
      onEvent: (data) => {
        const entry = data.entry ?? {};
        list.prepend(
          h(
            "li",
            { "data-seq": data.seq },
            h("code", {}, `#${data.seq}`),
            " ",
            h("strong", {}, entry.kind ?? data.name),
            data.snapshot ? h("span", { class: "pill" }, "snapshot") : "",
            " ",
            h("span", { class: "muted" }, time(entry.wallTimeUs)),
            " ",
            h("span", { class: "mono payload" }, payloadText(entry)),
          ),
        );
        while (list.childElementCount > TAIL_KEEP) list.lastElementChild.remove();
      },
      onState: (name, detail) => {
        state.className = name === "live" || name === "caught-up" ? "live" : "muted";
        state.textContent =
          name === "caught-up" ? `live (caught up at seq ${detail.seq})` : name === "ended" ? `ended: ${detail.code}: ${detail.message}` : name;
      },
    });
  };
  cleanup.push(() => stop());
  root.append(
    h("h2", {}, "Live tail"),
    h(
      "form",
      { class: "toolbar", id: "tail-form", onsubmit: start },
      h("label", {}, "Log ", log),
      h("label", {}, "Kinds ", kinds),
      h("label", {}, "Snapshot ", snapshot),
      h("button", { type: "submit", id: "tail-start" }, "Follow"),
      h("button", { type: "button", onclick: () => (stop(), (state.textContent = "stopped")) }, "Stop"),
      state,
    ),
    h("p", { class: "muted" }, "Newest first. Resumes by itself after a dropped connection, from the last seq shown."),
    list,
  );
  if (logId) start();
}

// ---- federation: peers, replication lag over time ----

/** Lag samples per replication ("peer log"), kept while the tab is open. */
const lagHistory = new Map();

async function peersView(root, _parts, cleanup) {
  const info = h("p");
  const peers = table("peers", ["Node id", "URL", "Status", "Serves to it", "Mirrors from it", "Updated"]);
  const replications = table("replications", ["Peer", "Log", "Mirror", "State", "Head", "Peer head", "Lag (entries)", "Lag (ms)", "Last error"], ["Head", "Peer head", "Lag (entries)", "Lag (ms)"]);
  const chart = h("div", { id: "lag-chart" });
  const status = h("div");
  root.append(
    h("h2", {}, "Federation"),
    info,
    h("h3", {}, "Peers"),
    peers.element,
    h("h3", {}, "Replication into this node"),
    replications.element,
    h("h3", {}, "Lag over time (entries behind the peer; sampled every 5 s while this page is open)"),
    chart,
    status,
  );
  try {
    const node = await federationApi("GetNodeInfo", {});
    info.replaceChildren("This node: ", h("code", {}, node.nodeId ?? ""));
    const listed = await federationApi("ListPeers", { pageSize: 1000 });
    for (const peer of listed.peers ?? []) {
      peers.body.append(
        row(
          td(h("code", {}, peer.nodeId)),
          td(peer.url),
          td((peer.status ?? "").replace("PEER_STATUS_", "").toLowerCase()),
          td((peer.servedLogs ?? []).join(", ")),
          td((peer.mirroredLogs ?? []).join(", ")),
          td(peer.updateTime?.replace("T", " ").replace(/\..*|Z$/, "") ?? ""),
        ),
      );
    }
    if (!listed.peers?.length) peers.body.append(row(td("No peers registered.", { colspan: 6, class: "muted" })));
  } catch (error) {
    status.append(errorBox(error));
    return;
  }
  const sample = async () => {
    try {
      const { replications: current = [] } = await federationApi("GetReplicationStatus", { pageSize: 1000 });
      const now = Date.now();
      replications.body.replaceChildren();
      for (const one of current) {
        const key = `${one.nodeId} ${one.logId}`;
        const points = lagHistory.get(key) ?? [];
        points.push({ t: now, v: Number(one.lagEntries ?? 0) });
        lagHistory.set(key, points.slice(-LAG_SAMPLES));
        replications.body.append(
          row(
            td(h("code", {}, one.nodeId)),
            td(one.logId),
            td(logLink(one.mirrorLogId)),
            td((one.state ?? "").replace("REPLICATION_STATE_", "").toLowerCase()),
            num(one.headSeq),
            num(one.peerHeadSeq),
            num(one.lagEntries),
            num(one.lagMs),
            td(one.lastError ?? ""),
          ),
        );
      }
      if (current.length === 0) replications.body.append(row(td("Nothing replicates into this node.", { colspan: 9, class: "muted" })));
      const series = current.map((one) => ({ label: `${one.logId} ← ${one.nodeId.split("/").at(-1)}`, points: lagHistory.get(`${one.nodeId} ${one.logId}`) }));
      chart.replaceChildren(lineChart(series));
      status.replaceChildren();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  };
  await sample();
  if (!root.isConnected) return; // the user moved on while the first sample loaded
  const timer = setInterval(() => void sample(), PEERS_POLL_MS);
  cleanup.push(() => clearInterval(timer));
}

// ---- KV keys by prefix ----

async function kvView(root, [prefixText = ""]) {
  const prefix = h("input", { id: "kv-prefix", placeholder: "key prefix", value: prefixText });
  const { element, body } = table("kv", ["Key", "Value"]);
  const more = h("button", { type: "button", hidden: true }, "More");
  const status = h("div");
  let cursor = "";
  const load = async () => {
    try {
      const page = await kvApi("Scan", { prefix: textToBase64(prefix.value), pageSize: 100, cursor, includeValues: true });
      for (const entry of page.entries ?? []) {
        const value = showBytes(base64ToBytes(entry.value));
        body.append(row(td(showBytes(base64ToBytes(entry.key)), { class: "mono" }), td(value.length > 300 ? `${value.slice(0, 300)}…` : value, { class: "mono payload" })));
      }
      cursor = page.nextCursor ?? "";
      more.hidden = cursor === "";
      if (body.childElementCount === 0) status.replaceChildren(h("p", { class: "muted" }, "No keys with this prefix."));
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  };
  more.addEventListener("click", () => void load());
  root.append(
    h("h2", {}, "KV keys"),
    h(
      "form",
      { class: "toolbar", onsubmit: (event) => (event.preventDefault(), (location.hash = `#/kv/${encodeURIComponent(prefix.value)}`)) },
      prefix,
      h("button", { type: "submit" }, "List"),
    ),
    element,
    status,
    h("div", { class: "toolbar" }, more),
  );
  await load();
}

// ---- routing and the token ----

const VIEWS = { logs: logsView, log: logView, tail: tailView, peers: peersView, kv: kvView };
let cleanup = [];

async function route() {
  for (const stop of cleanup) stop();
  cleanup = [];
  const [name = "logs", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const view = VIEWS[name] ?? logsView;
  const parts = rest.map((part) => decodeURIComponent(part));
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === (name === "log" ? "logs" : name));
  const root = document.getElementById("view");
  const fresh = h("div");
  root.replaceChildren(fresh);
  await view(fresh, parts, cleanup);
}

function showTokenState() {
  document.getElementById("token-state").textContent = getToken() ? "token set (this tab)" : "no token";
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  setToken(input.value.trim());
  input.value = "";
  showTokenState();
  void route();
});
document.getElementById("token-forget").addEventListener("click", () => {
  setToken("");
  showTokenState();
  void route();
});
window.addEventListener("hashchange", () => void route());
showTokenState();
void route();
