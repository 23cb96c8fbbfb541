"""The read views on each backend: built incrementally they equal, row for row, the same
projection run over the whole log in memory; rebuilt from scratch they come out identical;
a batch delivered twice changes nothing; and personal values in them are sealed at rest."""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from domain.check import SourceRole
from domain.classification import ERASED_VALUE, WITHHELD_VALUE, PersonalField
from infra.bootstrap import build_app
from infra.config import Settings
from infra.demo import tell_story
from infra.store.filelock import AlreadyRunningError
from infra.store.recorder import chained
from infra.views.runner import ViewRunner
from infra.views.sqlite import RETIRED, ROWS_COLUMNS
from projections.access_log import (
    NO_POLICY,
    READS_PREFIX,
    REFUSAL_PREFIX,
    reads_view,
    refusal_view,
)
from projections.listing import KINDS, LIST_VIEWS, entry_view, list_view
from projections.read_views import VIEWS, ReadViews
from projections.rows import MemoryRows
from projections.tally import day_of
from services.access import Role
from services.application import Backcheck
from services.dto import ReadProfile, WithdrawConsent
from tests import story as s
from tests.conftest import PG_URL, FakeClock


def recruiter_read(candidate_id: UUID) -> ReadProfile:
    return ReadProfile(
        candidate_id=candidate_id, principal=s.RECRUITER, role=Role.RECRUITER, purpose=s.PURPOSE
    )


def runner_of(app: Backcheck) -> ViewRunner:
    assert isinstance(app.views, ViewRunner)
    return app.views


