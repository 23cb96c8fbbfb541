"""Errors cross process boundaries pickled (a worker process's failure reaches its parent so):
each comes back with the same message, details and class, whatever its own `__init__` takes."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import signal
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from domain.errors import AccessRefusedError, DomainError
from infra.kafka.cloudevent import DeadLetterReason
from infra.views.integrity import ViewRowAlteredError
from infra.views.runner import ViewsFailedError
from services.access import Role
from services.errors import ConcurrentChangeError, InternalConflictError, UnknownUseCaseError
from services.recording import RECORDED
from services.versions import WeakTag


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


# --- every exception class we define --------------------------------------------------------
# Walked from the packages, so a class added later is held to it too. Each is made as the code
# makes it: its own `__init__`, with arguments of the kinds its signature names (a class
# whose arguments cannot be told from its signature is made as `_MADE` says).

_PACKAGES = ("domain", "projections", "services", "infra")
_MOMENT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def _defined_here() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if info.name.endswith(".__main__"):  # runs the command line on import
                continue
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == module.__name__
                ):
                    found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


# classes whose arguments the signature does not say enough about
_MADE: dict[str, Callable[[], BaseException]] = {
    "infra.cli.keys._Stopped": lambda: _class("infra.cli.keys._Stopped")(signal.SIGTERM),
    "infra.http.command_input.InvalidCommandInput": lambda: _class(
        "infra.http.command_input.InvalidCommandInput"
    )([{"type": "missing", "loc": ("body", "purpose"), "msg": "Field required"}]),
    "services.errors.VersionMismatchError": lambda: _class("services.errors.VersionMismatchError")(
        uuid.UUID(int=3), WeakTag(4), 5
    ),
    "services.refusals.DashboardNotPermittedError": lambda: _class(
        "services.refusals.DashboardNotPermittedError"
    )("dashboard", "candidate", (Role.RECRUITER, Role.COMPLIANCE)),
}


def _class(name: str) -> type[BaseException]:
    module, _, qualname = name.rpartition(".")
    made: type[BaseException] = getattr(importlib.import_module(module), qualname)
    return made


def _argument(cls: type, parameter: inspect.Parameter) -> Any:
    """A value of the kind `parameter` names, as the code passes it."""
    kind = str(parameter.annotation).replace(" ", "")
    name = parameter.name
    if "UUID" in kind or kind == "object":
        return uuid.UUID(int=len(name))
    if "Exception" in kind:
        return IntegrityError(f"the store refused it ({name})")
    if "Aggregate" in kind:
        return []
    if "DeadLetterReason" in kind:
        return DeadLetterReason.TOO_LARGE  # another than the default, to be kept
    if "Path" in kind:
        return Path(f"/data/{name}.sqlite")
    if kind.startswith("str"):
        return f"{name} of {cls.__name__}"
    if kind.startswith("list[str]") or kind.startswith("tuple[str"):
        return [f"{name}-1", f"{name}-2"]
    if kind.startswith("int"):
        return 7
    if kind.startswith("bool"):
        return True
    if kind.startswith("datetime"):
        return _MOMENT
    raise AssertionError(f"{cls.__qualname__}({name}: {kind}): say how it is made in _MADE")


def _made(cls: type[BaseException]) -> BaseException:
    name = f"{cls.__module__}.{cls.__qualname__}"
    if name in _MADE:
        return _MADE[name]()
    own = next(c for c in cls.__mro__ if "__init__" in vars(c))
    if own.__module__.split(".")[0] not in _PACKAGES:  # a builtin's: made with its message
        return cls(f"{cls.__name__}: what went wrong, and what to do")
    if own is DomainError:
        return cls(f"{cls.__name__} happened", subject=uuid.UUID(int=1), count=3)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    positional, named = [], {}
    for p in parameters:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = _argument(cls, p)
        if p.kind is p.KEYWORD_ONLY:
            named[p.name] = value
        else:
            positional.append(value)
    return cls(*positional, **named)


def _same(a: Any, b: Any) -> bool:
    """Equal, or (errors, aggregates: no `==` of their own) of one type with equal parts."""
    if isinstance(a, BaseException) or (
        hasattr(a, "__dict__") and type(a).__eq__ is object.__eq__ and not isinstance(a, type)
    ):
        return (
            type(a) is type(b)
            and str(a) == str(b)
            and _same(getattr(a, "args", ()), getattr(b, "args", ()))
            and _same(vars(a), vars(b))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


_EVERY_CLASS = _defined_here()


def test_the_walk_finds_the_errors_of_every_layer() -> None:
    names = {f"{c.__module__}.{c.__qualname__}" for c in _EVERY_CLASS}
    assert {
        "domain.errors.AccessRefusedError",
        "services.errors.DataKeyMissingError",
        "infra.store.pool.NotAStoreError",
        "infra.store.pool.NotAViewsFileError",
        "infra.views.runner.ViewsFailedError",
    } <= names
    assert len(names) > 120


@pytest.mark.parametrize("cls", _EVERY_CLASS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_exception_class_we_define_pickles_with_its_message_and_fields(
    cls: type[BaseException],
) -> None:
    error = _made(cls)

    back = pickle.loads(pickle.dumps(error))

    assert type(back) is cls
    assert str(back) == str(error)
    assert _same(back.args, error.args)
    assert _same(vars(back), vars(error))
