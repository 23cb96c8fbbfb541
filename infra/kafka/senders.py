"""Signed commands: who sent a message on the command topic, checked before anything else.

Whoever can write to the command topic could otherwise name any `ce_source` and any `actor`.
So each service that sends commands is a registered principal holding a sender key
(`backcheck principals add ... --public-key`, services/senders.py), and signs every command
with the private half. The intake checks the signature before it parses the body, then that
the message is fresh, not a replay, and asks only for what the sender may: its use cases, on
behalf of whom it may act. A message that fails is dead-lettered with a reason of its own and
the refusal is recorded in the store (domain/sender.py); nothing else changes. The signature,
the key files and the signing are infra/kafka/signatures.py's.

Replays: a command applied from one message (its receipt, domain/intake.py) is refused when it
comes again from another message (`replayed`); the very same message delivered again is left
to the intake, which passes over it. A message's `ce_time` must be within `max_skew` of the
intake's clock, so a captured message is good only that long, and within it, once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from nacl.signing import VerifyKey

from domain.intake import CommandReceipt, receipt_id
from domain.principal import SELF
from infra.kafka.cloudevent import DeadLetterReason
from infra.kafka.dead_letters import REDRIVEN_FROM
from infra.kafka.signatures import KEYID, SIGNATURE, SIGNED_HEADERS, signed_bytes, verifies
from services.application import Backcheck
from services.errors import AggregateMissingError
from services.senders import Sender

DEFAULT_SKEW = timedelta(minutes=5)
RECHECK = 1.0  # seconds a sender's principal is taken as it was last read
_READ = frozenset((*SIGNED_HEADERS, KEYID, SIGNATURE, REDRIVEN_FROM))
_SHOWN = 120  # characters of a sender's header repeated in an error, at most
_KEYS_KEPT = 1024

# --- verifying: the intake's side -------------------------------------------------------------


@dataclass(frozen=True)
class SenderRefusal:
    """Why a message is refused before the intake trusts it."""

    reason: DeadLetterReason
    error: str
    command_type: str | None
    field: str | None = None  # the header (or the body's field) at fault, as outcomes name it


Refused = tuple[DeadLetterReason, str, str]  # the reason, the error, the header or field at fault


def _plain(raw: bytes | None) -> str:
    """A header as text fit to repeat: decoded, control characters replaced, bounded."""
    text = (raw or b"").decode("utf-8", errors="replace").strip()
    if not text.isprintable():
        text = "".join("?" if unicodedata.category(c).startswith("C") else c for c in text)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}..."


class SenderCheck:
    """Checks a command message's sender, signature, time, freshness and scope.

    `recheck`: seconds a sender's principal, once read, is taken as it was: a rotation or a
    revocation is seen by the intake within that long (one indexed read a message otherwise).
    `accept_unsigned`: a message with neither signature header is left to the intake as it
    was before senders were checked (for a topic whose ACLs alone decide who writes, while its
    senders move to signing); a message with either header is checked all the same."""

    def __init__(
        self,
        app: Backcheck,
        max_skew: timedelta = DEFAULT_SKEW,
        accept_unsigned: bool = False,
        clock: Callable[[], datetime] | None = None,
        recheck: float = RECHECK,
    ) -> None:
        self.app = app
        self.max_skew = max_skew
        self.accept_unsigned = accept_unsigned
        self.clock = clock or app.clock
        self.recheck = recheck
        self._keys: dict[str, VerifyKey] = {}
        self._senders: dict[str, tuple[float, Sender | None]] = {}

    def sender(self, name: str) -> Sender | None:
        """The sender as its principal stands, asked of the store again once `recheck`
        seconds have passed since it last was (a rotation or a revocation is a new version of
        the principal, seen then)."""
        now = time.monotonic()
        known = self._senders.get(name)
        if known is not None and now - known[0] < self.recheck:
            return known[1]
        found = self.app.sender(name)
        if len(self._senders) >= _KEYS_KEPT:
            self._senders.clear()
        self._senders[name] = (now, found)
        return found

    def check(
        self, headers: Sequence[tuple[str, bytes]], value: bytes | None, channel: str
    ) -> SenderRefusal | None:
        """None when the message may go on to the intake; else why not, recorded."""
        found: dict[str, bytes] = {}
        for name, raw in headers:
            if name in _READ and found.setdefault(name, raw) != raw:
                return self._refuse(
                    found,
                    value,
                    channel,
                    DeadLetterReason.MALFORMED,
                    f"header {name} is given twice, with different values; a signed command "
                    "has one of each",
                    name,
                )
        if KEYID not in found and SIGNATURE not in found and self.accept_unsigned:
            return None
        refused = self._refusal(found, value or b"", channel)
        if refused is None:
            return None
        return self._refuse(found, value, channel, *refused)

    def _refusal(self, found: dict[str, bytes], value: bytes, channel: str) -> Refused | None:
        source = _plain(found.get("ce_source"))
        if KEYID not in found or SIGNATURE not in found:
            return (
                DeadLetterReason.UNSIGNED,
                f"no {KEYID} and {SIGNATURE} headers: every command is signed with its "
                "sender's key (`backcheck send-command --signing-key`)",
                KEYID if SIGNATURE in found else SIGNATURE,
            )
        sender = self.sender(source) if source else None
        if sender is None:
            return (
                DeadLetterReason.UNKNOWN_SENDER,
                f"ce_source {source!r} is no service holding a sender key (`backcheck "
                "principals add NAME --kind service --public-key FILE`)",
                "ce_source",
            )
        if not self._verified(sender, found, value):
            return (
                DeadLetterReason.BAD_SIGNATURE,
                f"ce_signature does not verify with {sender.name}'s current sender key "
                f"{sender.key_id} ({KEYID} {_plain(found[KEYID])!r})",
                # a key id not the sender's current one is what is wrong, whatever it signed
                SIGNATURE if found[KEYID].strip() == sender.key_id.encode() else KEYID,
            )
        kind = _plain(found.get("ce_type"))
        timing = self._timing(found.get("ce_time"))
        expired = timing is not None and timing[0] is DeadLetterReason.EXPIRED
        if expired and self._redrive_recorded(found, sender.name):
            timing = None  # sent back by an operator, recorded: still applied only once
        refused = timing or self._scope(sender, kind) or self._actor(sender, value)
        if refused is None:
            return None  # a replay of it is found by the intake, which reads its receipt anyway
        command_id = _plain(found.get("ce_id"))
        applied_from = self._applied_from(sender, command_id)
        if applied_from == channel:
            return None  # this very message, applied and delivered again: the intake passes
        if applied_from is not None:
            return (
                DeadLetterReason.REPLAYED,
                self._replay_error(sender.name, command_id, applied_from),
                "ce_id",
            )
        return refused

    def signed(self, headers: Sequence[tuple[str, bytes]]) -> bool:
        """Whether the message carries a signature (one `check` passed: a verified one)."""
        return any(name in (KEYID, SIGNATURE) for name, _ in headers)

    def replayed(
        self,
        headers: Sequence[tuple[str, bytes]],
        value: bytes | None,
        channel: str,
        applied_from: str,
    ) -> SenderRefusal:
        """The refusal, recorded, of a signed command applied before from `applied_from`."""
        found = dict(reversed(headers))
        error = self._replay_error(
            _plain(found.get("ce_source")), _plain(found.get("ce_id")), applied_from
        )
        return self._refuse(found, value, channel, DeadLetterReason.REPLAYED, error, "ce_id")

    @staticmethod
    def _replay_error(source: str, command_id: str, applied_from: str) -> str:
        return (
            f"ce_id {command_id!r} from {source} was applied from {applied_from}; a command is "
            "taken once (a new command has a new ce_id)"
        )

    @staticmethod
    def _scope(sender: Sender, kind: str) -> Refused | None:
        if kind in sender.use_cases:
            return None
        return (
            DeadLetterReason.OUT_OF_SCOPE,
            f"ce_type {kind!r} is not among the use cases {sender.name} may send "
            f"({', '.join(sorted(sender.use_cases))})",
            "ce_type",
        )

    def _verified(self, sender: Sender, found: dict[str, bytes], value: bytes) -> bool:
        if found[KEYID].strip() != sender.key_id.encode():
            return False
        try:
            # base64.b64decode(validate=True), without its layers around this one call
            signature = binascii.a2b_base64(found[SIGNATURE].strip(), strict_mode=True)
        except binascii.Error:
            return False
        key = self._keys.get(sender.public_key)
        if key is None:
            if len(self._keys) >= _KEYS_KEPT:
                self._keys.clear()
            try:
                key = VerifyKey(base64.b64decode(sender.public_key))
            except ValueError:  # not 32 bytes: registered keys are (services/senders.py)
                return False
            self._keys[sender.public_key] = key
        return verifies(key, signature, signed_bytes(found, value))

    def _redrive_recorded(self, found: dict[str, bytes], source: str) -> bool:
        """A dead letter an operator sent back (`backcheck dlq redrive`, recorded first)
        comes after the sender's time, by design: its freshness is the redrive's record, for
        this very command (its source and id, signed), not its ce_time."""
        letter = found.get(REDRIVEN_FROM)
        if not letter:
            return False
        command_id = (found.get("ce_id") or b"").decode("utf-8", errors="replace").strip()
        return self.app.redrive_recorded(
            letter.decode("utf-8", errors="replace").strip(), source, command_id
        )

    def _timing(self, raw: bytes | None) -> Refused | None:
        skew = int(self.max_skew.total_seconds())
        if not raw:
            return (
                DeadLetterReason.EXPIRED,
                "no ce_time: a signed command carries the time it was sent (RFC 3339), and is "
                f"taken within {skew} s of it",
                "ce_time",
            )
        try:
            sent = datetime.fromisoformat(raw.decode().strip())
        except (UnicodeDecodeError, ValueError):
            sent = None
        if sent is None or sent.tzinfo is None:
            return (
                DeadLetterReason.MALFORMED,
                f"ce_time {_plain(raw)!r} is not an RFC 3339 time with its offset",
                "ce_time",
            )
        now = self.clock()
        if sent < now - self.max_skew:
            return (
                DeadLetterReason.EXPIRED,
                f"ce_time {sent.isoformat()} is more than {skew} s before the intake's clock "
                f"({now.isoformat()}): send it again, signed anew",
                "ce_time",
            )
        if sent > now + self.max_skew:
            return (
                DeadLetterReason.FUTURE,
                f"ce_time {sent.isoformat()} is more than {skew} s after the intake's clock "
                f"({now.isoformat()}): the sender's clock is ahead",
                "ce_time",
            )
        return None

    def _applied_from(self, sender: Sender, command_id: str) -> str | None:
        """Where the command with this id from this sender was applied from, if it was."""
        try:
            receipt = self.app.load(CommandReceipt, receipt_id(sender.name, command_id))
        except AggregateMissingError:
            return None
        return str(receipt.channel)

    def _actor(self, sender: Sender, value: bytes) -> Refused | None:
        try:
            document = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None  # the intake says why it is malformed
        if not isinstance(document, dict):
            return None  # no command at all: its schema says so (invalid), naming no actor
        actor = document.get("actor")
        if actor is not None and not isinstance(actor, str):
            return (
                DeadLetterReason.ACTOR_NOT_ALLOWED,
                f"field 'actor': a text naming whom {sender.name} acts for, not "
                f"{type(actor).__name__}",
                "actor",
            )
        if actor is None or not actor.strip():
            return (
                DeadLetterReason.ACTOR_NOT_ALLOWED,
                f"field 'actor': a command from {sender.name} names whom it acts for",
                "actor",
            )
        actor = actor.strip()
        if actor == SELF:
            # `self` in a sender's acts-for stands for the sender; as an actor it would be
            # recorded as a principal named "self", which is no one
            return (
                DeadLetterReason.ACTOR_NOT_ALLOWED,
                f"field 'actor': 'self' is no principal; a command {sender.name} sends for "
                f"itself names it: {sender.name!r}",
                "actor",
            )
        if actor in sender.acts_for or (actor == sender.name and SELF in sender.acts_for):
            return None
        return (
            DeadLetterReason.ACTOR_NOT_ALLOWED,
            f"field 'actor': {sender.name} may not act for {_plain(actor.encode())!r} (it acts "
            f"for {', '.join(sorted(sender.acts_for))})",
            "actor",
        )

    def _refuse(
        self,
        found: dict[str, bytes],
        value: bytes | None,
        channel: str,
        reason: DeadLetterReason,
        error: str,
        field: str,
    ) -> SenderRefusal:
        kind = _plain(found.get("ce_type"))
        self.app.record_sender_refusal(
            channel,
            reason.value,
            error,
            _plain(found.get("ce_source")),
            _plain(found.get("ce_id")),
            kind,
            _plain(found.get(KEYID)),
            hashlib.sha256(value or b"").hexdigest(),
        )
        return SenderRefusal(reason, error, kind or None, field)
