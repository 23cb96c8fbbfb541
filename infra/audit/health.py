"""The chain's health as the dashboard shows it: the newest signed checkpoint kept for the
outside witness (DATA_DIR/checkpoints, where `backcheck audit checkpoint`, the scheduler and
`audit export` keep them).

Checkpoints are kept as C2SP notes, `checkpoint-SIZE.note` (SIZE: the records the signed tree
holds), and, from before, as JSON, `checkpoint-POS.json` (POS: the last record's position);
another one of the same number is kept beside it as `checkpoint-N-2.…`. Only the newest of
each form is read (by the number in its name), so asking costs a directory listing however
many are kept; of the two, the one signed last is shown. A note carries no time: its time is
when it was kept (the file's modification time), and its position is the last record in the
tree of its size, looked up in the stored tree (one indexed read). Signatures are not checked
here: `backcheck audit verify` does, against the whole chain. Nothing records a verification
yet, so the last verification stays unknown (None).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from infra.audit.checkpoint import CheckpointError, read
from infra.audit.log_checkpoint import read_note
from infra.audit.sources import open_source
from infra.config import Settings
from services.dashboard import ChainHealth

_NAME = re.compile(r"^checkpoint-(\d{1,18})(?:-\d{1,9})?\.(json|note)$")


def newest_checkpoints(directory: Path) -> dict[str, Path]:
    """The kept checkpoint of the highest number in each form ("note", "json"; of several
    under one number, the last kept)."""
    try:
        names = [p.name for p in directory.iterdir()]
    except OSError:  # none kept yet: the directory is made with the first
        return {}
    newest: dict[str, tuple[int, int, str]] = {}
    for name in names:
        if (m := _NAME.match(name)) is not None:
            found = (int(m.group(1)), len(name), name)
            newest[m.group(2)] = max(newest.get(m.group(2), found), found)
    return {form: directory / name for form, (_, _, name) in newest.items()}


def chain_health(settings: Settings) -> ChainHealth:
    """The newest kept checkpoint: its position, the records it covers and its time (None
    for each when none is kept or none can be read: the dashboard shows the chain as never
    checkpointed)."""
    kept = newest_checkpoints(settings.checkpoints_dir)
    found = [
        health
        for health in (_note(settings, kept.get("note")), _json(kept.get("json")))
        if health is not None
    ]
    if not found:
        return ChainHealth()
    return max(found, key=lambda h: h.last_checkpoint_at or datetime.min.replace(tzinfo=UTC))


def _note(settings: Settings, path: Path | None) -> ChainHealth | None:
    if path is None:
        return None
    try:
        _, checkpoint = read_note(path)
        at = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except (CheckpointError, OSError):
        return None
    position = None
    if checkpoint.size:
        with open_source(settings) as source:
            position = source.leaf_position(checkpoint.size - 1)  # None: not in the stored tree
    return ChainHealth(
        last_checkpoint_position=position if checkpoint.size else 0,
        last_checkpoint_size=checkpoint.size,
        last_checkpoint_at=at,
    )


def _json(path: Path | None) -> ChainHealth | None:
    if path is None:
        return None
    try:
        checkpoint = read(path)
        at = datetime.fromisoformat(checkpoint.time)
    except (CheckpointError, ValueError):
        return None
    if at.tzinfo is None:  # written with an offset; one without is read as UTC
        at = at.replace(tzinfo=UTC)
    return ChainHealth(last_checkpoint_position=checkpoint.position, last_checkpoint_at=at)
