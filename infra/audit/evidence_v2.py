"""Evidence bundles v2 (docs/proofs.md §4) from the stored tree, and reading a bundle of
either version: the subject's records with their RFC 9162 inclusion proofs against a
checkpoint note signed now, and, when asked, consistency proofs from the checkpoints the store
keeps. Written by bundle.py's `write_bundle`; read back by the independent verifier's own
functions (verify_bundle.py), so `audit verify --bundle` and `python verify_bundle.py` judge a
bundle by one algorithm. v1 bundles (evidence.py) are still read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infra.audit import verify_bundle as independent
from infra.audit.bundle import KIND, ConsistencyProof, ProvenRecord, write_bundle
from infra.audit.checkpoint import CheckpointError
from infra.audit.evidence import BundleError, BundleVerdict, verify_bundle
from infra.audit.log_checkpoint import (
    ForkError,
    SignedCheckpoint,
    against_tree,
    parse_checkpoint_note,
    sign_tree,
)
from infra.audit.log_checkpoint import check_signature as check_note
from infra.audit.log_tree import LogTree
from infra.audit.notes import (
    DASH,
    ED25519,
    MAX_NAME,
    MAX_SIGNATURES,
    Checkpoint,
    Signer,
    Verifier,
    check_name,
    parse_note,
)
from infra.audit.sources import RecordSource
from services.evidence import Bundle, BundleRequest

MAX_CONSISTENCY = 64  # the verifier reads at most this many consistency proofs


def proven_records(
    source: RecordSource, tree: LogTree, positions: Sequence[int], size: int
) -> list[ProvenRecord]:
    """The records at `positions`, as stored, each with its inclusion proof in `size` leaves."""
    records = []
    for position in sorted(set(positions)):
        proof = tree.prove(position, size)
        (stored,) = source.records(position, position)
        _, oid, version, topic, state = stored
        records.append(
            ProvenRecord(
                position, proof.index, UUID(bytes=oid), version, topic.decode(), state, proof.path
            )
        )
    return records


def kept_consistency(
    tree: LogTree, checkpoint: Checkpoint, kept: Sequence[Path], public_key: Ed25519PublicKey
) -> list[ConsistencyProof]:
    """Consistency proofs from each kept checkpoint note of this log, signed by this key and
    smaller than `checkpoint`, to it (the newest MAX_CONSISTENCY sizes). A kept checkpoint the
    stored tree contradicts is a fork: the export is refused rather than paper over it."""
    sizes: set[int] = set()
    for path in kept:
        try:
            note, old = parse_checkpoint_note(path.read_bytes(), str(path))
        except (CheckpointError, OSError):
            continue  # a v1 JSON checkpoint, or no checkpoint at all
        if old.origin != checkpoint.origin or not 0 < old.size < checkpoint.size:
            continue
        if check_note(note, old, public_key) is not None:
            continue
        found = against_tree(old, tree)
        if found is not None:
            raise ForkError(f"the kept checkpoint {path} and the store disagree: {found[1]}")
        sizes.add(old.size)
    return [
        ConsistencyProof(old, checkpoint.size, tree.consistency_proof(old, checkpoint.size))
        for old in sorted(sizes)[-MAX_CONSISTENCY:]
    ]


def make_bundle(
    source: RecordSource,
    request: BundleRequest,
    signer: Signer,
    kept: Sequence[Path] | None = None,
    cosigned: Callable[[LogTree, int], SignedCheckpoint] | None = None,
) -> Bundle:
    """A v2 bundle of the subject's records proven in the whole stored tree, signed now; with
    `kept`, consistency proofs from those checkpoints. With `cosigned`, proven instead in the
    checkpoint it picks (a witnessed one, infra/audit/cosigned.py) of at least the size that
    holds every record but the newest (the export's own disclosure, recorded just before):
    the records after that checkpoint are left out, and their timeline entries with them."""
    if not request.positions:
        raise BundleError(f"the store holds no events about candidate {request.subject}")
    tree = LogTree(source)
    positions, timeline = list(request.positions), list(request.timeline)
    if cosigned is None:
        signed = sign_tree(tree, signer)
    else:
        ordered = sorted(set(positions))
        covered = ordered[:-1] or ordered
        signed = cosigned(tree, tree.leaf_index(covered[-1]) + 1)
        positions = [p for p in ordered if tree.leaf_index(p) < signed.size]
        timeline = [t for t in timeline if t.get("position") in set(positions)]
    records = proven_records(source, tree, positions, signed.size)
    proofs = (
        kept_consistency(tree, signed.checkpoint, kept, signer.private_key.public_key())
        if kept is not None
        else []
    )
    data = write_bundle(
        request.subject,
        request.at,
        signed.note,
        records,
        signer,
        consistency=proofs,
        timeline=timeline,
    )
    return Bundle(data, signed.position, str(signed.note))


def is_v2(data: bytes) -> bool:
    return data.startswith(KIND.encode() + b"\n")


def is_bundle(data: bytes) -> bool:
    """An evidence bundle of either version, by its first line alone: v2's format line, or a
    v1 body (a JSON object naming its kind). Anything else is no bundle to judge."""
    first = data[: data.find(b"\n")] if b"\n" in data else data
    return is_v2(data) or (first.startswith(b"{") and b'"type":"backcheck.evidence.v1"' in first)


def _vkey(data: bytes, public_key: Ed25519PublicKey, fallback: str) -> str:
    """The trusted key as a vkey, under the name the bundle's signature lines give it (the
    trust is in the key; its name is the log's origin, whichever the exporter had). Only the
    signature block is read here: the verifier reads the whole bundle."""
    block = data[data.rfind(b"\n\n") + 2 :][: MAX_SIGNATURES * (MAX_NAME + 200)]
    for line in block.decode(errors="replace").splitlines()[:MAX_SIGNATURES]:
        name = line.removeprefix(DASH).partition(" ")[0]
        try:
            verifier = Verifier(check_name(name, ours=True), ED25519, public_key)
            signature = parse_note(f"x\n\n{line}\n").signatures[0]
        except ValueError:
            continue
        if verifier.matches(signature):
            return verifier.vkey
    return Verifier(fallback, ED25519, public_key).vkey


def read_bundle(data: bytes, public_key: Ed25519PublicKey, origin: str) -> BundleVerdict:
    """A bundle of either version checked offline; v2 by the independent verifier's `verify`."""
    if not is_v2(data):
        return verify_bundle(data, public_key)
    verdict = BundleVerdict()
    try:
        key = independent.Key(_vkey(data, public_key, origin))
        independent.verify(data, key, [], 0, [])
    except (independent.InvalidError, independent.UnusableError) as e:
        verdict.problems.append(str(e))
        return verdict
    except RecursionError:
        verdict.problems.append("bundle: the body nests too deeply")
        return verdict
    body = json.loads(data.decode().split("\n", 2)[1])
    verdict.subject = body["subject"]
    verdict.events = len(body["records"])
    checkpoint = parse_note(body["checkpoint"])
    verdict.checkpoint_position = int(checkpoint.text.split("\n")[1])  # the tree size
    return verdict
