"""Group commit: writers that queue up while another commits share the next transaction; a
writer at fault fails alone; the chain over the grouped records still verifies."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from infra.audit.verification import open_source, verify
from infra.bootstrap import build_app
from infra.config import Settings
from infra.store.filelock import WriterLock
from infra.store.group_commit import GroupCommit
from services.application import Backcheck
from tests import story as s
from tests.batching import queued_behind_a_round
from tests.conftest import PG_URL, FakeClock


def stored(originator_id: UUID, version: int = 1) -> StoredEvent:
    return StoredEvent(originator_id, version, "tests:Event", b'{"candidate_id": null}')


def queued_behind_a_writer(
    recorder: GroupCommit, writes: list[list[StoredEvent]]
) -> list[tuple[list[int] | None, BaseException | None]]:
    """Each write in its own thread while the recorder is busy, then the next round."""

    def write(events: list[StoredEvent]) -> Callable[[], list[int] | None]:
        def call() -> list[int] | None:
            ids = recorder.insert_events(events)
            return list(ids) if ids is not None else None

        return call

    return queued_behind_a_round(recorder.group, [write(w) for w in writes])


class GroupCommitContract:
    settings: Settings

    @pytest.fixture
    def app(self, backend: Settings, clock: FakeClock) -> Iterator[Backcheck]:
        self.settings = backend
        application = build_app(backend, clock=clock)
        yield application
        application.close()

    def recorder(self, app: Backcheck) -> GroupCommit:
        assert isinstance(app.recorder, GroupCommit)
        return app.recorder

    def test_writers_queued_behind_a_commit_share_the_next_transaction(
        self, app: Backcheck
    ) -> None:
        recorder = self.recorder(app)
        writes = [[stored(uuid4())] for _ in range(12)] + [[stored(uuid4()), stored(uuid4())]]

        results = queued_behind_a_writer(recorder, writes)

        assert [error for _, error in results] == [None] * len(writes)
        assert (recorder.group.rounds, recorder.group.items) == (1, len(writes))
        ids = [i for got, _ in results for i in (got or [])]
        assert len(ids) == 14
        assert sorted(ids) == list(range(1, 15))
        assert len(results[-1][0] or []) == 2
        with open_source(self.settings) as source:
            assert verify(source).intact

    def test_a_writer_at_fault_fails_alone_and_the_others_commit(self, app: Backcheck) -> None:
        recorder = self.recorder(app)
        taken = uuid4()
        recorder.insert_events([stored(taken)])
        writes = [[stored(uuid4())], [stored(taken)], [stored(uuid4())]]
        rounds, items = recorder.group.rounds, recorder.group.items

        results = queued_behind_a_writer(recorder, writes)

        assert results[0][1] is None
        assert isinstance(results[1][1], IntegrityError)
        assert results[2][1] is None
        # one round of all three: tried together first, then one by one
        assert (recorder.group.rounds - rounds, recorder.group.items - items) == (1, 3)
        assert len(recorder.select_notifications(start=1, limit=10)) == 3
        with open_source(self.settings) as source:
            assert verify(source).intact

    def test_a_write_larger_than_one_statement_takes_is_stored_and_chained_whole(
        self, app: Backcheck
    ) -> None:
        recorder = self.recorder(app)
        recorder.insert_events([stored(uuid4())])
        many = [stored(uuid4()) for _ in range(20_000)]  # SQLite: 8,191 rows a statement

        ids = recorder.insert_events(many)

        assert list(ids or []) == list(range(2, 20_002))
        stored_back = recorder.select_notifications(start=8_190, limit=4)
        assert [(n.id, n.originator_id) for n in stored_back] == [
            (i, many[i - 2].originator_id) for i in range(8_190, 8_194)
        ]
        with open_source(self.settings) as source:
            verdict = verify(source)
        assert verdict.intact, verdict.problems[:3]
        assert verdict.checked == 20_001

    def test_an_application_save_goes_through_the_group(self, app: Backcheck) -> None:
        recorder = self.recorder(app)
        st = s.consented_candidate(app)

        # every save so far (register, request, grant) was a round of its own
        assert recorder.group.rounds == recorder.group.items == 3
        # and the request's one save held two events: the consent and the portal link
        assert app.recorder.max_notification_id() == recorder.group.rounds + 1
        assert app.exists(st.consent_id)


class TestGroupCommitOnSQLite(GroupCommitContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Settings:
        return Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)

    @pytest.mark.parametrize("file", ["events", "keys", "views"])
    def test_a_write_waits_while_another_process_holds_the_files_writer_lock(
        self, app: Backcheck, file: str
    ) -> None:
        """Writers of several processes on one file take turns through the writer lock
        (infra/store/filelock.py), not through SQLite's sleeping busy handler."""
        st = s.consented_candidate(app)
        app.read_model()
        if file == "events":
            path, write = self.settings.sqlite_path, lambda: s.consented_candidate(app)
        elif file == "keys":  # the key table lives in the event store's file
            assert app.keys is not None
            keys = app.keys
            path, write = self.settings.sqlite_path, lambda: keys.destroy(st.candidate_id)
        else:
            s.consented_candidate(app)  # stored; the views are behind it
            path, write = self.settings.views_path, app.read_model
        done = threading.Event()

        def writer() -> None:
            write()
            done.set()

        with WriterLock(path).held():  # a lock of its own, as another process's would be
            t = threading.Thread(target=writer)
            t.start()
            assert not done.wait(0.5)  # SQLite's own lock is free: only ours holds it back
        assert done.wait(30)
        t.join()
        assert app.exists(st.consent_id)


@pytest.mark.postgres
class TestGroupCommitOnPostgres(GroupCommitContract):
    @pytest.fixture
    def backend(self, pg_schema: str, tmp_path: Path) -> Settings:
        return Settings(database_url=f"{PG_URL}?schema={pg_schema}", data_dir=tmp_path)
