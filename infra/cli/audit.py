"""The compliance officer's tools: `audit keygen|checkpoint|verify|export|timeline|as-of|check`."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from infra.bootstrap import build_app
from infra.cli.common import (
    app,
    console,
    err,
    fail,
    open_app,
)
from infra.config import Settings

audit = typer.Typer(help="The compliance officer's tools: verify, checkpoint, replay, export.")
app.add_typer(audit, name="audit")


@audit.command()
def keygen(
    out: Annotated[
        Path | None, typer.Option(help="directory for the key pair (default: DATA_DIR/keys)")
    ] = None,
) -> None:
    """Create the Ed25519 key pair that signs checkpoints."""
    from infra.audit.checkpoint import CheckpointError, generate_keys

    settings = Settings.from_env()
    try:
        private, public = generate_keys(out or settings.signing_key_path.parent)
    except CheckpointError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    console.print(f"private key: {private}  (keep it secret; mode 600)")
    console.print(f"public key:  {public}  (give it to whoever verifies checkpoints)")


@audit.command()
def checkpoint(
    out: Annotated[
        Path | None,
        typer.Option(help="where to write it (default: DATA_DIR/checkpoints/checkpoint-POS.json)"),
    ] = None,
) -> None:
    """Sign the chain head (position, hash, time) for an outside witness to keep."""
    from datetime import UTC, datetime

    from infra.audit.checkpoint import CheckpointError, load_private_key, sign
    from infra.audit.verification import open_source

    settings = Settings.from_env()
    try:
        key = load_private_key(settings.signing_key_path)
        build_app(settings).close()  # creates the store and its tables on first use
        with open_source(settings) as source:
            head = source.head()
    except CheckpointError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    signed = sign(head, datetime.now(UTC), key)
    path = out or settings.checkpoints_dir / f"checkpoint-{head.position}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(signed.to_json())
    console.print(f"checkpoint at position {head.position}, hash {head.hash.hex()[:16]}…")
    console.print(f"written to {path}")


@audit.command()
def verify(
    checkpoint_files: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", "-c", help="a signed checkpoint to hold the chain to"),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option(help="the trusted checkpoint key (default: BACKCHECK_VERIFY_KEY)")
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option(help="verify this evidence bundle offline, not the store")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the verdict as JSON")] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="processes to verify with (default: all cores on large stores)"),
    ] = None,
) -> None:
    """Recompute the hash chain over every stored event; exit 0 when intact, 1 otherwise."""
    if bundle is not None:
        _verify_bundle(bundle, public_key, as_json)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from infra.audit.checkpoint import CheckpointError, check_signature, load_public_key, read
    from infra.audit.verification import Problem, open_source
    from infra.audit.verification import verify as run_verify

    settings = Settings.from_env()
    checkpoints = []
    bad_signatures: list[Problem] = []
    try:
        if checkpoint_files:
            key = load_public_key(public_key or settings.verify_key_path)
            for path in checkpoint_files:
                cp = read(path)
                problem = check_signature(cp, key)
                if problem:
                    bad_signatures.append(Problem(cp.position, "checkpoint", f"{path}: {problem}"))
                else:
                    checkpoints.append(cp)
        with open_source(settings) as source:
            total = source.count()
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err,
                disable=as_json or total < 50_000,
                transient=True,
            ) as bar:
                task = bar.add_task("verifying", total=total)
                verdict = run_verify(
                    source,
                    checkpoints,
                    lambda n: bar.update(task, completed=n),
                    opener=functools.partial(open_source, settings),
                    workers=workers or ((os.cpu_count() or 1) if total >= 200_000 else 1),
                )
    except CheckpointError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    verdict.problems.extend(bad_signatures)
    verdict.checkpoints += len(bad_signatures)
    if as_json:
        sys.stdout.write(json.dumps(verdict.as_dict()) + "\n")
    elif verdict.intact:
        console.print(
            f"[green]intact[/]: {verdict.checked} events, head {verdict.head.position} "
            f"{verdict.head.hash.hex()[:16]}…, {verdict.checkpoints} checkpoint(s) hold"
        )
    else:
        first = verdict.first
        assert first is not None
        err.print(
            f"[red]TAMPERED[/]: first bad position {first.position}: {first.kind}: {first.detail}"
        )
        for p in sorted(verdict.problems, key=lambda p: p.position)[1:20]:
            err.print(f"  also at {p.position}: {p.kind}: {p.detail}")
    raise typer.Exit(0 if verdict.intact else 1)


def _verify_bundle(path: Path, public_key: Path | None, as_json: bool) -> None:
    from infra.audit.checkpoint import CheckpointError, load_public_key
    from infra.audit.evidence import verify_bundle

    settings = Settings.from_env()
    try:
        key = load_public_key(public_key or settings.verify_key_path)
        data = path.read_bytes()
    except (CheckpointError, OSError) as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    verdict = verify_bundle(data, key)
    if as_json:
        sys.stdout.write(json.dumps({**verdict.__dict__, "intact": verdict.intact}) + "\n")
    elif verdict.intact:
        console.print(
            f"[green]intact[/]: {verdict.events} events about {verdict.subject}, proven up to "
            f"the signed checkpoint at position {verdict.checkpoint_position}"
        )
    else:
        err.print(f"[red]NOT VALID[/]: {path}")
        for problem in verdict.problems:
            err.print(f"  {problem}")
    raise typer.Exit(0 if verdict.intact else 1)


@audit.command("export")
def audit_export(
    subject: Annotated[UUID, typer.Option(help="the candidate (data subject)")],
    out: Annotated[
        Path | None, typer.Option(help="bundle file (default: evidence-SUBJECT-POS.bundle)")
    ] = None,
    to: Annotated[str, typer.Option(help="who receives the bundle")] = "compliance archive",
    purpose: Annotated[str, typer.Option(help="why it is handed over")] = "compliance evidence",
    actor: Annotated[str, typer.Option(help="who is exporting")] = "compliance",
) -> None:
    """Export one subject's events with chain proofs and a checkpoint signed now. The export
    is a disclosure of personal data: it is recorded (DataDisclosed) before the file exists."""
    from datetime import UTC, datetime

    from infra.audit.checkpoint import CheckpointError, load_private_key
    from infra.audit.evidence import BundleError, export_bundle
    from infra.audit.verification import open_source
    from services.dto import RecordDisclosure

    settings = Settings.from_env()
    try:
        key = load_private_key(settings.signing_key_path)
        application = build_app(settings)
        application.record_disclosure(
            RecordDisclosure(
                candidate_id=subject,
                recipient=to,
                purpose=purpose,
                channel="evidence bundle",
                actor=actor,
            )
        )
        entries = list(application.timeline(subject))  # one replay: positions and timeline
        positions = [e.position for e in entries]
        timeline = [e.model_dump(mode="json") for e in entries]
        with open_source(settings) as source:
            data, checkpoint = export_bundle(
                source, subject, positions, key, datetime.now(UTC), timeline
            )
    except (CheckpointError, BundleError) as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from None
    except Exception as e:
        fail(e)
        return
    path = out or Path(f"evidence-{subject}-{checkpoint.position}.bundle")
    path.write_bytes(data)
    settings.checkpoints_dir.mkdir(parents=True, exist_ok=True)
    (settings.checkpoints_dir / f"checkpoint-{checkpoint.position}.json").write_text(
        checkpoint.to_json()
    )
    console.print(
        f"{len(positions)} events about {subject}, proven up to the checkpoint at position "
        f"{checkpoint.position}: {path} ({len(data):,} bytes)"
    )


@audit.command("timeline")
def audit_timeline(
    subject: Annotated[UUID, typer.Option(help="the candidate (data subject)")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Everything that happened to one candidate, in order: who, what, when, which consent."""
    try:
        application, _ = open_app()
        entries = list(application.timeline(subject))
        if not entries:
            from domain.errors import NotFoundError

            raise NotFoundError(f"no events about candidate {subject} in the store")
        if as_json:
            for entry in entries:
                sys.stdout.write(entry.model_dump_json() + "\n")
            return
        table = Table("pos", "when (UTC)", "who", "what", "consent")
        for entry in entries:
            table.add_row(
                str(entry.position),
                entry.time.strftime("%Y-%m-%d %H:%M:%S"),
                entry.who,
                entry.what,
                str(entry.consent_id)[:8] if entry.consent_id else "-",
            )
        console.print(table)
    except Exception as e:
        fail(e, as_json)


