"""A token checked before is taken as still good only while its principal's row in the views
is at the version it was checked at; the views are made current before the row is read, so
a revocation or a rotation made by another process on the same store stops the old token on
the very next request there too. (Two applications on one store stand for two processes:
each has its own token cache and its own views runner.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from services.application import Backcheck
from services.dto import AddPrincipal, RevokePrincipal, RotatePrincipal
from services.errors import AuthenticationError
from tests import story as s
from tests.conftest import FakeClock


@pytest.fixture
def two(settings: Settings, clock: FakeClock) -> Iterator[tuple[Backcheck, Backcheck]]:
    first = build_app(settings, clock=clock)
    second = build_app(settings, clock=clock)
    try:
        yield first, second
    finally:
        second.close()
        first.close()


def added(app: Backcheck) -> str:
    return app.add_principal(
        AddPrincipal.model_validate({"name": s.RECRUITER, "role": "recruiter", "actor": "op"})
    ).token


def test_a_token_revoked_in_another_process_is_refused_on_the_next_request(
    two: tuple[Backcheck, Backcheck],
) -> None:
    serving, operator = two
    token = added(operator)
    assert serving.authenticate(token).principal == s.RECRUITER
    assert serving.authenticate(token).principal == s.RECRUITER  # now from its cache

    operator.revoke_principal(RevokePrincipal(name=s.RECRUITER, reason="left", actor="op"))

    with pytest.raises(AuthenticationError, match=r"^token revoked$"):
        serving.authenticate(token)


def test_a_token_rotated_in_another_process_is_replaced_on_the_next_request(
    two: tuple[Backcheck, Backcheck],
) -> None:
    serving, operator = two
    old = added(operator)
    assert serving.authenticate(old).principal == s.RECRUITER

    new = operator.rotate_principal(RotatePrincipal(name=s.RECRUITER, actor="op")).token

    with pytest.raises(AuthenticationError, match=r"^unknown token$"):
        serving.authenticate(old)
    assert serving.authenticate(new).principal == s.RECRUITER


def test_the_principals_row_follows_its_every_event(two: tuple[Backcheck, Backcheck]) -> None:
    app, _ = two
    added(app)
    app.rotate_principal(RotatePrincipal(name=s.RECRUITER, actor="op"))
    app.revoke_principal(RevokePrincipal(name=s.RECRUITER, reason="left", actor="op"))
    principal = next(p for p in app.list_principals() if p.name == s.RECRUITER)

    row = app.read_model().get("principal", str(principal.principal_id))

    assert row == {
        "principal_id": str(principal.principal_id),
        "version": app.version_of(principal.principal_id),
        "revoked": True,
    }
    assert app.version_of(principal.principal_id) == 3  # added, rotated, revoked
