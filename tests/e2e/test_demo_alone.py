"""One demo at a time on a store (issue 17, defect 13): the story checks each refusal stored
nothing by the log's head, which a second demo writing alongside moves, so two demos at once
in one directory reported false failures. A second demo is now refused at once, in one line,
exit 75; the first one finishes as it would alone."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import time
from pathlib import Path

from infra.problem import EX_TEMPFAIL
from tests.e2e.test_cli import BACKCHECK


def held_by_another_process(lock: Path) -> bool:
    if not lock.exists():
        return False
    with lock.open("rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def test_a_second_demo_in_the_same_directory_is_refused_while_the_first_runs(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}
    env["BACKCHECK_DATA_DIR"] = str(data)
    demo = [*BACKCHECK, "demo", "--json"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": env}
    # The store's writers wait for this lock: held here, the first demo waits at its first
    # write, however fast this machine, until the second one has been started beside it.
    writers = (data / "backcheck.sqlite.writer-lock").open("wb")
    fcntl.flock(writers, fcntl.LOCK_EX)
    first = subprocess.Popen(demo, **pipes)  # type: ignore[call-overload]
    try:
        deadline = time.monotonic() + 60
        while not held_by_another_process(data / "backcheck.sqlite.demo-lock"):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first demo never took its lock"
            time.sleep(0.01)
        second = subprocess.Popen(demo, **pipes)  # type: ignore[call-overload]
        with contextlib.suppress(subprocess.TimeoutExpired):
            second.wait(timeout=30)  # refused at once; it used to wait to run alongside
    finally:
        writers.close()  # the first demo goes on
    second_out, second_err = second.communicate(timeout=120)
    first_out, first_err = first.communicate(timeout=120)

    assert second.returncode == EX_TEMPFAIL, second_err
    problem = json.loads(second_out)
    assert problem["type"] == "busy"
    assert problem["detail"] == (
        f"another demo is running in {data} (it holds backcheck.sqlite.demo-lock); "
        "try again when it is done"
    )
    assert first.returncode == 0, first_err
    assert json.loads(first_out)["refusals"] == 15
    again = subprocess.run(
        [*BACKCHECK, "demo"], env=env, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stderr  # the lock went with the first demo
