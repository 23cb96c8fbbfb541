#!/usr/bin/env python3
"""Verify a backcheck evidence bundle (backcheck.evidence.v2) without backcheck.

    python verify_bundle.py BUNDLE --key VKEY [--witness VKEY ...] [--witnesses-required K]
                            [--previous CHECKPOINT ...]

Needs Python 3.9+ and the `cryptography` package, nothing else: copy this one file anywhere.
VKEY is a verifier key `name+keyid+base64key` (c2sp.org/signed-note), or a file holding one.
The formats and every check are specified in docs/proofs.md; in short, in this order:

1. the bundle is a signed note: line 1 `backcheck.evidence.v2`, line 2 its JSON body;
2. the checkpoint (a c2sp.org/tlog-checkpoint note) is signed by the log's key;
3. at least K of the given witnesses cosigned it (c2sp.org/tlog-cosignature, type 0x04);
4. each record: its digest recomputed from its fields, its leaf hash, its RFC 9162 inclusion
   proof leading to the checkpoint's root;
5. each previous checkpoint (signed by the same key) is consistent with this one (RFC 9162
   consistency proof carried in the bundle), else the log has forked;
6. the bundle's own signature by the log's key, over exactly its two lines.

Exit 0: valid (one line on stdout). Exit 1: invalid (one line on stderr, naming what failed
and where). Exit 2: the command line, a key or a file cannot be used, or the file is no
bundle at all (its first line is not `backcheck.evidence.v2`).

This module imports nothing of the project that made the bundle, on purpose.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import struct
import sys
import uuid
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "backcheck.evidence.v2"
DASH = "\u2014 "
MAX_BUNDLE = 64 << 20
MAX_NOTE = 1 << 20
MAX_SIGNATURES = 64
MAX_RECORDS = 100_000
MAX_PROOF = 64
MAX_TOPIC = 1024
MAX_WITNESSES = 64
MAX_NAME = 256
ED25519, COSIGNATURE_V1 = 0x01, 0x04


class InvalidError(Exception):
    """The bundle fails a check; the message says which and where."""


class UnusableError(Exception):
    """An argument, key or file cannot be used at all."""


class NotABundleError(InvalidError):
    """The file is no evidence bundle at all: its first line is not the format's. (An
    InvalidError still, so a verifier only judging bundles refuses it the same way; the
    command line tells it apart: unusable input, exit 2.)"""


def shown(text: str) -> str:
    """Text from the bundle as printed: as is if printable, else escaped (no terminal tricks)."""
    return text if text.isprintable() else ascii(text)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- RFC 9162 Merkle tree hashing and proofs -----------------------------------------------


def record_digest(originator_id: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    """SHA-256(16-byte id || 8-byte big-endian version || topic || 0x00 || state)."""
    return sha256(struct.pack(">16sQ", originator_id, version) + topic + b"\0" + state)


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def inclusion_proof_length(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def check_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2; raises InvalidError naming what does not hold."""
    if not 0 <= index < size:
        raise InvalidError(f"leaf index {index} is outside a tree of size {size}")
    want = inclusion_proof_length(index, size)
    if len(proof) != want:
        raise InvalidError(
            f"inclusion proof has {len(proof)} hashes; leaf {index} of a tree of size {size} "
            f"needs {want} (a proof for another tree size?)"
        )
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise InvalidError(f"inclusion proof does not lead to the root of the tree of size {size}")


def consistency_proof_length(size1: int, size2: int) -> int:
    inner = (((size1 - 1) ^ (size2 - 1)).bit_length()) - ((size1 & -size1).bit_length() - 1)
    border = bin((size1 - 1) >> ((size1 - 1) ^ (size2 - 1)).bit_length()).count("1")
    return (0 if size1 & (size1 - 1) == 0 else 1) + inner + border


