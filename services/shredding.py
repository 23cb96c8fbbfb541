"""Which data keys a store must hold, and which it must not: the rule behind crypto-shredding.

Only a recorded erasure may make a personal value unreadable: `Candidate.Erased` every key of
the subject, `Candidate.TierShredded` the keys of one tier (its own key, which sealed values
before keys per category, and the key of each of its categories), `Candidate.CategoriesShredded`
the keys of the categories it names. A key is named by its *scope*: a category
(`user.education`) or a tier (`general`). So, for every (subject, scope) some stored event
holds a value of:

- its key is there, unless an erasure or retention of it is recorded; else the key is
  *missing*: deleted around the application (tampering, a damaged store);
- once an erasure or retention of it is recorded, its key is gone; else that erasure or
  retention is *unfinished* (cut off between recording it and destroying the key), and
  running it again finishes it. A key made again after a retention run, for values sealed
  after it, is not the key that run destroyed: it is left alone.

`KeyLedger` gathers what the stream says; the key store says which keys it holds. `audit
check` and the retention run judge the decoded stream with it, `audit verify` the stored
records (infra/audit/keys.py). A stored envelope names the one key that sealed it; a decoded
value only its category and tier, so it is noted as sealed by either (`Options`): its key is
missing only when neither is there and neither was recorded destroyed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from domain.classification import CATEGORIES, KEY_MISSING_VALUE, PersonalField, key_name
from projections import events as ev

Pair = tuple[UUID, str]  # (subject, scope): one data key
Options = tuple[str, ...]  # the scopes one of which sealed a decoded value: (category, tier)
Sealed = tuple[UUID, str | Options]  # the key of a stored value, or the keys of a decoded one

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
    tiers: tuple[str, ...]  # the scopes (tiers or categories) of the keys
    detail: str


def shredded_scopes(event: Any) -> set[str]:
    """The keys a retention event destroyed: a tier's own and its categories', or the
    categories named."""
    tier = getattr(event, "tier", None)
    if isinstance(event, ev.TierShredded) and isinstance(tier, str):
        return scopes_of_tier(tier)
    return set(getattr(event, "categories", ()))


def scopes_of_tier(tier: str) -> set[str]:
    """A tier's own key and the keys of each of its categories."""
    return {tier} | {k for k, c in CATEGORIES.items() if c.tier.value == tier}


_PLAIN = (str, int, float, UUID, datetime, date, type(None))  # most of a state: no value in it


def options_in(value: Any) -> tuple[set[Options], set[Options]]:
    """(category, tier) of the personal values anywhere in a decoded event's state: either
    key may have sealed each (a decoded value does not say which); and of those among them
    that could not be opened because their key is gone with nothing recorded (the sealer,
    which read the envelope, decided that: they hold KEY_MISSING_VALUE)."""
    found: set[Options] = set()
    gone: set[Options] = set()
    _gather(value, found, gone)
    return found, gone


def _gather(value: Any, found: set[Options], gone: set[Options]) -> None:
    if isinstance(value, PersonalField):
        option = (value.category, value.tier.value)
        found.add(option)
        if value.value == KEY_MISSING_VALUE:
            gone.add(option)
    elif isinstance(value, dict):
        for v in value.values():
            if not isinstance(v, _PLAIN):
                _gather(v, found, gone)
    elif isinstance(value, list | tuple):
        for v in value:
            if not isinstance(v, _PLAIN):
                _gather(v, found, gone)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            _gather(getattr(value, f.name), found, gone)


