"""What a recorded read answers: the DTOs built from view rows once the read is decided.

Only what the decision allows is shown; everything else comes back withheld, never as a value.
An access record is built here from the decision, never from the values it covers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.access import Access, AccessOutcome
from domain.classification import PersonalField
from domain.errors import AccessRefusedError
from projections.read_views import LOG_VIEW
from services.access import AccessDecision, AccessRequest
from services.dto import (
    AccessEntry,
    ConsentEntry,
    ConsentTermsView,
    ExchangeView,
    InvestigationCheckView,
    InvestigationView,
    Reader,
    ReportItemView,
    ReportView,
    ValueRead,
)
from services.facts import check_categories, consent_status_of, item_categories
from services.identity import ASSIGNMENTS_POLICY, authentication_now
from services.ports import ReadModel
from services.unit import receiving_now

Doc = dict[str, Any]


def access_entry(e: Doc) -> AccessEntry:
    """One row of the access log (or of its lists by time) as answered."""
    return AccessEntry(
        access_id=UUID(e["access_id"]),
        at=datetime.fromisoformat(e["at"]),
        position=int(e["position"]),
        principal=e["principal"],
        authentication=e["authentication"],
        role=e["role"],
        purpose=e["purpose"],
        view=e["view"],
        returned=e["returned"],
        withheld=e["withheld"],
        outcome=e["outcome"],
        failure=e.get("failure"),
        break_glass=e["break_glass"],
        policy_ids=e["policy_ids"],
        consent_ids=[UUID(c) for c in e["consent_ids"]],
    )


def access_entries(views: ReadModel, key: str) -> list[AccessEntry]:
    """The access log's rows for one subject, in log order."""
    found = views.of_subject(LOG_VIEW, key)
    return [access_entry(e) for e in sorted(found, key=lambda e: int(e["position"]))]


def access_record(
    cmd: ValueRead,
    subject: UUID,
    view: str,
    request: AccessRequest,
    decision: AccessDecision,
    *,
    failed: str | None = None,
) -> Access:
    """The record of one read as decided: categories, outcome, policies; never a value.
    `failed`: decided, but a value could not be opened (why: a `ReadFailure`), so nothing
    was returned (every category is recorded as withheld, the outcome as failed)."""
    return Access.record(
        candidate_id=subject,
        principal=cmd.principal,
        role=cmd.role.value,
        purpose=cmd.purpose,
        view=view,
        returned=() if failed else decision.allowed,
        withheld=(*decision.allowed, *decision.withheld) if failed else decision.withheld,
        outcome=AccessOutcome.FAILED if failed else decision.outcome,
        policy_ids=decision.policy_ids,
        policy_set_hash=decision.policy_set_hash,
        consent_ids=request.consent_ids,
        break_glass=cmd.break_glass,
        authentication=authentication_now(receiving_now()),
        failure=failed,
    )


def failed_attempt(cmd: Reader, subject: UUID, view: str, failure: str, policy_set: str) -> Access:
    """The record of a read that failed before it was decided (the data it was to be decided
    on was altered): nothing returned or withheld, no policy decided, no consent relied on."""
    return Access.record(
        candidate_id=subject,
        principal=cmd.principal,
        role=cmd.role.value,
        purpose=cmd.purpose,
        view=view,
        returned=(),
        withheld=(),
        outcome=AccessOutcome.FAILED,
        policy_ids=(),
        policy_set_hash=policy_set,
        consent_ids=(),
        authentication=authentication_now(receiving_now()),
        failure=failure,
    )


def profile_fields(profile: Doc) -> list[tuple[str, PersonalField]]:
    """(name, field) of a profile's identity and claims, e.g. ("employment.employer", ...)."""
    return [(f.name, f) for f in profile["identity"]] + [
        (f"{claim['kind']}.{f.name}", f) for claim in profile["claims"] for f in claim["fields"]
    ]


