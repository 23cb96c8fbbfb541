"""An application a script never closes exits quietly and loses nothing.

The library closes an application from its destructor, which for one still referenced at exit
runs while the interpreter tears its modules down. Closing applies the events the process
committed since the views' last batch; at that moment the projections could no longer import
what they use, and the script ended with "Exception ignored in Application.__del__" and a
traceback. Now those events wait for the next open, which applies them before any read.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from infra.bootstrap import build_app
from infra.config import Settings
from services.access import Role
from services.lists import ListCandidates

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from infra.bootstrap import build_app
    from infra.config import Settings
    from services.dto import RegisterCandidate

    work = Path(sys.argv[1])
    app = build_app(Settings(database_url=f"sqlite:///{work / 'store.sqlite'}", data_dir=work))
    for i in range(3):
        command = RegisterCandidate(name=f"Li {i}", email="li@example.com", actor="hr:script")
        app.register_candidate(command)
    print("registered")
    """
)


def test_a_script_that_never_closes_its_application_exits_quietly_and_loses_nothing(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "registered\n"
    assert done.stderr == ""  # no "Exception ignored in ... __del__", no traceback
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    app = build_app(settings)
    try:
        listed = app.list_candidates(ListCandidates(limit=10), Role.RECRUITER)
    finally:
        app.close()
    assert len(listed.items) == 3  # the events left unapplied at exit, applied on this open
