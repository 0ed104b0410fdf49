#!/usr/bin/env python3
"""Checks docs/merkle/vectors.json with an implementation independent of libs/chain.

What docs/merkle.md specifies, from the RFCs and the C2SP texts: RFC 6962 /
RFC 9162 tree hashes and proofs, C2SP tlog-tiles tiles and entry bundles,
signed notes and verifier keys, checkpoints, Ed25519 cosignatures,
tlog-proof receipts and annals fork-evidence bundles. Python standard
library, plus `cryptography` (Debian: python3-cryptography) for Ed25519.
Also checks the fork-evidence bundles in docs/merkle/federation/, made by a
federation mirror that caught a forked peer.
Run: python3 docs/merkle/check_vectors.py
"""
import base64
import binascii
import hashlib
import json
import pathlib
import re
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_SIZE = 2**63 - 1


class Invalid(Exception):
    """Something in a vector does not verify or is malformed."""


# --- RFC 6962 / RFC 9162 -----------------------------------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: list) -> bytes:
    """MTH over leaf hashes (RFC 9162 2.1.1)."""
    if not hashes:
        return sha256(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = split(len(hashes))
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def path(m: int, hashes: list) -> list:
    """PATH(m, D[n]) (RFC 9162 2.1.3.1)."""
    if len(hashes) == 1:
        return []
    k = split(len(hashes))
    if m < k:
        return path(m, hashes[:k]) + [mth(hashes[k:])]
    return path(m - k, hashes[k:]) + [mth(hashes[:k])]


def subproof(m: int, hashes: list, complete: bool) -> list:
    """SUBPROOF(m, D[n], b) (RFC 9162 2.1.4.1)."""
    n = len(hashes)
    if m == n:
        return [] if complete else [mth(hashes)]
    k = split(n)
    if m <= k:
        return subproof(m, hashes[:k], complete) + [mth(hashes[k:])]
    return subproof(m - k, hashes[k:], False) + [mth(hashes[:k])]


def consistency(m: int, hashes: list) -> list:
    return [] if m in (0, len(hashes)) else subproof(m, hashes, True)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list, root: bytes) -> None:
    """RFC 9162 2.1.3.2."""
    if not 0 <= index < size <= MAX_SIZE:
        raise Invalid(f"leaf index {index} not in a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise Invalid("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise Invalid("inclusion proof does not verify")


def consistency_roots(m: int, n: int, seeded: list):
    """RFC 9162 2.1.4.2 steps 3-6 for 0 < m < n; `seeded` already has step 2 applied."""
    if not 0 < m < n or not seeded:
        raise Invalid(f"no consistency path from {m} to {n}")
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = seeded[0]
    for c in seeded[1:]:
        if sn == 0:
            raise Invalid("consistency path too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Invalid("consistency path too short")
    return fr, sr


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, proof: list) -> None:
    if m > n:
        raise Invalid("old size above new size")
    if m == n or m == 0:
        expected = sha256(b"") if m == 0 else root_n
        if proof or root_m != expected:
            raise Invalid("trivial consistency proof does not verify")
        return
    seeded = [root_m] + proof if m & (m - 1) == 0 else proof
    if consistency_roots(m, n, seeded) != (root_m, root_n):
        raise Invalid("consistency proof does not verify")


# --- C2SP tlog-tiles ---------------------------------------------------------

TILE_PATH = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


def parse_tile_path(text: str):
    match = TILE_PATH.fullmatch(text)
    if not match:
        raise Invalid(f"not a tile path: {text}")
    level_text, index_text, width_text = match.groups()
    level = 0 if level_text == "entries" else int(level_text)
    groups = index_text.replace("x", "").split("/")
    if level > 63 or (len(groups) > 1 and groups[0] == "000"):
        raise Invalid(f"not a tile path: {text}")
    width = 256 if width_text is None else int(width_text)
    if width > 255 and width_text is not None:
        raise Invalid(f"partial width out of range: {text}")
    return level_text == "entries", level, int("".join(groups)), width


def tile_hashes(hashes: list, level: int, index: int, width: int) -> bytes:
    """Hash i of tile N at level L: MTH of the 256**L leaves from (N*256 + i) * 256**L."""
    span = 256**level
    return b"".join(mth(hashes[(index * 256 + i) * span:(index * 256 + i + 1) * span]) for i in range(width))


# --- C2SP signed-note, tlog-checkpoint, tlog-cosignature ---------------------

def b64(text: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as error:
        raise Invalid(f"bad base64 {text!r}") from error
    if base64.b64encode(raw).decode() != text:
        raise Invalid(f"non-canonical base64 {text!r}")
    return raw


def valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


class Vkey:
    def __init__(self, text: str):
        name, sep, rest = text.partition("+")
        key_id, sep2, material = rest.partition("+")
        if not (sep and sep2 and valid_name(name) and re.fullmatch(r"[0-9a-f]{8}", key_id)):
            raise Invalid(f"bad verifier key {text}")
        raw = b64(material)
        if len(raw) != 33 or raw[0] not in (0x01, 0x04):
            raise Invalid(f"unsupported verifier key {text}")
        self.name, self.type, self.public = name, raw[0], raw[1:]
        self.key_id = struct.unpack(">I", sha256(name.encode() + b"\n" + raw)[:4])[0]
        if self.key_id != int(key_id, 16):
            raise Invalid(f"key id of {text} does not match its key")
        self.key = Ed25519PublicKey.from_public_bytes(self.public)

    def verify(self, text: str, signature: bytes):
        """True, or the cosignature's timestamp; raises Invalid when it fails."""
        try:
            if self.type == 0x01:
                self.key.verify(signature, text.encode())
                return True
            if len(signature) != 72:
                raise Invalid("a cosignature is 8 + 64 bytes")
            (timestamp,) = struct.unpack(">Q", signature[:8])
            if timestamp > MAX_SIZE:
                raise Invalid("cosignature timestamp too large")
            self.key.verify(signature[8:], f"cosignature/v1\ntime {timestamp}\n{text}".encode())
            return timestamp
        except InvalidSignature as error:
            raise Invalid(f"signature of {self.name} does not verify") from error


def parse_note(note: str):
    if not note.endswith("\n") or re.search(r"[\x00-\x09\x0b-\x1f]", note):
        raise Invalid("malformed note")
    cut = note.rfind("\n\n")
    if cut < 0 or cut + 2 == len(note):
        raise Invalid("note without signatures")
    signatures = []
    for line in note[cut + 2:-1].split("\n"):
        match = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if not match or not valid_name(match.group(1)):
            raise Invalid(f"bad signature line {line!r}")
        raw = b64(match.group(2))
        if len(raw) < 5:
            raise Invalid("signature too short")
        signatures.append((match.group(1), struct.unpack(">I", raw[:4])[0], raw[4:]))
    return note[:cut + 1], signatures


def open_note(note: str, vkeys: list, require: bool = True):
    """The text and the results of the signatures of known keys; unknown keys are ignored."""
    text, signatures = parse_note(note)
    results = []
    for name, key_id, signature in signatures:
        for vkey in vkeys:
            if vkey.name == name and vkey.key_id == key_id:
                results.append((vkey, vkey.verify(text, signature)))
    if require and not results:
        raise Invalid("no signature from a known key")
    return text, results


def parse_checkpoint(text: str):
    lines = text.split("\n")
    if lines[-1] != "" or len(lines) < 4 or "" in lines[:-1]:
        raise Invalid("malformed checkpoint")
    origin, size, root = lines[0], lines[1], b64(lines[2])
    if not re.fullmatch(r"0|[1-9][0-9]*", size) or int(size) > MAX_SIZE or len(root) != 32:
        raise Invalid("malformed checkpoint")
    return origin, int(size), root


def open_checkpoint(note: str, vkey: Vkey):
    text, _ = open_note(note, [vkey])
    origin, size, root = parse_checkpoint(text)
    if origin != vkey.name:
        raise Invalid(f"checkpoint origin {origin} is not {vkey.name}")
    return origin, size, root


# --- C2SP tlog-proof ---------------------------------------------------------

def verify_receipt(proof: str, leaf: bytes, vkey: Vkey, witnesses: list, threshold: int):
    head, sep, note = proof.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines.pop(0) != "c2sp.org/tlog-proof@v1":
        raise Invalid("not a tlog-proof")
    if lines and lines[0].startswith("extra "):
        b64(lines.pop(0)[6:])
    match = re.fullmatch(r"index (0|[1-9][0-9]*)", lines.pop(0) if lines else "")
    if not match:
        raise Invalid("no index line")
    hashes = [b64(line) for line in lines]
    if any(len(h) != 32 for h in hashes) or len(hashes) > 63:
        raise Invalid("bad proof hashes")
    _, size, root = open_checkpoint(note, vkey)
    _, cosigned = open_note(note, witnesses, require=False)
    if len({(v.name, v.key_id) for v, _ in cosigned}) < threshold:
        raise Invalid("not enough witness cosignatures")
    verify_inclusion(leaf_hash(leaf), int(match.group(1)), size, hashes, root)
    return [timestamp for _, timestamp in cosigned]


# --- annals fork evidence ------------------------------------------------------

def fork_verdict(bundle: str, vkey: Vkey):
    """(True, kind) when the bundle proves misbehaviour, else (False, reason)."""
    try:
        return judge_fork(bundle, vkey)
    except (Invalid, ValueError) as error:
        return False, f"malformed bundle: {error}"


def judge_fork(bundle: str, vkey: Vkey):
    lines = bundle.split("\n")
    if lines.pop(0) != "annals/fork-evidence/v1":
        return False, "not a bundle"
    seeded = []
    while lines and lines[0] != "":
        seeded.append(b64(lines.pop(0)))
    if not lines:
        return False, "no checkpoints"
    lines.pop(0)
    end = lines.index("") + 1
    while end < len(lines) and lines[end].startswith("\u2014 "):
        end += 1
    if end >= len(lines) or lines[end] != "":
        return False, "checkpoints not separated"
    notes = ["\n".join(lines[:end]) + "\n", "\n".join(lines[end + 1:])]
    try:
        (o1, m, root_m), (o2, n, root_n) = (open_checkpoint(note, vkey) for note in notes)
    except Invalid as error:
        return False, str(error)
    if o1 != o2 or m > n or any(len(h) != 32 for h in seeded):
        return False, "malformed bundle"
    if m == 0 and root_m != sha256(b""):
        return True, "empty-tree"
    if m == n:
        return (not seeded and root_m != root_n), ("same-size" if root_m != root_n else "same checkpoint")
    if m == 0:
        return False, "the empty tree is consistent with every tree"
    try:
        fr, sr = consistency_roots(m, n, seeded)
    except Invalid as error:
        return False, str(error)
    if sr != root_n:
        return False, "the path does not derive the larger root"
    if fr == root_m:
        return False, "consistent"
    return True, "inconsistent"


# --- the checks ----------------------------------------------------------------

def main() -> int:
    here = pathlib.Path(__file__).parent
    vectors = json.loads((here / "vectors.json").read_text("utf-8"))
    chain = json.loads((here.parent / "hash-chain" / "vectors.json").read_text("utf-8"))
    failures = []
    checked = 0

    def check(name, condition, detail=""):
        nonlocal checked
        checked += 1
        if not condition:
            failures.append(f"{name}: {detail}" if detail else name)

    def attempt(name, action):
        nonlocal checked
        checked += 1
        try:
            return action()
        except Invalid as error:
            failures.append(f"{name}: {error}")
            return None

    h = bytes.fromhex

    # Published reference data first: if these fail, the checker is wrong, not annals.
    pub = vectors["published"]
    ref_hashes = [leaf_hash(h(leaf)) for leaf in pub["rfc6962"]["leaves"]]
    for size, root in enumerate(pub["rfc6962"]["roots"]):
        check(f"rfc6962 root {size}", mth(ref_hashes[:size]).hex() == root)
    for v in pub["rfc6962"]["inclusion"]:
        check(f"rfc6962 inclusion {v['index']}/{v['size']}", [x.hex() for x in path(v["index"], ref_hashes[:v["size"]])] == v["proof"])
    for v in pub["rfc6962"]["consistency"]:
        check(f"rfc6962 consistency {v['m']}/{v['n']}", [x.hex() for x in consistency(v["m"], ref_hashes[:v["n"]])] == v["proof"])
    for i, v in enumerate(pub["notes"]):
        attempt(f"published note {i}", lambda v=v: open_note(v["note"], [Vkey(v["verifier_key"])]))
    stamps = attempt("published cosignature", lambda: open_note(pub["cosigned_checkpoint"]["note"], [Vkey(pub["cosigned_checkpoint"]["witness_key"])]))
    check("published cosignature time", stamps is not None and stamps[1][0][1] == int(pub["cosigned_checkpoint"]["timestamp"]))

    # The worked example: the tree of the first four hash-chain vectors.
    ex = vectors["example"]
    entries = chain["chains"][0]["entries"][:4]
    check("example leaves are the hash-chain checksums", [leaf["checksum"] for leaf in ex["leaves"]] == [e["checksum"] for e in entries])
    ex_hashes = [leaf_hash(h(leaf["checksum"])) for leaf in ex["leaves"]]
    for leaf, lh in zip(ex["leaves"], ex_hashes):
        check(f"example leaf hash seq {leaf['seq']}", lh.hex() == leaf["leaf_hash"])
    for v in ex["roots"]:
        check(f"example root {v['size']}", mth(ex_hashes[:v["size"]]).hex() == v["root"])
    log = vectors["log"]
    vkey = Vkey(log["verifier_key"])
    check("example checkpoint", attempt("example checkpoint", lambda: open_checkpoint(ex["checkpoint_note"], vkey)) == (log["origin"], 4, mth(ex_hashes)))
    attempt("example receipt", lambda: verify_receipt(ex["receipt"]["proof"], h(ex["receipt"]["leaf"]), vkey, [], 0))
    check("example consistency", [x.hex() for x in consistency(ex["consistency"]["m"], ex_hashes)] == ex["consistency"]["proof"])

    # The 300-leaf log.
    check("origin rule", log["origin"] == log["node_id"].removeprefix("spiffe://") + ":" + log["log_id"])
    hashes = [leaf_hash(h(leaf)) for leaf in log["leaves"]]
    roots = [h(root) for root in log["roots"]]
    for size, root in enumerate(roots):
        check(f"root {size}", mth(hashes[:size]) == root)
    for v in log["inclusion"]:
        name = f"inclusion {v['index']}/{v['size']}"
        proof = [h(x) for x in v["proof"]]
        check(name, path(v["index"], hashes[:v["size"]]) == proof)
        attempt(name, lambda v=v, proof=proof: verify_inclusion(hashes[v["index"]], v["index"], v["size"], proof, roots[v["size"]]))
        if proof:
            bad = [proof[0][:-1] + bytes([proof[0][-1] ^ 1])] + proof[1:]
            check(name + " flipped", attempt_fails(lambda: verify_inclusion(hashes[v["index"]], v["index"], v["size"], bad, roots[v["size"]])))
    for v in log["consistency"]:
        name = f"consistency {v['m']}/{v['n']}"
        proof = [h(x) for x in v["proof"]]
        check(name, consistency(v["m"], hashes[:v["n"]]) == proof)
        attempt(name, lambda v=v, proof=proof: verify_consistency(v["m"], v["n"], roots[v["m"]], roots[v["n"]], proof))
        if proof:
            bad = proof[:-1] + [proof[-1][:-1] + bytes([proof[-1][-1] ^ 1])]
            check(name + " flipped", attempt_fails(lambda: verify_consistency(v["m"], v["n"], roots[v["m"]], roots[v["n"]], bad)))
    for tile in log["tiles"]:
        entries_tile, level, index, width = parse_tile_path(tile["path"])
        check(f"tile {tile['path']}", not entries_tile and tile_hashes(hashes, level, index, width).hex() == tile["hex"])
    for bundle in log["entry_bundles"]:
        entries_tile, _, index, width = parse_tile_path(bundle["path"])
        leaves = [h(x) for x in log["leaves"][index * 256:index * 256 + width]]
        check(f"bundle {bundle['path']}", entries_tile and b"".join(struct.pack(">H", len(x)) + x for x in leaves).hex() == bundle["hex"])
    for bad_path in ["tile/0/x000/001", "tile/00/000", "tile/0/000.p/256", "tile/64/000", "tile/0/01"]:
        check(f"bad tile path {bad_path}", attempt_fails(lambda p=bad_path: parse_tile_path(p)))
    edge = h(log["right_edge"])
    (edge_size,) = struct.unpack(">Q", edge[:8])
    expected_edge, start = [], 0
    for bit in reversed(range(64)):
        if edge_size >> bit & 1:
            expected_edge.append(mth(hashes[start:start + 2**bit]))
            start += 2**bit
    check("right edge", edge_size == len(hashes) and edge[8:] == b"".join(expected_edge))
    for v in log["checkpoints"]:
        result = attempt(f"checkpoint {v['size']}", lambda v=v: open_checkpoint(v["note"], vkey))
        check(f"checkpoint {v['size']} body", result == (log["origin"], v["size"], roots[v["size"]]))
    tampered = log["checkpoints"][-1]["note"].replace("\n300\n", "\n299\n")
    check("tampered checkpoint", attempt_fails(lambda: open_checkpoint(tampered, vkey)))

    # Receipt and cosignature.
    rc, cs = vectors["receipt"], vectors["cosignature"]
    witness = Vkey(cs["verifier_key"])
    check("witness key", rc["witness_key"] == cs["verifier_key"] and witness.type == 0x04)
    times = attempt("receipt", lambda: verify_receipt(rc["proof"], h(rc["leaf"]), vkey, [witness], 1))
    check("receipt cosignature time", times == [int(cs["timestamp"])])
    check("receipt of another leaf", attempt_fails(lambda: verify_receipt(rc["proof"], h(log["leaves"][0]), vkey, [], 0)))
    text, results = open_note(cs["note"], [witness])
    check("cosigned message", f"cosignature/v1\ntime {cs['timestamp']}\n{text}" == cs["signed_message"])
    check("cosignature", results == [(witness, int(cs["timestamp"]))])

    # Witnessing: add-checkpoint bodies, the witnesses' answers, and the published 2-of-3 note.
    wd = vectors["witnessed"]
    wvkey = Vkey(wd["verifier_key"])
    wkeys = [Vkey(w["verifier_key"]) for w in wd["witnesses"]]
    check("witness keys are cosigner keys", all(k.type == 0x04 for k in wkeys) and wvkey.type == 0x01)
    state = {}
    for i, rq in enumerate(wd["requests"]):
        head, _, note = rq["body"].partition("\n\n")
        lines = head.split("\n")
        old = int(lines[0].removeprefix("old "))
        proof = [b64(x) for x in lines[1:]]
        _, size, root = attempt(f"witness request {i} checkpoint", lambda note=note: open_checkpoint(note, wvkey)) or (None, 0, b"")
        stored_size, stored_root = state.get(rq["witness"], (0, None))
        check(f"witness request {i} old size", old == stored_size)
        if old == 0:
            check(f"witness request {i} proof", proof == [])
        else:
            check(f"witness request {i} proof", proof == consistency(old, hashes[:size]))
            attempt(f"witness request {i} consistency", lambda: verify_consistency(old, size, stored_root, root, proof))
        text, results = open_note(note + rq["response"], [wkeys[rq["witness"]]])
        check(f"witness answer {i}", results == [(wkeys[rq["witness"]], int(rq["timestamp"]))] and int(rq["timestamp"]) != 0)
        state[rq["witness"]] = (size, root)
    text, cosigned = attempt("witnessed note", lambda: open_note(wd["published_note"], wkeys, require=False)) or ("", [])
    attempt("witnessed note log signature", lambda: open_checkpoint(wd["published_note"], wvkey))
    check("witnessed note quorum", len({(v.name, v.key_id) for v, _ in cosigned}) >= wd["threshold"])
    check("witnessed note size", parse_checkpoint(text)[1:] == (300, roots[300]))
    one = wd["published_note"][: wd["published_note"].rindex("\u2014 ")]
    _, fewer = open_note(one, wkeys, require=False)
    check("one cosignature is short of the quorum", len(fewer) < wd["threshold"])

    # Fork evidence.
    for v in vectors["fork_evidence"]:
        proves, why = fork_verdict(v["bundle"], Vkey(v["verifier_key"]))
        check(f"fork evidence: {v['name']}", proves == v["proves_misbehaviour"] and (not proves or why == v["kind"]), why)

    # Bundles a federation mirror produced (services/federation/src/forks.test.ts,
    # written with ANNALS_FORK_EVIDENCE_DIR=docs/merkle/federation).
    produced = json.loads((here / "federation" / "bundles.json").read_text("utf-8"))
    check("federation bundles present", len(produced) > 0)
    for v in produced:
        bundle = (here / "federation" / v["file"]).read_text("utf-8")
        proves, why = fork_verdict(bundle, Vkey(v["verifier_key"]))
        check(f"federation bundle {v['file']}", proves and why == v["kind"], why)
        other = Vkey(log["verifier_key"])
        check(f"federation bundle {v['file']} under another key", not fork_verdict(bundle, other)[0])

    for failure in failures:
        print(f"MISMATCH {failure}")
    print(f"merkle vectors: {checked} checked, {len(failures)} mismatches")
    return 1 if failures else 0


def attempt_fails(action) -> bool:
    try:
        action()
    except Invalid:
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
