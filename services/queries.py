"""Reads of personal data, access-controlled and recorded.

Every read goes: principal + purpose → the facts that matter (consent in force, role, case
assignment) → policy decision → view → field-level redaction → an `Access.Recorded` event,
durably stored → only then the response. If the access event cannot be stored, nothing is
returned (fail closed). A refused read is recorded too, then refused.

Concurrent reads are decided and recorded together (services/batching.py): the first reader
to arrive brings the views up to date once, decides every read queued behind it — each in its
own caller's context, so each access event carries its own use case's time — and stores all
their access events in one write. Nobody gets an answer before that write is durable; a read
that fails to be decided fails alone; if the write fails, every read in it fails.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import Context, copy_context
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.access import Access, DataDisclosure
from domain.check import CheckType
from domain.classification import PersonalField, tier_of
from domain.consent import ConsentStatus, consent_status
from domain.errors import AccessRefusedError
from projections.read_views import LOG_VIEW
from services.access import (
    READ_ACCESS_LOG,
    READ_CONSENTS,
    AccessDecision,
    AccessRequest,
    Role,
)
from services.batching import Batcher, Slot
from services.dto import (
    AccessEntry,
    AccessLogView,
    ConsentEntry,
    ConsentRegisterView,
    ConsentTermsView,
    ExchangeView,
    InvestigationCheckView,
    InvestigationView,
    ProfilesView,
    ProfileView,
    ReadAccessLog,
    ReadConsents,
    Reader,
    ReadInvestigation,
    ReadProfile,
    ReadProfiles,
    ReadReport,
    RecordDisclosure,
    ReportItemView,
    ReportView,
    ValueRead,
    WholeViewRead,
)
from services.errors import AggregateMissingError
from services.ports import ReadModel
from services.unit import UnitOfWork, receiving_now, use_case

Doc = dict[str, Any]
_SEALED: frozenset[str] = frozenset()  # open no personal value: a decision never needs one
ACCESS_LOG_VIEW = "access log"  # the view an access-log read names in its own record
CONSENTS_VIEW = "consent register"
T = TypeVar("T")
# A read's decision, given the views: the access records to store, and what to answer with.
Decide = Callable[[ReadModel], tuple[list[Aggregate], Any]]
Read = Slot[tuple[Context, Decide], Any]


class QueryUseCases(UnitOfWork):
    @cached_property
    def recorded_reads(self) -> Batcher[tuple[Context, Decide], Any]:
        """Concurrent reads, decided and recorded a batch at a time."""
        return Batcher(self._decide_and_record)

    def _recorded(self, decide: Decide) -> Any:
        """Decides a read on views current with every write committed before this call, and
        stores its access records durably; returns the answer only after that."""
        if receiving_now():
            # a delivered command's receipt goes in this use case's own write, alone
            accesses, answer = decide(self.read_model(deciding=True))
            self.commit(*accesses)
            return answer
        return self.recorded_reads.submit((copy_context(), decide))

    def _decide_and_record(self, reads: list[Read]) -> None:
        views = self.read_model(deciding=True)  # after every read in the batch had started
        decided: list[tuple[Read, Any]] = []
        accesses: list[Aggregate] = []
        for read in reads:
            context, decide = read.item
            try:
                recorded, answer = context.run(decide, views)
            except Exception as error:  # this read's own fault (not found, invalid): alone
                read.fail(error)
                continue
            decided.append((read, answer))
            accesses.extend(recorded)
        if accesses:
            self.commit(*accesses)  # durably recorded before anything is returned
        for read, answer in decided:
            read.succeed(answer)

    def _facts(
        self,
        cmd: Reader,
        subject: UUID,
        categories: tuple[str, ...],
        views: ReadModel,
        profile: Doc,
    ) -> AccessRequest:
        now = self.clock()
        key = str(subject)  # the views' key for the subject, made once
        consents = views.of_subject("consent", key, _SEALED)
        active = [c for c in consents if _consent_status(c, now) is ConsentStatus.ACTIVE]
        investigations = [
            i for i in views.of_subject("investigation", key, _SEALED) if i["status"] != "cancelled"
        ]
        mine = [i for i in investigations if cmd.principal in i["investigators"]]
        reports = [
            r for r in views.of_subject("report", key, _SEALED) if r["status"] != "destroyed"
        ]
        handles = (
            cmd.principal == profile["registered_by"]
            or any(cmd.principal == c["requested_by"] for c in consents)
            or any(cmd.principal == i["planned_by"] for i in investigations)
        )
        return AccessRequest(
            principal=cmd.principal,
            role=cmd.role,
            purpose=cmd.purpose,
            subject=subject,
            categories=categories,
            consent_ids=tuple(UUID(c["consent_id"]) for c in active),
            consent_active=bool(active),
            consented_purposes=frozenset(p for c in active for p in c["terms"]["purposes"]),
            named_categories=frozenset(k for c in active for k in c["terms"]["categories"]),
            handles=handles,
            assigned=bool(mine),
            planned_categories=frozenset(k for i in mine for k in i["categories"]),
            report_categories=frozenset(
                k
                for r in reports
                if r["status"] in ("draft", "changes requested")
                for k in _report_categories(r)
            ),
            disclosed_categories=frozenset(
                k
                for r in reports
                if any(d["recipient"] == cmd.principal for d in r["disclosures"])
                for k in _report_categories(r)
            ),
            is_subject=cmd.role is Role.CANDIDATE and cmd.principal == f"candidate:{key}",
            break_glass=cmd.break_glass if isinstance(cmd, ValueRead) else None,
        )

    def _profile(
        self,
        views: ReadModel,
        candidate_id: UUID,
        opening: frozenset[str] | None = None,
        key: str | None = None,
    ) -> Doc:
        profile = views.get("profile", key or str(candidate_id), opening)
        if profile is None:
            raise AggregateMissingError("candidate", candidate_id)
        return profile

    def _read(
        self, cmd: ReadProfile | ReadProfiles, candidate_id: UUID, views: ReadModel
    ) -> tuple[Access, ProfileView, list[str]]:
        """Decides one read of `candidate_id`'s profile, asked by `cmd`'s principal, and
        builds its access record and its answer (nothing saved)."""
        # decided on the row with every value still sealed; then only what may be returned
        # is decrypted
        key = str(candidate_id)
        sealed = self._profile(views, candidate_id, opening=frozenset(), key=key)
        categories = tuple(dict.fromkeys(f.category for _, f in _profile_fields(sealed)))
        request = self._facts(cmd, candidate_id, categories, views, sealed)
        decision = self.policy.decide(request)
        allowed = frozenset(decision.allowed)
        # (if the row changed in between, the newer one is shown: still only allowed values)
        profile = (
            self._profile(views, candidate_id, opening=allowed, key=key) if allowed else sealed
        )
        access = _access_record(cmd, candidate_id, "profile", request, decision)
        refused = decision.outcome == "refused" and bool(categories)
        reasons = decision.withheld_because if refused else []
        # validated in one call, fields and all (cheaper than a FieldView built per field)
        view = ProfileView.model_validate(
            {
                "candidate_id": candidate_id,
                "access_id": access.id,
                "outcome": decision.outcome,
                "erased": profile["erased"],
                "fields": []
                if refused
                else [
                    {
                        "name": name,
                        "category": f.category,
                        "tier": tier_of(f.category).value,
                        "value": f.value if f.category in allowed else None,
                        "withheld": f.category not in allowed,
                    }
                    for name, f in _profile_fields(profile)
                ],
                "refused_because": reasons,
            }
        )
        return access, view, reasons

    @use_case
    def read_profile(self, cmd: ReadProfile) -> ProfileView:
        """A candidate's identity and claims, showing only the categories the policies allow
        this principal for this purpose under the consent in force; the read is recorded first."""

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[ProfileView, list[str]]]:
            access, view, reasons = self._read(cmd, cmd.candidate_id, views)
            return [access], (view, reasons)

        view, reasons = self._recorded(decide)  # durably recorded first; fails closed
        if view.outcome == "refused" and reasons:
            raise AccessRefusedError(cmd.candidate_id, "profile", reasons)
        return view  # type: ignore[no-any-return]

    @use_case
    def read_profiles(self, cmd: ReadProfiles) -> ProfilesView:
        """Several candidates' profiles in one request, each decided as `read_profile` would
        and recorded with an access event of its own; the records are saved together before
        anything is returned. A refused candidate comes back empty with the reasons, and
        does not spoil the others."""

        def decide(views: ReadModel) -> tuple[list[Aggregate], ProfilesView]:
            reads = [
                self._read(cmd, candidate_id, views)
                for candidate_id in dict.fromkeys(cmd.candidate_ids)
            ]
            return [a for a, _, _ in reads], ProfilesView(profiles=[v for _, v, _ in reads])

        return self._recorded(decide)  # type: ignore[no-any-return]  # all recorded, or none

    @use_case
    def read_report(self, cmd: ReadReport) -> ReportView:
        """A report as the policies let this principal see it: an item whose check touches a
        category withheld from them comes back without outcome or note. A reviewer reads a
        report under review, a hiring manager what was disclosed to them; the read is
        recorded first."""
        policy = self.policy

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[Any, ...]]:
            report = views.get("report", str(cmd.report_id), frozenset())  # decided sealed
            if report is None:
                raise AggregateMissingError("report", cmd.report_id)
            subject = UUID(report["candidate_id"])
            profile = self._profile(views, subject, opening=frozenset())
            categories = tuple(
                sorted({k for item in report["items"].values() for k in _item_categories(item)})
            )
            request = self._facts(cmd, subject, categories, views, profile)
            decision = policy.decide(request)
            access = _access_record(cmd, subject, f"report {cmd.report_id}", request, decision)
            return [access], (views, report, categories, decision, access.id)

        views, report, categories, decision, access_id = self._recorded(decide)
        return self._report_view(cmd, views, report, categories, decision, access_id)

    @use_case
    def read_investigation(self, cmd: ReadInvestigation) -> InvestigationView:
        """An investigation's status as the policies let this principal see it: a check whose
        categories are withheld comes back without its conclusion, and the candidate's
        feedback and disputes, with the answers to them, only to those who may read their
        categories (the candidate always). The read is recorded first."""
        policy = self.policy

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[Any, ...]]:
            key = str(cmd.investigation_id)
            sealed = views.get("investigation", key, frozenset())  # decided sealed
            if sealed is None:
                raise AggregateMissingError("investigation", cmd.investigation_id)
            subject = UUID(sealed["candidate_id"])
            profile = self._profile(views, subject, opening=frozenset())
            categories = tuple(sorted(_investigation_categories(sealed)))
            request = self._facts(cmd, subject, categories, views, profile)
            decision = policy.decide(request)
            access = _access_record(cmd, subject, f"investigation {key}", request, decision)
            allowed = frozenset(decision.allowed)
            opened = views.get("investigation", key, allowed) if allowed else None
            doc = opened if opened is not None else sealed
            return [access], (doc, subject, categories, decision, access.id)

        doc, subject, categories, decision, access_id = self._recorded(decide)
        if decision.outcome == "refused" and categories:
            raise AccessRefusedError(subject, "investigation", decision.withheld_because)
        allowed = frozenset(decision.allowed)

        def said(field: PersonalField | None) -> str | None:
            return field.value if field is not None and field.category in allowed else None

        def exchange(
            id_: str, words: PersonalField, answer: PersonalField | None, **more: Any
        ) -> ExchangeView:
            shown = words.category in allowed and (answer is None or answer.category in allowed)
            return ExchangeView(
                id=UUID(id_),
                words=said(words),
                answer=said(answer),
                withheld=not shown,
                **more,
            )

        return InvestigationView(
            investigation_id=cmd.investigation_id,
            candidate_id=subject,
            access_id=access_id,
            outcome=decision.outcome,
            status=doc["status"],
            purpose=doc["purpose"],
            investigators=doc["investigators"],
            findings=doc["findings"],
            checks=[
                _check_view(check_id, check, allowed) for check_id, check in doc["checks"].items()
            ],
            feedback=[exchange(f["feedback_id"], f["text"], f["answer"]) for f in doc["feedback"]],
            disputes=[
                exchange(
                    dispute_id,
                    d["statement"],
                    d["response"],
                    check_id=UUID(d["check_id"]),
                    upheld=d["upheld"] if d["statement"].category in allowed else None,
                )
                for dispute_id, d in doc["disputes"].items()
            ],
        )

    def _report_view(
        self,
        cmd: ReadReport,
        views: ReadModel,
        report: Doc,
        categories: tuple[str, ...],
        decision: AccessDecision,
        access_id: UUID,
    ) -> ReportView:
        """What a recorded report read answers: refused, or the items it may see."""
        subject = UUID(report["candidate_id"])
        if decision.outcome == "refused" and categories:
            raise AccessRefusedError(subject, "report", decision.withheld_because)
        items = report["items"]
        allowed = frozenset(decision.allowed)
        if allowed:  # only the notes it may return are decrypted
            opened = views.get("report", str(cmd.report_id), allowed)
            items = opened["items"] if opened is not None else items
        views_of_items = []
        for check_id, item in items.items():
            shown = set(_item_categories(item)) <= allowed
            note = item["note"]
            views_of_items.append(
                ReportItemView(
                    check_id=UUID(check_id),
                    check_type=item["check_type"],
                    categories=sorted(_item_categories(item)),
                    withheld=not shown,
                    outcome=item["outcome"] if shown else None,
                    flags=list(item["flags"]) if shown else [],
                    source_roles=list(item["source_roles"]) if shown else [],
                    source_count=item["source_count"] if shown else None,
                    note=note.value if shown and note is not None else None,
                )
            )
        return ReportView(
            report_id=cmd.report_id,
            candidate_id=subject,
            access_id=access_id,
            outcome=decision.outcome,
            status=report["status"],
            edition=report["edition"],
            items=views_of_items,
        )

    @use_case
    def record_disclosure(self, cmd: RecordDisclosure) -> UUID:
        """Personal data leaving outside the read path is recorded first, with every category
        it carries; if the record cannot be stored, nothing may be handed over."""
        profile = self._profile(self.read_model(), cmd.candidate_id, opening=frozenset())
        categories = [f.category for f in profile["identity"]] + [
            f.category for claim in profile["claims"] for f in claim["fields"]
        ]
        disclosure = DataDisclosure.record(
            cmd.candidate_id, cmd.actor, cmd.recipient, cmd.purpose, cmd.channel, tuple(categories)
        )
        self.commit(disclosure)
        return disclosure.id

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
        policy = self.policy

        def decide(views: ReadModel) -> tuple[list[Aggregate], tuple[Any, ...]]:
            key = str(cmd.candidate_id)
            profile = self._profile(views, cmd.candidate_id, opening=frozenset(), key=key)
            request = self._facts(cmd, cmd.candidate_id, (), views, profile)
            decision = policy.decide_view(action, request)
            access = Access.record(
                candidate_id=cmd.candidate_id,
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
            )
            answered = answer(views, key) if decision.allowed else None
            return [access], (access.id, decision, answered)

        access_id, decision, answered = self._recorded(decide)  # recorded first; fails closed
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
            lambda _, key: _access_entries(self.read_model(), key),
        )
        return AccessLogView(
            candidate_id=cmd.candidate_id, access_id=access_id, outcome="allowed", entries=entries
        )

    @use_case
    def read_consents(self, cmd: ReadConsents) -> ConsentRegisterView:
        """The candidate's consent register: what each consent asked and was granted for, and
        whether it is in force now. The candidate, the recruiter handling them, an assigned
        investigator and compliance read it, also once consent is withdrawn or expired; the
        read is recorded first."""
        now = self.clock()

        def register(views: ReadModel, key: str) -> list[ConsentEntry]:
            return [_consent_entry(doc, now) for doc in views.of_subject("consent", key)]

        access_id, consents = self._read_whole(cmd, READ_CONSENTS, CONSENTS_VIEW, register)
        return ConsentRegisterView(
            candidate_id=cmd.candidate_id,
            access_id=access_id,
            outcome="allowed",
            consents=sorted(consents, key=lambda c: c.requested_at),
        )

    def recorded_accesses(self, candidate_id: UUID) -> list[AccessEntry]:
        """The subject's access log as stored, for checks inside this process. Not a read: no
        one is asking and nothing is recorded; every outside surface (CLI, commands) goes
        through `read_access_log`."""
        return _access_entries(self.read_model(), str(candidate_id))


def _access_entries(views: ReadModel, key: str) -> list[AccessEntry]:
    """The access log's rows for one subject, in log order."""
    found = views.of_subject(LOG_VIEW, key)
    return [
        AccessEntry(
            access_id=UUID(e["access_id"]),
            at=datetime.fromisoformat(e["at"]),
            principal=e["principal"],
            role=e["role"],
            purpose=e["purpose"],
            view=e["view"],
            returned=e["returned"],
            withheld=e["withheld"],
            outcome=e["outcome"],
        )
        for e in sorted(found, key=lambda e: int(e["position"]))
    ]


