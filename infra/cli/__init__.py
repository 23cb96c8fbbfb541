"""The `backcheck` command line: one module per command group, each command parse, call one
use case or query, print. Importing a group module registers its commands on the app, and
every start imports them all: so a group module imports at its top only typer, rich and light
helpers, and each command imports the adapters it runs (tests/e2e/test_startup.py)."""

from __future__ import annotations

# Importing a group module registers its commands on the app.
from infra.cli import (  # noqa: F401
    audit,
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
    retention,
    scheduler,
    serve,
    store,
    subject,
    use_case,
    views,
    witness,
)
from infra.cli.common import app, close_opened


def main() -> None:
    try:
        app()
    finally:
        close_opened()
