"""Principals: who may call backcheck from outside its own machine, and with which token.

A principal is a staff member, another service, or a candidate's portal link. It holds a role,
optionally the candidates it is assigned to (its reads are confined to them), and the SHA-256
of its current token — never the token, which is shown once to whoever asked for it. Issuing,
rotating and revoking are events in the same store and hash chain as everything else, so who
could act as whom, and since when, is as provable as what they did.

A principal is not about a data subject: it holds no candidate's personal data (a portal
link's principal names its candidate by id only), so it is an aggregate of its own, outside
the per-subject encryption. Its id is derived from its name: a name is given once.

A service principal may also hold a sender key: the Ed25519 public key its commands on the
Kafka command topic are signed with, the use cases it may send there and the principals it may
act for (`self`: itself). Issuing, rotating and revoking that key are events too, so which
service could send what, on whose behalf and since when, is on the record as its token is.
The intake checks every command against it (infra/kafka/senders.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.caller import Authenticated, current_caller
from domain.errors import InvalidPrincipalError, PrincipalRevokedError
from domain.subject import (
    RecordedAggregate,
    RecordedCalledSinceV2,
    RecordedCreatedCalledSinceV2,
)

# Fixed for ever: the ids of principals already issued are derived from it.
PRINCIPAL_NAMESPACE = UUID("8c4f6a1e-2d3b-5f70-9a8e-4b1c7d2e9f03")
MAX_NAME = 120
MAX_ASSIGNMENTS = 50
NAME_RULE = r"^[a-z0-9][a-z0-9._:@-]*$"
_NAME = re.compile(NAME_RULE)
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_SENDER_USE_CASES = 64
MAX_ACTS_FOR = 50
SELF = "self"  # in `acts_for`: the service may name itself as the command's actor
CANDIDATE_ROLE = "candidate"  # the role a portal link reads in; no other principal holds it
PORTAL_PREFIX = "candidate:"  # a portal link's principal is named candidate:<candidate id>
# Why a portal session closed (`Principal.SessionClosed.reason`), stored: never renamed.
SIGNED_OUT = "signed-out"  # the candidate signed out
SESSION_IDLE = "idle"  # unused for the idle bound after its last call
SESSION_EXPIRED = "expired"  # at its end: its link's expiry, or the longest a session lasts
SESSION_REPLACED = "replaced"  # a new session opened in its browser while it lasted
SESSION_ENDINGS = (SESSION_IDLE, SESSION_EXPIRED, SESSION_REPLACED)  # found, not signed out


def session_ending(
    opened_at: datetime,
    last_call: datetime,
    ends_at: datetime,
    idle: timedelta,
    link_ended_at: datetime | None,
    replaced_at: datetime | None = None,
) -> tuple[str, datetime] | None:
    """How and when a portal session that was not signed out of ended, by its rules
    (decision 0040): unused for `idle` after its last call (`idle`, at that call + `idle`),
    at its end (`expired`, at `ends_at`: its link's expiry or its longest), or replaced by a
    session opened in its browser while it lasted (`replaced`, then) — whichever came first.
    None when its link stopped signing in before that (`link_ended_at`: revoked, or replaced
    by a newer link): the session ended with its link, whose own event is its record
    (decision 0050)."""
    unused = last_call + idle
    reason, ended = (SESSION_EXPIRED, ends_at) if ends_at <= unused else (SESSION_IDLE, unused)
    if replaced_at is not None and replaced_at < ended:
        reason, ended = SESSION_REPLACED, replaced_at
    if link_ended_at is not None and link_ended_at < ended:
        return None
    return reason, ended


class PrincipalKind(StrEnum):
    """A person on staff, another service, or a candidate's portal link."""

    STAFF = "staff"
    SERVICE = "service"
    PORTAL = "portal"


def principal_id(name: str) -> UUID:
    """The one id the principal `name` is stored under."""
    return uuid5(PRINCIPAL_NAMESPACE, name)


def portal_name(candidate_id: UUID) -> str:
    """The name of a candidate's portal-link principal: `candidate:<id>`, which is also who
    the access policies take to be the candidate reading their own data."""
    return f"{PORTAL_PREFIX}{candidate_id}"


def check_name(name: str) -> None:
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidPrincipalError("name", f"1 to {MAX_NAME} characters")
    if not _NAME.match(name):
        raise InvalidPrincipalError(
            "name",
            "lower-case letters, digits and . _ : @ -, starting with a letter or digit "
            "(e.g. hr:li.na, svc:ats)",
        )


def _check_hash(token_hash: str) -> None:
    if not _SHA256_HEX.match(token_hash):
        raise InvalidPrincipalError("token_hash", "the SHA-256 of the token, 64 hex digits")


def _check_expiry(kind: PrincipalKind, expires_at: datetime | None) -> None:
    if expires_at is None:
        if kind is PrincipalKind.PORTAL:
            raise InvalidPrincipalError("expires_at", "a portal link always expires")
    elif expires_at.tzinfo is None:
        raise InvalidPrincipalError("expires_at", "a time with its UTC offset")


def sender_key_id(public_key: str) -> str:
    """The id a sender key is named by in `ce_keyid`: the first 16 bytes of the SHA-256 of
    the raw 32-byte public key, in hex. It is the key's own fingerprint, so a sender can compute
    it and a key issued twice keeps its id."""
    return hashlib.sha256(_raw_public_key(public_key)).hexdigest()[:32]


def _raw_public_key(public_key: str) -> bytes:
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise InvalidPrincipalError(
            "public_key", "an Ed25519 public key: its 32 raw bytes in base64 (44 characters)"
        )
    return raw


def _check_scope(use_cases: tuple[str, ...], acts_for: tuple[str, ...]) -> None:
    if not 1 <= len(use_cases) <= MAX_SENDER_USE_CASES:
        raise InvalidPrincipalError(
            "use_cases", f"a sender may send 1 to {MAX_SENDER_USE_CASES} use cases"
        )
    if not 1 <= len(acts_for) <= MAX_ACTS_FOR:
        raise InvalidPrincipalError(
            "acts_for", f"1 to {MAX_ACTS_FOR} principals it may act for (self: itself)"
        )
    for name in acts_for:
        if name != SELF and not (len(name) <= MAX_NAME and _NAME.match(name)):
            shown = name if len(name) <= 40 else f"{name[:40]}..."
            raise InvalidPrincipalError(
                "acts_for", f"{shown!r} is no principal's name (e.g. hr:li.na), nor self"
            )


class Principal(RecordedAggregate):
    # v2 of each: who called it, as authenticated (`authenticated`, domain/caller.py)
    class Added(RecordedCreatedCalledSinceV2):
        name: str
        role: str
        assignments: tuple[UUID, ...]
        token_hash: str
        expires_at: datetime | None
        kind: str
        added_by: str

    class TokenRotated(RecordedCalledSinceV2):
        token_hash: str
        expires_at: datetime | None
        rotated_by: str

    class Revoked(RecordedCalledSinceV2):
        reason: str
        revoked_by: str

    class SenderKeyIssued(RecordedCalledSinceV2):
        public_key: str
        key_id: str
        use_cases: tuple[str, ...]
        acts_for: tuple[str, ...]
        by: str

    class SenderKeyRotated(RecordedCalledSinceV2):
        public_key: str
        key_id: str
        use_cases: tuple[str, ...]
        acts_for: tuple[str, ...]
        by: str
        replaced: str | None

    class SenderKeyRevoked(RecordedCalledSinceV2):
        key_id: str | None
        reason: str
        by: str

    class SessionOpened(RecordedAggregate.Event):
        """A portal link's candidate signed in: a portal session opened with the link
        (infra/http/sessions.py), lasting until `ends_at` at the latest. Never the session's
        id, nor the link's token or its hash. New in version 1, with its caller."""

        ends_at: datetime
        opened_by: str
        authenticated: Authenticated

    class SessionClosed(RecordedAggregate.Event):
        """A portal session of the link's candidate ended: the one opened at `opened_at` (as
        the session kept it; its SessionOpened is recorded as it opens), at `ended_at`, for
        `reason`. Signed out (`signed-out`): ended by the candidate (`closed_by`, and how they
        were known), as it was recorded. Otherwise found ended by the portal's sessions, later
        (the event's own time is when it was found): unused for the idle bound (`idle`), at
        its end (`expired`), or replaced by a new session opened in its browser (`replaced`);
        no one closed it (`closed_by` and `authenticated` None). Never the session's id, nor
        the link's token or its hash. Version 2 records `ended_at`, and a session ended
        otherwise than by signing out (decision 0056); a version 1 record is a sign-out, which
        ended when it was recorded."""

        class_version = 2

        opened_at: datetime
        ended_at: datetime
        reason: str
        closed_by: str | None
        authenticated: Authenticated | None

        @classmethod
        def upcast_v1_v2(cls, state: dict[str, Any]) -> None:
            state["ended_at"] = state["timestamp"]

    @classmethod
    def add(
        cls,
        name: str,
        role: str,
        kind: str,
        assignments: tuple[UUID, ...],
        token_hash: str,
        expires_at: datetime | None,
        added_by: str,
    ) -> Principal:
        """A principal with its first token. A portal link is the candidate's own: role
        candidate, assigned to that one candidate, and it expires; no other principal holds
        the candidate role. Assignments confine every read to those candidates."""
        check_name(name)
        try:
            kind_ = PrincipalKind(kind)
        except ValueError:
            raise InvalidPrincipalError("kind", "one of staff, service, portal") from None
        if not role.strip():
            raise InvalidPrincipalError("role", "a principal reads in a role")
        unique = tuple(dict.fromkeys(assignments))
        if len(unique) > MAX_ASSIGNMENTS:
            raise InvalidPrincipalError("assignments", f"at most {MAX_ASSIGNMENTS} candidates")
        if kind_ is PrincipalKind.PORTAL:
            if role != CANDIDATE_ROLE or len(unique) != 1 or name != portal_name(unique[0]):
                raise InvalidPrincipalError(
                    "kind",
                    "a portal link is candidate:<id>, in the candidate role, assigned to "
                    "that candidate alone",
                )
        elif role == CANDIDATE_ROLE:
            raise InvalidPrincipalError(
                "role", "candidates sign in with their portal link (issue-portal-link)"
            )
        elif name.startswith(PORTAL_PREFIX):
            # the name the candidate's link is issued under: a staff principal so named
            # would be rotated into it, handing the candidate a token in its role
            raise InvalidPrincipalError(
                "name",
                f"{PORTAL_PREFIX}… names a candidate's portal link alone (issue-portal-link); "
                "choose another name",
            )
        _check_hash(token_hash)
        _check_expiry(kind_, expires_at)
        return cls._create(
            cls.Added,
            name=name,
            role=role,
            assignments=unique,
            token_hash=token_hash,
            expires_at=expires_at,
            kind=kind_.value,
            added_by=added_by,
        )

    @staticmethod
    def create_id(name: str) -> UUID:
        return principal_id(name)

    @event(Added)
    def __init__(
        self,
        name: str,
        role: str,
        assignments: tuple[UUID, ...],
        token_hash: str,
        expires_at: datetime | None,
        kind: str,
        added_by: str,
    ) -> None:
        self.name = name
        self.role = role
        self.assignments = assignments
        self.token_hash = token_hash
        self.expires_at = expires_at
        self.kind = kind
        self.added_by = added_by
        self.revoked: str | None = None  # the reason, once revoked
        self.sender_key: str | None = None  # base64 Ed25519 public key; None: sends nothing
        self.sender_key_id: str | None = None
        self.sender_use_cases: tuple[str, ...] = ()
        self.sender_acts_for: tuple[str, ...] = ()

    def rotate(self, token_hash: str, expires_at: datetime | None, rotated_by: str) -> None:
        """A new token in place of the old, which is refused from now on."""
        if self.revoked is not None:
            raise PrincipalRevokedError(self.name, "be given a new token")
        _check_hash(token_hash)
        _check_expiry(PrincipalKind(self.kind), expires_at)
        self._rotated(token_hash=token_hash, expires_at=expires_at, rotated_by=rotated_by)

    @event(TokenRotated)
    def _rotated(self, token_hash: str, expires_at: datetime | None, rotated_by: str) -> None:
        self.token_hash = token_hash
        self.expires_at = expires_at

    def revoke(self, reason: str, revoked_by: str) -> None:
        """Its token is refused from now on, for good."""
        if self.revoked is not None:
            raise PrincipalRevokedError(self.name, "be revoked again")
        if not reason.strip():
            raise InvalidPrincipalError("reason", "a revocation states why")
        self._revoked(reason=reason, revoked_by=revoked_by)

    @event(Revoked)
    def _revoked(self, reason: str, revoked_by: str) -> None:
        self.revoked = reason

    def open_session(self, ends_at: datetime, opened_by: str) -> None:
        """The candidate signed in with their portal link: a session opened, until `ends_at`
        at the latest. Only a portal link opens one, and only while it is not revoked."""
        if self.kind != PrincipalKind.PORTAL.value:
            raise InvalidPrincipalError("kind", "only a candidate's portal link opens a session")
        if self.revoked is not None:
            raise PrincipalRevokedError(self.name, "open a portal session")
        self._session_opened(ends_at=ends_at, opened_by=opened_by)

    @event(SessionOpened)
    def _session_opened(self, ends_at: datetime, opened_by: str) -> None:
        pass  # nothing the principal decides by: the sign-in is on the record

    def close_session(self, opened_at: datetime, closed_by: str, at: datetime) -> None:
        """The candidate signed out, at `at`, of the portal session opened at `opened_at`.
        Only a portal link's session is closed; a link revoked since may still be signed out
        of (a sign-out ends access, and is recorded as it happened)."""
        self._check_session(opened_at, at)
        self._session_closed(
            opened_at=opened_at,
            ended_at=at,
            reason=SIGNED_OUT,
            closed_by=closed_by,
            authenticated=current_caller(),
        )

    def end_session(self, opened_at: datetime, ended_at: datetime, reason: str) -> None:
        """A portal session opened at `opened_at` was found ended otherwise than by signing
        out (`session_ending` says how and when): recorded as it ended, by no one."""
        if reason not in SESSION_ENDINGS:
            raise InvalidPrincipalError("reason", f"one of {', '.join(SESSION_ENDINGS)}")
        self._check_session(opened_at, ended_at)
        self._session_closed(
            opened_at=opened_at,
            ended_at=ended_at,
            reason=reason,
            closed_by=None,
            authenticated=None,
        )

    def _check_session(self, opened_at: datetime, ended_at: datetime) -> None:
        if self.kind != PrincipalKind.PORTAL.value:
            raise InvalidPrincipalError("kind", "only a candidate's portal link has sessions")
        for field, moment in (("opened_at", opened_at), ("ended_at", ended_at)):
            if moment.tzinfo is None:
                raise InvalidPrincipalError(field, "a time with its UTC offset")
        if ended_at < opened_at:
            raise InvalidPrincipalError("ended_at", "a session ends after it opened")

    @event(SessionClosed)
    def _session_closed(
        self,
        opened_at: datetime,
        ended_at: datetime,
        reason: str,
        closed_by: str | None,
        authenticated: Authenticated | None,
    ) -> None:
        pass  # nothing the principal decides by: the session's end is on the record

    def expired_at(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def issue_sender_key(
        self, public_key: str, use_cases: tuple[str, ...], acts_for: tuple[str, ...], by: str
    ) -> None:
        """A service's key for signing commands, with the use cases it may send and whom it
        may act for; a key in place of an earlier one is a rotation (the old key's signatures
        are refused from then on). Only a service that is not revoked sends commands. Which
        use cases exist is the use-case table's to say (services/senders.py checks it)."""
        if self.revoked is not None:
            raise PrincipalRevokedError(self.name, "be given a sender key")
        if self.kind != PrincipalKind.SERVICE:
            raise InvalidPrincipalError("kind", "only a service principal sends commands")
        key_id = sender_key_id(public_key)
        uses, acts = tuple(dict.fromkeys(use_cases)), tuple(dict.fromkeys(acts_for))
        _check_scope(uses, acts)
        if self.sender_key is None:
            self._sender_key_issued(
                public_key=public_key, key_id=key_id, use_cases=uses, acts_for=acts, by=by
            )
        else:
            self._sender_key_rotated(
                public_key=public_key,
                key_id=key_id,
                use_cases=uses,
                acts_for=acts,
                by=by,
                replaced=self.sender_key_id,
            )

    @event(SenderKeyIssued)
    def _sender_key_issued(
        self,
        public_key: str,
        key_id: str,
        use_cases: tuple[str, ...],
        acts_for: tuple[str, ...],
        by: str,
    ) -> None:
        self.sender_key, self.sender_key_id = public_key, key_id
        self.sender_use_cases, self.sender_acts_for = tuple(use_cases), tuple(acts_for)

    @event(SenderKeyRotated)
    def _sender_key_rotated(
        self,
        public_key: str,
        key_id: str,
        use_cases: tuple[str, ...],
        acts_for: tuple[str, ...],
        by: str,
        replaced: str | None,
    ) -> None:
        self.sender_key, self.sender_key_id = public_key, key_id
        self.sender_use_cases, self.sender_acts_for = tuple(use_cases), tuple(acts_for)

    def revoke_sender_key(self, reason: str, by: str) -> None:
        """Its commands are refused from now on (its token, if any, still works)."""
        if self.sender_key is None:
            raise InvalidPrincipalError("sender_key", f"{self.name} holds no sender key")
        if not reason.strip():
            raise InvalidPrincipalError("reason", "a revocation states why")
        self._sender_key_revoked(key_id=self.sender_key_id, reason=reason, by=by)

    @event(SenderKeyRevoked)
    def _sender_key_revoked(self, key_id: str | None, reason: str, by: str) -> None:
        self.sender_key = self.sender_key_id = None
        self.sender_use_cases = self.sender_acts_for = ()
