"""Writers SIGKILLed at random points, on both backends: every acknowledged command is stored
exactly once, the chain verifies, the read views equal a rebuild, and every erasure that was
started is finished by running it again. `FAULT_KILLS` (default 100 per backend) sets how many;
`bench/faults.py` runs thousands."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from domain.errors import AlreadyErasedError
from infra.bootstrap import build_app
from infra.config import Settings
from services.dto import EraseSubject
from tests.faults import Journal, assert_nothing_lost, kill_writers

KILLS = int(os.environ.get("FAULT_KILLS", "100"))


def test_writers_killed_at_random_lose_no_acknowledged_command(
    settings: Settings, tmp_path: Path
) -> None:
    build_app(settings).close()  # the schema made once, before the writers race to it
    killed = kill_writers(settings, tmp_path, KILLS)

    assert killed == KILLS
    journal = Journal.read(tmp_path)
    app = build_app(settings)
    try:
        assert_nothing_lost(app, settings, journal)
        # an erasure cut off between its event and its keys is finished by running it again
        for candidate in journal.erasing:
            with suppress(AlreadyErasedError):  # recorded and finished before the kill
                app.erase_subject(
                    EraseSubject(candidate_id=candidate, reason="candidate-request", actor="dpo")
                )
            assert not app.keys.has_keys(candidate), candidate
    finally:
        app.close()
