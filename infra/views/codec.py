"""A view row to stored bytes and back.

Personal values inside a row are sealed with the subject's data key for their tier, bound to
view, row and path, exactly as in the event store (the envelope: infra/privacy/envelope.py):
destroying the subject's keys makes the views unreadable too, and the projection also
overwrites them on erasure. A value already erased is kept as a marker, never sealed again
(that would mint a new key for an erased subject).

A value whose key is gone without a recorded erasure (services/errors.py, DataKeyMissingError)
fails a read, never reads as erased. The projection, which opens the rows it changes, carries
such a value through unopened: written back to the same place, it keeps its envelope as it
was (readable again once the key is restored); anywhere else, and a value an event could not
open, it is written as the unreadable marker. So every other value and row stays current, and
a rebuild completes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from domain.classification import ERASED_VALUE, KEY_MISSING_VALUE, WITHHELD_VALUE, PersonalField
from infra.privacy import envelope
from infra.privacy.envelope import Envelope, Where
from infra.privacy.sealing import Context, Sealer, stored_envelopes
from infra.views.integrity import RowSeal
from projections.read_views import PLAIN_PREFIXES, PLAIN_VIEWS
from projections.rows import Doc
from services.errors import DataKeyMissingError


def _context(view: str, key: str, subject: str) -> Context:
    return (subject, f"view:{view}:{key}", 0)


# The values a batch opened, by object: (the value, the envelope it was opened from, its place).
# A value written back unchanged to the place it was opened from keeps that envelope instead of
# being sealed anew: a row rewritten for one new value (a profile given one more claim) costs one
# encryption, not one per value it holds. A PersonalField is immutable, so the very same object
# holds the very same name, category and value.
# The values of the events a batch applies are noted too, with the envelope their event was
# stored with, saying where (`envelope.placed`): written into any row of the event's subject,
# a value keeps that envelope, sealed once for the event and never again for a row (decision
# 0048); the row's MAC binds it to its row as it binds every other byte of the row.
Opened = dict[int, tuple[PersonalField, Envelope, tuple[Context, str]]]


@dataclass(frozen=True)
class Unopened(PersonalField):
    """A row's value whose data key is gone without a recorded erasure, as the projection
    holds it: KEY_MISSING_VALUE, and the envelope it stays sealed in, bound to its place."""

    envelope: Envelope = field(default_factory=dict, compare=False)
    place: tuple[Context, str] = field(default=(("", "", 0), ""), compare=False)


@dataclass(frozen=True)
class Unread(PersonalField):
    """A row's sealed value as a batch reads it (`Codec.decode(unread=True)`): not opened,
    WITHHELD_VALUE, with the envelope it is sealed in and its place. Projections carry values
    through, never read them: written back where it was (or, an event's envelope, into a row
    of its subject) it keeps that envelope; anywhere else it is opened then and sealed anew."""

    envelope: Envelope = field(default_factory=dict, compare=False)
    place: tuple[Context, str] = field(default=(("", "", 0), ""), compare=False)

    @classmethod
    def of(cls, found: Envelope, place: tuple[Context, str]) -> Unread:
        """The same as `Unread(name, category, WITHHELD_VALUE, found, place)`, made without
        the frozen dataclass's `__init__` (five `object.__setattr__`: half of the making)."""
        made = object.__new__(cls)
        made.__dict__.update(
            name=found["name"],
            category=found["category"],
            value=WITHHELD_VALUE,
            envelope=found,
            place=place,
        )
        return made


# A row as stored: keys sorted (a dataclass as the dict of its fields, sorted too), so the
# document read back from PostgreSQL's jsonb can be put back byte for byte (`verified`).
_STORED = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS


class Codec:
    """Rows to stored bytes and back; personal fields sealed per subject, view and row.
    Without a sealer it writes and reads only rows without personal values. `plain_views`
    names the views declared to hold none, and `plain_prefixes` the start of the names of
    those named per value (a day): a personal value found in one is refused. With `rows`,
    every row is written with a MAC and read only if it matches (`integrity.py`)."""

    def __init__(
        self,
        sealer: Sealer | None,
        plain_views: frozenset[str] = PLAIN_VIEWS,
        plain_prefixes: tuple[str, ...] = PLAIN_PREFIXES,
        rows: RowSeal | None = None,
    ) -> None:
        self.sealer = sealer
        self.plain_views = plain_views
        self.plain_prefixes = plain_prefixes
        self.rows = rows

    def mac(self, view: str, key: str, subject: str, data: bytes) -> bytes | None:
        """The MAC a row written as `data` is stored with (None: this codec makes none)."""
        return None if self.rows is None else self.rows.mac(view, key, subject, data)

    def verified(
        self,
        view: str,
        key: str,
        subject: str,
        data: bytes | str,
        mac: bytes | None,
        *,
        exact: bool = True,
    ) -> bytes | str:
        """A stored row's document once its MAC is checked (ViewRowAlteredError if it does
        not match). `exact`: the store gives back the very bytes written (SQLite); else the
        document is put back in the form it was written in first (PostgreSQL's jsonb)."""
        if self.rows is None:
            return data
        body = data if exact else orjson.dumps(orjson.loads(data), option=_STORED)
        raw = body.encode() if isinstance(body, str) else body
        self.rows.check(view, key, subject, raw, mac)
        return body

    def encode(
        self, view: str, key: str, subject: str, doc: Doc, opened: Opened | None = None
    ) -> bytes:
        """`opened`: what `decode` opened in this batch (a value written back unchanged to its
        place keeps its envelope)."""
        if view in self.plain_views or view.startswith(self.plain_prefixes):
            # nothing to seal, so no walk through the row looking for it; a personal value
            # found here after all is refused, never written in plaintext
            return orjson.dumps(doc, option=_STORED, default=_unsealed)
        return orjson.dumps(
            self.seal(view, key, subject, doc, opened), option=_STORED, default=_fields
        )

    def note_event(self, event: Any, stored: bytes | str, opened: Opened) -> None:
        """Notes in `opened` each personal value of `event` with the envelope its stored state
        `stored` (the bytes the event store holds) has for it: `encode` keeps that envelope."""
        if self.sealer is None or not envelope.may_hold_envelopes(stored):
            return
        try:
            state = orjson.loads(stored)
        except orjson.JSONDecodeError:
            return
        if not isinstance(state, dict):
            return
        for value, found, ctx, path in stored_envelopes(event, state):
            opened[id(value)] = (value, envelope.placed(found, ctx[1], ctx[2], path), (ctx, path))

    def seal(
        self, view: str, key: str, subject: str, doc: Doc, opened: Opened | None = None
    ) -> Any:
        """The row as it is stored, before serialisation: every personal value an envelope."""
        ctx = _context(view, key, subject)

        def seal_one(value: PersonalField, path: str) -> Envelope:
            if type(value) is Unread:
                if self._stays(value.envelope, value, value.place, (ctx, path)):
                    return value.envelope  # as it was
                value = self._read(value)
            if value.value == ERASED_VALUE:
                return envelope.erased(value)
            if isinstance(value, Unopened) and value.place == (ctx, path):
                return value.envelope  # as it was
            if value.value == KEY_MISSING_VALUE:  # never sealed anew: that would make a key
                return envelope.unreadable(value, value.tier.value)
            if self.sealer is None:
                raise RuntimeError("a view holding personal data needs a sealer")
            kept = self._kept(value, (ctx, path), opened)
            return kept if kept is not None else self.sealer.seal_field(value, path, ctx)

        return envelope.seal_tree(doc, "doc", seal_one)

    def _kept(
        self, value: PersonalField, place: tuple[Context, str], opened: Opened | None
    ) -> Envelope | None:
        """The envelope `value` was opened from, if it goes back to the same place (or it is
        an event's envelope, `envelope.placed`, going into a row of the event's subject) and
        that envelope is sealed with the key a new one would be (its category's, not an older
        envelope's tier key)."""
        found = opened.get(id(value)) if opened is not None else None
        if found is None or found[0] is not value:
            return None
        return found[1] if self._stays(found[1], value, found[2], place) else None

    def _stays(
        self,
        sealed: Envelope,
        value: PersonalField,
        was: tuple[Context, str],
        place: tuple[Context, str],
    ) -> bool:
        """Whether `value`, sealed in `sealed` for the place `was`, keeps that envelope at
        `place`: the same place (or an event's envelope in a row of the event's subject),
        sealed with the key a new envelope would be."""
        if was != place and (envelope.AT not in sealed or was[0][0] != place[0][0]):
            return False
        assert self.sealer is not None
        by_category = self.sealer.by_category
        wanted = value.category if by_category else value.tier.value
        return envelope.scope(sealed) == wanted and (
            (sealed.get(envelope.KEY) is not None) == by_category
        )

    def _read(self, value: Unread) -> PersonalField:
        """A value a batch read unopened, opened where it was (to be sealed for elsewhere)."""
        ctx, path = value.place
        try:
            opened: PersonalField = self.open_envelope(value.envelope, path, ctx)
        except DataKeyMissingError:
            return Unopened(
                value.name, value.category, KEY_MISSING_VALUE, value.envelope, value.place
            )
        return opened

    def decode(
        self,
        view: str,
        key: str,
        subject: str,
        data: bytes | str,
        noted: Opened | None = None,
        *,
        unread: bool = False,
    ) -> Doc:
        """A stored row as the projection changes it: every value opened, except one whose
        key is gone without a recorded erasure, which stays sealed (`Unopened`). Each value
        opened from an envelope is noted in `noted`, if given (see `encode`). `unread`: no
        sealed value opened at all, each an `Unread` (a batch's rows: `encode` opens one
        only if it goes elsewhere)."""
        ctx = _context(view, key, subject)

        def open_one(found: Envelope, where: str) -> Any:
            if unread and self.sealer is not None and "sealed" in found:
                return Unread.of(found, (ctx, where))
            try:
                value = self.open_envelope(found, where, ctx)
            except DataKeyMissingError:
                place = (ctx, where)
                return Unopened(found["name"], found["category"], KEY_MISSING_VALUE, found, place)
            if (
                noted is not None
                and isinstance(value, PersonalField)
                and envelope.is_sealed(found)
                and value.value != ERASED_VALUE
            ):
                noted[id(value)] = (value, found, (ctx, where))
            return value

        parsed: Doc = orjson.loads(data)
        if not envelope.may_hold_envelopes(data):  # nothing to open: no walk through it
            return parsed
        opened: Doc = envelope.open_in_place(parsed, "doc", open_one, markers=True)
        return opened

    def open_envelope(self, found: Envelope, path: str, ctx: Context) -> Any:
        """One envelope (or marker) of a row as the PersonalField it holds; an unreadable
        value raises DataKeyMissingError."""
        if envelope.is_sealed(found):
            if self.sealer is None:
                return found  # left sealed: this codec cannot open it
            at = envelope.place_of(found)
            if at is not None:  # an event's envelope: opened as in that event
                ctx, path = (ctx[0], at[0], at[1]), at[2]
            text = self.sealer.open_field(found, path, ctx)
            return PersonalField(found["name"], found["category"], text)
        if envelope.is_unreadable(found):
            raise DataKeyMissingError(ctx[0], found["tier"])
        return PersonalField(found["name"], found["category"], ERASED_VALUE)


