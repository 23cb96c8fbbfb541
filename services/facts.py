"""The facts an access decision rests on, read from the views with every value sealed.

Whether a principal handles a candidate, is assigned to one of their investigations, may see
a report under review, or received one, and which consents are in force: each is decided on
the domain's own status enums (`InvestigationStatus`, `ReportStatus`, `ConsentStatus`), parsed
from the views' text. A status the domain no longer knows fails the read loudly; it never
silently opens or closes one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.candidate import IDENTITY_CATEGORIES
from domain.check import CheckType
from domain.classification import CASE_NOTE, PersonalField, readable, tier_of
from domain.consent import ConsentStatus, consent_status
from domain.errors import JustificationNotKeptError, TextNamesTheSubjectError
from domain.investigation import InvestigationStatus
from domain.report import ReportStatus
from domain.screening import names_the_subject
from services.access import AccessRequest, Role
from services.dto import Reader, ValueRead
from services.errors import DataKeyMissingError
from services.ports import ReadModel

Doc = dict[str, Any]
SEALED: frozenset[str] = frozenset()  # open no personal value: a decision never needs one
# Reports whose reviewer may read what they contain: those still under review.
UNDER_REVIEW = frozenset({ReportStatus.DRAFT, ReportStatus.CHANGES_REQUESTED})


def access_request(
    cmd: Reader,
    subject: UUID,
    categories: tuple[str, ...],
    views: ReadModel,
    profile: Doc,
    now: datetime,
) -> AccessRequest:
    """The question `cmd`'s principal asks about `subject`'s `categories`, with every fact
    the policies decide on, as the views stand (`profile` is the subject's, sealed)."""
    key = str(subject)  # the views' key for the subject, made once
    consents = views.of_subject("consent", key, SEALED)
    active = [c for c in consents if consent_status_of(c, now) is ConsentStatus.ACTIVE]
    investigations = [
        i
        for i in views.of_subject("investigation", key, SEALED)
        if InvestigationStatus(i["status"]) is not InvestigationStatus.CANCELLED
    ]
    mine = [i for i in investigations if cmd.principal in i["investigators"]]
    reports = [
        (r, status)
        for r in views.of_subject("report", key, SEALED)
        if (status := ReportStatus(r["status"])) is not ReportStatus.DESTROYED
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
            k for r, status in reports if status in UNDER_REVIEW for k in report_categories(r)
        ),
        disclosed_categories=frozenset(
            k
            for r, _ in reports
            if any(d["recipient"] == cmd.principal for d in r["disclosures"])
            for k in report_categories(r)
        ),
        is_subject=cmd.role is Role.CANDIDATE and cmd.principal == f"candidate:{key}",
        break_glass=cmd.break_glass if isinstance(cmd, ValueRead) else None,
    )


def consent_status_of(doc: Doc, now: datetime) -> ConsentStatus:
    """Where a consent register row stands at `now`, by the domain's one rule."""

    def at(name: str) -> datetime | None:
        return datetime.fromisoformat(doc[name]) if doc[name] else None

    window = (at("valid_from"), at("valid_until")) if doc["granted"] else None
    return consent_status(now, window, doc["withdrawn_at"] is not None, doc["expired"])


def check_categories(check: Doc) -> frozenset[str]:
    return CheckType(check["check_type"]).categories


def item_categories(item: Doc) -> frozenset[str]:
    """What a report item reveals: its check's categories, and the note's if it has one."""
    found = check_categories(item)
    note = item.get("note")
    return found | {note.category} if isinstance(note, PersonalField) else found


def report_categories(report: Doc) -> set[str]:
    return {k for item in report["items"].values() for k in item_categories(item)}


def investigation_categories(doc: Doc) -> set[str]:
    """What an investigation's status reveals: its checks' categories (their conclusions), and
    those of the candidate's feedback and disputes and of the answers to them."""
    found = {k for check in doc["checks"].values() for k in check_categories(check)}
    said = [(f["text"], f["answer"]) for f in doc["feedback"]]
    said += [(d["statement"], d["response"]) for d in doc["disputes"].values()]
    return found | {p.category for pair in said for p in pair if isinstance(p, PersonalField)}


IDENTITY = frozenset(IDENTITY_CATEGORIES)


def screen_purpose(
    field: str, purpose: str, subject: UUID, views: ReadModel, kept: frozenset[str]
) -> None:
    """A purpose is kept in clear for the audit, after the subject's erasure too (decision
    "free text about a subject sealed"): one naming the candidate (their name, e-mail, phone,
    address) is refused before anything is decided or recorded. One of `kept` (the purposes
    their consents in force name, in clear there already) is not looked at; any other is
    compared with the candidate's identity values, opened in this process for that alone."""
    if purpose in kept:
        return
    try:
        row = views.get("profile", str(subject), IDENTITY)
    except DataKeyMissingError:
        return  # nothing to compare with; a read needing values fails on its own
    values = tuple(f.value for f in row["identity"] if readable(f)) if row else ()
    if names_the_subject(purpose, values):
        raise TextNamesTheSubjectError(field, subject)


def require_justification_kept(profile: Doc, subject: UUID) -> None:
    """A break-glass justification is sealed with the subject's case notes: refused when
    their key is gone (an erasure, retention of the category or its tier)."""
    gone = (
        profile.get("erased")
        or CASE_NOTE in profile.get("shredded_categories", ())
        or tier_of(CASE_NOTE).value in profile.get("shredded_tiers", ())
    )
    if gone:
        raise JustificationNotKeptError(subject)
