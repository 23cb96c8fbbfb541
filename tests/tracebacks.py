"""No process a test runs may print a Python traceback (issue 17: every input or environment
fault is one line and an exit code). The check every captured output goes through: the
conftest's hook on Popen.communicate, and the Kafka tests' Processes on the logs they keep."""

from __future__ import annotations

TRACEBACK = "Traceback (most recent call last)"


class TracebackInOutputError(AssertionError):
    """A process a test ran printed a Python traceback."""


def refuse_traceback(process: object, output: object) -> None:
    """Fails (TracebackInOutputError) if `output` (str or bytes) holds a Python traceback."""
    if isinstance(output, bytes):
        output = output.decode(errors="replace")
    if isinstance(output, str) and TRACEBACK in output:
        raise TracebackInOutputError(f"{process!r} printed a Python traceback:\n{output}")
