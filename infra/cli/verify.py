"""`audit verify`: the store's chain, records and tree recomputed and held to its signed
checkpoints, or an evidence bundle checked offline; the verdict printed (exit 0 intact, 1
tampered or not valid, 2 a checkpoint, key or bundle that cannot be used).

The tamper-evidence adapter is imported by the command, so `backcheck audit --help` loads
none of it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from infra.cli.audit import audit, progress_bar
from infra.cli.common import console, err, fail
from infra.terminal import visible

if TYPE_CHECKING:
    from infra.audit.verification import Problem, Verdict


@audit.command()
def verify(
    checkpoint_files: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            "-c",
            help="a signed checkpoint to hold the chain to (default: every one kept in "
            "DATA_DIR/checkpoints)",
        ),
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
    """Recompute the hash chain over every stored event and hold it to the signed checkpoints;
    exit 0 when intact, 1 otherwise."""
    from infra.audit.trail import StoreVerification
    from infra.config import Settings

    if bundle is not None:
        _verify_bundle(bundle, public_key, as_json)
        return
    try:
        settings = Settings.load()
        with (
            StoreVerification(settings, checkpoint_files, public_key, workers) as verification,
            progress_bar("verifying", verification.total, hidden=as_json) as progress,
        ):
            verdict = verification.run(progress)
    except Exception as e:
        fail(e, as_json)
        return
    _report(verdict, [str(path) for path in verification.skipped], as_json)


def _report(verdict: Verdict, skipped: list[str], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(
            json.dumps(verdict.as_dict() | ({"skipped": skipped} if skipped else {})) + "\n"
        )
        raise typer.Exit(0 if verdict.intact else 1)
    if verdict.intact:
        held = f"{verdict.checkpoints} checkpoint(s) hold"
        console.print(
            Text.assemble(
                ("intact", "green"),
                (", but no checkpoint could be held" if verdict.unheld and not verdict.checkpoints
                 else "", "yellow"),
                f": {verdict.checked} events, head {verdict.head.position} "
                f"{verdict.head.hash.hex()[:16]}…, {held}",
            )
        )  # fmt: skip
    else:
        problems = sorted(verdict.problems, key=lambda p: p.position)
        err.print(Text.assemble(("TAMPERED", "red"), f": {_told(problems[0], first=True)}"))
        for p in problems[1:20]:
            err.print(Text(f"  also {_told(p, first=False)}"))
    if verdict.unheld:
        _unheld(verdict)
    if verdict.keys_unchecked:
        (console if verdict.intact else err).print(
            Text(f"the data keys were not held to their values: {visible(verdict.keys_unchecked)}")
        )
    raise typer.Exit(0 if verdict.intact else 1)


def _told(problem: Problem, *, first: bool) -> str:
    """A problem as one line: where history departs, or, when only a checkpoint's boundary is
    proven, that the history up to it differs and where the change may begin."""
    detail = visible(problem.detail)
    if problem.after is None:
        where = "first bad position" if first else "at"
        return f"{where} {problem.position}: {problem.kind}: {detail}"
    since = (
        f"the checkpoint at {problem.after} holds, so the change lies after position "
        f"{problem.after}"
        if problem.after
        else "no checkpoint before it holds, so the change may lie anywhere up to it"
    )
    return f"{problem.kind}: {detail}; {since}"


def _unheld(verdict: Verdict) -> None:
    """The kept checkpoints not held, on the verdict's stream: a store none of them held was
    not checked for a history rewritten with a recomputed chain."""
    out = console if verdict.intact else err
    count = len(verdict.unheld)
    consequence = (
        "none of them held the chain, so a history rewritten with a recomputed chain would not show"
        if not verdict.checkpoints
        else "the others held it"
    )
    out.print(
        Text(
            f"{count} kept checkpoint(s) not held: their signing key is not kept beside the "
            f"trusted one; {consequence}. Hold them with --public-key KEY -c FILE",
            style="yellow",
        )
    )
    for unheld in verdict.unheld[:20]:
        out.print(Text(f"  not held: {visible(unheld.checkpoint)}: {visible(unheld.reason)}"))


def _verify_bundle(path: Path, public_key: Path | None, as_json: bool) -> None:
    from infra.audit.trail import verify_bundle_file
    from infra.config import Settings

    try:
        settings = Settings.load()
        verdict = verify_bundle_file(path, public_key or settings.verify_key_path, settings)
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(json.dumps({**verdict.__dict__, "intact": verdict.intact}) + "\n")
    elif verdict.intact:
        console.print(
            Text.assemble(
                ("intact", "green"),
                f": {verdict.events} events about {visible(verdict.subject)}, proven in "
                f"the signed checkpoint at {verdict.checkpoint_position}",
            )
        )
    else:
        err.print(Text.assemble(("NOT VALID", "red"), f": {visible(path)}"))
        for problem in verdict.problems:
            err.print(Text(f"  {visible(problem)}"))
    raise typer.Exit(0 if verdict.intact else 1)
