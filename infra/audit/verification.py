"""Verifying the hash chain against the stored records, straight from the database.

The verifier reads the raw tables (not through the application, `sources.py`), recomputes
every link and names the first position where the stored history departs from what was
chained:

    inserted    a record with no link: written around the recorder
    missing     a link whose record is gone, or a link naming a previous position that is gone
    changed     the record's bytes (or its link) differ from what was chained
    reordered   the record chained at this position now sits at another position
    checkpoint  a signed checkpoint disagrees with the records (history rewritten, or cut
                short); where only the checkpoint's boundary can be proven, the problem says
                so (`after`: the change lies after that position, up to the checkpoint's)
    tree        the stored Merkle tree departs from the tree of the stored records' digests
                (`tree_check.py`: the first leaf or node that does)
    key missing a data key values were sealed with is gone, and no erasure of it is recorded
                (`keys.py`; checked once the chain and checkpoints hold)
    key altered a data key that does not open the values sealed with it: its row replaced,
                e.g. with another subject's (`key_binding.py`; with the master key only)
"""

from __future__ import annotations

import multiprocessing
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from infra.audit.chain import GENESIS, Head, LinkInput, digest, link_many_digests
from infra.audit.checkpoint import Checkpoint
from infra.audit.key_binding import KIND as KEY_ALTERED
from infra.audit.key_binding import Samples, take_samples
from infra.audit.keys import ERASURE_TOPICS, SEALED, missing_keys, note
from infra.audit.sources import (
    Record,
    RecordSource,
    SQLiteSource,
    StoredLink,
    open_source,
)
from infra.audit.tree_check import KIND as TREE
from infra.audit.tree_check import TreeCheck
from services.shredding import KeyLedger

# the sources are read from here too
__all__ = ["RecordSource", "SQLiteSource", "open_source", "verify"]


@dataclass(frozen=True)
class Problem:
    position: int
    kind: str
    detail: str
    # None: `position` is where the history departs. A number: only that the history up to
    # `position` differs is proven, and the change lies after `after` (0: anywhere up to it).
    after: int | None = None


@dataclass(frozen=True)
class Unheld:
    """A kept checkpoint the chain could not be held to, and why (its key is not kept)."""

    checkpoint: str
    key_id: str
    reason: str


@dataclass
class Verdict:
    checked: int = 0
    head: Head = field(default_factory=lambda: Head(0, GENESIS))
    problems: list[Problem] = field(default_factory=list)
    checkpoints: int = 0  # held to the records (each holds, or is a problem)
    unheld: list[Unheld] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # positions up to which a checkpoint holds
    heads: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # records' tree heads
    keys_unchecked: str | None = None  # why the keys were not held to their values, if not

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.position) if self.problems else None

    def as_dict(self) -> dict[str, object]:
        first = self.first
        return {
            "intact": self.intact,
            "checked": self.checked,
            "head": {"position": self.head.position, "hash": self.head.hash.hex()},
            "checkpoints": self.checkpoints,
            "first_bad_position": first.position if first else None,
            "problems": [p.__dict__ for p in sorted(self.problems, key=lambda p: p.position)],
            "unheld": [u.__dict__ for u in self.unheld],
        } | ({"keys_unchecked": self.keys_unchecked} if self.keys_unchecked else {})


# past the end of the records and of the links (never a real position)
_NO_RECORD: Record = (2**63, b"", 0, b"", b"")
_NO_LINK: StoredLink = (2**63, 0, b"", 0, b"")


@dataclass
class _Part:
    problems: list[Problem]
    checked: int
    last: Head
    pinned_links: dict[int, bytes]
    keys: KeyLedger
    samples: Samples  # the first value sealed with each key (`key_binding.py`)
    positions: bytes  # every record's position, in order (array "q")
    digests: bytes  # and its digest, 32 bytes each: the tree's leaves are built from them


