#!/usr/bin/env python3
"""Checks docs/hash-chain/vectors.json with nothing but the Python standard library.

An independent implementation of docs/hash-chain.md: RFC 8785 canonical JSON
(including ECMAScript number formatting), SHA-256 and the chain envelope.
Run: python3 docs/hash-chain/check_vectors.py
"""
import base64
import hashlib
import json
import math
import pathlib
import sys


def es_number(x: float) -> str:
    """Number::toString as ECMAScript prints a double (RFC 8785 section 3.2.2.3)."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError("NaN and Infinity have no JSON form")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    # repr gives the shortest digits that round-trip, as ECMAScript requires.
    mantissa, _, exp = repr(abs(x)).partition("e")
    digits = mantissa.replace(".", "")
    point = mantissa.index(".") if "." in mantissa else len(mantissa)
    n = point + (int(exp) if exp else 0)  # position of the decimal point
    stripped = digits.lstrip("0")
    n -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    exponent = ("+" if e >= 0 else "-") + str(abs(e))
    if k == 1:
        return sign + digits + "e" + exponent
    return sign + digits[0] + "." + digits[1:] + "e" + exponent


def es_string(s: str) -> str:
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif c < 0x20:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def utf16_key(s: str):
    return s.encode("utf-16-be")


def jcs(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return es_number(float(value))
    if isinstance(value, str):
        return es_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=utf16_key)
        return "{" + ",".join(es_string(k) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(type(value))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def main() -> int:
    path = pathlib.Path(__file__).with_name("vectors.json")
    vectors = json.loads(path.read_text("utf-8"))
    failures = 0
    for case in vectors["canonical_json"]:
        got = jcs(json.loads(case["input"]))
        if got != case["canonical"]:
            failures += 1
            print(f"canonical_json {case['name']}: got {got!r}, want {case['canonical']!r}")
    for chain in vectors["chains"]:
        prev = chain["anchor_checksum"]
        for entry in chain["entries"]:
            name = f"{chain['name']} seq {entry['seq']}"
            binary = entry["content_type"] is not None
            if binary:
                digest = hashlib.sha256(base64.b64decode(entry["payload_base64"], validate=True)).hexdigest()
            else:
                digest = sha256(jcs(entry["payload"]))
            envelope = {
                "log_id": chain["log_id"],
                "seq": entry["seq"],
                "uuid": entry["uuid"],
                "kind": entry["kind"],
                "source_id": entry["source_id"],
                "sim_time": entry["sim_time"],
                "wall_time": entry["wall_time"],
                "req_id": entry["req_id"],
                "metadata": entry["metadata"],
                "payload_digest": digest,
                "prev_checksum": prev,
            }
            # Only a binary entry's envelope has content_type (docs/hash-chain.md, "The checksum").
            if binary:
                envelope["content_type"] = entry["content_type"]
            checks = [] if binary else [("payload_canonical", jcs(entry["payload"]), entry["payload_canonical"])]
            checks += [
                ("payload_digest", digest, entry["payload_digest"]),
                ("envelope_canonical", jcs(envelope), entry["envelope_canonical"]),
                ("checksum", sha256(jcs(envelope)), entry["checksum"]),
            ]
            for field, got, want in checks:
                if got != want:
                    failures += 1
                    print(f"{name} {field}: got {got!r}, want {want!r}")
            prev = entry["checksum"]
    total = len(vectors["canonical_json"]) + sum(len(c["entries"]) for c in vectors["chains"])
    print(f"hash-chain vectors: {total} checked, {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
