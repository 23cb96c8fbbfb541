"""The chain's health as the dashboard shows it: the newest signed checkpoint kept for the
outside witness (DATA_DIR/checkpoints, where `backcheck audit checkpoint` keeps them).

Only the newest file is read (by the position in its name, `checkpoint-POS.json` or
`checkpoint-POS-N.json`), so asking costs a directory listing however many are kept. Its
signature is not checked here: `backcheck audit verify` does, against the whole chain.
Nothing records a verification yet, so the last verification stays unknown (None).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from infra.audit.checkpoint import CheckpointError, read
from infra.config import Settings
from services.dashboard import ChainHealth

_NAME = re.compile(r"^checkpoint-(\d{1,18})(?:-\d{1,9})?\.json$")


def newest_checkpoint(directory: Path) -> Path | None:
    """The kept checkpoint of the highest position (of several at one position, the last)."""
    try:
        names = [p.name for p in directory.iterdir()]
    except OSError:  # none kept yet: the directory is made with the first
        return None
    found = [(int(m.group(1)), len(name), name) for name in names if (m := _NAME.match(name))]
    return directory / max(found)[2] if found else None


def chain_health(settings: Settings) -> ChainHealth:
    """The newest kept checkpoint's position and time (None for both when none is kept or it
    cannot be read: the dashboard shows the chain as never checkpointed)."""
    path = newest_checkpoint(settings.checkpoints_dir)
    if path is None:
        return ChainHealth()
    try:
        checkpoint = read(path)
        at = datetime.fromisoformat(checkpoint.time)
    except (CheckpointError, ValueError):
        return ChainHealth()
    return ChainHealth(last_checkpoint_position=checkpoint.position, last_checkpoint_at=at)
