"""Reads of a subject's views taken whole, and disclosures recorded outside the read path.

The access log and the consent register hold no personal value, but whose they are makes them
the subject's business: each is decided once for the view (not per category) by the access
policies, recorded first like any other read, then answered (`_read_whole`, which the history
reads of services/audit_reads.py share). Personal data leaving outside the read path (an
evidence bundle, an access package) is recorded first as a disclosure naming every category it
carries (`record_disclosure`). Split from services/queries.py, which keeps the reads of values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.access import Access, AccessOutcome, DataDisclosure
from domain.errors import AccessRefusedError
from services.access import READ_ACCESS_LOG, READ_CONSENTS
from services.answers import access_entries, consent_entry
from services.dto import (
    AccessEntry,
    AccessLogView,
    ConsentEntry,
    ConsentRegisterView,
    ReadAccessLog,
    ReadConsents,
    Reader,
    RecordDisclosure,
    WholeViewRead,
)
from services.facts import screen_purpose
from services.identity import authentication_now, role_now
from services.ports import ReadModel
from services.queries import ACCESS_LOG_VIEW, CONSENTS_VIEW, Doc, QueryUseCases
from services.shown import shows
from services.unit import receiving_now, use_case

T = TypeVar("T")


class WholeViewReads(QueryUseCases):
    @use_case
    def record_disclosure(self, cmd: RecordDisclosure, categories: Iterable[str] = ()) -> UUID:
        """Personal data leaving outside the read path is recorded first, with every category
        it carries (the profile's, and those its caller names); if the record cannot be
        stored, nothing may be handed over."""
        views = self.read_model()
        profile = self._profile(views, cmd.candidate_id, opening=frozenset())
        screen_purpose("purpose", cmd.purpose, cmd.candidate_id, views, frozenset())
        categories = (
            [f.category for f in profile["identity"]]
            + [f.category for claim in profile["claims"] for f in claim["fields"]]
            + list(categories)
        )
        disclosure = DataDisclosure.record(
            cmd.candidate_id,
            cmd.actor,
            cmd.recipient,
            cmd.purpose,
            cmd.channel,
            tuple(categories),
            authentication=authentication_now(receiving_now()),
            role=role_now(receiving_now()),
        )
        self.commit(disclosure)
        return disclosure.id

    def _decide_view(
        self,
        cmd: Reader,
        subject: UUID,
        action: str,
        view_name: str,
        views: ReadModel,
        profile: Doc,
    ) -> tuple[Access, Any]:
        """One read of a subject's view taken whole, decided for `action`, and its access
        record (nothing returned, nothing withheld: the view holds no personal value)."""
        request = self._facts(cmd, subject, (), views, profile)
        decision = self.decision_point.decide_view(action, request)
        access = Access.record(
            candidate_id=subject,
            principal=cmd.principal,
            role=cmd.role.value,
            purpose=cmd.purpose,
            view=view_name,
            returned=(),
            withheld=(),
            outcome=decision.outcome,
            policy_ids=decision.policy_ids,
            policy_set_hash=decision.policy_set_hash,
            consent_ids=request.consent_ids,
            authentication=authentication_now(receiving_now()),
        )
        return access, decision

    def _read_whole(
        self,
        cmd: WholeViewRead,
        action: str,
        view_name: str,
        answer: Callable[[ReadModel, str], T],
    ) -> tuple[UUID, T]:
        """A read of one of the subject's views taken whole (READ_ACCESS_LOG, READ_CONSENTS):
        decided once for the view, recorded first like any other read (nothing returned,
        nothing withheld: they hold no personal value), then answered by `answer(views, key)`.
        Returns this read's access id and the answer."""

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[Any, ...]]:
            key = str(cmd.candidate_id)
            profile = views.get("profile", key, frozenset())
            if profile is None:
                raise self._missing(cmd, cmd.candidate_id, view_name)
            shows(profile)  # the subject's version, as the views held it when decided
            access, decision = self._decide_view(
                cmd, cmd.candidate_id, action, view_name, views, profile
            )
            answered = answer(views, key) if decision.allowed else None
            return [access], (access.id, decision, answered)

        attempt = self._attempt(cmd, view_name, cmd.candidate_id)
        access_id, decision, answered = self._recorded(decide, attempt)  # recorded first
        if not decision.allowed:
            raise AccessRefusedError(cmd.candidate_id, view_name, list(decision.policy_ids))
        return access_id, answered

    @use_case
    def read_access_log(self, cmd: ReadAccessLog) -> AccessLogView:
        """Who read what about the candidate, when, why, what they were refused, and what was
        handed over to whom: the candidate reads their own log, a compliance officer anyone's.
        The log holds no personal values, but who looked at whom is the subject's business,
        so this read is decided and recorded first like any other."""
        # the log with every access record stored before this read (decisions need not wait
        # for those, so the views caught up for deciding may not have applied them yet)
        access_id, entries = self._read_whole(
            cmd,
            READ_ACCESS_LOG,
            ACCESS_LOG_VIEW,
            lambda _, key: access_entries(self.read_model(), key),
        )
        return AccessLogView(
            candidate_id=cmd.candidate_id,
            access_id=access_id,
            outcome=AccessOutcome.ALLOWED,
            entries=entries,
        )

    @use_case
    def read_consents(self, cmd: ReadConsents) -> ConsentRegisterView:
        """The candidate's consent register: what each consent asked and was granted for, and
        whether it is in force now. The candidate, the recruiter handling them, an assigned
        investigator and compliance read it, also once consent is withdrawn or expired; the
        read is recorded first."""
        now = self.now()

        def register(views: ReadModel, key: str) -> list[ConsentEntry]:
            return [consent_entry(doc, now) for doc in views.of_subject("consent", key)]

        access_id, consents = self._read_whole(cmd, READ_CONSENTS, CONSENTS_VIEW, register)
        return ConsentRegisterView(
            candidate_id=cmd.candidate_id,
            access_id=access_id,
            outcome=AccessOutcome.ALLOWED,
            consents=sorted(consents, key=lambda c: c.requested_at),
        )

    def recorded_accesses(self, candidate_id: UUID) -> list[AccessEntry]:
        """The subject's access log as stored, for checks inside this process. Not a read: no
        one is asking and nothing is recorded; every outside surface (CLI, commands) goes
        through `read_access_log`."""
        return access_entries(self.read_model(), str(candidate_id))
