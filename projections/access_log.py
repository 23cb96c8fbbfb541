"""The access log view: who read what about a subject, when, why, and what was handed over.

One row per access record or disclosure, keyed by the record and its version, ordered by the
event's place in the notification log (two reads can carry the same timestamp). It names
categories, never values, how each reader was authenticated (a report's disclosure is a
command, not a read: its row says none), the policies that decided a read, the consents it
relied on (none for a refusal: domain/access.py `relied_on`) and, for a break-glass read, the
justification recorded. A disclosure's row has an id of its own: a `DataDisclosed` its
record's; a report's disclosure, whose event is one of the report's, the uuid5 of the report
and the event's version under DISCLOSURE_NAMESPACE. A disclosure's role is the one its
principal acted in, as authenticated (none on a record made before disclosures said it).

The refused reads are listed once more, by day, for the dashboard's drill-down from a bar of
refusals to the reads behind it. Each filter the drill-down offers is a view of its own, so a
page of it is one range of the views' primary key, whatever else was refused that day:

    list:refusal:<day>                                  every read refused that day
    list:refusal:<day>|principal=<p>                    those of principal p
    list:refusal:<day>|policy=<q>                       those decided by policy q
    list:refusal:<day>|principal=<p>|policy=<q>         both

keyed "<time>|<access id>" (fixed-width UTC, as the list views are: projections/listing.py).
A refusal no policy named is listed under policy `(none)`, as the dashboard counts it. Names
are percent-encoded in view names, so no principal or policy id can pass for another filter.
A read refused under k policies has 2 + 2k rows. They hold what the access log's row does:
ids, principal, role, purpose, view, categories and policy ids, never a value.

Every read and disclosure, across subjects, is listed by time for `audit reads` ("what did
hr:anna see between T1 and T2"), the same way, each row the access log's with its candidate
and its time as the key has it (fixed-width UTC, so a page ends at a moment by its text):

    list:reads                                          every read and disclosure
    list:reads|principal=<p>                            those of principal p
    list:reads|refused                                  the refused reads
    list:reads|principal=<p>|refused                    those of principal p

so a read has 2 rows more (4 when refused), and a page of any of them, between two times, is
one range of the primary key.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid5

from domain.access import AccessOutcome, relied_on
from projections.documents import iso
from projections.listing import stamp
from projections.rows import Rows
from projections.tally import day_of

LOG_VIEW = "access"  # who read what, when, why: the access log
REFUSAL_PREFIX = "list:refusal:"  # the refused reads by day (and principal, and policy)
READS_PREFIX = "list:reads"  # every read and disclosure by time (and principal, refused)
NO_POLICY = "(none)"  # the policy a refusal that named none is counted and listed under
# A report disclosure's own id: uuid5 of "<report id>:<event version>" in this namespace.
DISCLOSURE_NAMESPACE = UUID("5d0e8a3c-7b41-4f26-9c8e-1a2b3c4d5e6f")

# The log names a break-glass read as such, never its justification: that is free text about
# the candidate, sealed with their data in the event (decision 0041), and the log's rows hold
# no personal value (PLAIN_VIEWS). The timeline and the events show it, opened, to who may.
SEALED_JUSTIFICATION = "justified; the justification is sealed with the candidate's data"


def refusal_view(day: str, principal: str | None = None, policy: str | None = None) -> str:
    """The view listing the reads refused on `day` (YYYY-MM-DD, UTC), of `principal` and
    decided by `policy` when given."""
    view = REFUSAL_PREFIX + day
    if principal is not None:
        view += _principal_filter(principal)
    if policy is not None:
        view += _policy_filter(policy)
    return view


# Names are percent-encoded once each, not on every row of every read (a rebuild lists
# millions; there are a few thousand principals and policies).
@functools.lru_cache(maxsize=4096)
def _principal_filter(principal: str) -> str:
    return "|principal=" + quote(principal, safe=":@")


@functools.lru_cache(maxsize=4096)
def _policy_filter(policy: str) -> str:
    return "|policy=" + quote(policy, safe="")


def reads_view(principal: str | None = None, *, refused: bool = False) -> str:
    """The view listing every read and disclosure by time, of `principal` when given, only
    the refused reads when `refused`."""
    view = READS_PREFIX
    if principal is not None:
        view += _principal_filter(principal)
    return view + "|refused" if refused else view


def report_disclosure_id(report_id: UUID, version: int) -> UUID:
    """A report disclosure's own id in the access log (its event is the report's)."""
    return uuid5(DISCLOSURE_NAMESPACE, f"{report_id}:{version}")


def log_read(rows: Rows, event: Any, position: int) -> None:
    """An `Access.Recorded`: a read, allowed, partial, refused or failed (and why)."""
    _log(
        rows,
        event,
        position,
        access_id=event.originator_id,
        principal=event.principal,
        authentication=event.authentication,
        role=event.role,
        purpose=event.purpose,
        view=event.view,
        returned=list(event.returned),
        withheld=list(event.withheld),
        outcome=event.outcome,
        failure=event.failure,
        break_glass=None if event.break_glass is None else SEALED_JUSTIFICATION,
        policy_ids=[str(p) for p in event.policy_ids],
        consent_ids=[str(c) for c in relied_on(event.outcome, event.consent_ids)],
    )


def list_refusal(rows: Rows, event: Any, position: int) -> None:
    """An `Access.Recorded` that was refused, in each refusal list it belongs to."""
    if event.outcome != AccessOutcome.REFUSED.value:
        return
    policies = [str(p) for p in event.policy_ids]
    doc = {
        "access_id": str(event.originator_id),
        "candidate_id": str(event.candidate_id),
        "at": stamp(event.timestamp),
        "position": position,
        "principal": event.principal,
        "role": event.role,
        "authentication": event.authentication,
        "purpose": event.purpose,
        "view": event.view,
        "withheld": list(event.withheld),
        "policy_ids": policies,
    }
    key = f"{doc['at']}|{doc['access_id']}"
    day = day_of(event.timestamp)
    for principal in (None, str(event.principal)):
        for policy in (None, *(policies or [NO_POLICY])):
            rows.put(refusal_view(day, principal, policy), key, event.candidate_id, dict(doc))


def log_data_disclosure(rows: Rows, event: Any, position: int) -> None:
    """A `DataDisclosure.DataDisclosed`: personal data handed over outside the read path."""
    _log(
        rows,
        event,
        position,
        access_id=event.originator_id,
        principal=event.disclosed_by,
        authentication=event.authentication,
        role=event.role,
        purpose=event.purpose,
        view=f"{event.channel} to {event.recipient}",
        returned=list(event.categories),
        withheld=[],
        outcome=AccessOutcome.DISCLOSED.value,
        failure=None,
        break_glass=None,
        policy_ids=[],
        consent_ids=[],
    )


def log_report_disclosure(rows: Rows, event: Any, position: int) -> None:
    """A `Report.Disclosed`: a report edition handed to a named recipient, under the consent
    the report was compiled under."""
    d = event.disclosure
    report = rows.get("report", str(event.originator_id))
    _log(
        rows,
        event,
        position,
        access_id=report_disclosure_id(event.originator_id, event.originator_version),
        principal=d.disclosed_by,
        # how its caller was authenticated (`unknown` for a disclosure recorded before
        # events said: upcast so)
        authentication=event.authenticated.method,
        role=event.role,
        purpose=d.purpose,
        # the recipient is a principal; their organisation (a third party) is the candidate's
        # personal data, and this view holds none: it says only that there was one
        view=f"report edition {d.edition} to {d.recipient} ({d.recipient_role}"
        + (", a third party" if d.organisation is not None else "")
        + ")",
        returned=[],
        withheld=[],
        outcome=AccessOutcome.DISCLOSED.value,
        failure=None,
        break_glass=None,
        policy_ids=[],
        consent_ids=[report["consent_id"]] if report is not None else [],
    )


def _log(rows: Rows, event: Any, position: int, access_id: UUID, **entry: Any) -> None:
    key = f"{event.originator_id}:{event.originator_version}"
    doc = {"access_id": str(access_id), "at": iso(event.timestamp), "position": position, **entry}
    rows.put(LOG_VIEW, key, event.candidate_id, doc)
    when = stamp(event.timestamp)  # fixed width, as the key: a page ends at a time by its text
    listed = {**doc, "at": when, "candidate_id": str(event.candidate_id)}
    at = f"{when}|{access_id}"
    refused = entry["outcome"] == AccessOutcome.REFUSED.value
    for principal in (None, str(entry["principal"])):
        for only_refused in (False, True) if refused else (False,):
            view = reads_view(principal, refused=only_refused)
            rows.put(view, at, event.candidate_id, dict(listed))