def check_view(check_id: str, check: Doc, allowed: frozenset[str]) -> InvestigationCheckView:
    """A check's conclusion, withheld unless every category it touches may be read."""
    categories = check_categories(check)
    shown = categories <= allowed
    return InvestigationCheckView(
        check_id=UUID(check_id),
        check_type=check["check_type"],
        categories=sorted(categories),
        withheld=not shown,
        concluded=check["concluded"] if shown else None,
    )


def investigation_view(
    investigation_id: UUID, doc: Doc, subject: UUID, access_id: UUID, decision: AccessDecision
) -> InvestigationView:
    """An investigation as a recorded read answers it: a check whose categories are withheld
    without its conclusion, the candidate's words and the answers to them only where their
    categories may be read."""
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
        investigation_id=investigation_id,
        candidate_id=subject,
        access_id=access_id,
        outcome=decision.outcome,
        status=doc["status"],
        purpose=doc["purpose"],
        investigators=doc["investigators"],
        findings=doc["findings"],
        checks=[check_view(check_id, check, allowed) for check_id, check in doc["checks"].items()],
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


def report_items(items: Doc, allowed: frozenset[str]) -> list[ReportItemView]:
    """A report's items as a recorded read answers them: an item whose check touches a category
    withheld from the reader comes back without outcome, flags, sources or note."""
    views_of_items = []
    for check_id, item in items.items():
        shown = set(item_categories(item)) <= allowed
        note = item["note"]
        views_of_items.append(
            ReportItemView(
                check_id=UUID(check_id),
                check_type=item["check_type"],
                categories=sorted(item_categories(item)),
                withheld=not shown,
                outcome=item["outcome"] if shown else None,
                flags=list(item["flags"]) if shown else [],
                source_roles=list(item["source_roles"]) if shown else [],
                source_count=item["source_count"] if shown else None,
                note=note.value if shown and note is not None else None,
            )
        )
    return views_of_items


def report_view(
    report_id: UUID,
    report: Doc,
    categories: tuple[str, ...],
    decision: AccessDecision,
    access_id: UUID,
) -> ReportView:
    """What a recorded report read answers: refused, or the items it may see (`report` opened
    for the categories it may see)."""
    subject = UUID(report["candidate_id"])
    if decision.outcome is AccessOutcome.REFUSED and categories:
        raise AccessRefusedError(
            subject,
            "report",
            decision.withheld_because,
            named=ASSIGNMENTS_POLICY not in decision.withheld_because,
        )
    return ReportView(
        report_id=report_id,
        candidate_id=subject,
        access_id=access_id,
        outcome=decision.outcome,
        status=report["status"],
        edition=report["edition"],
        items=report_items(report["items"], frozenset(decision.allowed)),
    )


def _opened_terms(terms: Doc) -> Doc:
    """Consent terms as answered: the organisations they name (personal values, opened for
    the read) as their names; ⟨erased⟩ once erased."""
    return {
        **terms,
        **{
            field: [v.value if isinstance(v, PersonalField) else v for v in terms.get(field, [])]
            for field in ("excluded_organisations", "third_parties")
        },
    }


def consent_entry(doc: Doc, now: datetime) -> ConsentEntry:
    def at(name: str) -> datetime | None:
        return datetime.fromisoformat(doc[name]) if doc[name] else None

    return ConsentEntry(
        consent_id=UUID(doc["consent_id"]),
        status=consent_status_of(doc, now).value,
        requested_by=doc["requested_by"],
        requested_at=datetime.fromisoformat(doc["requested_at"]),
        terms=ConsentTermsView.model_validate(_opened_terms(doc["terms"])),
        valid_from=at("valid_from"),
        valid_until=at("valid_until"),
        withdrawn_at=at("withdrawn_at"),
        relied_on_by=[UUID(i) for i in doc["relied_on_by"]],
        document_sha256=doc["document_sha256"],
    )