def reference(app: Backcheck) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The projection run over the whole log at once, into memory."""
    rows, projection = MemoryRows(), ReadViews()
    for position, event in app.replay():
        projection.process(event, rows, position)
    return list(rows.dump())


def personal_values(dump: list[tuple[str, str, str, dict[str, Any]]]) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, PersonalField):
            if value.value != ERASED_VALUE and len(value.value) >= 6:
                found.add(value.value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for *_, doc in dump:
        walk(doc)
    return found


class ViewStoreContract(ABC):
    settings: Settings

    @abstractmethod
    def raw_bytes(self) -> bytes:
        """Every byte the backend holds for the views."""

    @abstractmethod
    def drop_all_tracking(self) -> None:
        """Deletes every row of the views' tracking table, the library's migration marker
        with them, as `views rebuild` did before it kept the marker."""

    @abstractmethod
    def relations(self) -> set[str]:
        """The names of the views' tables and indexes, as the backend lists them."""

    @pytest.fixture
    def app(self, backend: Settings, clock: FakeClock) -> Iterator[Backcheck]:
        self.settings = backend
        application = build_app(backend, clock=clock)
        yield application
        application.close()

    @pytest.fixture
    def other(self, app: Backcheck, clock: FakeClock) -> Iterator[Backcheck]:
        """A second application on the same store, as another process would open it."""
        second = build_app(self.settings, clock=clock)
        yield second
        second.close()

    @pytest.fixture
    def demo_app(self, app: Backcheck) -> Backcheck:
        tell_story(app)
        return app

    def test_views_built_as_the_story_unfolds_equal_the_log_projected_at_once(
        self, demo_app: Backcheck
    ) -> None:
        runner = runner_of(demo_app)
        runner.catch_up()

        built = runner.store.dump()

        assert built == reference(demo_app)
        named = {view for view, *_ in built}
        refusal_views = {view for view in named if view.startswith(REFUSAL_PREFIX)}
        reads_views = {view for view in named if view.startswith(READS_PREFIX)}
        assert named - LIST_VIEWS - refusal_views - reads_views == set(VIEWS)
        # the refused reads: listed by their day, and by principal and policy within it
        refused = [
            e
            for _, e in demo_app.replay()
            if type(e).__qualname__ == "Access.Recorded" and e.outcome == "refused"
        ]
        assert refused  # the story has reads refused
        assert refusal_views == {
            refusal_view(day_of(e.timestamp), principal, policy)
            for e in refused
            for principal in (None, e.principal)
            for policy in (None, *(e.policy_ids or [NO_POLICY]))
        }
        # every read and disclosure listed by time: everyone's, and each principal's; the
        # refused reads again in lists of their own
        logged = [doc for view, _, _, doc in built if view == "access"]
        assert reads_views == {
            reads_view(principal, refused=refused_only)
            for doc in logged
            for principal in (None, doc["principal"])
            for refused_only in ((False, True) if doc["outcome"] == "refused" else (False,))
        }
        listed = [doc for view, _, _, doc in built if view == reads_view()]
        assert sorted(d["access_id"] for d in listed) == sorted(d["access_id"] for d in logged)
        # the lists: each kind's entries and `all` list, and the list of each status an item is in
        entries = [(k, doc) for view, _, _, doc in built for k in KINDS if view == entry_view(k)]
        assert named & LIST_VIEWS == (
            {entry_view(k) for k in KINDS}
            | {list_view(k) for k in KINDS}
            | {list_view(k, doc["status"]) for k, doc in entries}
        )
        assert runner.position == demo_app.recorder.max_notification_id()

    def test_answers_through_the_cache_equal_the_rows_as_stored(self, demo_app: Backcheck) -> None:
        runner = runner_of(demo_app)
        runner.catch_up()
        stored = runner.store.dump()

        for _ in range(2):  # first from the database, then from the cache
            for view, key, subject, doc in stored:
                assert runner.get(view, key) == doc
                expected = [d for v, _, s_, d in stored if v == view and s_ == subject]
                assert runner.of_subject(view, UUID(subject)) == expected

    def test_a_rebuild_from_the_start_of_the_log_comes_out_identical(
        self, demo_app: Backcheck
    ) -> None:
        runner = runner_of(demo_app)
        runner.catch_up()
        before = runner.store.dump()
        seen: list[tuple[int, int]] = []

        position = runner.rebuild(batch=10, progress=lambda at, head: seen.append((at, head)))

        assert runner.store.dump() == before
        assert position == demo_app.recorder.max_notification_id()
        assert len(seen) > 1  # reported as it went, batch by batch
        assert seen[-1] == (position, position)

    def test_rebuilt_again_and_again_the_store_reopens_with_the_same_rows(
        self, app: Backcheck, clock: FakeClock
    ) -> None:
        st = s.investigation_under_way(app)
        runner_of(app).catch_up()
        first = runner_of(app).store.dump()
        head = app.recorder.max_notification_id()

        for _ in range(3):  # each in an application of its own, as `backcheck views rebuild` is
            rebuilding = build_app(self.settings, clock=clock)
            try:
                assert runner_of(rebuilding).rebuild(batch=10) == head
                assert runner_of(rebuilding).store.dump() == first
            finally:
                rebuilding.close()
            reopened = build_app(self.settings, clock=clock)
            try:
                assert runner_of(reopened).position == head
                assert runner_of(reopened).store.dump() == first
            finally:
                reopened.close()

        reopened = build_app(self.settings, clock=clock)
        try:
            assert reopened.read_profile(recruiter_read(st.candidate_id)).outcome != "refused"
            runner_of(reopened).catch_up()
            assert runner_of(reopened).store.dump() == reference(reopened)
        finally:
            reopened.close()

    # --- a rebuild is written aside and swapped in (decision 0061) -------------------------

    def test_while_a_rebuild_runs_other_readers_keep_the_complete_views(
        self, demo_app: Backcheck, other: Backcheck
    ) -> None:
        runner = runner_of(demo_app)
        runner.catch_up()
        before = runner.store.dump()
        relations = self.relations()
        midway: list[bool] = []

        def read_meanwhile(at: int, head: int) -> None:
            if at < head:  # another process's reads: every row, not the rebuild's first part
                midway.append(runner_of(other).store.dump() == before)

        runner.rebuild(batch=10, progress=read_meanwhile)

        assert len(midway) > 3
        assert all(midway)
        assert runner.store.dump() == before
        assert self.relations() == relations  # nothing left aside, the subject index made

    def test_a_rebuild_cut_off_leaves_the_views_as_they_were(self, demo_app: Backcheck) -> None:
        runner = runner_of(demo_app)
        head = runner.catch_up()
        before = runner.store.dump()
        relations = self.relations()

        class CutOffError(Exception):
            pass

        def cut(at: int, _head: int) -> None:
            if at >= 30:
                raise CutOffError

        with pytest.raises(CutOffError):
            runner.rebuild(batch=10, progress=cut)

        assert runner.store.dump() == before
        assert runner.store.max_tracking_id(runner.name) == head
        assert self.relations() == relations  # the table aside dropped
        assert runner.rebuild(batch=10) == head
        assert runner.store.dump() == before

    def test_what_another_runner_applied_during_a_rebuild_is_in_the_views_it_swaps_in(
        self, demo_app: Backcheck, other: Backcheck
    ) -> None:
        runner = runner_of(demo_app)
        runner.catch_up()
        written: list[UUID] = []

        def write_meanwhile(at: int, head: int) -> None:
            if not written:  # committed and applied to the live views, past the rebuild's head
                written.append(s.investigation_under_way(other).candidate_id)
                runner_of(other).catch_up()
                assert runner.store.max_tracking_id(runner.name) > head

        position = runner.rebuild(batch=10, progress=write_meanwhile)

        assert position == demo_app.recorder.max_notification_id()
        assert runner.store.dump() == reference(demo_app)
        assert runner_of(other).catch_up() == position  # takes up the swapped-in views
        assert other.read_profile(recruiter_read(written[0])).outcome != "refused"

    def test_a_second_rebuild_while_one_runs_is_refused_at_once_and_the_first_completes(
        self, demo_app: Backcheck, other: Backcheck
    ) -> None:
        """Two rebuilds at once would write into one table aside (the second drops the
        first's, makes it again, and both fill it): the second is refused before it starts."""
        runner = runner_of(demo_app)
        runner.catch_up()
        before = runner.store.dump()
        refused: list[str] = []

        def second_meanwhile(at: int, head: int) -> None:
            if not refused:
                with pytest.raises(AlreadyRunningError) as raised:
                    runner_of(other).rebuild(batch=10)
                refused.append(str(raised.value))

        runner.rebuild(batch=10, progress=second_meanwhile)

        assert refused
        assert "rebuild" in refused[0]
        assert "try again when it is done" in refused[0]
        assert runner.store.dump() == before
        assert runner_of(other).rebuild(batch=10) == runner.position  # once the first is done

    def test_a_store_whose_migration_marker_a_rebuild_deleted_opens_again(
        self, app: Backcheck, clock: FakeClock
    ) -> None:
        """Stores rebuilt before the clear kept the marker: the library migrated the table
        once (renaming the old one aside); without its marker a second time, the next open
        would rename onto that and fail."""
        st = s.investigation_under_way(app)
        runner_of(app).catch_up()

        for _ in range(2):
            self.drop_all_tracking()
            reopened = build_app(self.settings, clock=clock)  # rows untracked: cleared, rebuilt
            try:
                assert reopened.read_profile(recruiter_read(st.candidate_id)).outcome != "refused"
                runner_of(reopened).catch_up()
                assert runner_of(reopened).store.dump() == reference(reopened)
            finally:
                reopened.close()

    def test_a_batch_delivered_again_is_refused_and_changes_nothing(
        self, demo_app: Backcheck
    ) -> None:
        runner = runner_of(demo_app)
        head = runner.catch_up()
        before = runner.store.dump()
        notes = demo_app.recorder.select_notifications(start=head - 9, limit=10)
        again = [(n.id, demo_app.mapper.to_domain_event(n)) for n in notes]

        with pytest.raises(IntegrityError):
            runner.store.apply(again, Tracking(runner.name, head), runner.projection)

        assert runner.store.dump() == before

    def test_a_runner_catching_up_skips_what_another_runner_applied_meanwhile(
        self, demo_app: Backcheck, clock: FakeClock
    ) -> None:
        """Two processes' runners on one views store: once the other has applied the rest,
        this one neither reads it back from the log nor projects it again."""
        head = demo_app.recorder.max_notification_id()
        runner_of(demo_app).store.clear()  # the views from nothing, as two new processes
        first, second = build_app(self.settings, clock=clock), build_app(self.settings, clock=clock)
        try:
            runner = runner_of(first)
            tried: list[int] = []  # the batches it went on to apply
            apply = runner.store.apply

            def apply_then_the_other_catches_up(
                events: Any, tracking: Tracking, p: Any, stored: Any = None
            ) -> Any:
                tried.append(tracking.notification_id)
                touched = apply(events, tracking, p, stored)
                runner_of(second).catch_up()  # meanwhile, the other applies the rest
                return touched

            runner.store.apply = apply_then_the_other_catches_up  # type: ignore[method-assign]
            runner.catch_up(batch=5)

            assert tried == [5]
            assert runner.position == runner_of(second).position == head
            assert runner.store.dump() == reference(demo_app)
        finally:
            first.close()
            second.close()

    def test_runs_tracked_together_are_applied_all_or_none(self, demo_app: Backcheck) -> None:
        """A worker applies its partitions' runs in one transaction: when one run was applied
        before (its tracking record exists), the other run's rows are not written either."""
        runner = runner_of(demo_app)
        head = runner.catch_up()
        notes = demo_app.recorder.select_notifications(start=1, limit=head)
        events = [(n.id, demo_app.mapper.to_domain_event(n)) for n in notes]
        store, projection = runner.store, ReadViews()
        store.clear()
        first, second = events[: head // 2], events[head // 2 :]
        store.apply_tracked([(first, Tracking("w/0", first[-1][0]))], projection)
        before = store.dump()
        assert before

        with pytest.raises(IntegrityError):
            store.apply_tracked(
                [(second, Tracking("w/1", second[-1][0])), (first, Tracking("w/0", first[-1][0]))],
                projection,
            )

        assert store.dump() == before
        assert store.max_tracking_id("w/1") is None
        store.apply_tracked([(second, Tracking("w/1", second[-1][0]))], projection)
        assert store.progress()["w/1"] == head

    def test_personal_values_in_the_views_are_sealed_at_rest(self, app: Backcheck) -> None:
        st = s.investigation_under_way(app)
        s.record_finding(app, st, SourceRole.HR)
        runner = runner_of(app)
        runner.catch_up()
        values = personal_values(runner.store.dump())

        raw = self.raw_bytes()

        assert {"Li Lei", "li.lei@example.com"} <= values  # readable through the store
        assert str(st.candidate_id).encode() in raw  # the scan sees what is in the clear
        for value in values:
            assert value.encode() not in raw

    def test_a_row_opened_for_some_categories_leaves_the_rest_withheld_however_often_read(
        self, app: Backcheck
    ) -> None:
        st = s.investigation_under_way(app)
        runner = runner_of(app)
        runner.catch_up()
        key = str(st.candidate_id)

        def identity(opening: frozenset[str]) -> dict[str, str]:
            row = runner.get("profile", key, opening)
            assert row is not None
            return {f.category: f.value for f in row["identity"]}

        nothing = identity(frozenset())
        assert set(nothing) >= {"user.name", "user.contact.email"}
        assert set(nothing.values()) == {WITHHELD_VALUE}
        assert runner.get("profile", key, frozenset()) is runner.get("profile", key, frozenset())

        email = identity(frozenset({"user.contact.email"}))
        assert email["user.contact.email"] == "li.lei@example.com"
        assert email["user.name"] == WITHHELD_VALUE
        assert identity(frozenset()) == nothing  # opening one did not open it for the next
        assert identity(frozenset({"user.name"}))["user.contact.email"] == WITHHELD_VALUE

    def test_a_read_right_after_a_withdrawal_sees_it(self, app: Backcheck) -> None:
        st = s.investigation_under_way(app)
        read = recruiter_read(st.candidate_id)
        assert app.read_profile(read).outcome != "refused"
        app.withdraw_consent(
            WithdrawConsent(consent_id=st.consent_id, reason="changed my mind", actor=s.CANDIDATE)
        )

        with pytest.raises(Exception, match="refused"):
            app.read_profile(read)

        entries = app.recorded_accesses(st.candidate_id)
        assert [e.outcome for e in entries][-2:] == ["allowed", "refused"]

    def test_a_second_application_on_the_same_store_sees_the_first_ones_writes(
        self, app: Backcheck, other: Backcheck
    ) -> None:
        st = s.investigation_under_way(app)
        read = recruiter_read(st.candidate_id)
        assert other.read_profile(read).outcome != "refused"  # its cache now holds the case
        assert app.read_profile(read).outcome != "refused"
        app.withdraw_consent(
            WithdrawConsent(consent_id=st.consent_id, reason="no longer", actor=s.CANDIDATE)
        )
        app.read_model()  # the first application applies the withdrawal to the views

        with pytest.raises(Exception, match="refused"):
            other.read_profile(read)
        assert [e.outcome for e in other.recorded_accesses(st.candidate_id)] == [
            "allowed",
            "allowed",
            "refused",
        ]

    def test_another_applications_access_records_leave_this_ones_views_and_cache_alone(
        self, app: Backcheck, other: Backcheck
    ) -> None:
        """Two processes reading one store each record their readers' accesses; neither
        should make the other catch up, or drop the rows it has cached, for records no
        decision rests on. The access log still shows every read."""
        st = s.investigation_under_way(app)
        read = recruiter_read(st.candidate_id)
        assert other.read_profile(read).outcome != "refused"  # caches the case
        runner = runner_of(other)
        cached = dict(runner._rows)
        assert ("profile", str(st.candidate_id)) in cached
        position = runner.position

        for _ in range(3):
            app.read_profile(read)  # access records, and nothing else, from the first
        assert other.read_profile(read).outcome != "refused"
        assert runner.position == position  # nothing applied to decide that read

        app.read_model()  # the first applies every access record to the access log
        assert len(other.recorded_accesses(st.candidate_id)) == 5  # the second adopts them
        assert all(runner._rows.get(k) is row for k, row in cached.items())

    def test_a_runner_that_adopts_anothers_progress_lets_go_of_what_it_held_for_it(
        self, app: Backcheck, other: Backcheck
    ) -> None:
        """A process whose access records another process applied to the views keeps
        nothing for them: neither the pending events nor the recorder's note of their
        kinds (they would pile up in a long-running process)."""
        st = s.investigation_under_way(app)
        read = recruiter_read(st.candidate_id)
        for _ in range(3):
            other.read_profile(read)
        runner = runner_of(other)
        written = chained(other.recorder).written
        assert len(runner._pending) == 3
        assert len(written) == 3

        app.read_model()  # the first applies every record, the second's included
        other.read_model()  # the second adopts that

        assert runner.position == app.recorder.max_notification_id()
        assert runner._pending == {}
        assert written == {}
        assert len(other.recorded_accesses(st.candidate_id)) == 3

    def test_a_report_disclosure_shows_in_the_report_and_the_access_log(
        self, app: Backcheck
    ) -> None:
        st = s.shared_report(app)

        s.disclose(app, st)

        report = app.read_model().get("report", str(st.report))
        assert report is not None
        assert (report["status"], report["shared_edition"]) == ("approved", 1)
        assert [d["recipient"] for d in report["disclosures"]] == [s.HIRING_MANAGER]
        (entry,) = [e for e in app.recorded_accesses(st.candidate_id) if e.outcome == "disclosed"]
        assert (entry.principal, entry.purpose) == (s.RECRUITER, s.PURPOSE)
        assert s.HIRING_MANAGER in entry.view


class TestViewsOnSQLite(ViewStoreContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Settings:
        return Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)

    def test_a_batch_another_runner_applied_is_refused_before_it_is_projected(
        self, demo_app: Backcheck
    ) -> None:
        runner = runner_of(demo_app)
        head = runner.catch_up()
        notes = demo_app.recorder.select_notifications(start=head - 9, limit=10)
        again = [(n.id, demo_app.mapper.to_domain_event(n)) for n in notes]
        projected: list[int] = []

        class Counting(ReadViews):
            def process(self, event: Any, rows: Any, position: int) -> None:
                projected.append(position)
                super().process(event, rows, position)

        with pytest.raises(IntegrityError, match="applied by another runner"):
            runner.store.apply(again, Tracking(runner.name, head), Counting())
        assert projected == []

    def test_rows_a_cut_off_rebuild_left_retired_are_let_go_by_the_next(
        self, demo_app: Backcheck
    ) -> None:
        """A swap retires the old rows and lets them go a batch at a time after it: a rebuild
        cut off meanwhile leaves some, which the next one deletes before it starts."""
        runner = runner_of(demo_app)
        runner.catch_up()
        before = runner.store.dump()
        relations = self.relations()
        with sqlite3.connect(self.settings.views_path) as conn:
            conn.execute(f"CREATE TABLE {RETIRED} {ROWS_COLUMNS}")
            conn.execute(f"INSERT INTO {RETIRED} SELECT * FROM view_rows")
        assert RETIRED in self.relations()

        runner.rebuild(batch=10)

        assert self.relations() == relations
        assert runner.store.dump() == before

    def raw_bytes(self) -> bytes:
        path = self.settings.views_path
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return b"".join(f.read_bytes() for f in (path, *path.parent.glob(path.name + "-*")))

    def drop_all_tracking(self) -> None:
        with sqlite3.connect(self.settings.views_path) as conn:
            conn.execute("DELETE FROM tracking")

    def relations(self) -> set[str]:
        with sqlite3.connect(self.settings.views_path) as conn:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}


@pytest.mark.postgres
class TestViewsOnPostgres(ViewStoreContract):
    @pytest.fixture
    def backend(self, pg_schema: str) -> Settings:
        return Settings(database_url=f"{PG_URL}?schema={pg_schema}")

    def raw_bytes(self) -> bytes:
        schema = self.settings.postgres_schema
        with psycopg.connect(PG_URL) as conn:
            rows = conn.execute(
                f"SELECT view, key, subject, doc::text FROM {schema}.backcheck_views"
            )
            return "\n".join("|".join(map(str, r)) for r in rows.fetchall()).encode()

    def drop_all_tracking(self) -> None:
        schema = self.settings.postgres_schema
        with psycopg.connect(PG_URL) as conn:
            conn.execute(f"DELETE FROM {schema}.backcheck_views_tracking")

    def relations(self) -> set[str]:
        schema = self.settings.postgres_schema
        with psycopg.connect(PG_URL) as conn:
            rows = conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname LIKE 'backcheck_views%%'",
                (schema,),
            )
            return {r[0] for r in rows.fetchall()}
