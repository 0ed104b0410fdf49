// How command lines and the environment become transport options.
import assert from "node:assert/strict";
import { test } from "node:test";
import { takeTlsOptions, transportOptions } from "./connection.js";
import { UsageError } from "./usage-error.js";

test("options win over ANNALS_* variables; TLS settings only with an https URL", () => {
  const env = { ANNALS_URL: "https://node.example:50051", ANNALS_CA_FILE: "env-ca.pem", ANNALS_TOKEN: "t" };
  assert.deepEqual(transportOptions({ ca: "ca.pem", "server-name": "spiffe://acme.example/annals/eu-1" }, env), {
    baseUrl: "https://node.example:50051",
    token: "t",
    tls: { caFile: "ca.pem", serverUri: "spiffe://acme.example/annals/eu-1" },
  });
  assert.deepEqual(transportOptions({ cert: "c.pem", key: "k.pem", "server-name": "annals.internal" }, env).tls, {
    caFile: "env-ca.pem",
    certFile: "c.pem",
    keyFile: "k.pem",
    serverName: "annals.internal",
  });
  assert.deepEqual(transportOptions({}, {}), { baseUrl: "http://127.0.0.1:50051" });
  assert.throws(() => transportOptions({ url: "http://127.0.0.1:50051", ca: "ca.pem" }, {}), UsageError);
  assert.throws(() => transportOptions({ url: "https://h:1", cert: "c.pem" }, {}), /--cert and --key go together/);
  assert.throws(() => transportOptions({ url: "127.0.0.1:50051" }, {}), /--url must be http:\/\/host:port/);
});

test("the federation verbs' TLS options are taken out of their command lines; --key-file stays", () => {
  assert.deepEqual(takeTlsOptions(["add", "--ca", "ca.pem", "--key-file", "peer.jwk", "--cert=c.pem", "--key", "k.pem", "--server-name", "n", "--url", "https://h:1"]), {
    rest: ["add", "--key-file", "peer.jwk", "--url", "https://h:1"],
    values: { ca: "ca.pem", cert: "c.pem", key: "k.pem", "server-name": "n" },
  });
  assert.throws(() => takeTlsOptions(["list", "--ca"]), /--ca needs a value/);
});
