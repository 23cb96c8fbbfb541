"""The master key file: created once, mode 600; processes starting together (a relay, workers
and the API in docker compose) all end up with the same key, never each their own. A key file
others may read or write is refused, as ssh refuses such a private key (issue 17, defect 13);
the store keeps a check value of its key, from which the key cannot be found (defect 1)."""

from __future__ import annotations

import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from infra.config import ConfigError
from infra.privacy.keystore import key_check_value, load_master_key


def _load(path: str) -> str:
    return load_master_key(Path(path), create=True).hex()


def test_created_once_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    key = load_master_key(path, create=True)

    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(path, create=False) == key
    assert list(path.parent.iterdir()) == [path]  # no draft left behind


def test_processes_racing_to_create_it_share_one_key(tmp_path: Path) -> None:
    paths = [str(tmp_path / str(n) / "master.key") for n in range(10)]
    with ProcessPoolExecutor(6) as pool:
        for path in paths:
            assert len(set(pool.map(_load, [path] * 6))) == 1


def test_a_missing_key_is_refused_when_it_may_not_be_created(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BACKCHECK_MASTER_KEY_FILE: no master key at"):
        load_master_key(tmp_path / "master.key", create=False)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o602, 0o620, 0o666])
def test_a_key_file_others_may_read_or_write_is_refused_with_the_fix(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "master.key"
    path.write_text(bytes(range(32)).hex() + "\n")
    path.chmod(mode)

    with pytest.raises(ConfigError) as refused:
        load_master_key(path, create=False)

    message = str(refused.value)
    assert message.startswith(f"BACKCHECK_MASTER_KEY_FILE: {path} ")
    assert f"mode {mode:04o}" in message
    assert message.endswith(f"chmod 600 {path}")
    assert "\n" not in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_key_file_only_its_owner_may_use_is_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    path.write_text(bytes(range(32)).hex() + "\n")
    path.chmod(mode)

    assert load_master_key(path, create=False) == bytes(range(32))


def test_the_check_value_tells_keys_apart_and_gives_none_of_the_key_away() -> None:
    one, other = bytes(range(32)), bytes(range(1, 33))

    assert key_check_value(one) == key_check_value(bytes(range(32)))
    assert key_check_value(one) != key_check_value(other)
    assert len(key_check_value(one)) == 32
    for key in (one, other):
        check = key_check_value(key)
        assert all(key[i : i + 8] not in check for i in range(0, 32, 8))