@audit.command("as-of")
def audit_as_of(
    moment: Annotated[str, typer.Argument(help="ISO 8601 time, e.g. 2026-11-22T10:00:00+00:00")],
    subject: Annotated[UUID | None, typer.Option(help="only this candidate")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Rebuild the case overview as it was at a moment, from the event store alone."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(moment)
    except ValueError:
        raise typer.BadParameter(
            f"{moment!r} is not an ISO 8601 time (e.g. 2026-11-22T10:00:00+00:00)",
            param_hint="MOMENT",
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        application, _ = open_app()
        rows = application.as_of(when, subject)
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    table = Table("candidate", "consents", "investigations", "reports")
    for row in rows:
        table.add_row(
            row["candidate_id"][:8] + ("  (erasure requested)" if row["erasure_requested"] else ""),
            "\n".join(f"{k[:8]} {v}" for k, v in row["consents"].items()),
            "\n".join(f"{k[:8]} {v}" for k, v in row["investigations"].items()),
            "\n".join(f"{k[:8]} {v}" for k, v in row["reports"].items()),
        )
    console.print(f"as of {when.isoformat()}")
    console.print(table)


@audit.command("check")
def audit_check(
    as_json: Annotated[bool, typer.Option("--json", help="violations as JSON lines")] = False,
) -> None:
    """Replay the whole stream and report every broken rule with its position (exit 1 if any)."""
    try:
        application, _ = open_app()
        found = list(application.violations())
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        for v in found:
            sys.stdout.write(
                json.dumps(
                    {
                        **v.__dict__,
                        "aggregate_id": str(v.aggregate_id),
                        "candidate_id": str(v.candidate_id),
                    }
                )
                + "\n"
            )
    elif not found:
        console.print(
            f"[green]no violations[/] in {application.recorder.max_notification_id() or 0} events"
        )
    else:
        table = Table("pos", "rule broken", "aggregate", "candidate", "detail")
        for v in found:
            table.add_row(
                str(v.position), v.rule, str(v.aggregate_id)[:8], str(v.candidate_id)[:8], v.detail
            )
        console.print(table)
        err.print(f"[red]{len(found)} violation(s)[/]")
    raise typer.Exit(1 if found else 0)
