"""The signed position map of a migrated store: where each old event went.

`backcheck store migrate` copies every event of a store into a new one, in order; positions
differ (the new store's first event is the migration record, and PostgreSQL's positions may
have gaps). Whatever refers to an old position (an erasure receipt's `log_position_before`, an
evidence bundle, an outside witness's checkpoint) finds its new place here. The file is JSON
Lines, kept beside the new store (DATA_DIR/migration/position-map.jsonl):

    {"type": "backcheck.position-map.v1", "source": ..., "target": ..., ...}   the header
    [old position, new position, "event id", version]                          one per event
    {"type": "backcheck.position-map.signature.v1", "rows": N, "sha256": ...,  the signature
     "key_id": ..., "signature": ...}

signed (Ed25519, the checkpoint key) over the SHA-256 of every line before the signature, so
a row changed, added, dropped or moved is refused by `verify_map` (`backcheck store
verify-map`). Event ids stay the same in the copy; the map names each event by its id too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.audit.checkpoint import key_id

KIND = "backcheck.position-map.v1"
SIGNATURE_KIND = "backcheck.position-map.signature.v1"
MAX_HEADER = 16_000  # bytes of the header line (it holds a signed checkpoint)
MAX_LINE = 200  # bytes of one row: two positions, an id, a version
Row = tuple[int, int, str, int]  # old position, new position, event id, version


class PositionMapError(ValueError):
    """A position map does not verify, or is no position map; the message says where."""


@dataclass(frozen=True)
class MapVerdict:
    rows: int
    key_id: str
    header: dict[str, Any]
    first: Row | None
    last: Row | None


def _message(rows: int, digest: str, signer: str) -> bytes:
    return f"{KIND}\n{rows}\n{digest}\n{signer}".encode()


def write_map(
    path: Path, header: dict[str, Any], rows: Iterable[Row], key: Ed25519PrivateKey
) -> int:
    """Writes the map aside, then into place (a reader sees the whole of it or nothing);
    returns how many rows it holds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    digest = hashlib.sha256()
    count = 0
    try:
        with draft.open("wb") as f:
            line = json.dumps({"type": KIND, **header}, sort_keys=True).encode() + b"\n"
            digest.update(line)
            f.write(line)
            for row in rows:
                line = json.dumps(list(row), separators=(",", ":")).encode() + b"\n"
                digest.update(line)
                f.write(line)
                count += 1
            signer = key_id(key.public_key())
            signature = key.sign(_message(count, digest.hexdigest(), signer))
            trailer = {
                "type": SIGNATURE_KIND,
                "rows": count,
                "sha256": digest.hexdigest(),
                "key_id": signer,
                "signature": base64.b64encode(signature).decode(),
            }
            f.write(json.dumps(trailer, sort_keys=True).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        draft.replace(path)
    finally:
        draft.unlink(missing_ok=True)
    return count


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as f:
        yield from enumerate(f, start=1)


def _row(number: int, line: bytes) -> Row:
    if len(line) > MAX_LINE:
        raise PositionMapError(f"line {number}: longer than a row may be ({MAX_LINE} bytes)")
    try:
        value = json.loads(line)
        old, new, event_id, version = value
        if not all(isinstance(v, int) and v > 0 for v in (old, new, version)):
            raise ValueError("positions and versions are whole numbers of at least 1")
        if not isinstance(event_id, str) or len(event_id) != 36:
            raise ValueError("an event id is a UUID")
    except (ValueError, TypeError) as e:
        raise PositionMapError(f"line {number}: not a row of the map ({e})") from None
    return old, new, event_id, version


def rows_of(path: Path) -> Iterator[Row]:
    """The rows of a map, in order (check it with `verify_map` first)."""
    for number, line in _lines(path):
        if number > 1 and not line.startswith(b"{"):
            yield _row(number, line)


def verify_map(path: Path, public_key: Ed25519PublicKey) -> MapVerdict:
    """The map's rows held to its signature by the trusted key; PositionMapError naming the
    first line that is wrong otherwise. Positions rise on both sides, row after row."""
    digest = hashlib.sha256()
    header: dict[str, Any] | None = None
    trailer: dict[str, Any] | None = None
    first: Row | None = None
    last: Row | None = None
    count = 0
    for number, line in _lines(path):
        if trailer is not None:
            raise PositionMapError(f"line {number}: lines after the signature")
        if header is None:
            if len(line) > MAX_HEADER or not line.startswith(b"{"):
                raise PositionMapError(f"{path}: not a {KIND} file")
            header = _json(number, line)
            if header.get("type") != KIND:
                raise PositionMapError(f"{path}: not a {KIND} file")
            digest.update(line)
            continue
        if line.startswith(b"{"):
            trailer = _json(number, line)
            if trailer.get("type") != SIGNATURE_KIND:
                raise PositionMapError(f"line {number}: not the map's signature")
            continue
        row = _row(number, line)
        if last is not None and (row[0] <= last[0] or row[1] <= last[1]):
            raise PositionMapError(f"line {number}: positions out of order")
        digest.update(line)
        first = first or row
        last = row
        count += 1
    if header is None:
        raise PositionMapError(f"{path}: empty, not a {KIND} file")
    if trailer is None:
        raise PositionMapError(f"{path}: no signature (cut short?)")
    return _check(trailer, count, digest.hexdigest(), public_key, header, first, last)


def _check(
    trailer: dict[str, Any],
    count: int,
    digest: str,
    public_key: Ed25519PublicKey,
    header: dict[str, Any],
    first: Row | None,
    last: Row | None,
) -> MapVerdict:
    trusted = key_id(public_key)
    if trailer.get("key_id") != trusted:
        raise PositionMapError(
            f"signed by key {trailer.get('key_id')!s:.20}, not by the trusted key {trusted}"
        )
    if trailer.get("rows") != count or trailer.get("sha256") != digest:
        raise PositionMapError(
            f"the rows are not the rows signed ({count} rows here, {trailer.get('rows')!s:.20} "
            "signed): the map was changed"
        )
    try:
        signature = base64.b64decode(str(trailer.get("signature", "")), validate=True)
        public_key.verify(signature, _message(count, digest, trusted))
    except (InvalidSignature, ValueError):
        raise PositionMapError("the signature does not match the map's contents") from None
    return MapVerdict(count, trusted, header, first, last)


def _json(number: int, line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as e:
        raise PositionMapError(f"line {number}: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise PositionMapError(f"line {number}: not a JSON object")
    return value
