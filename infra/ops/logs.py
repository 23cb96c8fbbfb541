"""Log lines: JSON, one object a line, when standard error is not a terminal (a container, a
service manager, a file: what a log collector reads); human text on a terminal.

A JSON line carries `time` (UTC, ISO 8601), `level`, `logger`, `message`, and `event_id` and
`correlation_id` when the code that logs knows them (`logging`'s `extra=`, see `ids`), plus
`error` (the exception's type and text) when one is logged; a traceback only at debug level
(`exc_text`). Every long-running process configures its logging here (`configure`), and faust's
workers use `Json` as their formatter off a terminal (`infra/kafka/streams.py`).

The libraries' lines go through `Repeats`: while the broker is away, the Kafka clients log the
same few failures dozens of times a second (about 1,500 lines in 20 s from a worker), which
buried the one line of ours saying what is wrong and filled the disk of whoever keeps the log.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

_KNOWN = ("event_id", "correlation_id")
MAX_MESSAGE = 4000  # characters of one message kept in a line
OURS = ("backcheck", "infra")  # our own loggers: never held back
REPEAT_WINDOW = 60.0  # seconds a library's message is held back for after it was let through


def ids(event_id: str | None = None, correlation_id: str | None = None) -> dict[str, Any]:
    """`extra=` for a log call that knows the event's or command's ids."""
    return {k: v for k, v in (("event_id", event_id), ("correlation_id", correlation_id)) if v}


class Json(logging.Formatter):
    """One JSON object a line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage()[:MAX_MESSAGE],
        }
        for key in _KNOWN:
            value = getattr(record, key, None)
            if value:
                line[key] = str(value)[:200]
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line["error"] = f"{type(error).__name__}: {error}"[:MAX_MESSAGE]
            if logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                line["exc_text"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class Text(logging.Formatter):
    """A person's line: time, level, message, and the ids in brackets when known."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        known = [f"{k}={getattr(record, k)}" for k in _KNOWN if getattr(record, k, None)]
        return f"{text} [{' '.join(known)}]" if known else text


class Repeats(logging.Filter):
    """A library's message (the same logger, level and text before its arguments are put in)
    is let through once a `window`; its repeats meanwhile are counted, not written, and the
    next one let through says how many there were. Our own loggers' lines all pass."""

    MAX_KEPT = 1000  # messages counted at once; more and the counts start again

    def __init__(self, window: float = REPEAT_WINDOW) -> None:
        super().__init__()
        self.window = window
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # → [let through at, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] in OURS:
            return True
        key = (record.name, record.levelno, str(record.msg))
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and record.created - seen[0] < self.window:
                seen[1] += 1
                return False
            if len(self._seen) >= self.MAX_KEPT:
                self._seen.clear()
            self._seen[key] = [record.created, 0]
        if seen is not None and seen[1]:
            took = record.created - seen[0]
            record.msg = f"{record.getMessage()} (and {seen[1]:.0f} more like it in {took:.0f} s)"
            record.args = None
        return True


def formatter(stream: TextIO) -> logging.Formatter:
    """JSON off a terminal, text on one."""
    return Text() if stream.isatty() else Json()


def configure(level: int | str = logging.INFO, stream: TextIO | None = None) -> None:
    """The root logger writes to `stream` (standard error) in the format that suits it,
    replacing handlers set before (once per process; calling again changes nothing more):
    backcheck's own loggers from `level`, the libraries' (Kafka clients, uvicorn) from
    warnings up, each of their messages once a minute at most (`Repeats`)."""
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(out))
    handler.addFilter(Repeats())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for ours in ("backcheck", "infra"):
        logging.getLogger(ours).setLevel(level)
