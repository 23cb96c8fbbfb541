"""What a process holds for its views stays bounded while the views keep failing and no read
comes (decision 0055: what was held for them is let go on failure, and read back from the
log).

The recorder notes the topic of each write this process makes, by position (`written`,
infra/store/group_commit.py), for the read views' runner, which forgets it once the views
have caught up past it. The runner let go of the events it held when a batch failed, but not
of those notes: with the views refusing every batch and no read to catch them up, the map
grew by one entry a write, for as long as the process ran.

The fault is real here: the read views' table refuses every row with a trigger, on each
backend. Entries are counted, nothing is timed.
"""

from __future__ import annotations

import logging

import pytest

from infra.bootstrap import build_app
from infra.config import Settings
from infra.views.kept import READ
from infra.views.runner import ViewRunner
from services.access import Role
from services.dto import RegisterCandidate
from services.lists import ListCandidates
from tests.conftest import FakeClock
from tests.integration.test_command_applied_views_behind import RUNNER, refusing_rows
from tests.story import RECRUITER

BATCH = 16  # events held before the runner applies them on a write's account (256 by default)
BATCHES = 6  # failed batches in the run


def test_writes_the_views_keep_refusing_leave_no_more_held_for_them_than_one_batch(
    settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(settings, clock=clock)
    try:
        runner = app.views
        assert isinstance(runner, ViewRunner)
        runner.max_pending = BATCH  # fewer writes for the same run of failed batches
        written = app.recorder.written
        runner.catch_up()
        assert len(written) == 0
        most = 0

        with refusing_rows(settings, READ), caplog.at_level(logging.ERROR, logger=RUNNER):
            for n in range(BATCH * BATCHES):  # one event each, no read between them
                app.register_candidate(RegisterCandidate(name=f"Li {n}", actor=RECRUITER))
                most = max(most, len(written))

        failed = [r for r in caplog.records if r.name == RUNNER]
        assert len(failed) == BATCHES  # a failed batch each BATCH writes, each said
        assert most <= BATCH  # at most what one batch holds, never the whole run
        assert len(written) < BATCH
        # nothing is lost by letting go: the next read brings the views up to date from the log
        listed = app.list_candidates(ListCandidates(limit=BATCH * BATCHES + 1), Role.RECRUITER)
        assert len(listed.items) == BATCH * BATCHES
        assert runner.position == app.recorder.max_notification_id()
        assert len(written) == 0
    finally:
        app.close()
