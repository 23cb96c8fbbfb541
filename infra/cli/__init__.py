"""The `backcheck` command line: one module per command group, each command parse, call one
use case or query, print. Importing a group module registers its commands on the app, and
every start imports them all: so a group module imports at its top only typer, rich and light
helpers, and each command imports the adapters it runs (tests/e2e/test_startup.py)."""

from __future__ import annotations

import os
import sys

# Importing a group module registers its commands on the app.
from infra.cli import (  # noqa: F401
    audit,
    audit_history,
    bench,
    config,
    contract,
    cosignatures,
    dashboard,
    demo,
    dlq,
    events,
    health,
    kafka,
    keys,
    principals,
    proofs,
    read,
    reads,
    retention,
    scheduler,
    serve,
    store,
    subject,
    use_case,
    verify,
    views,
    witness,
)
from infra.cli.common import app, close_opened, one_line_summaries, usage_error

one_line_summaries(app)  # every command registered above

# Every file and directory backcheck makes is its owner's alone: the store, the views, the
# kept answers and sessions, keys, checkpoints, exports and the outbox hold personal data or
# what protects it (SQLite's -wal and -shm files take the store file's mode).
PRIVATE_UMASK = 0o077


def main() -> None:
    """Runs the command line; a mistyped one (an unknown option, a bad or missing argument) is
    one line and exit 2 like any invalid input, not typer's usage box."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)  # never looser than the caller's
    try:
        code = app(prog_name="backcheck", standalone_mode=False)  # a code if it exits early
    except Exception as e:
        code = usage_error(e)
    finally:
        close_opened()
    sys.exit(code if isinstance(code, int) else 0)