def check_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> None:
    """RFC 9162 §2.1.4.2; raises InvalidError naming what does not hold."""
    if not 0 < size1 <= size2:
        raise InvalidError(f"no consistency proof can go from size {size1} to size {size2}")
    if size1 == size2:
        if proof:
            raise InvalidError("a consistency proof between equal sizes must be empty")
        if root1 != root2:
            raise InvalidError(f"two different roots for the same tree size {size1}")
        return
    want = consistency_proof_length(size1, size2)
    if len(proof) != want:
        raise InvalidError(
            f"consistency proof has {len(proof)} hashes; sizes {size1} to {size2} need {want}"
        )
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if fr != root1:
        raise InvalidError(f"consistency proof does not lead to the root of size {size1}")
    if sr != root2 or sn != 0:
        raise InvalidError(f"consistency proof does not lead to the root of size {size2}")


# --- c2sp.org/signed-note, tlog-checkpoint, tlog-cosignature -------------------------------


def b64(text: object, what: str, length: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise InvalidError(f"{what}: not a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidError(f"{what}: not base64") from None
    if base64.b64encode(raw).decode() != text:
        raise InvalidError(f"{what}: not canonical base64")
    if length is not None and len(raw) != length:
        raise InvalidError(f"{what}: {len(raw)} bytes, not {length}")
    return raw


class Key:
    """A verifier key: name, signature type, Ed25519 public key, and their 4-byte key id."""

    def __init__(self, text: str) -> None:
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or len(text) > 512:
            raise UnusableError(f"{text[:80]!r} is not a verifier key name+keyid+base64key")
        self.name, hex_id, encoded = parts
        try:
            material = b64(encoded, f"verifier key {self.name}")
        except InvalidError as e:
            raise UnusableError(str(e)) from None
        if len(material) != 33 or material[0] not in (ED25519, COSIGNATURE_V1):
            raise UnusableError(
                f"verifier key {self.name}: not an Ed25519 key of type 0x01 or 0x04"
            )
        self.type, self.raw = material[0], material[1:]
        try:
            self.public_key = Ed25519PublicKey.from_public_bytes(self.raw)
        except ValueError:
            raise UnusableError(f"verifier key {self.name}: not an Ed25519 public key") from None
        self.id = sha256(self.name.encode() + b"\n" + material)[:4]
        if not self.name.isprintable() or " " in self.name or not 0 < len(self.name) <= MAX_NAME:
            raise UnusableError(f"verifier key {self.name!a}: not a key name")
        if hex_id != self.id.hex():
            raise UnusableError(f"verifier key {self.name}: key id {hex_id} does not match the key")

    def signatures(self, note: Note) -> list[bytes]:
        return [sig for name, kid, sig in note.signatures if name == self.name and kid == self.id]


class Note:
    def __init__(self, data: str, what: str, limit: int = MAX_NOTE) -> None:
        if len(data.encode()) > limit:
            raise InvalidError(f"{what}: over {limit} bytes")
        if any(ord(c) < 0x20 and c != "\n" for c in data):
            raise InvalidError(f"{what}: a control character other than newline")
        split = data.rfind("\n\n")
        if split < 0 or not data.endswith("\n"):
            raise InvalidError(f"{what}: no blank line before the signatures, or no final newline")
        self.text = data[: split + 1]
        lines = data[split + 2 : -1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise InvalidError(f"{what}: over {MAX_SIGNATURES} signature lines")
        self.signatures: list[tuple[str, bytes, bytes]] = []
        for n, line in enumerate(lines, 1):
            name, space, encoded = line[len(DASH) :].partition(" ")
            bad_name = "+" in name or any(c.isspace() for c in name)
            if not line.startswith(DASH) or not space or not 0 < len(name) <= MAX_NAME or bad_name:
                raise InvalidError(f"{what}: signature line {n} is not '— <key name> <signature>'")
            raw = b64(encoded, f"{what}: signature line {n} ({shown(name)})")
            if len(raw) < 5:
                raise InvalidError(f"{what}: signature line {n} ({shown(name)}) is too short")
            self.signatures.append((name, raw[:4], raw[4:]))

    def names(self) -> str:
        return (
            ", ".join(f"{shown(name)} ({kid.hex()})" for name, kid, _ in self.signatures) or "none"
        )


def check_signed(note: Note, key: Key, what: str) -> None:
    """The note carries a good Ed25519 signature by `key` (and no bad one)."""
    found = key.signatures(note)
    if not found:
        raise InvalidError(
            f"{what} is not signed by the trusted key {key.name} ({key.id.hex()}); "
            f"it is signed by: {note.names()}"
        )
    for n, signature in enumerate(found, 1):
        try:
            key.public_key.verify(signature, note.text.encode())
        except InvalidSignature:
            raise InvalidError(f"{what}: signature {n} by {key.name} does not verify") from None


def cosigned_at(note: Note, witness: Key) -> int | None:
    """The time of the witness's cosignature; None if it has none; Invalid if one is bad."""
    times = []
    for signature in witness.signatures(note):
        (timestamp,) = struct.unpack(">Q", signature[:8]) if len(signature) == 72 else (-1,)
        if not 0 <= timestamp < 2**63:
            raise InvalidError(f"checkpoint: the cosignature by {witness.name} is malformed")
        message = f"cosignature/v1\ntime {timestamp}\n{note.text}".encode()
        try:
            witness.public_key.verify(signature[8:], message)
        except InvalidSignature:
            raise InvalidError(
                f"checkpoint: the cosignature by {witness.name} does not verify"
            ) from None
        times.append(int(timestamp))
    return max(times) if times else None


def parse_checkpoint(note: Note, what: str) -> tuple[str, int, bytes]:
    lines = note.text.split("\n")[:-1]
    if len(lines) < 3 or not all(lines):
        raise InvalidError(f"{what}: needs non-empty origin, tree size and root hash lines")
    size = lines[1]
    if not (size.isascii() and size.isdigit()) or (size != "0" and size[0] == "0"):
        raise InvalidError(
            f"{what}: tree size {size[:30]!r} is not a decimal without leading zeros"
        )
    if len(size) > 20 or int(size) >= 2**64:
        raise InvalidError(f"{what}: tree size is over 2^64 - 1")
    if len(lines[0]) > MAX_NAME:
        raise InvalidError(f"{what}: origin over {MAX_NAME} characters")
    return lines[0], int(size), b64(lines[2], f"{what}: root hash", 32)


# --- the bundle --------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise InvalidError(f"body: a key appears twice in one object ({sorted(keys)})")
    return dict(pairs)


def field(obj: Any, name: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or name not in obj:
        raise InvalidError(f"{where}: no {name!r}")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        named = {int: "an integer", str: "a string", list: "a list"}.get(kind, kind.__name__)
        raise InvalidError(f"{where}.{name}: not {named}")
    return value


def hashes(value: Any, where: str) -> list[bytes]:
    if not isinstance(value, list) or len(value) > MAX_PROOF:
        raise InvalidError(f"{where}: not a list of at most {MAX_PROOF} hashes")
    return [b64(h, f"{where}[{i}]", 32) for i, h in enumerate(value)]


def check_record(i: int, record: Any, size: int, root: bytes, table: list[bytes]) -> int:
    where = f"records[{i}]"
    position = field(record, "position", int, where)
    if not 0 <= position < 2**63:
        raise InvalidError(f"{where}.position: not 0 to 2^63 - 1")
    index: int = field(record, "leaf_index", int, where)
    where = f"record {i} (position {position}, leaf {index})"
    try:
        originator = uuid.UUID(field(record, "originator_id", str, where)).bytes
    except ValueError:
        raise InvalidError(f"{where}: originator_id is not a UUID") from None
    version = field(record, "version", int, where)
    topic = field(record, "topic", str, where).encode()
    if not 0 <= version < 2**64 or len(topic) > MAX_TOPIC or b"\0" in topic:
        raise InvalidError(f"{where}: version or topic out of range")
    state = b64(field(record, "state", str, where), f"{where}: state")
    steps = field(record, "inclusion_proof", list, where)
    if len(steps) > MAX_PROOF or not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n < len(table) for n in steps
    ):
        raise InvalidError(
            f"{where}: inclusion_proof is not at most {MAX_PROOF} indexes into proof_hashes"
        )
    leaf = leaf_hash(record_digest(originator, version, topic, state))
    try:
        check_inclusion(index, size, leaf, [table[n] for n in steps], root)
    except InvalidError as e:
        raise InvalidError(f"{where}: {e}") from None
    return index


def verify(
    data: bytes,
    key: Key,
    witnesses: list[Key],
    required: int,
    previous: list[tuple[str, bytes]],
) -> str:
    """Every check of docs/proofs.md in its order; the summary line, or InvalidError."""
    if len(data) > MAX_BUNDLE:
        raise InvalidError(f"bundle: over {MAX_BUNDLE} bytes")
    if not data.startswith(FORMAT.encode() + b"\n"):
        raise NotABundleError(f"not an evidence bundle: line 1 is not {FORMAT!r}")
    try:
        bundle = Note(data.decode(), "bundle", MAX_BUNDLE)
    except UnicodeDecodeError as e:
        raise InvalidError(f"bundle: not UTF-8 (byte {e.start})") from None
    head, _, body_line = bundle.text.partition("\n")
    if head != FORMAT or body_line.count("\n") != 1:
        raise InvalidError(f"bundle: line 1 is not {FORMAT!r}, or the body is not one line")
    try:
        body = json.loads(body_line, object_pairs_hook=_no_duplicates)
    except ValueError as e:
        raise InvalidError(f"bundle: the body is not JSON ({e})") from None
    try:
        subject = str(uuid.UUID(field(body, "subject", str, "body")))
    except ValueError:
        raise InvalidError("body.subject: not a UUID") from None
    field(body, "exported_at", str, "body")
    checkpoint = Note(field(body, "checkpoint", str, "body"), "checkpoint")
    origin, size, root = parse_checkpoint(checkpoint, "checkpoint")
    check_signed(checkpoint, key, "checkpoint")
    cosigned = [w.name for w in witnesses if cosigned_at(checkpoint, w) is not None]
    if len(cosigned) < required:
        raise InvalidError(
            f"checkpoint: {len(cosigned)} of the required {required} witness cosignatures "
            f"({', '.join(cosigned) or 'none'}); missing: "
            + ", ".join(w.name for w in witnesses if w.name not in cosigned)
        )
    records = field(body, "records", list, "body")
    if not 0 < len(records) <= MAX_RECORDS:
        raise InvalidError(f"body.records: must hold 1 to {MAX_RECORDS} records")
    listed = field(body, "proof_hashes", list, "body")
    if len(listed) > MAX_PROOF * len(records):
        raise InvalidError("body.proof_hashes: more hashes than the proofs can use")
    table = [b64(h, f"body.proof_hashes[{n}]", 32) for n, h in enumerate(listed)]
    last = -1
    for i, record in enumerate(records):
        index = check_record(i, record, size, root, table)
        if index <= last:
            raise InvalidError(
                f"record {i}: leaf {index} is not after the previous record's {last}"
            )
        last = index
    unused = set(range(len(table))) - {n for r in records for n in r["inclusion_proof"]}
    if unused:
        raise InvalidError(f"body.proof_hashes[{min(unused)}]: used by no inclusion proof")
    proofs = body.get("consistency", [])
    if not isinstance(proofs, list) or len(proofs) > MAX_SIGNATURES:
        raise InvalidError(f"body.consistency: not a list of at most {MAX_SIGNATURES} proofs")
    for n, entry in enumerate(proofs):
        where = f"body.consistency[{n}]"
        old, new = field(entry, "old_size", int, where), field(entry, "new_size", int, where)
        if not 0 < old < new or size not in (old, new):
            raise InvalidError(f"{where}: sizes {old} to {new} do not fit a checkpoint of {size}")
        hashes(field(entry, "proof", list, where), f"{where}.proof")
    for source, text in previous:
        check_previous(source, text, key, origin, size, root, proofs)
    check_signed(bundle, key, "bundle")
    witnessed = f"; cosigned by {', '.join(cosigned)}" if cosigned else ""
    pinned = f"; consistent with {len(previous)} previous checkpoint(s)" if previous else ""
    return (
        f"valid: {len(records)} record(s) of subject {subject} in checkpoint "
        f"{shown(origin)} size {size}, signed by {key.name}{witnessed}{pinned}"
    )


def check_previous(
    source: str, text: bytes, key: Key, origin: str, size: int, root: bytes, proofs: list[Any]
) -> None:
    try:
        note = Note(text.decode(), f"previous checkpoint {source}")
    except UnicodeDecodeError:
        raise InvalidError(f"previous checkpoint {source}: not UTF-8") from None
    old_origin, old_size, old_root = parse_checkpoint(note, f"previous checkpoint {source}")
    check_signed(note, key, f"previous checkpoint {source}")
    if old_origin != origin:
        raise InvalidError(f"previous checkpoint {source} is of log {old_origin!r}, not {origin!r}")
    small, large = sorted((old_size, size))
    roots = {old_size: old_root, size: root}
    if small == large:
        if old_root != root:
            raise InvalidError(f"fork: {source} and the bundle's checkpoint differ at size {size}")
        return
    for n, entry in enumerate(proofs):
        where = f"body.consistency[{n}]"
        if (field(entry, "old_size", int, where), field(entry, "new_size", int, where)) == (
            small,
            large,
        ):
            proof = hashes(field(entry, "proof", list, where), f"{where}.proof")
            try:
                check_consistency(small, large, roots[small], roots[large], proof)
            except InvalidError as e:
                raise InvalidError(
                    f"fork: {source} (size {old_size}) and the bundle's checkpoint "
                    f"(size {size}) are not consistent: {where}: {e}"
                ) from None
            return
    raise InvalidError(
        f"the bundle has no consistency proof between sizes {small} and {large} "
        f"to check it against {source}"
    )


def _read(path: str, limit: int) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise UnusableError(f"{path}: {e.strerror or e}") from None
    if len(data) > limit:
        raise UnusableError(f"{path}: over {limit} bytes")
    return data


def _key(text: str) -> Key:
    if os.path.isfile(text):
        try:
            text = _read(text, 4096).decode()
        except UnicodeDecodeError:
            raise UnusableError(f"{text}: not a verifier key file") from None
    return Key(text)


def _fail(code: int, message: str) -> NoReturn:
    print(message.replace("\n", " "), file=sys.stderr)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_bundle.py", description="Verify a backcheck.evidence.v2 bundle offline."
    )
    parser.add_argument("bundle")
    parser.add_argument("--key", required=True, help="the log's verifier key (or a file)")
    parser.add_argument("--witness", action="append", default=[], help="a witness vkey (0x04)")
    parser.add_argument("--witnesses-required", type=int, default=None, metavar="K")
    parser.add_argument("--previous", action="append", default=[], metavar="CHECKPOINT")
    args = parser.parse_args(argv)
    try:
        key = _key(args.key)
        witnesses = [_key(w) for w in args.witness[: MAX_WITNESSES + 1]]
        if key.type != ED25519 or any(w.type != COSIGNATURE_V1 for w in witnesses):
            raise UnusableError("--key takes a type 0x01 key and --witness a type 0x04 key")
        if len(witnesses) > MAX_WITNESSES or len({w.id for w in witnesses}) < len(witnesses):
            raise UnusableError(f"--witness: at most {MAX_WITNESSES} different witnesses")
        required = len(witnesses) if args.witnesses_required is None else args.witnesses_required
        if not 0 <= required <= len(witnesses):
            raise UnusableError(f"--witnesses-required {required}: must be 0 to {len(witnesses)}")
        previous = [(p, _read(p, MAX_NOTE)) for p in args.previous[:MAX_SIGNATURES]]
        data = _read(args.bundle, MAX_BUNDLE)
    except UnusableError as e:
        _fail(2, f"verify_bundle: {e}")
    try:
        print(verify(data, key, witnesses, required, previous))
    except NotABundleError as e:
        _fail(2, f"verify_bundle: {args.bundle}: {e}")
    except InvalidError as e:
        _fail(1, f"invalid: {e}")
    except RecursionError:
        _fail(1, "invalid: bundle: the body nests too deeply")
    return 0


if __name__ == "__main__":
    sys.exit(main())
