"""Witness cosignatures into the store: `audit add-cosignature FILE...` (a witness's cosigned
copy, STATE/cosigned/SIZE.note, brought by hand: no Kafka) and `audit collect-cosignatures`
(read back from backcheck.checkpoint-cosignatures.v1). Each is checked before it is kept
(infra/audit/cosignatures.py); `audit export --witnesses-required K` then uses them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from infra.cli.audit import audit
from infra.cli.common import console, err, fail, open_app
from infra.terminal import markup_safe

EXIT_REFUSED = 2  # a cosignature refused (each named on stderr); the others are kept


@audit.command("add-cosignature")
def add_cosignature(
    files: Annotated[
        list[Path],
        typer.Argument(help="cosigned checkpoint notes (a witness's STATE/cosigned/SIZE.note)"),
    ],
) -> None:
    """Keep the cosignatures of configured witnesses (BACKCHECK_WITNESS_KEYS) on checkpoints
    this store's key signed and its tree holds. A file refused is named with the reason (exit
    2; the other files are kept); a checkpoint of this log's key that the store contradicts
    is a fork (exit 65)."""
    from infra.audit.cosignature_store import CosignatureStore
    from infra.audit.cosignatures import CosignatureError, accept, configured
    from infra.audit.log_checkpoint import signer
    from infra.audit.log_tree import LogTree
    from infra.audit.notes import MAX_NOTE_BYTES, NoteError, parse_note
    from infra.audit.sources import open_source

    refused = 0
    try:
        _, settings = open_app()  # the store and its tables exist from here on
        log_key = signer(settings).verifier
        witnesses = configured(settings.witness_keys)
        with CosignatureStore(settings) as store, open_source(settings) as source:
            for path in files:
                try:
                    with path.open("rb") as f:
                        data = f.read(MAX_NOTE_BYTES + 1)
                    note = parse_note(data)
                    found = accept(note, str(path), log_key, witnesses, LogTree(source))
                except CosignatureError as e:
                    err.print(markup_safe(str(e)), soft_wrap=True)
                    refused += 1
                    continue
                except NoteError as e:
                    err.print(f"{markup_safe(path)}: refused: not a note ({e})", soft_wrap=True)
                    refused += 1
                    continue
                except OSError as e:
                    err.print(f"{markup_safe(path)}: cannot be read: {e.strerror}")
                    refused += 1
                    continue
                new = store.add(found, f"file:{path}", datetime.now(UTC))
                size = found[0].checkpoint.size
                who = ", ".join(sorted({c.witness.split("+")[0] for c in found}))
                held = f", {len(found) - new} held already" if len(found) > new else ""
                console.print(
                    f"{markup_safe(path)}: size {size}: {new} cosignature(s) kept "
                    f"({markup_safe(who)}){held}"
                )
    except Exception as e:
        fail(e)
    if refused:
        raise typer.Exit(EXIT_REFUSED)


@audit.command("collect-cosignatures")
def collect_cosignatures(
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default: BACKCHECK_KAFKA_BOOTSTRAP)"),
    ] = None,
    quiet: Annotated[
        float,
        typer.Option(min=0.5, max=60, help="stop when nothing more arrives for this long (s)"),
    ] = 2.0,
) -> None:
    """Read the witnesses' cosigned checkpoints from backcheck.checkpoint-cosignatures.v1
    (from where the last collection stopped) and keep those of configured witnesses
    (BACKCHECK_WITNESS_KEYS) on checkpoints this store signed. Refused ones are named on
    stderr and go to backcheck.checkpoint-cosignatures.dlq.v1 with the reason (exit 0: the
    topic is not ours to fix); a checkpoint of this log's key that the store contradicts
    stops it (fork, exit 65). The scheduler's checkpoint duty does the same with
    --publish-checkpoints when witnesses are configured."""
    from infra.kafka.cosignature_collector import collect_into_store

    try:
        application, settings = open_app()
        done = collect_into_store(application, settings, bootstrap_servers, quiet)
    except Exception as e:
        fail(e)
    for reason in done.refused[:50]:
        err.print(markup_safe(reason), soft_wrap=True)
    console.print(
        f"{done.read} message(s) read: {done.new} cosignature(s) kept, {done.held} held "
        f"already, {len(done.refused)} refused"
    )