@dataclass(slots=True, eq=False)
class Parsed:
    """A row as stored, parsed but with its personal values still sealed, and where they are."""

    key: str
    subject: str
    doc: Doc
    envelopes: tuple[Where, ...]
    # The row with every value withheld, made once: it holds names and categories, never a
    # value, and every read is decided on it before anything is opened.
    withheld: Doc | None = field(default=None, repr=False)

    @classmethod
    def of(cls, key: str, subject: str, data: bytes | str) -> Parsed:
        doc = orjson.loads(data)
        found = tuple(envelope.locate(doc)) if envelope.may_hold_envelopes(data) else ()
        return cls(key, subject, doc, found)

    def open(self, view: str, codec: Codec, opening: frozenset[str] | None = None) -> Doc:
        """The row with its personal values opened (only those of the `opening` categories,
        if given; the rest left sealed, as WITHHELD_VALUE): only the containers on the way
        to one are copied, the rest is shared with the cache (read-only)."""
        if not self.envelopes:
            return self.doc
        if opening is not None and not opening:
            if self.withheld is None:
                self.withheld = self._open(view, codec, opening)
            return self.withheld
        return self._open(view, codec, opening)

    def _open(self, view: str, codec: Codec, opening: frozenset[str] | None) -> Doc:
        ctx = _context(view, self.key, self.subject)
        root: Doc = dict(self.doc)
        copied: set[int] = {id(root)}
        for where in self.envelopes:
            parent: Any = root
            for step in where[:-1]:
                child = parent[step]
                if id(child) not in copied:
                    child = dict(child) if isinstance(child, dict) else list(child)
                    copied.add(id(child))
                    parent[step] = child
                parent = child
            found = parent[where[-1]]
            if (
                opening is not None
                and ("sealed" in found or envelope.is_unreadable(found))
                and found["category"] not in opening
            ):
                parent[where[-1]] = PersonalField(found["name"], found["category"], WITHHELD_VALUE)
                continue
            parent[where[-1]] = codec.open_envelope(found, envelope.path_of("doc", where), ctx)
        return root


def _fields(value: Any) -> Any:
    """A dataclass in a sealed row as the dict of its fields (so its keys are sorted too)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} cannot be written in a view row")


def _unsealed(value: Any) -> Any:
    kind = "a personal value" if isinstance(value, PersonalField) else type(value).__name__
    raise TypeError(f"{kind} in a view declared to hold none (PLAIN_VIEWS): not written")
