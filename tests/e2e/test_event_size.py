"""One event fits in one Kafka message: a command whose event would be larger than
BACKCHECK_MAX_EVENT_BYTES is refused at the boundary (exit 2, HTTP 422), one line naming the
event, its size, the bound and its largest field; the store is left as it was."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from infra.bootstrap import build_app
from infra.config import Settings
from infra.privacy.keystore import SQLKeyStore
from tests.kafka import BACKCHECK

BOUND = 8_000


def do(
    env: dict[str, str], use_case: str, document: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BACKCHECK, "do", use_case, json.dumps(document)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def claims(count: int, length: int) -> list[dict[str, object]]:
    """Past jobs: confidential, a tier the candidate has no key for yet (name and email are
    general), so a key made before the refusal would show."""
    field = {"name": "duties", "category": "user.employment.experience", "value": "x" * length}
    return [{"kind": "employment", "fields": [field]} for _ in range(count)]


def stored(settings: Settings) -> tuple[int, int]:
    """(the log's head, how many data keys the store holds)."""
    app = build_app(settings)
    try:
        keys = app.keys
        assert isinstance(keys, SQLKeyStore)
        return app.recorder.max_notification_id() or 0, keys.count()
    finally:
        app.close()


def test_a_command_whose_event_would_exceed_the_bound_is_refused_and_nothing_stored(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 's.sqlite'}", data_dir=tmp_path)
    env = os.environ | {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(tmp_path),
        "BACKCHECK_MAX_EVENT_BYTES": str(BOUND),
    }
    registered = do(
        env,
        "register-candidate",
        {"name": "Zhou Min", "email": "zhou@example.cn", "actor": "hr:li"},
    )
    assert registered.returncode == 0, registered.stderr
    candidate = json.loads(registered.stdout)["candidate_id"]
    before = stored(settings)

    too_large = do(
        env,
        "submit-claims",
        {"candidate_id": candidate, "claims": claims(6, 1_500), "actor": "candidate"},
    )

    assert too_large.returncode == 2, too_large.stderr
    line = " ".join(too_large.stderr.split())
    assert line.startswith(
        "Invalid input (EventTooLarge): the Candidate.ClaimsSubmitted event this command "
        "records would be "
    ), line
    assert f"bytes, above the {BOUND:,} bytes one event may take (BACKCHECK_MAX_EVENT_BYTES" in line
    assert "its largest field is 'claims'" in line
    assert "Traceback" not in too_large.stderr
    assert stored(settings) == before  # no event, no data key
    fits = do(
        env,
        "submit-claims",
        {"candidate_id": candidate, "claims": claims(1, 100), "actor": "candidate"},
    )
    assert fits.returncode == 0, fits.stderr
