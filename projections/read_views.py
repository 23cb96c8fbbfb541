"""The read views the query service answers from, one per question:

    profile        a candidate's identity and claims (personal values, sealed at rest)
    consent        the consent register: terms, window, withdrawal, per consent
    investigation  an investigation's status, team and the data categories its checks touch
    report         a report's status, edition, items (outcome and flags), disclosures, hold
    access         the subject's access log: reads, refusals and disclosures (no values)

Built from events alone, never by loading aggregates; every handler is a pure function of the
event and the current row, so the views rebuilt from the start of the log come out identical.
Erasure and shredding overwrite personal values in the views themselves, not only their keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any
from uuid import UUID

from domain.access import Access, DataDisclosure
from domain.classification import ERASED_VALUE, PersonalField, tier_of
from projections.rows import Doc, Rows

LOG_VIEW = "access"  # who read what, when, why: the access log
VIEWS = ("profile", "consent", "investigation", "report", LOG_VIEW)
# Views whose rows never hold a personal value: the access log names categories, not values.
PLAIN_VIEWS = frozenset({LOG_VIEW})

# Events that change nothing but the access log (LOG_VIEW): no read decision rests on them.
LOG_ONLY_EVENTS: tuple[type, ...] = (
    Access.Recorded,  # type: ignore[attr-defined]  # declared by @event("Recorded")
    DataDisclosure.DataDisclosed,  # type: ignore[attr-defined]
)
LOG_ONLY = frozenset(cls.__qualname__ for cls in LOG_ONLY_EVENTS)

Handler = Callable[[Any, Rows], None]

_INVESTIGATION_STATUS = {
    "Investigation.Started": "in progress",
    "Investigation.Resumed": "in progress",
    "Investigation.Suspended": "suspended",
    "Investigation.Completed": "completed",
    "Investigation.Cancelled": "cancelled",
}


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def plain(value: Any) -> Any:
    """An event value as a JSON-like document value; personal fields stay fields."""
    if isinstance(value, PersonalField):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list | frozenset | set):
        items = [plain(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _erase(fields: Iterable[PersonalField], tier: str | None = None) -> list[PersonalField]:
    return [
        PersonalField(f.name, f.category, ERASED_VALUE)
        if tier is None or tier_of(f.category).value == tier
        else f
        for f in fields
    ]


class ReadViews:
    """Applies one event to the rows it concerns. Events it has no use for are ignored."""

    # Bumped whenever what a row holds changes: views of another version are rebuilt.
    version = 3

    def __init__(self) -> None:
        self.position = 0
        self.handlers: dict[str, Handler] = {
            name.removeprefix("on_").replace("__", "."): getattr(self, name)
            for name in dir(self)
            if name.startswith("on_")
        }

    def process(self, event: Any, rows: Rows, position: int) -> None:
        """`position` is the event's place in the notification log; the access log is
        ordered by it (two reads can carry the same timestamp)."""
        self.position = position
        name = type(event).__qualname__
        handler = self.handlers.get(name)
        if handler is not None:
            handler(event, rows)
        elif name in _INVESTIGATION_STATUS:
            status = _INVESTIGATION_STATUS[name]
            self._investigation(event, rows, lambda doc: doc.update(status=status))

    # --- profile --------------------------------------------------------------------------

    def _profile(self, event: Any, rows: Rows, change: Callable[[Doc], None]) -> None:
        doc = rows.get("profile", str(event.candidate_id))
        if doc is None:
            return
        change(doc)
        rows.put("profile", str(event.candidate_id), event.candidate_id, doc)

    def on_Candidate__Registered(self, event: Any, rows: Rows) -> None:  # noqa: N802
        doc: Doc = {
            "candidate_id": str(event.candidate_id),
            "registered_by": event.registered_by,
            "registered_at": _iso(event.timestamp),
            "identity": list(event.identity),
            "claims": [],
            "erasure_requested": False,
            "erased": False,
            "shredded_tiers": [],
        }
        rows.put("profile", str(event.candidate_id), event.candidate_id, doc)

    def on_Candidate__ClaimsSubmitted(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            doc["claims"] += [
                {"claim_id": str(c.claim_id), "kind": c.kind.value, "fields": list(c.fields)}
                for c in event.claims
            ]

        self._profile(event, rows, change)

    def on_Candidate__ErasureRequested(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._profile(event, rows, lambda doc: doc.update(erasure_requested=True))

    def on_Candidate__TierShredded(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._profile(event, rows, lambda doc: _shred(doc, event.tier))
        for view in ("investigation", "report"):
            for row_key, doc in _keyed(rows, view, event.candidate_id):
                _shred_nested(doc, event.tier)
                rows.put(view, row_key, event.candidate_id, doc)

    def on_Candidate__Erased(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            _shred(doc, None)
            doc["erased"] = True

        self._profile(event, rows, change)
        for view in ("investigation", "report"):
            for row_key, doc in _keyed(rows, view, event.candidate_id):
                _shred_nested(doc, None)
                rows.put(view, row_key, event.candidate_id, doc)

    # --- consent register -----------------------------------------------------------------

    def _consent(self, event: Any, rows: Rows, **changes: Any) -> None:
        key = str(event.originator_id)
        doc = rows.get("consent", key)
        if doc is None:
            return
        doc.update(changes)
        rows.put("consent", key, event.candidate_id, doc)

    def on_Consent__Requested(self, event: Any, rows: Rows) -> None:  # noqa: N802
        doc: Doc = {
            "consent_id": str(event.originator_id),
            "requested_by": event.requested_by,
            "requested_at": _iso(event.timestamp),
            "terms": plain(event.terms),
            "granted": False,
            "valid_from": None,
            "valid_until": None,
            "withdrawn_at": None,
            "expired": False,
            "relied_on_by": [],
        }
        rows.put("consent", str(event.originator_id), event.candidate_id, doc)

    def on_Consent__Granted(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._consent(
            event,
            rows,
            terms=plain(event.terms),
            granted=True,
            valid_from=_iso(event.valid_from),
            valid_until=_iso(event.valid_until),
        )

    def on_Consent__Withdrawn(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._consent(event, rows, withdrawn_at=_iso(event.withdrawn_at))

    def on_Consent__Expired(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._consent(event, rows, expired=True)

    def on_Consent__ReliedUpon(self, event: Any, rows: Rows) -> None:  # noqa: N802
        key = str(event.originator_id)
        doc = rows.get("consent", key)
        if doc is not None:
            doc["relied_on_by"].append(str(event.investigation_id))
            rows.put("consent", key, event.candidate_id, doc)

    # --- investigation status -------------------------------------------------------------

    def _investigation(self, event: Any, rows: Rows, change: Callable[[Doc], None]) -> None:
        key = str(event.originator_id)
        doc = rows.get("investigation", key)
        if doc is None:
            return
        change(doc)
        doc["updated_at"] = _iso(event.timestamp)
        rows.put("investigation", key, event.candidate_id, doc)

    def on_Investigation__Planned(self, event: Any, rows: Rows) -> None:  # noqa: N802
        doc: Doc = {
            "investigation_id": str(event.originator_id),
            "candidate_id": str(event.candidate_id),
            "consent_id": str(event.consent_id),
            "purpose": event.purpose,
            "status": "planned",
            "planned_by": event.planned_by,
            "investigators": sorted(set(event.investigators)),
            "checks": {
                str(c.check_id): {"check_type": c.check_type.value, "concluded": None}
                for c in event.checks
            },
            "categories": sorted({k for c in event.checks for k in c.check_type.categories}),
            "due_by": _iso(event.due_by),
            "findings": 0,
            "feedback": [],
            "disputes": {},
            "updated_at": _iso(event.timestamp),
        }
        rows.put("investigation", str(event.originator_id), event.candidate_id, doc)

    def on_Investigation__InvestigatorAssigned(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            doc["investigators"] = sorted({*doc["investigators"], event.investigator})

        self._investigation(event, rows, change)

    def on_Investigation__FindingRecorded(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._investigation(event, rows, lambda doc: doc.update(findings=doc["findings"] + 1))

    def on_Investigation__CheckConcluded(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            check = doc["checks"][str(event.conclusion.check_id)]
            check["concluded"] = event.conclusion.outcome.value

        self._investigation(event, rows, change)

    def on_Investigation__FeedbackGiven(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            doc["feedback"].append(
                {"feedback_id": str(event.feedback_id), "text": event.text, "answer": None}
            )

        self._investigation(event, rows, change)

    def on_Investigation__FeedbackAnswered(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            for item in doc["feedback"]:
                if item["feedback_id"] == str(event.feedback_id):
                    item["answer"] = event.answer

        self._investigation(event, rows, change)

    def on_Investigation__DisputeRaised(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            doc["disputes"][str(event.dispute_id)] = {
                "check_id": str(event.check_id),
                "statement": event.statement,
                "response": None,
                "upheld": None,
            }

        self._investigation(event, rows, change)

    def on_Investigation__DisputeResolved(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            dispute = doc["disputes"][str(event.dispute_id)]
            dispute.update(response=event.response, upheld=event.upheld)
            if event.upheld:
                doc["checks"][dispute["check_id"]]["concluded"] = None

        self._investigation(event, rows, change)

    # --- reports --------------------------------------------------------------------------

    def _report(self, event: Any, rows: Rows, change: Callable[[Doc], None]) -> None:
        key = str(event.originator_id)
        doc = rows.get("report", key)
        if doc is None:
            return
        change(doc)
        rows.put("report", key, event.candidate_id, doc)

    def on_Report__Compiled(self, event: Any, rows: Rows) -> None:  # noqa: N802
        doc: Doc = {
            "report_id": str(event.originator_id),
            "candidate_id": str(event.candidate_id),
            "investigation_id": str(event.investigation_id),
            "consent_id": str(event.consent_id),
            "purposes": list(event.purposes),
            "status": "draft",
            "edition": 1,
            "author": event.author,
            "approved_by": None,
            "items": {
                str(i.check_id): {
                    "check_type": i.check_type,
                    "outcome": i.outcome.value,
                    "source_roles": list(i.source_roles),
                    "source_count": i.source_count,
                    "flags": [f.value for f in i.flags],
                    "note": None,
                }
                for i in event.items
            },
            "disclosures": [],
            "shared_edition": 0,
            "disputes": {},
            "legal_hold": None,
        }
        rows.put("report", str(event.originator_id), event.candidate_id, doc)

    def on_Report__Approved(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._report(
            event, rows, lambda doc: doc.update(status="approved", approved_by=event.reviewer)
        )

    def on_Report__ChangesRequested(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._report(event, rows, lambda doc: doc.update(status="changes requested"))

    def on_Report__Disclosed(self, event: Any, rows: Rows) -> None:  # noqa: N802
        d = event.disclosure
        self._report(event, rows, lambda doc: doc["disclosures"].append(plain(d)))
        _log(
            rows,
            event,
            self.position,
            principal=d.disclosed_by,
            role="disclosure",
            purpose=d.purpose,
            view=f"report edition {d.edition} to {d.recipient} ({d.recipient_role})",
            returned=[],
            withheld=[],
            outcome="disclosed",
        )

    def on_Report__SharedWithCandidate(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._report(event, rows, lambda doc: doc.update(shared_edition=event.edition))

    def on_Report__Disputed(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            doc["disputes"][str(event.dispute_id)] = {
                "check_id": str(event.check_id),
                "statement": event.statement,
                "response": None,
                "resolved": False,
            }

        self._report(event, rows, change)

    def on_Report__DisputeRejected(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            doc["disputes"][str(event.dispute_id)].update(response=event.response, resolved=True)

        self._report(event, rows, change)

    def on_Report__Amended(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            for a in event.amendments:
                item = doc["items"][str(a.check_id)]
                item.update(outcome=a.outcome.value, note=a.note)
                if "amended" not in item["flags"]:
                    item["flags"].append("amended")
            for dispute_id in event.resolves:
                doc["disputes"][str(dispute_id)]["resolved"] = True
            doc.update(status="draft", approved_by=None, edition=doc["edition"] + 1)

        self._report(event, rows, change)

    def on_Report__LegalHoldPlaced(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._report(event, rows, lambda doc: doc.update(legal_hold=event.reason))

    def on_Report__LegalHoldReleased(self, event: Any, rows: Rows) -> None:  # noqa: N802
        self._report(event, rows, lambda doc: doc.update(legal_hold=None))

    def on_Report__Destroyed(self, event: Any, rows: Rows) -> None:  # noqa: N802
        def change(doc: Doc) -> None:
            doc.update(status="destroyed", items={}, disputes={})

        self._report(event, rows, change)

    # --- access log -----------------------------------------------------------------------

    def on_Access__Recorded(self, event: Any, rows: Rows) -> None:  # noqa: N802
        _log(
            rows,
            event,
            self.position,
            principal=event.principal,
            role=event.role,
            purpose=event.purpose,
            view=event.view,
            returned=list(event.returned),
            withheld=list(event.withheld),
            outcome=event.outcome,
        )

    def on_DataDisclosure__DataDisclosed(self, event: Any, rows: Rows) -> None:  # noqa: N802
        _log(
            rows,
            event,
            self.position,
            principal=event.disclosed_by,
            role="disclosure",
            purpose=event.purpose,
            view=f"{event.channel} to {event.recipient}",
            returned=list(event.categories),
            withheld=[],
            outcome="disclosed",
        )


def _log(rows: Rows, event: Any, position: int, **entry: Any) -> None:
    key = f"{event.originator_id}:{event.originator_version}"
    doc = {
        "access_id": str(event.originator_id),
        "at": _iso(event.timestamp),
        "position": position,
        **entry,
    }
    rows.put(LOG_VIEW, key, event.candidate_id, doc)


def _keyed(rows: Rows, view: str, subject: UUID) -> list[tuple[str, Doc]]:
    id_field = f"{view}_id"
    return [(doc[id_field], doc) for doc in rows.of_subject(view, subject)]


def _shred(doc: Doc, tier: str | None) -> None:
    doc["identity"] = _erase(doc["identity"], tier)
    for claim in doc["claims"]:
        claim["fields"] = _erase(claim["fields"], tier)
    if tier is not None and tier not in doc["shredded_tiers"]:
        doc["shredded_tiers"] = sorted([*doc["shredded_tiers"], tier])


def _shred_nested(value: Any, tier: str | None) -> Any:
    """Overwrites, in place, every personal field of the given tier (all when None)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, PersonalField):
                value[k] = _erase([v], tier)[0]
            else:
                _shred_nested(v, tier)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, PersonalField):
                value[i] = _erase([v], tier)[0]
            else:
                _shred_nested(v, tier)
    return value
