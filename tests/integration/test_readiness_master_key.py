"""A process whose master key is no longer its store's (a rotation run by another process
moved the store to a new key) is not ready: `/readyz` answers 503 and says why, while
`/healthz` still answers (it is not to be restarted blindly: it needs the store's key)."""

from __future__ import annotations

from pathlib import Path

from infra.bootstrap import build_app
from infra.config import Settings
from infra.privacy.keystore import SQLKeyStore
from infra.privacy.providers import FileKeyProvider
from infra.privacy.rotation import rotate_master
from tests.http import Served


def test_the_server_is_not_ready_once_its_master_key_is_not_the_stores(
    api: Served, settings: Settings, tmp_path: Path
) -> None:
    answer = api.client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["master_key"] == "ok"

    other = build_app(settings)  # another process rotates the store to a new key
    try:
        assert isinstance(other.keys, SQLKeyStore)
        new = FileKeyProvider.from_file(tmp_path / "new-master.key", create=True)
        rotate_master(other, other.keys, new)
    finally:
        other.close()

    answer = api.client.get("/readyz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["ready"] is False
    assert body["checks"]["store"] == "ok"
    assert body["checks"]["master_key"] == (
        f"BACKCHECK_MASTER_KEY_FILE: the key in {settings.master_key_path} is not this "
        "store's master key: the store's data keys do not open with it (rotated to another "
        "key since this process started?); restart it with the store's key"
    )
    assert api.client.get("/healthz").status_code == 200
