"""The report view's handlers (projections/read_views.py applies them): a report's status,
edition, items (outcome and flags), disclosures, disputes and legal hold, from its events alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.report import Flag, ReportStatus
from projections.access_log import log_report_disclosure
from projections.documents import plain
from projections.rows import Doc, Rows


class ReportHandlers:
    """Mixed into ReadViews, which sets `position` (the event's place in the log) before each."""

    position: int

    def _report(self, event: Any, rows: Rows, change: Callable[[Doc], None]) -> None:
        key = str(event.originator_id)
        doc = rows.get("report", key)
        if doc is None:
            return
        change(doc)
        rows.put("report", key, event.candidate_id, doc)

    def report_compiled(self, event: Any, rows: Rows) -> None:
        doc: Doc = {
            "report_id": str(event.originator_id),
            "candidate_id": str(event.candidate_id),
            "investigation_id": str(event.investigation_id),
            "consent_id": str(event.consent_id),
            "purposes": list(event.purposes),
            "status": ReportStatus.DRAFT.value,
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

    def report_approved(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc.update(status=ReportStatus.APPROVED.value, approved_by=event.reviewer)

        self._report(event, rows, change)

    def changes_requested(self, event: Any, rows: Rows) -> None:
        self._report(
            event, rows, lambda doc: doc.update(status=ReportStatus.CHANGES_REQUESTED.value)
        )

    def report_disclosed(self, event: Any, rows: Rows) -> None:
        disclosure = plain(event.disclosure)
        self._report(event, rows, lambda doc: doc["disclosures"].append(disclosure))
        log_report_disclosure(rows, event, self.position)

    def shared_with_candidate(self, event: Any, rows: Rows) -> None:
        self._report(event, rows, lambda doc: doc.update(shared_edition=event.edition))

    def report_disputed(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc["disputes"][str(event.dispute_id)] = {
                "check_id": str(event.check_id),
                "statement": event.statement,
                "response": None,
                "resolved": False,
            }

        self._report(event, rows, change)

    def report_dispute_rejected(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc["disputes"][str(event.dispute_id)].update(response=event.response, resolved=True)

        self._report(event, rows, change)

    def report_amended(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            for a in event.amendments:
                item = doc["items"][str(a.check_id)]
                item.update(outcome=a.outcome.value, note=a.note)
                if Flag.AMENDED.value not in item["flags"]:
                    item["flags"].append(Flag.AMENDED.value)
            for dispute_id in event.resolves:
                doc["disputes"][str(dispute_id)]["resolved"] = True
            doc.update(
                status=ReportStatus.DRAFT.value, approved_by=None, edition=doc["edition"] + 1
            )

        self._report(event, rows, change)

    def legal_hold_placed(self, event: Any, rows: Rows) -> None:
        # the reason, sealed in the row with the candidate's data; when none was kept (their
        # case-note key was gone), the row still says the report is on hold
        held = event.reason if event.reason is not None else "(reason not kept)"
        self._report(event, rows, lambda doc: doc.update(legal_hold=held))

    def legal_hold_released(self, event: Any, rows: Rows) -> None:
        self._report(event, rows, lambda doc: doc.update(legal_hold=None))

    def report_destroyed(self, event: Any, rows: Rows) -> None:
        def change(doc: Doc) -> None:
            doc.update(status=ReportStatus.DESTROYED.value, items={}, disputes={})

        self._report(event, rows, change)
