"""A command's input as the command line takes it: typed in, `@FILE`, or `-` for stdin, read
up to a bound; and the files an option names for a command to read.

No command is larger than MAX_INPUT_BYTES: more is refused without reading further, so
`@/dev/zero` or an endless pipe costs one buffer, not the machine's memory. A file that cannot
be read (missing, a directory, not permitted) is refused in one line naming it.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Any

import orjson

MAX_INPUT_BYTES = 1_048_576  # 1 MiB: far above any command's bounded schema


class InputError(ValueError):
    """Input that cannot be taken: the message names where it came from and the rule."""


def _why(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "no such file"
    if error.errno == errno.EISDIR:
        return "a directory, not a file"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "not permitted to read it"
    return error.strerror or str(error)


def _bounded(data: bytes, where: str) -> bytes:
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(
            f"{where}: more than {MAX_INPUT_BYTES:,} bytes; a command is at most 1 MiB"
        )
    return data


def read_input(given: str, what: str = "PAYLOAD") -> bytes:
    """The bytes `given` stands for: the text itself, the content of `@FILE`, or stdin for
    `-`; at most MAX_INPUT_BYTES, else InputError (as for a file that cannot be read)."""
    if given == "-":
        return _bounded(sys.stdin.buffer.read(MAX_INPUT_BYTES + 1), f"{what} (stdin)")
    if not given.startswith("@"):
        return _bounded(given.encode("utf-8", "surrogateescape"), what)
    path = Path(given[1:])
    where = f"{what} @{path}"
    return _bounded(_read_at_most(path, where), where)


def read_file(path: Path, what: str) -> bytes:
    """The content of the file option `what` names, at most MAX_INPUT_BYTES: InputError
    naming the option and the file when it cannot be read (missing, a directory, not
    permitted) or is larger."""
    where = f"{what} {path}"
    data = _read_at_most(path, where)
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{where}: more than {MAX_INPUT_BYTES:,} bytes; too large to read")
    return data


def _read_at_most(path: Path, where: str) -> bytes:
    """One byte more than MAX_INPUT_BYTES at most (so a caller sees it is too large)."""
    try:
        with path.open("rb") as source:
            return source.read(MAX_INPUT_BYTES + 1)
    except OSError as e:
        raise InputError(f"{where}: {_why(e)}") from None


def json_object(data: bytes) -> dict[str, Any]:
    """A command as given (`read_input`): a JSON object, else InputError naming PAYLOAD."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise InputError(f"PAYLOAD: not valid JSON: {e}") from None
    if not isinstance(document, dict):
        raise InputError("PAYLOAD: the command must be a JSON object")
    return document
