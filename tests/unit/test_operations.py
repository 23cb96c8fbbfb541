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


def _library_line(created: float, node: int = 111, name: str = "aiokafka") -> logging.LogRecord:
    record = logging.LogRecord(
        name, logging.ERROR, __file__, 1, "Unable connect to node with id %s", (node,), None
    )
    record.created = created
    return record


def test_a_library_message_repeated_is_written_once_a_window_with_the_count_held_back() -> None:
    repeats = logs.Repeats(window=60)

    passed = [repeats.filter(_library_line(1000 + i / 10)) for i in range(50)]  # 5 s of them
    later = _library_line(1061)
    after_it = repeats.filter(later)

    assert passed == [True] + [False] * 49
    assert after_it is True
    assert later.getMessage() == "Unable connect to node with id 111 (and 49 more like it in 61 s)"
    assert repeats.filter(_library_line(1062)) is False  # a new window began with that one


def test_other_messages_and_our_own_lines_are_not_held_back() -> None:
    repeats = logs.Repeats(window=60)
    assert repeats.filter(_library_line(1000)) is True

    other_logger = _library_line(1001, name="aiokafka.consumer.fetcher")
    ours = [_record() for _ in range(3)]

    assert repeats.filter(other_logger) is True
    assert [repeats.filter(r) for r in ours] == [True, True, True]
    # the same text with other arguments is the same message: held back
    assert repeats.filter(_library_line(1002, node=112)) is False


def test_every_process_log_handler_holds_repeats_back() -> None:
    from infra.kafka.streams import _logging_config

    root = logging.getLogger()
    before = list(root.handlers)
    try:
        logs.configure(stream=io.StringIO())
        assert any(isinstance(f, logs.Repeats) for f in root.handlers[0].filters)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before:
            root.addHandler(handler)
    faust = _logging_config()  # mode's handler, as faust's workers are given it
    assert faust["filters"] == {"repeats": {"()": "infra.ops.logs.Repeats"}}
    assert faust["handlers"]["default"]["filters"] == ["repeats"]
