"""Principals and their tokens: issued, rotated, revoked, listed, and checked on every call.

A token names its principal and carries a secret: `bck_<principal id, 32 hex>_<43 url-safe
characters>`. It is shown once, to whoever asked for it; the store keeps only its SHA-256, in
the principal's events. Checking a token parses it, loads its principal by the id it names,
and compares the hashes in constant time: an unknown, superseded, revoked or expired token
establishes no one. Nothing about a token is ever said back but why it was refused.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.access import Authentication
from domain.candidate import Candidate
from domain.errors import InvalidPrincipalError, PortalClosedError, PrincipalAlreadyExistsError
from domain.principal import (
    Principal,
    PrincipalKind,
    portal_name,
    principal_id,
    session_ending,
)
from projections.versions import PRINCIPAL_VIEW
from services.access import Role
from services.dto import (
    AddPrincipal,
    IssuePortalLink,
    PortalLinkIssued,
    PortalLinkSent,
    PortalSessionEnd,
    PrincipalIssued,
    PrincipalResult,
    RecordPortalSessionEnds,
    RecordPortalSignIn,
    RecordPortalSignOut,
    RevokePrincipal,
    RotatePrincipal,
)
from services.errors import AggregateMissingError, AuthenticationError, UnknownPrincipalError
from services.identity import Identity
from services.ports import LinkDeliveryError, PortalLink
from services.unit import UnitOfWork, use_case

TOKEN_PREFIX = "bck_"
_TOKEN = re.compile(r"^bck_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
_MAX_TOKEN = 80  # longer is no token of ours: refused before anything is parsed
# why a token signs no one in (the portal words them for the candidate: infra/http/auth.py)
UNKNOWN_TOKEN = "unknown token"
TOKEN_REVOKED = "token revoked"
TOKEN_EXPIRED = "token expired"
PORTAL_ERASED = "token revoked: the candidate was erased"
_VERIFIED = 4096  # tokens remembered as checked (by hash), at most
PORTAL_DAYS = 30  # a portal link rotated without saying for how long
_ADDED = get_topic(Principal.Added)
# the events that give a principal its token (a portal link's), or take it away
_LINK_GIVEN = frozenset({_ADDED, get_topic(Principal.TokenRotated)})
_LINK_TAKEN = frozenset({get_topic(Principal.TokenRotated), get_topic(Principal.Revoked)})
_LINK_EVENTS = _LINK_GIVEN | _LINK_TAKEN


def new_token(principal: UUID) -> str:
    """A fresh token for the principal with this id: 256 bits of secret after its id."""
    return f"{TOKEN_PREFIX}{principal.hex}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    """What the store keeps of a token: the SHA-256 of all of it, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def principal_result(principal: Principal) -> PrincipalResult:
    return PrincipalResult(
        name=principal.name,
        principal_id=principal.id,
        kind=principal.kind,
        role=principal.role,
        assignments=sorted(principal.assignments),
        expires_at=principal.expires_at,
        revoked=principal.revoked is not None,
        revoked_reason=principal.revoked,
        added_by=principal.added_by,
        added_at=principal.created_on,
        version=principal.version,
    )


def _issued(principal: Principal, token: str) -> PrincipalIssued:
    return PrincipalIssued(**principal_result(principal).model_dump(), token=token)


def portal_principal(
    uow: UnitOfWork, candidate_id: UUID, expires_at: datetime, actor: str
) -> tuple[Principal, str]:
    """The candidate's portal-link principal with a new token, for the caller to commit (with
    whatever else its use case writes): added the first time, rotated after, so once committed
    the old token is refused. A revoked link is not issued again (PrincipalRevokedError,
    raised before anything changes). The caller has loaded the candidate."""
    name = portal_name(candidate_id)
    pid = principal_id(name)
    token = new_token(pid)
    try:  # loaded when it exists: one look-up, not "exists?" then the load
        principal = uow.load(Principal, pid)
    except AggregateMissingError:
        principal = Principal.add(
            name,
            Role.CANDIDATE.value,
            PrincipalKind.PORTAL.value,
            (candidate_id,),
            token_hash(token),
            expires_at,
            actor,
        )
    else:
        if principal.kind != PrincipalKind.PORTAL:  # added before such names were refused
            raise InvalidPrincipalError(
                "name",
                f"{name} is a {principal.kind} principal in the role {principal.role}, not "
                "this candidate's portal link: no link is issued under it, which would hand the "
                "candidate a token in that role; revoke it (`backcheck principals revoke`)",
            )
        principal.rotate(token_hash(token), expires_at, actor)
    return principal, token


