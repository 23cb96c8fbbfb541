"""The application is built with every collaborator or not at all: no use case can meet a
missing key store, signer, view, access policy or retention period (once, a wiring bug was
told to the user as their invalid input, exit 2)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from domain.classification import Tier
from infra.access.cedar import CedarDecisionPoint
from infra.audit.checkpoint import FileKeySigner
from infra.bootstrap import build_app
from infra.config import ConfigError, Settings
from infra.ops.decisions import CountedDecisions
from infra.privacy.keystore import SQLKeyStore
from infra.store.recorder import chained, datastore_of
from infra.store.transcoder import typed_mapper
from infra.views.runner import ViewRunner
from services.application import Backcheck
from services.identity import AssignedDecisions
from services.unit import Collaborators


class WiringBugError(RuntimeError):
    """A collaborator that could not be built."""


def sqlite_settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.model_validate(
        {"database_url": f"sqlite:///{tmp_path / 'store.sqlite'}", "data_dir": tmp_path, **values}
    )


def test_a_built_application_has_every_collaborator_on_its_own_store(tmp_path: Path) -> None:
    app = build_app(sqlite_settings(tmp_path, retention_days={"secret": 30}))
    try:
        assert isinstance(app.keys, SQLKeyStore)
        assert isinstance(app.signer, FileKeySigner)
        assert isinstance(app.views, ViewRunner)
        # Cedar decides, within the principal's assignments, each decision counted (metrics)
        assert isinstance(app.decision_point, CountedDecisions)
        assert isinstance(app.decision_point.inner, AssignedDecisions)
        assert isinstance(app.decision_point.inner.inner, CedarDecisionPoint)
        assert app.retention.days[Tier.SECRET] == 30
        assert typed_mapper(app.mapper).sealer is not None
        assert app.views.log is chained(app.recorder)  # the views follow the app's own log
    finally:
        app.close()


def test_a_wiring_that_fails_is_raised_as_it_is_and_closes_the_store(tmp_path: Path) -> None:
    opened: list[Application[UUID]] = []

    def broken(store: Application[UUID]) -> Collaborators:
        opened.append(store)
        raise WiringBugError("the views could not be built")

    with pytest.raises(WiringBugError):
        Backcheck(sqlite_settings(tmp_path).store_env(), broken)

    (store,) = opened
    assert store.closing.is_set()  # the library's close() ran: the store's pool let go


def test_a_retention_setting_naming_no_tier_is_refused_before_the_store_is_opened(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="BACKCHECK_RETENTION_DAYS"):
        build_app(sqlite_settings(tmp_path, retention_days={"top-secret": 30}))

    assert not (tmp_path / "store.sqlite").exists()


def test_only_the_stores_own_recorder_leads_to_its_datastore(tmp_path: Path) -> None:
    app = build_app(sqlite_settings(tmp_path))
    try:
        assert datastore_of(app.recorder) is chained(app.recorder).datastore
        with pytest.raises(TypeError, match="not a backcheck recorder"):
            datastore_of(SQLiteApplicationRecorder(SQLiteDatastore(":memory:")))
    finally:
        app.close()
