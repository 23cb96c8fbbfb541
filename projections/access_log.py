"""The access log view: who read what about a subject, when, why, and what was handed over.

One row per access record or disclosure, keyed by the record and its version, ordered by the
event's place in the notification log (two reads can carry the same timestamp). It names
categories, never values, and how each reader was authenticated (a report's disclosure is a
command, not a read: its row says none).
"""

from __future__ import annotations

from typing import Any

from domain.access import AccessOutcome
from projections.documents import iso
from projections.rows import Rows

LOG_VIEW = "access"  # who read what, when, why: the access log
DISCLOSURE_ROLE = "disclosure"  # the role a hand-over is logged under (it is not a reader's)


def log_read(rows: Rows, event: Any, position: int) -> None:
    """An `Access.Recorded`: a read, allowed, partial or refused."""
    _log(
        rows,
        event,
        position,
        principal=event.principal,
        authentication=event.authentication,
        role=event.role,
        purpose=event.purpose,
        view=event.view,
        returned=list(event.returned),
        withheld=list(event.withheld),
        outcome=event.outcome,
    )


def log_data_disclosure(rows: Rows, event: Any, position: int) -> None:
    """A `DataDisclosure.DataDisclosed`: personal data handed over outside the read path."""
    _log(
        rows,
        event,
        position,
        principal=event.disclosed_by,
        authentication=event.authentication,
        role=DISCLOSURE_ROLE,
        purpose=event.purpose,
        view=f"{event.channel} to {event.recipient}",
        returned=list(event.categories),
        withheld=[],
        outcome=AccessOutcome.DISCLOSED.value,
    )


def log_report_disclosure(rows: Rows, event: Any, position: int) -> None:
    """A `Report.Disclosed`: a report edition handed to a named recipient."""
    d = event.disclosure
    _log(
        rows,
        event,
        position,
        principal=d.disclosed_by,
        authentication=None,
        role=DISCLOSURE_ROLE,
        purpose=d.purpose,
        view=f"report edition {d.edition} to {d.recipient} ({d.recipient_role})",
        returned=[],
        withheld=[],
        outcome=AccessOutcome.DISCLOSED.value,
    )


def _log(rows: Rows, event: Any, position: int, **entry: Any) -> None:
    key = f"{event.originator_id}:{event.originator_version}"
    doc = {
        "access_id": str(event.originator_id),
        "at": iso(event.timestamp),
        "position": position,
        **entry,
    }
    rows.put(LOG_VIEW, key, event.candidate_id, doc)