# Why an erased candidate's portal link was revoked: a fixed text, never the erasure's reason.
ERASED_REASON = "the candidate was erased: their portal is closed for good"


def open_portal(uow: UnitOfWork, candidate_id: UUID) -> Principal | None:
    """The candidate's portal-link principal while it can still sign in (issued and not
    revoked), for the caller to revoke and commit; None otherwise."""
    try:
        principal = uow.load(Principal, principal_id(portal_name(candidate_id)))
    except AggregateMissingError:
        return None
    return principal if principal.revoked is None else None


def withdraw_link(uow: UnitOfWork, candidate_id: UUID) -> str | None:
    """The candidate's link waiting to be sent, taken back from the link delivery once their
    portal was closed: where it was, or why it could not be (the link in it no longer works
    either way); None when none was waiting."""
    try:
        return uow.links.withdraw(candidate_id)
    except LinkDeliveryError as e:
        return f"{e}; the link in it no longer works: delete it"


def hand_on(uow: UnitOfWork, link: PortalLink) -> PortalLinkSent:
    """A committed portal link, handed to the link delivery: where it went, or why it did not
    (what was recorded stands either way)."""
    try:
        where = uow.links.deliver(link)
    except LinkDeliveryError as e:
        return PortalLinkSent(
            status="undelivered",
            detail=f"the link was issued but could not be delivered: {e}; issue it again "
            f"with `backcheck principals portal-link {link.candidate_id}`",
            expires_at=link.expires_at,
        )
    return PortalLinkSent(status="delivered", detail=where, expires_at=link.expires_at)


