"""`audit prove` and `audit consistency`: RFC 9162 proofs against signed checkpoint notes, built
from the stored tree and verified before they are printed (infra/audit/proving.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from infra.cli.audit import audit
from infra.cli.common import console, fail, load_settings
from infra.terminal import markup_safe

_Json = Annotated[bool, typer.Option("--json", help="the proof as one JSON object")]
_Key = Annotated[
    Path | None,
    typer.Option(help="the trusted checkpoint key, PEM (default: BACKCHECK_VERIFY_KEY)"),
]


def _print(found: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(found) + "\n")
        return
    for line in lines:
        console.print(markup_safe(line))


@audit.command("prove")
def prove(
    event: Annotated[
        str | None,
        typer.Option(help="the event AGGREGATE_ID[:VERSION] (version 1 when not given)"),
    ] = None,
    position: Annotated[int | None, typer.Option(min=1, help="the record at this position")] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="a checkpoint note (default: one signed now, and kept)"),
    ] = None,
    public_key: _Key = None,
    as_json: _Json = False,
) -> None:
    """Print the inclusion proof of one event in a signed checkpoint (leaf index, tree size,
    hashes), verified first. Exit 2 bad input or a checkpoint not signed by the trusted key, 4
    an event or position the store or the checkpoint does not hold, 65 a checkpoint the store
    contradicts."""
    from infra.audit.checkpoint import load_public_key
    from infra.audit.log_tree import LogTree
    from infra.audit.merkle import ProofError
    from infra.audit.proving import event_position, hold, read_checkpoint
    from infra.audit.proving import prove as build
    from infra.audit.trail import sign_head
    from infra.audit.verification import open_source

    try:
        if (event is None) == (position is None):
            raise ProofError("give one of --event ID or --position N")
        settings = load_settings(existing=True)  # the raw records: no master key needed
        key = load_public_key(public_key or settings.verify_key_path)
        fresh = None if checkpoint else sign_head(settings)
        with open_source(settings) as source:
            tree = LogTree(source)
            if fresh is not None:
                held = hold(str(fresh[0].note).encode(), str(fresh[1]), key, tree)
            else:
                assert checkpoint is not None
                held = read_checkpoint(checkpoint, key, tree)
            at = position if position is not None else event_position(source, event or "")
            found = build(tree, held, at)
    except Exception as e:
        fail(e, as_json)
        return
    _print(
        found,
        as_json,
        [
            f"position {found['position']} is leaf {found['leaf_index']} of "
            f"{found['tree_size']} in checkpoint {held.source} ({found['origin']}); "
            "the proof verifies",
            f"root hash {found['root_hash']}",
            f"leaf hash {found['leaf_hash']}",
            *(f"  {h}" for h in found["inclusion_proof"]),
        ],
    )


@audit.command("consistency")
def consistency(
    old: Annotated[Path, typer.Argument(help="the older checkpoint note")],
    new: Annotated[Path, typer.Argument(help="the newer checkpoint note")],
    public_key: _Key = None,
    as_json: _Json = False,
) -> None:
    """Print the consistency proof between two signed checkpoint notes (the newer extends the
    older), verified first. Exit 2 bad input, OLD newer than NEW or a checkpoint not signed by
    the trusted key, 65 checkpoints that fork (from each other or from the store)."""
    from infra.audit.checkpoint import load_public_key
    from infra.audit.log_tree import LogTree
    from infra.audit.proving import consistency as build
    from infra.audit.proving import read_checkpoint
    from infra.audit.verification import open_source

    try:
        settings = load_settings(existing=True)  # the raw records: no master key needed
        key = load_public_key(public_key or settings.verify_key_path)
        with open_source(settings) as source:
            tree = LogTree(source)
            found = build(tree, read_checkpoint(old, key, tree), read_checkpoint(new, key, tree))
    except Exception as e:
        fail(e, as_json)
        return
    _print(
        found,
        as_json,
        [
            f"{old} (size {found['old_size']}) is a prefix of {new} (size {found['new_size']}) "
            f"in {found['origin']}; the proof verifies",
            *(f"  {h}" for h in found["consistency_proof"]),
        ],
    )