def _access_record(
    cmd: ValueRead,
    subject: UUID,
    view: str,
    request: AccessRequest,
    decision: AccessDecision,
) -> Access:
    """The record of one read as decided: categories, outcome, policies; never a value."""
    return Access.record(
        candidate_id=subject,
        principal=cmd.principal,
        role=cmd.role.value,
        purpose=cmd.purpose,
        view=view,
        returned=decision.allowed,
        withheld=decision.withheld,
        outcome=decision.outcome,
        policy_ids=decision.policy_ids,
        policy_set_hash=decision.policy_set_hash,
        consent_ids=request.consent_ids,
        break_glass=cmd.break_glass,
    )


def _profile_fields(profile: Doc) -> list[tuple[str, PersonalField]]:
    """(name, field) of a profile's identity and claims, e.g. ("employment.employer", ...)."""
    return [(f.name, f) for f in profile["identity"]] + [
        (f"{claim['kind']}.{f.name}", f) for claim in profile["claims"] for f in claim["fields"]
    ]


def _item_categories(item: Doc) -> frozenset[str]:
    """What a report item reveals: its check's categories, and the note's if it has one."""
    found = _check_categories(item)
    note = item.get("note")
    return found | {note.category} if isinstance(note, PersonalField) else found


def _investigation_categories(doc: Doc) -> set[str]:
    """What an investigation's status reveals: its checks' categories (their conclusions), and
    those of the candidate's feedback and disputes and of the answers to them."""
    found = {k for check in doc["checks"].values() for k in _check_categories(check)}
    said = [(f["text"], f["answer"]) for f in doc["feedback"]]
    said += [(d["statement"], d["response"]) for d in doc["disputes"].values()]
    return found | {p.category for pair in said for p in pair if isinstance(p, PersonalField)}