def _verify_range(source: RecordSource, lo: int, hi: int | None, pinned: frozenset[int]) -> _Part:
    """Check every link in [lo, hi] against its record and the stored link before it.

    Each link is judged from the stored hash of its predecessor, so ranges are independent and
    can run in parallel; if every link holds, the stored chain equals a recomputation from
    genesis, which is what checkpoints are compared with. Every record's digest, computed on
    the way, goes back with its position for the tree's pass (`tree_check.py`)."""
    problems: list[Problem] = []
    seen: dict[int, bytes] = {}
    keys = KeyLedger()
    samples: Samples = {}
    start = source.head_before(lo)
    prev_pos, prev_hash = start.position, start.hash
    records = source.records(lo, hi)
    links = source.links(lo, hi)
    rec = next(records, _NO_RECORD)
    lnk = next(links, _NO_LINK)
    # Links are recomputed in batches (by the C accelerator when it is built).
    batch: list[LinkInput] = []
    expected: list[tuple[int, bytes]] = []
    positions: array[int] = array("q")
    digests = bytearray()
    keep = positions.append

    def flush() -> None:
        links, batch_digests = link_many_digests(batch)
        for (pos, stored), computed in zip(expected, links, strict=True):
            if computed != stored:
                problems.append(
                    Problem(pos, "changed", "the stored bytes differ from what was chained")
                )
        digests.extend(batch_digests)
        batch.clear()
        expected.clear()

    def unchained(record: Record) -> None:
        """A record hashed outside the batch (rare: the log departs here), kept in order."""
        flush()
        keep(record[0])
        digests.extend(digest(*record[1:]))

    checked = 0
    while rec is not _NO_RECORD or lnk is not _NO_LINK:
        r_pos, l_pos = rec[0], lnk[0]
        if r_pos < l_pos:
            problems.append(Problem(r_pos, "inserted", "a record with no chain link"))
            unchained(rec)
            rec = next(records, _NO_RECORD)
            checked += 1
            continue
        if l_pos < r_pos:
            problems.append(Problem(l_pos, "missing", "the chain links a record that is gone"))
            prev_pos, prev_hash = l_pos, lnk[4]
            if l_pos in pinned:
                seen[l_pos] = lnk[4]
            lnk = next(links, _NO_LINK)
            continue
        pos, oid, ver, topic, state = rec
        if SEALED in state or topic in ERASURE_TOPICS:  # few records are: checked inline
            sealed = note(keys, pos, oid, topic, state)
            if sealed is not None:
                take_samples(samples, sealed, pos, oid, ver)
        _, l_prev, l_oid, l_ver, l_hash = lnk
        if l_prev != prev_pos:
            problems.append(
                Problem(
                    pos,
                    "missing",
                    f"the link follows position {l_prev}, but the log "
                    f"has {prev_pos or 'nothing'} before it",
                )
            )
        if oid != l_oid or ver != l_ver:
            elsewhere = source.position_of(l_oid, l_ver)
            if elsewhere is not None:
                problems.append(
                    Problem(
                        pos,
                        "reordered",
                        f"the record chained here now sits at position {elsewhere}",
                    )
                )
            else:
                problems.append(Problem(pos, "changed", "a different record than was chained"))
            unchained(rec)
        else:
            keep(pos)
            batch.append((prev_hash, pos, l_prev, oid, ver, topic, state))
            expected.append((pos, l_hash))
            if len(batch) >= 10_000:
                flush()
        if pos in pinned:
            seen[pos] = l_hash
        prev_pos, prev_hash = pos, l_hash
        checked += 1
        rec = next(records, _NO_RECORD)
        lnk = next(links, _NO_LINK)
    flush()
    return _Part(
        problems,
        checked,
        Head(prev_pos, prev_hash),
        seen,
        keys,
        samples,
        positions.tobytes(),
        bytes(digests),
    )


def _verify_chunk(
    opener: Callable[[], RecordSource], lo: int, hi: int | None, pinned: frozenset[int]
) -> _Part:
    with opener() as source:
        return _verify_range(source, lo, hi, pinned)