@dataclass
class KeyLedger:
    """What the stream says about each data key: where values sealed with it sit, and which
    erasures and retention runs are recorded."""

    first: dict[Sealed, int] = field(default_factory=dict)  # first position holding a value
    last: dict[Sealed, int] = field(default_factory=dict)  # last position holding a value
    # decoded values that could not be opened, their key gone with nothing recorded: first
    # position, by (subject, (category, tier))
    unreadable: dict[Sealed, int] = field(default_factory=dict)
    erased: dict[UUID, Recorded] = field(default_factory=dict)
    shredded: dict[Pair, Recorded] = field(default_factory=dict)

    def see_values(self, position: int, subject: UUID, scopes: set[str] | set[Options]) -> None:
        """Values sealed with these keys (a stored envelope names its scope), or, for decoded
        values, with one of each tuple's keys."""
        for scope in scopes:
            self.first.setdefault((subject, scope), position)
            self.last[(subject, scope)] = position

    def see_erasure(self, subject: UUID, recorded: Recorded) -> None:
        self.erased.setdefault(subject, recorded)

    def see_shred(self, subject: UUID, scope: str, recorded: Recorded) -> None:
        self.shredded[(subject, scope)] = recorded

    def merge(self, other: KeyLedger) -> None:
        """Another part of the same stream, further on (parallel verification)."""
        for pair, position in other.first.items():
            self.first.setdefault(pair, position)
        for pair, position in other.unreadable.items():
            self.unreadable.setdefault(pair, position)
        self.last.update(other.last)
        for subject, recorded in other.erased.items():
            self.erased.setdefault(subject, recorded)
        self.shredded.update(other.shredded)

    def observe(self, events: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        """The decoded stream passed through, each event noted on its way."""
        for position, event in events:
            if isinstance(event, ev.CandidateErased):
                self.see_erasure(event.originator_id, Recorded(position, event.timestamp))
            elif isinstance(event, ev.TierShredded | ev.CategoriesShredded):
                recorded = Recorded(position, event.timestamp)
                for scope in shredded_scopes(event):
                    self.see_shred(event.originator_id, scope, recorded)
            subject = getattr(event, "candidate_id", None)
            if isinstance(subject, UUID):
                options, gone = options_in(vars(event))
                for option in options:  # where each key's values sit, for `unfinished`
                    self.last[(subject, option)] = position
                for option in gone:
                    self.unreadable.setdefault((subject, option), position)
            yield position, event

    def covered(self, pair: Pair) -> bool:
        """Whether a recorded erasure or retention run may have destroyed this key."""
        return pair[0] in self.erased or pair in self.shredded

    def missing(self, held: set[Pair]) -> list[KeyFinding]:
        """Keys of values in the stream that are gone with nothing recorded to destroy them:
        from stored records, each envelope's own key not held; from decoded events, the
        values that could not be opened (values that were never sealed, as records written
        before a field was classified hold, need no key)."""
        stored = [
            ((subject, (scope,)), position)
            for (subject, scope), position in self.first.items()
            if isinstance(scope, str)
            and (subject, scope) not in held
            and not self.covered((subject, scope))
        ]
        decoded = [
            ((subject, _options(options)), position)
            for (subject, options), position in self.unreadable.items()
            if not any(self.covered((subject, o)) for o in _options(options))
        ]
        return [
            KeyFinding(
                MISSING,
                position,
                subject,
                options,
                f"the {' or '.join(map(key_name, options))} data key of candidate {subject} is "
                f"gone, yet no erasure of the candidate or retention of that key is recorded; "
                f"values sealed with it from position {position} on cannot be read",
            )
            for (subject, options), position in sorted(stored + decoded, key=lambda i: i[1])
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
        latest: dict[Pair, int] = {}  # the last value each key may have sealed
        for (subject, scope), position in self.last.items():
            for o in _options(scope):
                latest[(subject, o)] = max(latest.get((subject, o), 0), position)
        left_by_run: dict[tuple[UUID, Recorded], list[str]] = {}  # one finding per run
        for (subject, tier), recorded in self.shredded.items():
            pair = (subject, tier)
            if subject in self.erased or pair not in held:
                continue
            if latest.get(pair, 0) > recorded.position:  # a new key, for newer values
                continue
            left_by_run.setdefault((subject, recorded), []).append(tier)
        for (subject, recorded), scopes in left_by_run.items():
            left = sorted(scopes)
            found.append(
                KeyFinding(
                    RETENTION_UNFINISHED,
                    recorded.position,
                    subject,
                    tuple(left),
                    f"the {', '.join(map(key_name, left))} data of candidate {subject} was "
                    f"shredded by retention {recorded.said()}, but "
                    f"{'its key remains' if len(left) == 1 else 'their keys remain'}: run "
                    f"`backcheck retention run` again to finish it",
                )
            )
        return sorted(found, key=lambda f: f.position)


def _options(scope: str | Options) -> Options:
    return (scope,) if isinstance(scope, str) else scope
