"""Evidence bundles: one subject's events, proven against a signed checkpoint, verifiable offline.

A bundle is two lines of UTF-8:

    {"type": "backcheck.evidence.v1", ...body...}     canonical JSON, sorted keys, no spaces
    {"key_id": "...", "signature": "..."}             Ed25519 over the exact bytes of line 1

The body holds the subject's stored records (bytes as stored, base64), the chain from the link
before the subject's first event up to a checkpoint signed at export time, and only the record
digests of everyone else's events in between — no one else's personal data. Verifying needs
nothing but the bundle and the trusted public key: recompute each digest and link, arrive at
the checkpoint's hash, check both signatures. Any changed byte fails one of those checks.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra.audit.chain import chain_step, digest
from infra.audit.checkpoint import Checkpoint, check_signature, key_id, parse, sign
from infra.audit.verification import RecordSource

KIND = "backcheck.evidence.v1"


class BundleError(ValueError):
    """The bundle cannot be made (nothing about the subject, no key) or read at all."""


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def export_bundle(
    source: RecordSource,
    subject: UUID,
    positions: Iterable[int],
    key: Ed25519PrivateKey,
    now: datetime,
    timeline: list[dict[str, Any]],
) -> tuple[bytes, Checkpoint]:
    """Bundle the subject's records at `positions`, proven up to a checkpoint signed now."""
    own = set(positions)
    if not own:
        raise BundleError(f"the store holds no events about candidate {subject}")
    head = source.head()
    checkpoint = sign(head, now, key)
    first = min(own)
    anchor = source.head_before(first)
    links = {pos: prev for pos, prev, _o, _v, _h in source.links(first, head.position)}
    steps: list[dict[str, Any]] = []
    for pos, oid, ver, topic, state in source.records(first, head.position):
        step: dict[str, Any] = {"position": pos, "prev": links.get(pos, -1)}
        if pos in own:
            step["record"] = {
                "originator_id": str(UUID(bytes=oid)),
                "version": ver,
                "topic": topic.decode(),
                "state": base64.b64encode(state).decode(),
            }
        else:
            step["digest"] = digest(oid, ver, topic, state).hex()
        steps.append(step)
    body = {
        "type": KIND,
        "subject": str(subject),
        "exported_at": now.isoformat(),
        "anchor": {"position": anchor.position, "hash": anchor.hash.hex()},
        "steps": steps,
        "checkpoint": {
            "position": checkpoint.position,
            "hash": checkpoint.hash,
            "time": checkpoint.time,
            "key_id": checkpoint.key_id,
            "signature": checkpoint.signature,
        },
        "timeline": timeline,
    }
    line1 = _canonical(body)
    line2 = _canonical(
        {
            "key_id": key_id(key.public_key()),
            "signature": base64.b64encode(key.sign(line1)).decode(),
        }
    )
    return line1 + b"\n" + line2 + b"\n", checkpoint


@dataclass
class BundleVerdict:
    subject: str | None = None
    events: int = 0
    checkpoint_position: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def _b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def verify_bundle(data: bytes, public_key: Ed25519PublicKey) -> BundleVerdict:
    verdict = BundleVerdict()
    parts = data.split(b"\n")
    if len(parts) != 3 or parts[2] != b"":
        verdict.problems.append("not a bundle: expected two lines, each ending in a newline")
        return verdict
    line1, line2 = parts[0], parts[1]
    try:
        seal = json.loads(line2)
        body = json.loads(line1)
        if _canonical(seal) != line2 or _canonical(body) != line1:
            raise ValueError("not in canonical form")
        signature = _b64(seal["signature"])
        sealed_by = seal["key_id"]
    except (ValueError, KeyError, TypeError) as e:
        verdict.problems.append(f"unreadable bundle: {e}")
        return verdict
    if sealed_by != key_id(public_key):
        verdict.problems.append(f"sealed by key {sealed_by}, not by the trusted key")
    try:
        public_key.verify(signature, line1)
    except InvalidSignature:
        verdict.problems.append("the bundle's seal does not match its contents")
    try:
        _check_proof(body, public_key, verdict)
    except (ValueError, KeyError, TypeError) as e:
        verdict.problems.append(f"malformed proof: {type(e).__name__}: {e}")
    return verdict


def _check_proof(
    body: dict[str, Any], public_key: Ed25519PublicKey, verdict: BundleVerdict
) -> None:
    if body.get("type") != KIND:
        raise ValueError(f"not a {KIND} bundle")
    verdict.subject = body["subject"]
    checkpoint = parse(
        json.dumps({"type": "backcheck.checkpoint.v1", **body["checkpoint"]}), "bundle checkpoint"
    )
    verdict.checkpoint_position = checkpoint.position
    problem = check_signature(checkpoint, public_key)
    if problem:
        verdict.problems.append(f"checkpoint: {problem}")
    h = bytes.fromhex(body["anchor"]["hash"])
    position = int(body["anchor"]["position"])
    for step in body["steps"]:
        if step["prev"] != position:
            verdict.problems.append(
                f"position {step['position']}: links to {step['prev']}, expected {position}"
            )
        if "record" in step:
            r = step["record"]
            d = digest(
                UUID(r["originator_id"]).bytes,
                int(r["version"]),
                r["topic"].encode(),
                _b64(r["state"]),
            )
            verdict.events += 1
        else:
            d = bytes.fromhex(step["digest"])
        position = int(step["position"])
        h = chain_step(h, position, int(step["prev"]), d)
    if position != checkpoint.position:
        verdict.problems.append(
            f"the proof ends at position {position}, the checkpoint is at {checkpoint.position}"
        )
    elif h.hex() != checkpoint.hash:
        verdict.problems.append("the events do not lead to the signed checkpoint's hash")
    if verdict.events == 0:
        verdict.problems.append("the bundle carries no events")