def verify(
    source: RecordSource,
    checkpoints: Sequence[Checkpoint] = (),
    progress: Callable[[int], None] | None = None,
    *,
    opener: Callable[[], RecordSource] | None = None,
    workers: int = 1,
    chunk: int = 100_000,
    sizes: Iterable[int] = (),
    key_check: Callable[[Samples], list[tuple[int, str]]] | None = None,
) -> Verdict:
    """Recompute every link, compare with the stored chain and the given checkpoints.

    The log is cut into chunks of positions; with an `opener` (a picklable function that opens
    another connection to the same store) and `workers` > 1 the chunks run in parallel
    processes. Results are merged in order, so the verdict does not depend on the split.
    The records' own tree head at each of `sizes` is kept in `heads` (for checkpoint notes).
    `key_check`, given the first value sealed with each key, names the keys that do not open
    it (`key_binding.py`)."""
    verdict = Verdict(checkpoints=len(checkpoints))
    pinned = {c.position: c for c in checkpoints}
    keys = frozenset(pinned)
    top = source.last_position()
    bounds: list[tuple[int, int | None]] = [
        (lo, min(lo + chunk - 1, top)) for lo in range(1, top + 1, chunk)
    ] or [(1, None)]
    bounds[-1] = (bounds[-1][0], None)  # the last chunk takes whatever sits beyond
    # The tree's pass takes each range's digests as it arrives, in log order, while the
    # workers go on with the next ranges: the same pass whatever the split.
    tree_check = TreeCheck(source.tree_rows(), sizes)
    if workers > 1 and opener is not None and len(bounds) > 1:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        with pool:
            parts: Iterator[_Part] = pool.map(
                _verify_chunk,
                [opener] * len(bounds),
                [lo for lo, _ in bounds],
                [hi for _, hi in bounds],
                [keys] * len(bounds),
            )
            merged, ledger, samples = _merge(verdict, parts, progress, tree_check)
    else:
        merged, ledger, samples = _merge(
            verdict,
            (_verify_range(source, lo, hi, keys) for lo, hi in bounds),
            progress,
            tree_check,
        )
    tree = tree_check.result()
    verdict.heads = tree_check.heads
    for position, cp in pinned.items():
        stored = merged.get(position)
        if stored is None:
            verdict.problems.append(
                Problem(
                    position,
                    "checkpoint",
                    f"the checkpoint signed at {cp.time} "
                    f"covers position {position}, which the chain no longer has",
                    after=0,
                )
            )
        elif stored.hex() != cp.hash:
            verdict.problems.append(
                Problem(
                    position,
                    "checkpoint",
                    f"the history up to the checkpoint at {position} differs from what it "
                    f"signed at {cp.time}",
                    after=0,
                )
            )
        else:
            verdict.held.append(position)
    if tree is not None:
        verdict.problems.append(Problem(tree[0], TREE, tree[1]))
    if not verdict.problems:
        # The keys are held to the erasures the history records, so only once the history
        # itself holds: with records cut or changed, an erasure may be what is gone.
        for gone in missing_keys(ledger, source.held_keys(), source.erasures):
            verdict.problems.append(Problem(gone.position, "key missing", gone.detail))
        for position, detail in key_check(samples) if key_check else ():
            verdict.problems.append(Problem(position, KEY_ALTERED, detail))
    return verdict


def _merge(
    verdict: Verdict,
    parts: Iterable[_Part],
    progress: Callable[[int], None] | None,
    tree_check: TreeCheck,
) -> tuple[dict[int, bytes], KeyLedger, Samples]:
    pinned_links: dict[int, bytes] = {}
    ledger = KeyLedger()
    samples: Samples = {}
    for part in parts:
        verdict.problems.extend(part.problems)
        verdict.checked += part.checked
        pinned_links.update(part.pinned_links)
        ledger.merge(part.keys)
        for key, sample in part.samples.items():  # parts in log order: the first is kept
            samples.setdefault(key, sample)
        tree_check.feed(part.positions, part.digests)
        verdict.head = part.last  # parts arrive in log order
        if progress is not None:
            progress(verdict.checked)
    return pinned_links, ledger, samples
