"""Log lines and metric labels: JSON off a terminal with the ids known, text on one; a free
label keeps a bounded number of values."""

from __future__ import annotations

import io
import json
import logging
import os

from infra.ops import logs
from infra.ops.metrics import OTHER, Bounded


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "backcheck.intake",
        logging.WARNING,
        __file__,
        1,
        "%s: %s",
        (
            "dead-lettered backcheck.commands.v1/0@3",
            "malformed",
        ),
        None,
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_off_a_terminal_a_log_line_is_one_json_object_with_the_ids_known() -> None:
    stream = io.StringIO()
    assert isinstance(logs.formatter(stream), logs.Json)
    line = logs.Json().format(_record(**logs.ids("cmd-1", "cmd-1")))
    assert "\n" not in line
    found = json.loads(line)
    assert found["level"] == "warning"
    assert found["logger"] == "backcheck.intake"
    assert found["message"] == "dead-lettered backcheck.commands.v1/0@3: malformed"
    assert found["event_id"] == "cmd-1"
    assert found["correlation_id"] == "cmd-1"
    assert found["time"].endswith("+00:00")


def test_on_a_terminal_a_log_line_is_text_naming_the_ids() -> None:
    leader, follower = os.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert isinstance(logs.formatter(terminal), logs.Text)
    finally:
        os.close(leader)
        os.close(follower)
    line = logs.Text().format(_record(event_id="e-1"))
    assert line.endswith("dead-lettered backcheck.commands.v1/0@3: malformed [event_id=e-1]")
    assert not line.startswith("{")


def test_a_free_label_keeps_its_first_values_and_counts_the_rest_as_other() -> None:
    label = Bounded(limit=3)
    assert [label(f"policy-{n}") for n in range(5)] == [
        "policy-0",
        "policy-1",
        "policy-2",
        OTHER,
        OTHER,
    ]
    assert label("policy-1") == "policy-1"  # one seen before keeps its own
    assert len(label("x" * 1000)) <= 100
