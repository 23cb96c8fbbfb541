"""Errors cross process boundaries pickled (a worker process's failure reaches its parent so):
each comes back with the same message, details and class, whatever its own `__init__` takes."""

from __future__ import annotations

import pickle
import uuid

import pytest
from eventsourcing.persistence import IntegrityError

from domain.errors import AccessRefusedError, DomainError
from infra.views.integrity import ViewRowAlteredError
from infra.views.runner import ViewsFailedError
from services.errors import ConcurrentChangeError, InternalConflictError, UnknownUseCaseError
from services.recording import RECORDED


def _every_domain_error() -> list[type[DomainError]]:
    found, pending = [], [DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize(
    "error",
    [
        ConcurrentChangeError(["candidate-1", "consent-2"]),
        InternalConflictError(["link-3"]),
        AccessRefusedError(uuid.UUID(int=7), "profile", ["no consent", "not assigned"]),
        UnknownUseCaseError("frobnicate"),
        DomainError("plain", field="name", rule="at most 200 characters"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_pickled_comes_back_as_it_was(error: DomainError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.message == error.message
    assert back.details == error.details
    assert back.__dict__ == error.__dict__


def test_a_concurrent_change_keeps_its_ids_as_a_list() -> None:
    back = pickle.loads(pickle.dumps(ConcurrentChangeError(["a1", "b2"])))
    assert back.aggregate_ids == ["a1", "b2"]
    assert str(back).startswith("someone else changed a1, b2 at the same moment")


def test_every_domain_error_class_round_trips() -> None:
    classes = _every_domain_error()
    assert len(classes) > 20  # the walk reached the subclasses, not just the root
    for cls in classes:
        error = cls.__new__(cls)
        DomainError.__init__(error, f"{cls.__name__} happened", subject="s-1", count=3)
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is cls, cls
        assert (back.message, back.details) == (error.message, error.details), cls


def test_a_views_fault_pickled_comes_back_naming_its_views_and_the_stores_error() -> None:
    error = ViewsFailedError("dashboard", IntegrityError("the views refuse every row"))

    back = pickle.loads(pickle.dumps(error))

    assert type(back) is ViewsFailedError
    assert str(back) == str(error)
    assert back.views == "dashboard"
    assert (type(back.error), str(back.error)) == (IntegrityError, "the views refuse every row")


def test_an_altered_view_row_pickled_comes_back_naming_its_view_and_key() -> None:
    error = ViewRowAlteredError("profile", "candidate-7", "does not match its MAC")

    back = pickle.loads(pickle.dumps(error))

    assert type(back) is ViewRowAlteredError
    assert str(back) == str(error)
    assert (back.view, back.key, back.why) == ("profile", "candidate-7", "does not match its MAC")
    assert back.failure == error.failure
    assert back.__dict__ == error.__dict__


def test_an_altered_view_row_noted_as_recorded_keeps_its_note_when_pickled() -> None:
    noted = ViewRowAlteredError("consent", "c-1", "has no MAC").noted(RECORDED)

    back = pickle.loads(pickle.dumps(noted))

    assert type(back) is ViewRowAlteredError
    assert str(back) == str(noted)
    assert str(back).endswith(f"; {RECORDED}")
    assert (back.view, back.key, back.why) == ("consent", "c-1", "has no MAC")