def _check_categories(check: Doc) -> frozenset[str]:
    return CheckType(check["check_type"]).categories


def _check_view(check_id: str, check: Doc, allowed: frozenset[str]) -> InvestigationCheckView:
    """A check's conclusion, withheld unless every category it touches may be read."""
    categories = _check_categories(check)
    shown = categories <= allowed
    return InvestigationCheckView(
        check_id=UUID(check_id),
        check_type=check["check_type"],
        categories=sorted(categories),
        withheld=not shown,
        concluded=check["concluded"] if shown else None,
    )


def _report_categories(report: Doc) -> set[str]:
    return {k for item in report["items"].values() for k in _item_categories(item)}


def _consent_entry(doc: Doc, now: datetime) -> ConsentEntry:
    def at(name: str) -> datetime | None:
        return datetime.fromisoformat(doc[name]) if doc[name] else None

    return ConsentEntry(
        consent_id=UUID(doc["consent_id"]),
        status=_consent_status(doc, now).value,
        requested_by=doc["requested_by"],
        requested_at=datetime.fromisoformat(doc["requested_at"]),
        terms=ConsentTermsView.model_validate(doc["terms"]),
        valid_from=at("valid_from"),
        valid_until=at("valid_until"),
        withdrawn_at=at("withdrawn_at"),
        relied_on_by=[UUID(i) for i in doc["relied_on_by"]],
    )


def _consent_status(doc: Doc, now: datetime) -> ConsentStatus:
    def at(name: str) -> datetime | None:
        return datetime.fromisoformat(doc[name]) if doc[name] else None

    window = (at("valid_from"), at("valid_until")) if doc["granted"] else None
    return consent_status(now, window, doc["withdrawn_at"] is not None, doc["expired"])