class PrincipalUseCases(UnitOfWork):
    def _expiry(self, days: int | None) -> datetime | None:
        return self.now() + timedelta(days=days) if days is not None else None

    def _principal(self, name: str) -> Principal:
        try:
            return self.load(Principal, principal_id(name))
        except AggregateMissingError:
            raise UnknownPrincipalError(name) from None

    @use_case
    def add_principal(self, cmd: AddPrincipal) -> PrincipalIssued:
        """A staff member or another service gets a principal and its first token, shown once:
        only the token's SHA-256 is stored. A name is given once; the candidates it is
        assigned to must be registered, and its reads are confined to them."""
        pid = principal_id(cmd.name)
        if self.exists(pid):
            raise PrincipalAlreadyExistsError(cmd.name)
        for candidate_id in dict.fromkeys(cmd.assignments):
            self.load(Candidate, candidate_id)
        token = new_token(pid)
        principal = Principal.add(
            cmd.name,
            cmd.role.value,
            cmd.kind,
            tuple(cmd.assignments),
            token_hash(token),
            self._expiry(cmd.valid_days),
            cmd.actor,
        )
        self.commit(principal)
        return _issued(principal, token)

    @use_case
    def rotate_principal(self, cmd: RotatePrincipal) -> PrincipalIssued:
        """A principal gets a new token, shown once; the old one is refused from then on.
        A revoked principal gets none."""
        principal = self._principal(cmd.name)
        days = cmd.valid_days
        if days is None and principal.kind == PrincipalKind.PORTAL:
            days = PORTAL_DAYS
        token = new_token(principal.id)
        principal.rotate(token_hash(token), self._expiry(days), cmd.actor)
        self.commit(principal)
        return _issued(principal, token)

    @use_case
    def revoke_principal(self, cmd: RevokePrincipal) -> PrincipalResult:
        """A principal's token is refused from now on, for good: a revoked principal is never
        given a token again."""
        principal = self._principal(cmd.name)
        principal.revoke(cmd.reason, cmd.actor)
        self.commit(principal)
        return principal_result(principal)

    @use_case
    def record_portal_sign_in(self, cmd: RecordPortalSignIn) -> None:
        """A candidate's sign-in to the portal (a session opened with their link) is on the
        record, as every use of the link is: on the link's principal, when and until when the
        session lasts at the latest, never the session's id, the token or its hash. Only the
        candidate's own link, not revoked, signs in."""
        principal = self._principal(portal_name(cmd.candidate_id))
        principal.open_session(cmd.ends_at, cmd.actor)
        # the link's own record, which its caller did not name: a collision with another
        # sign-in alone is decided again
        self.commit(principal, internal=(principal,))

    @use_case
    def record_portal_sign_out(self, cmd: RecordPortalSignOut) -> None:
        """A candidate's sign-out of the portal is on the record beside their sign-ins: on
        the link's principal, when, and when the session they ended was opened; never the
        session's id, the token or its hash. Only a portal link's session is signed out of."""
        principal = self._principal(portal_name(cmd.candidate_id))
        principal.close_session(cmd.opened_at, cmd.actor, self.now())
        # as a sign-in: the link's own record, which its caller did not name; a write that
        # collides with another change of it alone (a sign-in, a new link, a revocation) is
        # decided again on it as it then is
        self.commit(principal, internal=(principal,))

    @use_case
    def record_portal_session_ends(self, cmd: RecordPortalSessionEnds) -> int:
        """Portal sessions that ended otherwise than by signing out are on the record beside
        the sign-outs, once found (decision 0056): on each link's principal, when the session
        ended by its rules (unused, at its end, replaced in its browser) and why, the event's
        own time being when it was found; never the session's id, the token or its hash. A
        session whose link stopped signing in first (revoked, replaced) ended with its link,
        whose own event records it: nothing more is recorded for it. All in one write; how
        many were recorded."""
        idle = timedelta(seconds=cmd.idle_seconds)
        found: dict[UUID, Principal] = {}
        recorded = 0
        for session in cmd.sessions:
            name = portal_name(session.candidate_id)
            principal = found.get(principal_id(name)) or self._principal(name)
            ending = session_ending(
                session.opened_at,
                session.last_call,
                session.ends_at,
                idle,
                self._link_ended_at(principal, session),
                session.replaced_at,
            )
            if ending is None:
                continue
            reason, ended_at = ending
            principal.end_session(session.opened_at, ended_at, reason)
            found[principal.id] = principal
            recorded += 1
        if found:
            # the links' own records, which no caller named: a collision with another change
            # of them alone (a sign-in) is decided again on them as they then are
            self.commit(*found.values(), internal=tuple(found.values()))
        return recorded

    def _link_ended_at(self, principal: Principal, session: PortalSessionEnd) -> datetime | None:
        """When the link a session was opened with stopped signing in (a newer link issued
        in its place, or the principal revoked), from the principal's events; None while it
        still signs in (its expiry is the session's own end)."""
        if principal.token_hash == session.link_sha256 and principal.revoked is None:
            return None
        given = False  # whether the link in force is the session's
        for stored in self.recorder.select_events(principal.id):
            if stored.topic not in _LINK_EVENTS:
                continue
            event: Any = self.mapper.to_domain_event(stored)
            if given and stored.topic in _LINK_TAKEN:
                taken: datetime = event.timestamp
                return taken
            if stored.topic in _LINK_GIVEN:
                given = event.token_hash == session.link_sha256
        # a link this principal never held signs no one in: nothing to vouch for
        return None if given else session.opened_at

    @use_case
    def issue_portal_link(self, cmd: IssuePortalLink) -> PortalLinkIssued:
        """A candidate's portal link: a token for the principal candidate:<id>, in the
        candidate role, confined to that candidate, expiring after `valid_days`. Issued again,
        the link is replaced (the old one is refused) with a new expiry; a revoked link is
        not issued again. Once recorded, it is handed to the link delivery as the one sent
        with a consent request is, so what waits there to be sent is always the link that
        works. An erased candidate's portal is closed for good: no link is issued."""
        if self.load(Candidate, cmd.candidate_id).erased:
            raise PortalClosedError(cmd.candidate_id)
        expires_at = self.now() + timedelta(days=cmd.valid_days)
        principal, token = portal_principal(self, cmd.candidate_id, expires_at, cmd.actor)
        self.commit(principal, internal=(principal,))  # named by its candidate, not by itself
        link = PortalLink(cmd.candidate_id, token, expires_at, principal.version)
        sent = hand_on(self, link)
        return PortalLinkIssued(**_issued(principal, token).model_dump(), sent=sent)

    def list_principals(self) -> list[PrincipalResult]:
        """Every principal, by name, revoked ones too: never a token or its hash."""
        ids: list[UUID] = []
        start = 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=500, topics=[_ADDED])
            if not page:
                break
            ids.extend(UUID(str(n.originator_id)) for n in page)
            start = page[-1].id + 1
        found = [principal_result(self.load(Principal, i)) for i in dict.fromkeys(ids)]
        return sorted(found, key=lambda p: p.name)

    def authenticate(self, token: str) -> Identity:
        """Who a token establishes: its principal's name, role and assignments, as of now.
        Refused (AuthenticationError, saying why and never repeating the token): a token
        that is not one of ours, names no principal or not its current token; a revoked
        principal's; an expired one."""
        parsed = _TOKEN.match(token) if len(token) <= _MAX_TOKEN else None
        if parsed is None:
            raise AuthenticationError(UNKNOWN_TOKEN)
        return self.authenticate_kept(UUID(hex=parsed[1]), token_hash(token))

    def authenticate_kept(self, principal_id: UUID, digest: str) -> Identity:
        """Who the token whose hash is `digest` establishes now, for what kept the hash and
        not the token (a portal session keeps its link's: infra/http/sessions.py). Refused as
        the token itself would be: a principal it is not, or no longer, the token of; revoked;
        expired."""
        known = self._verified.get((principal_id, digest))
        if known is not None and self._principal_version(principal_id) == known[0]:
            # checked before, and the principal has not changed since (a rotation or a
            # revocation is a new version): only the expiry can have passed
            identity = known[1]
            if identity.expires_at is not None and identity.expires_at <= self.now():
                raise AuthenticationError(TOKEN_EXPIRED)
            return identity
        try:
            principal = self.load(Principal, principal_id)
        except AggregateMissingError:
            raise AuthenticationError(UNKNOWN_TOKEN) from None
        if not hmac.compare_digest(principal.token_hash, digest):
            raise AuthenticationError(UNKNOWN_TOKEN)
        if principal.revoked == ERASED_REASON:  # a fixed text, never a person's words
            raise AuthenticationError(PORTAL_ERASED)
        if principal.revoked is not None:
            raise AuthenticationError(TOKEN_REVOKED)
        if principal.expired_at(self.now()):
            raise AuthenticationError(TOKEN_EXPIRED)
        portal = principal.kind == PrincipalKind.PORTAL
        identity = Identity(
            principal=principal.name,
            role=Role(principal.role),
            authentication=Authentication.PORTAL if portal else Authentication.TOKEN,
            assignments=frozenset(principal.assignments),
            expires_at=principal.expires_at,
        )
        if len(self._verified) >= _VERIFIED:
            self._verified.clear()  # bounded; the next calls fill it again
        self._verified[principal_id, digest] = (principal.version, identity)
        return identity

    def _principal_version(self, principal_id: UUID) -> int | None:
        """The principal's version as its row in the views holds it, the views made current
        with every write committed before this call, by any process (as before every read
        decision): so a revocation or rotation committed anywhere is seen by the very next
        request. The views' row cache makes this no store read at all while nothing was
        written; the log's head is asked, as every read asks it anyway."""
        row = self.read_model(deciding=True).get(PRINCIPAL_VIEW, str(principal_id))
        return None if row is None else int(row["version"])

    @cached_property
    def _verified(self) -> dict[tuple[UUID, str], tuple[int, Identity]]:
        """Tokens checked, by their principal and hash: the principal's version then, and who
        it was. A token is taken from here only while its principal is still at that version,
        which one indexed look-up tells without reading its events."""
        return {}
