"""The read side is held to the domain: every event the aggregates declare is named once for
it, each projection either handles an event or says it has no use for it, every table keys on
classes the domain really declares, and the statuses the views store are the domain's enums'
texts. An event or status renamed in the domain fails here (or at import), instead of being
silently ignored by a view and so opening or closing reads."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterable

import pytest
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.utils import get_topic, resolve_topic

import domain
from domain.access import AccessOutcome
from domain.consent import ConsentStatus
from domain.investigation import InvestigationStatus
from domain.report import Flag, ReportStatus
from domain.subject import RecordedAggregate, SubjectAggregate
from projections import events
from projections.case_overview import CaseOverview, ConsentStage
from projections.events import EventClass
from projections.read_views import ReadViews
from services.compliance import RULES
from services.timeline import DESCRIPTIONS


def aggregates() -> list[type[Aggregate]]:
    """Every aggregate class the domain package defines (about a data subject or not)."""
    found = []
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, Aggregate)
                and cls not in (SubjectAggregate, RecordedAggregate)
                and cls.__module__ == module.__name__
            ):
                found.append(cls)
    return found


def declared(aggregate: type[Aggregate]) -> set[type]:
    """The events one aggregate declares (its base `Event` and `Created` classes aside)."""
    return {
        value
        for name, value in vars(aggregate).items()
        if isinstance(value, type)
        and issubclass(value, DomainEvent)
        and name not in ("Event", "Created")
    }


DOMAIN_EVENTS = frozenset(e for a in aggregates() for e in declared(a))
CATALOGUE = {
    name: value
    for name, value in vars(events).items()
    if isinstance(value, type) and issubclass(value, DomainEvent)
}


def names(classes: Iterable[type]) -> list[str]:
    return sorted(c.__qualname__ for c in classes)


def test_the_domain_declares_the_events_the_read_side_was_written_for() -> None:
    assert len(DOMAIN_EVENTS) == 58  # MasterKeyRotation.Abandoned the newest
    assert {a.__name__ for a in aggregates()} == {
        "Access",
        "Candidate",
        "CommandReceipt",
        "Consent",
        "DataDisclosure",
        "DutyRun",
        "DeadLetterRedrive",
        "Investigation",
        "MasterKeyRotation",
        "Principal",
        "StoreMigration",
        "Report",
        "SenderRefusal",
    }


def test_every_domain_event_is_named_once_for_the_read_side() -> None:
    assert names(set(CATALOGUE.values())) == names(DOMAIN_EVENTS)
    assert len(CATALOGUE) == len(DOMAIN_EVENTS)  # each under one name only


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_named_event_is_the_class_its_aggregate_declares_and_its_topic_resolves(
    name: str,
) -> None:
    cls = CATALOGUE[name]
    aggregate_name, _, event_name = cls.__qualname__.partition(".")
    aggregate = next(a for a in aggregates() if a.__name__ == aggregate_name)

    assert getattr(aggregate, event_name) is cls
    assert resolve_topic(get_topic(cls)) is cls


@pytest.mark.parametrize(
    ("projection", "handled", "ignored"),
    [
        ("read views", set(ReadViews().handlers), ReadViews.ignores),
        ("case overview", set(CaseOverview().handlers), CaseOverview.ignores),
    ],
)
def test_each_projection_handles_or_deliberately_ignores_every_domain_event(
    projection: str, handled: set[EventClass], ignored: frozenset[EventClass]
) -> None:
    assert not handled & ignored, f"{projection} both handles and ignores them"
    assert names(DOMAIN_EVENTS - handled - ignored) == [], f"{projection} never decided on them"
    assert names((handled | ignored) - DOMAIN_EVENTS) == [], f"{projection} keys on non-events"


def test_the_read_views_change_on_every_event_a_read_decision_rests_on() -> None:
    handled = set(ReadViews().handlers)

    # the facts of a read: consent in force, handling, assignment, review, disclosure
    assert {
        events.ConsentGranted,
        events.ConsentWithdrawn,
        events.ConsentExpired,
        events.InvestigationPlanned,
        events.InvestigatorAssigned,
        events.InvestigationCancelled,
        events.ReportCompiled,
        events.ReportApproved,
        events.ChangesRequested,
        events.ReportAmended,
        events.ReportDisclosed,
        events.ReportDestroyed,
    } <= handled


def test_the_timeline_describes_every_domain_event_but_one_it_names() -> None:
    # An assignment is shown by its bare event name (as it always has been: describing it
    # would change what `audit timeline` prints); any other event must be described.
    assert names(DOMAIN_EVENTS - set(DESCRIPTIONS)) == ["Investigation.InvestigatorAssigned"]
    assert names(set(DESCRIPTIONS) - DOMAIN_EVENTS) == []


def test_the_compliance_check_judges_events_the_domain_declares() -> None:
    assert set(RULES) <= DOMAIN_EVENTS
    assert len(RULES) == 8


def test_the_statuses_the_views_store_are_the_domain_enums_texts() -> None:
    """Stored view rows, `audit as-of` and every answer carry these texts: renaming one is a
    change of stored data, not of code."""
    assert {s.name: s.value for s in InvestigationStatus} == {
        "PLANNED": "planned",
        "IN_PROGRESS": "in progress",
        "SUSPENDED": "suspended",
        "COMPLETED": "completed",
        "CANCELLED": "cancelled",
    }
    assert {s.name: s.value for s in ReportStatus} == {
        "DRAFT": "draft",
        "CHANGES_REQUESTED": "changes requested",
        "APPROVED": "approved",
        "DESTROYED": "destroyed",
    }
    assert {s.name: s.value for s in ConsentStatus} == {
        "REQUESTED": "requested",
        "ACTIVE": "active",
        "NOT_YET_VALID": "not yet valid",
        "WITHDRAWN": "withdrawn",
        "EXPIRED": "expired",
    }
    assert [s.value for s in ConsentStage] == ["requested", "granted", "withdrawn", "expired"]
    assert [s.value for s in AccessOutcome] == [
        "allowed",
        "partial",
        "refused",
        "disclosed",
        "failed",
    ]
    assert Flag.AMENDED.value == "amended"
