"""The versions the read views keep, so a read answers from one snapshot and reads nothing else.

    the aggregate's own row   a candidate's profile, an investigation's row, a report's row
                              keep `version`: the version of the last of the aggregate's
                              events the row reflects. A read answers it as its ETag, the
                              version of exactly what it shows (an `If-Match` naming it is
                              refused if the aggregate has moved on since).
    principal                 one row per principal (`version`, `revoked`; no name, token
                              or hash): a token checked before is taken as still good only
                              while its principal's row is at the version it was checked at.

Written with the rows they describe, in the same transaction and from the same events, so
they are never ahead of or behind the rows; a view rebuilt from the start of the log comes
out the same. Every event of the aggregate moves its row's version, also one that changes
nothing else in the row (an investigation's `CandidateNotified`): the version is the
aggregate's, which a command's `If-Match` is checked against.
"""

from __future__ import annotations

from typing import Any

from domain.candidate import Candidate
from domain.investigation import Investigation
from domain.report import Report
from projections import events as ev
from projections.rows import Rows, ident

PRINCIPAL_VIEW = "principal"

# Each aggregate whose row a read answers from, and the view that row is in (keyed by the
# aggregate's id).
OWN_ROWS: tuple[tuple[type[Any], str], ...] = (
    (Candidate.Event, "profile"),
    (Investigation.Event, "investigation"),
    (Report.Event, "report"),
)
PRINCIPAL_CHANGES = frozenset(
    {
        ev.PrincipalAdded,
        ev.PrincipalTokenRotated,
        ev.PrincipalRevoked,
        ev.SenderKeyIssued,
        ev.SenderKeyRotated,
        ev.SenderKeyRevoked,
        ev.PortalSessionOpened,
        ev.PortalSessionClosed,
    }
)


def keep_version(event: Any, rows: Rows) -> None:
    """The aggregate's row, if it has one, is at the event's version."""
    for base, view in OWN_ROWS:
        if isinstance(event, base):
            key = ident(event.originator_id)
            doc = rows.get(view, key)
            if doc is not None and doc.get("version") != event.originator_version:
                doc["version"] = event.originator_version
                rows.put(view, key, event.candidate_id, doc)
            return


def principal_changed(event: Any, rows: Rows) -> None:
    """A principal's row: its version, and whether it is revoked (for good)."""
    key = str(event.originator_id)
    revoked = type(event) is ev.PrincipalRevoked
    doc = rows.get(PRINCIPAL_VIEW, key)
    was_revoked = bool(doc and doc["revoked"])
    rows.put(
        PRINCIPAL_VIEW,
        key,
        event.originator_id,
        {
            "principal_id": key,
            "version": event.originator_version,
            "revoked": revoked or was_revoked,
        },
    )
