"""The compliance officer's tools: `audit keygen|checkpoint|tree-backfill|export|check`
(`audit verify` in verify.py, `audit reads` in reads.py, `timeline` and `as-of`, recorded reads
of a subject's history, in audit_history.py, the proofs in proofs.py).

The tamper-evidence adapter (signatures, the store's drivers) is imported by the command that
uses it, so that `backcheck audit --help` loads none of it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from infra.cli.common import app, console, err, fail, load_settings, open_app, parsed
from infra.terminal import cells, markup_safe

audit = typer.Typer(help="The compliance officer's tools: verify, checkpoint, replay, export.")
app.add_typer(audit, name="audit")


@audit.command()
def keygen(
    out: Annotated[
        Path | None, typer.Option(help="directory for the key pair (default: DATA_DIR/keys)")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="replace an existing key pair (the old public key is kept aside, to verify "
            "what it signed)",
        ),
    ] = False,
) -> None:
    """Create the Ed25519 key pair that signs checkpoints (an existing pair is kept)."""
    from infra.audit.outputs import check_directory
    from infra.audit.trail import key_pair
    from infra.config import Settings

    try:
        settings = Settings.load() if out else load_settings()  # DATA_DIR/keys by default
        directory = out or settings.signing_key_path.parent
        check_directory(directory)  # a file where the directory should be: refused, exit 73
        pair = key_pair(directory, replace=force, origin=settings.origin)
    except Exception as e:
        fail(e)
        return
    if not pair.made:
        console.print(f"a key pair exists already (key {markup_safe(pair.key_id)}); keeping it")
        console.print("  (--force replaces it; checkpoints it signed then need its public key)")
    elif pair.replaced is not None:
        console.print(
            f"[yellow]replaced[/] the key pair; the old public key is {markup_safe(pair.replaced)}"
        )
    console.print(f"private key: {markup_safe(pair.private)}  (keep it secret; mode 600)")
    console.print(
        f"public key:  {markup_safe(pair.public)}  (give it to whoever verifies checkpoints)"
    )
    console.print(f"vkey:        {markup_safe(pair.vkey)}  (for verify_bundle.py --key)")


# --out of a command that writes a file: an existing one only with --force, never the store's.
_Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="replace an existing --out file (never the store's files, keys or kept checkpoints)",
    ),
]


@audit.command()
def checkpoint(
    out: Annotated[
        Path | None,
        typer.Option(help="where to write it (default: DATA_DIR/checkpoints/checkpoint-N.note)"),
    ] = None,
    force: _Force = False,
) -> None:
    """Sign the log's tree head (origin, tree size, root hash) as a C2SP checkpoint note, for
    an outside witness to keep."""
    from infra.audit.trail import sign_head

    try:
        application, settings = open_app()  # the store and its tables exist from here on
        application.close()
        signed, path = sign_head(settings, out, force=force)
    except Exception as e:
        fail(e)
        return
    console.print(
        f"checkpoint {markup_safe(signed.checkpoint.origin)}: {signed.size} records (up to "
        f"position {signed.position}), root {signed.checkpoint.root_hash.hex()[:16]}…"
    )
    console.print(f"written to {markup_safe(path)}")


@contextmanager
def progress_bar(what: str, total: int, *, hidden: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while a large store is read; small ones finish before it
    would be seen."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    hide = hidden or total < 50_000
    description = "[progress.description]{task.description}"
    with Progress(description, *columns, console=err, disable=hide, transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.update(task, completed=done)


@audit.command("tree-backfill")
def tree_backfill(
    batch: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="records a transaction (each commits)")
    ] = 20_000,
) -> None:
    """Build the Merkle tree over a store chained before it existed, each record checked
    against its chain link first; stop at any time and run again to resume. Writers keep
    writing meanwhile; once it has caught up, they extend the tree themselves."""
    from infra.store.recorder import chained

    try:
        application, _ = open_app(existing=True)
        recorder = chained(application.recorder)
        added, left = recorder.backfill_tree(batch)
        total, done = added + left, added
        with progress_bar("building the tree", total, hidden=False) as progress:
            while added:
                progress(done)
                added, left = recorder.backfill_tree(batch)
                done += added
    except Exception as e:
        fail(e)
        return
    console.print(f"the tree covers the log: {done} leaves added")


@audit.command("export")
def audit_export(
    subject: Annotated[UUID, typer.Option(help="the candidate (data subject)")],
    out: Annotated[
        Path | None, typer.Option(help="bundle file (default: evidence-SUBJECT-POS.bundle)")
    ] = None,
    to: Annotated[str, typer.Option(help="who receives the bundle")] = "compliance archive",
    purpose: Annotated[str, typer.Option(help="why it is handed over")] = "compliance evidence",
    actor: Annotated[str, typer.Option(help="who is exporting")] = "compliance",
    force: _Force = False,
    consistency: Annotated[
        bool,
        typer.Option(
            "--consistency", help="add consistency proofs from the checkpoints kept (≤ 64)"
        ),
    ] = False,
    witnesses_required: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="prove in the newest checkpoint K of the configured witnesses "
            "(BACKCHECK_WITNESS_KEYS) cosigned, carrying their cosignatures; exit 75 when "
            "none covers the subject's records",
            metavar="K",
        ),
    ] = None,
) -> None:
    """Export one subject's events with inclusion proofs in a checkpoint note signed now (a
    backcheck.evidence.v2 bundle, checked by verify_bundle.py alone), or with
    --witnesses-required K in the newest checkpoint K witnesses cosigned (records after it are
    left out: the export's own disclosure among them). The export is a disclosure of personal
    data: it is recorded (DataDisclosed) before the file exists, once the file is known to be
    writable and, with K, a cosigned checkpoint to cover the records (else nothing is recorded)."""
    from infra.audit.trail import (
        check_cosigned,
        check_evidence_output,
        evidence_export,
        file_evidence,
    )
    from infra.config import Settings
    from services.evidence import ExportEvidence

    try:
        settings = Settings.load()
        check_evidence_output(settings, out, force=force)  # first: then record, then write
        application, settings = open_app(existing=True)
        check_cosigned(application, settings, subject, witnesses_required)
        exported = evidence_export(
            application, settings, consistency=consistency, witnesses_required=witnesses_required
        ).export(
            parsed(ExportEvidence, candidate_id=subject, recipient=to, purpose=purpose, actor=actor)
        )
        path = file_evidence(settings, exported, out, force=force)
    except Exception as e:
        fail(e)
        return
    console.print(
        f"{exported.events} events about {subject}, proven in the checkpoint up to position "
        f"{exported.checkpoint_position}: {markup_safe(path)} ({len(exported.bundle):,} bytes)"
    )


@audit.command("check")
def audit_check(
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="violations as JSON lines, then a summary line (events, violations)"
        ),
    ] = False,
) -> None:
    """Replay the whole stream and report every broken rule with its position (exit 1 if any)."""
    try:
        application, _ = open_app(existing=True)
        found = list(application.violations())
        events = application.recorder.max_notification_id() or 0
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        for v in found:
            row = {**v.__dict__, "aggregate_id": str(v.aggregate_id)}
            sys.stdout.write(json.dumps({**row, "candidate_id": str(v.candidate_id)}) + "\n")
        sys.stdout.write(json.dumps({"events": events, "violations": len(found)}) + "\n")
    elif not found:
        console.print(Text.assemble(("no violations", "green"), f" in {events} events"))
    else:
        table = Table("pos", "rule broken", "aggregate", "candidate", "detail")
        for v in found:
            table.add_row(
                *cells(
                    v.position,
                    v.rule,
                    str(v.aggregate_id)[:8],
                    str(v.candidate_id)[:8],
                    v.detail,
                )
            )
        console.print(table)
        err.print(Text(f"{len(found)} violation(s)", style="red"))
    raise typer.Exit(1 if found else 0)
