"""A reference Merkle tree written straight from RFC 9162's recursive definitions (§2.1.1,
§2.1.3.1, §2.1.4.1): slow and obviously right, to make proofs for the verifier's tests. And
a small log of records with keys, to make real evidence bundles from."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infra.audit import chain
from infra.audit.bundle import ConsistencyProof, ProvenRecord, write_bundle
from infra.audit.notes import COSIGNATURE_V1, Checkpoint, Note, Signer, cosign, sign


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: list[bytes]) -> bytes:
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = _largest_power_of_two_below(len(entries))
    return hashlib.sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:])).digest()


def path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def _subproof(m: int, entries: list[bytes], whole: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if whole else [mth(entries)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        return [*_subproof(m, entries[:k], whole), mth(entries[k:])]
    return [*_subproof(m - k, entries[k:], False), mth(entries[:k])]


def consistency(m: int, entries: list[bytes]) -> list[bytes]:
    return _subproof(m, entries, True)


ORIGIN = "backcheck.example/log"


@dataclass
class Log:
    """Stored records (position, id, version, topic, state), the log's and witnesses' keys."""

    records: list[tuple[int, uuid.UUID, int, str, bytes]] = field(default_factory=list)
    key: Signer = field(default_factory=lambda: Signer(ORIGIN, Ed25519PrivateKey.generate()))
    witnesses: list[Signer] = field(
        default_factory=lambda: [
            Signer(f"witness.example/w{n}", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
            for n in range(3)
        ]
    )

    def append(self, originator: uuid.UUID, topic: str, state: bytes) -> None:
        version = 1 + sum(1 for r in self.records if r[1] == originator)
        position = 1 + (self.records[-1][0] if self.records else 0) + len(self.records) % 3
        self.records.append((position, originator, version, topic, state))

    def digests(self, size: int | None = None) -> list[bytes]:
        return [
            chain.digest(oid.bytes, ver, topic.encode(), state)
            for _pos, oid, ver, topic, state in self.records[:size]
        ]

    def checkpoint(
        self, size: int | None = None, *, cosigners: int = 3, key: Signer | None = None
    ) -> Note:
        size = len(self.records) if size is None else size
        note = sign(Checkpoint(ORIGIN, size, mth(self.digests(size))).text(), key or self.key)
        at = 1_800_000_000
        return note.with_signatures(
            cosign(note, w, at + n) for n, w in enumerate(self.witnesses[:cosigners])
        )

    def forked(self, at: int) -> Log:
        """The same log, keys and witnesses, with record `at` rewritten: a second history."""
        pos, oid, ver, topic, state = self.records[at]
        records = [
            *self.records[:at],
            (pos, oid, ver, topic, state + b"!"),
            *self.records[at + 1 :],
        ]
        return Log(records, self.key, self.witnesses)

    def bundle(
        self,
        subject: uuid.UUID,
        checkpoint: Note | None = None,
        *,
        consistency_from: tuple[int, ...] = (),
        key: Signer | None = None,
        proofs_for_size: int | None = None,
    ) -> bytes:
        """The subject's records proven in `checkpoint` (by default one of the whole log, all
        witnesses cosigning), sealed by the log's key (or `key`). `proofs_for_size` makes
        the inclusion proofs for a tree of another size, as a faulty exporter would."""
        checkpoint = checkpoint or self.checkpoint()
        size = int(checkpoint.text.split("\n")[1])
        entries = self.digests(size)
        proven = self.digests(proofs_for_size or size)
        records = [
            ProvenRecord(pos, index, oid, ver, topic, state, path(index, proven))
            for index, (pos, oid, ver, topic, state) in enumerate(self.records[:size])
            if oid == subject
        ]
        proofs = [ConsistencyProof(m, size, consistency(m, entries)) for m in consistency_from]
        return write_bundle(
            subject,
            datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC),
            checkpoint,
            records,
            key or self.key,
            consistency=proofs,
            timeline=[{"event": "ConsentGranted", "at": "2027-01-01T00:00:00+00:00"}],
        )


def a_log(events: int = 40, subject: uuid.UUID | None = None) -> tuple[Log, uuid.UUID]:
    """A log of `events` records, every seventh about `subject`, the rest about others."""
    subject = subject or uuid.UUID(int=7)
    log = Log()
    for n in range(events):
        about = subject if n % 7 == 3 else uuid.UUID(int=1000 + n % 5)
        log.append(about, f"domain.events:Happened{n % 4}", f"state {n} \x00\xff".encode())
    return log, subject
