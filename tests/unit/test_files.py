"""Files written whole (infra/files.py): in place all at once, never beside a draft."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from infra.files import write_whole
from infra.privacy.providers import load_master_key


def test_a_file_is_written_whole_private_and_leaves_no_draft(tmp_path: Path) -> None:
    path = tmp_path / "master.key"

    write_whole(path, b"one\n")
    write_whole(path, b"two\n")  # replaced

    assert path.read_bytes() == b"two\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.key"]


def test_without_replace_the_file_there_stays_and_the_writer_is_told(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    write_whole(path, b"first\n", replace=False)

    with pytest.raises(FileExistsError):
        write_whole(path, b"second\n", replace=False)

    assert path.read_bytes() == b"first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.key"]


def test_the_data_and_the_folder_are_synced_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "state.json"

    write_whole(path, b"{}")

    assert len(synced) == 2
    assert Path(synced[0]).parent == tmp_path  # the draft, before it was put in place
    assert synced[1] == str(tmp_path)  # then the folder holding its new name


def test_a_new_master_key_is_on_disk_before_anything_is_wrapped_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A master key file left empty by a power cut after data keys were wrapped by it (and
    committed, which the store syncs) would lose them all: its bytes and its name are synced
    before `load_master_key` returns it."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "keys" / "master.key"

    key = load_master_key(path, create=True)

    assert path.read_text() == key.hex() + "\n"
    assert str(path.parent) in synced
    assert any(Path(s).parent == path.parent and s != str(path.parent) for s in synced)
