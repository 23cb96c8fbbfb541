"""Which data keys a store must hold, and which it must not: the rule behind crypto-shredding.

Only a recorded erasure may make a personal value unreadable: `Candidate.Erased` every key of
the subject, `Candidate.TierShredded` the key of one tier. So, for every (subject, tier) some
stored event holds a value of:

- its key is there, unless an erasure or retention of it is recorded; else the key is
  *missing*: deleted around the application (tampering, a damaged store);
- once an erasure or retention of it is recorded, its key is gone; else that erasure or
  retention is *unfinished* (cut off between recording it and destroying the key), and
  running it again finishes it. A key made again after a retention run, for values sealed
  after it, is not the key that run destroyed: it is left alone.

`KeyLedger` gathers what the stream says; the key store says which keys it holds. `audit
check` and the retention run judge the decoded stream with it, `audit verify` the stored
records (infra/audit/keys.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from projections import events as ev
from projections.tally import tiers_in

Pair = tuple[UUID, str]  # (subject, tier): one data key

MISSING = "data key missing without a recorded erasure"
ERASURE_UNFINISHED = "erasure recorded but not finished"
RETENTION_UNFINISHED = "retention recorded but not finished"


@dataclass(frozen=True)
class Recorded:
    """Where and when an erasure or a retention run was recorded."""

    position: int
    at: datetime | None = None

    def said(self) -> str:
        when = f"at {self.at.isoformat()} " if self.at is not None else ""
        return f"{when}(position {self.position})"


@dataclass(frozen=True)
class KeyFinding:
    """A data key the store holds but must not, or must hold but does not."""

    rule: str  # MISSING, ERASURE_UNFINISHED or RETENTION_UNFINISHED
    position: int  # the erasure or retention recorded; for a missing key, its first value
    candidate_id: UUID
    tiers: tuple[str, ...]
    detail: str


@dataclass
class KeyLedger:
    """What the stream says about each data key: where values sealed with it sit, and which
    erasures and retention runs are recorded."""

    first: dict[Pair, int] = field(default_factory=dict)  # first position holding a value
    last: dict[Pair, int] = field(default_factory=dict)  # last position holding a value
    erased: dict[UUID, Recorded] = field(default_factory=dict)
    shredded: dict[Pair, Recorded] = field(default_factory=dict)

    def see_values(self, position: int, subject: UUID, tiers: set[str]) -> None:
        for tier in tiers:
            self.first.setdefault((subject, tier), position)
            self.last[(subject, tier)] = position

    def see_erasure(self, subject: UUID, recorded: Recorded) -> None:
        self.erased.setdefault(subject, recorded)

    def see_shred(self, subject: UUID, tier: str, recorded: Recorded) -> None:
        self.shredded[(subject, tier)] = recorded

    def merge(self, other: KeyLedger) -> None:
        """Another part of the same stream, further on (parallel verification)."""
        for pair, position in other.first.items():
            self.first.setdefault(pair, position)
        self.last.update(other.last)
        for subject, recorded in other.erased.items():
            self.erased.setdefault(subject, recorded)
        self.shredded.update(other.shredded)

    def observe(self, events: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        """The decoded stream passed through, each event noted on its way."""
        for position, event in events:
            if isinstance(event, ev.CandidateErased):
                self.see_erasure(event.originator_id, Recorded(position, event.timestamp))
            elif isinstance(event, ev.TierShredded):
                recorded = Recorded(position, event.timestamp)
                tier: str = event.tier  # type: ignore[attr-defined]
                self.see_shred(event.originator_id, tier, recorded)
            subject = getattr(event, "candidate_id", None)
            if isinstance(subject, UUID):
                tiers = tiers_in(vars(event))
                if tiers:
                    self.see_values(position, subject, tiers)
            yield position, event

    def covered(self, pair: Pair) -> bool:
        """Whether a recorded erasure or retention run may have destroyed this key."""
        return pair[0] in self.erased or pair in self.shredded

    def missing(self, held: set[Pair]) -> list[KeyFinding]:
        """Keys of values in the stream that are gone with nothing recorded to destroy them."""
        return [
            KeyFinding(
                MISSING,
                position,
                subject,
                (tier,),
                f"the {tier} data key of candidate {subject} is gone, yet no erasure of the "
                f"candidate or retention of that tier is recorded; values sealed with it from "
                f"position {position} on cannot be read",
            )
            for (subject, tier), position in sorted(self.first.items(), key=lambda i: i[1])
            if (subject, tier) not in held and not self.covered((subject, tier))
        ]

    def unfinished(self, held: set[Pair]) -> list[KeyFinding]:
        """Erasures and retention runs recorded whose keys are still there."""
        found = []
        kept: dict[UUID, list[str]] = {}
        for subject, tier in held:
            if subject in self.erased:
                kept.setdefault(subject, []).append(tier)
        for subject, recorded in self.erased.items():
            left = sorted(kept.get(subject, ()))
            if left:
                found.append(
                    KeyFinding(
                        ERASURE_UNFINISHED,
                        recorded.position,
                        subject,
                        tuple(left),
                        f"candidate {subject} was erased {recorded.said()}, but "
                        f"{len(left)} data key(s) remain ({', '.join(left)}): run "
                        f"`backcheck subject erase {subject}` again to finish it",
                    )
                )
        for (subject, tier), recorded in self.shredded.items():
            pair = (subject, tier)
            if subject in self.erased or pair not in held:
                continue
            if self.last.get(pair, 0) > recorded.position:  # a new key, for newer values
                continue
            found.append(
                KeyFinding(
                    RETENTION_UNFINISHED,
                    recorded.position,
                    subject,
                    (tier,),
                    f"the {tier} data of candidate {subject} was shredded by retention "
                    f"{recorded.said()}, but its key remains: run `backcheck retention run` "
                    f"again to finish it",
                )
            )
        return sorted(found, key=lambda f: f.position)
