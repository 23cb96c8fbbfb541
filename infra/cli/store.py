"""The event store itself: `store migrate` (a copy into a new store, personal values sealed on
the way, infra/store/migration.py) and `store verify-map` (its signed position map)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.text import Text

from infra.cli.common import app, console, err, fail
from infra.terminal import visible

if TYPE_CHECKING:
    from infra.store.migration import Summary

store_cli = typer.Typer(help="The event store itself: copy it into a new store; check the copy.")
app.add_typer(store_cli, name="store")


@store_cli.command("migrate")
def migrate(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="the new, empty store: sqlite:///FILE or postgresql://USER@HOST:PORT/DB?schema=S",
        ),
    ],
    to_data_dir: Annotated[
        Path | None,
        typer.Option(
            help="the new store's data directory: its checkpoints and position map (default "
            "for a SQLite target: the directory of its file; required for PostgreSQL)"
        ),
    ] = None,
    actor: Annotated[str, typer.Option(help="who migrates, as recorded")] = "operator",
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="events per transaction")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="the summary as one JSON object")] = False,
) -> None:
    """Copy every event of the configured store into a new store, in order: the old chain
    verified first, personal values sealed under the new store's keys (an erased subject's
    stay unreadable), the new store's first event recording the old head and its latest
    signed checkpoint, and a signed map of old positions to new written beside it. Cut off,
    run it again: it goes on where it stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from infra.config import Settings
    from infra.store.migration import migrate as run
    from infra.store.migration_stores import target_settings

    try:
        source = Settings.load()
        target = target_settings(source, to, to_data_dir)
        columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        hidden = as_json or not err.is_terminal
        with Progress(
            "[progress.description]{task.description}",
            *columns,
            console=err,
            disable=hidden,
            transient=True,
        ) as bar:
            task = bar.add_task("verifying, then copying", total=None)
            summary = run(
                source,
                target,
                actor,
                lambda done, total: bar.update(task, completed=done, total=total),
                batch,
            )
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        sys.stdout.write(orjson.dumps(summary.as_dict()).decode() + "\n")
    else:
        _report(summary)
    raise typer.Exit(1 if summary.left_behind else 0)


def _report(summary: Summary) -> None:
    values = summary.values
    resumed = (
        f" (went on after old position {summary.resumed_after})" if summary.resumed_after else ""
    )
    console.print(
        Text(
            f"copied {summary.events} event(s) of {visible(summary.source)} into "
            f"{visible(summary.target)}{resumed}; verified up to position "
            f"{summary.source_head.position} ({summary.source_head.hash.hex()[:16]}…), "
            f"recorded at position {summary.record_position}"
        )
    )
    console.print(
        Text(
            f"personal values: {values.sealed} sealed ({values.sealed_from_clear} of them kept "
            f"in clear before), {values.erased} erased kept unreadable, {values.key_missing} "
            "with their key missing carried as they were"
        )
    )
    console.print(Text(f"position map: {visible(summary.map_path)} ({summary.map_rows} rows)"))
    if summary.new_checkpoint is not None:
        console.print(
            Text(
                f"the new store's head is signed at position {summary.new_checkpoint.position} "
                "(kept in its data directory's checkpoints)"
            )
        )
    if summary.left_behind:
        err.print(
            Text(
                f"{summary.left_behind} event(s) were written to the old store after its head "
                "was taken and are not in the new store: stop its writers and migrate again "
                "into a new store",
                style="red",
            )
        )


@store_cli.command("verify-map")
def verify_map(
    path: Annotated[Path, typer.Argument(help="the position map (DATA_DIR/migration/…)")],
    public_key: Annotated[
        Path | None, typer.Option(help="the trusted checkpoint key (default: BACKCHECK_VERIFY_KEY)")
    ] = None,
    store: Annotated[
        bool,
        typer.Option(
            "--store",
            help="also hold it to the configured store (the migrated one): its migration "
            "record, the old checkpoint in it, and every row's event",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the verdict as JSON")] = False,
) -> None:
    """Check a migration's position map against its signature (and, with --store, against
    the new store): exit 0 when it holds, 1 when it was changed."""
    from infra.audit.checkpoint import load_public_key
    from infra.audit.sources import open_source
    from infra.config import Settings
    from infra.store.migration_check import check_store
    from infra.store.position_map import PositionMapError
    from infra.store.position_map import verify_map as check

    try:
        settings = Settings.load()
        key = load_public_key(public_key or settings.verify_key_path)
        verdict = check(path, key)
        if store:
            with open_source(settings) as records:
                problems = check_store(path, verdict, records, key)
            if problems:
                raise PositionMapError(f"the store is not the map's: {problems[0]}")
    except PositionMapError as e:
        if as_json:
            sys.stdout.write(orjson.dumps({"intact": False, "problem": str(e)}).decode() + "\n")
        else:
            err.print(Text.assemble(("NOT VALID", "red"), f": {visible(e)}"))
        raise typer.Exit(1) from None
    except Exception as e:
        fail(e, as_json)
        return
    if as_json:
        body = {"intact": True, "rows": verdict.rows, "key_id": verdict.key_id, **verdict.header}
        sys.stdout.write(orjson.dumps(body).decode() + "\n")
        return
    held = ", and the store holds every one" if store else ""
    console.print(
        Text.assemble(
            ("intact", "green"),
            f": {verdict.rows} positions mapped, signed by key {verdict.key_id}{held}",
        )
    )
