"""`keys rotate-master` under load (issue 21): writers go on while every data key is rewrapped;
afterwards every value opens with the new key alone, and the old key can be destroyed. A
rotation cut off midway is finished by running it again; both ends are recorded."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.candidate import Candidate
from domain.master_key import (
    MasterKeyRotation,
    NothingToAbandonError,
    RotationUnfinishedError,
    rotation_id,
)
from infra.bootstrap import build_app
from infra.config import ConfigError, Settings
from infra.privacy.keystore import SQLKeyStore, WrongMasterKeyError
from infra.privacy.pkcs11 import Pkcs11KeyProvider
from infra.privacy.providers import FileKeyProvider, KeyProvider
from infra.privacy.rotation import rotate_master
from services.application import Backcheck
from services.dto import RegisterCandidate
from tests.hsm import Token, key_label
from tests.integration.test_master_key_binding import sql

BEFORE = 120  # candidates registered before the rotation: several batches of BATCH
BATCH = 25


def register(app: Backcheck, name: str) -> UUID:
    return app.register_candidate(RegisterCandidate(name=name, actor="hr:li.na")).candidate_id


def keys_of(app: Backcheck) -> SQLKeyStore:
    assert isinstance(app.keys, SQLKeyStore)
    return app.keys


# The data key view rows' MACs are made with (infra/views/integrity.py): wrapped by the master
# key like the subjects', so rewrapped with them.
VIEWS_KEY = 1


def masters(settings: Settings, column: str = "master") -> dict[str | None, int]:
    """How many data keys each master key wraps (`next_master`: during a rotation)."""
    rows = sql(settings, f"SELECT {column}, COUNT(*) FROM backcheck_keys GROUP BY {column}")
    return {r[0]: int(r[1]) for r in rows}


class Writers:
    """A thread registering candidates through the application until told to stop."""

    def __init__(self, app: Backcheck) -> None:
        self.app = app
        self.written: dict[UUID, str] = {}
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            name = f"Writer Candidate {n}"
            try:
                self.written[register(self.app, name)] = name
            except BaseException as e:
                self.errors.append(e)
                return
            n += 1

    def __enter__(self) -> Writers:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(60)


def rotate_under_load(
    settings: Settings, new: KeyProvider, reopen: Settings
) -> tuple[dict[UUID, str], Backcheck]:
    """Rotates the store of `settings` to `new` while a thread writes; returns every
    candidate written and the application opened again with `reopen`'s key alone."""
    app = build_app(settings)
    written = {
        register(app, f"Before Candidate {i}"): f"Before Candidate {i}" for i in range(BEFORE)
    }
    old_id = keys_of(app).provider.key_id
    with Writers(app) as writers:
        while len(writers.written) < 5 and not writers.errors:  # the writers are going
            threading.Event().wait(0.01)
        during = len(writers.written)
        report = rotate_master(app, keys_of(app), new, batch=BATCH)
        after = len(writers.written)
        while len(writers.written) < after + 5 and not writers.errors:  # and go on after it
            threading.Event().wait(0.01)
    assert writers.errors == []
    assert len(writers.written) > after > during  # written before, during and after
    assert report.from_key == old_id
    assert report.to_key == new.key_id
    assert report.rewrapped >= BEFORE + during
    assert report.unreadable == 0
    written |= writers.written
    rotation = app.load(MasterKeyRotation, rotation_id(new.key_id))
    assert rotation.finished
    assert (rotation.from_key, rotation.to_key) == (old_id, new.key_id)
    app.close()
    # nothing left to the old key: the candidates' keys and the views' MAC key
    assert masters(settings) == {new.key_id: len(written) + VIEWS_KEY}
    return written, build_app(reopen)


def opens(app: Backcheck, written: dict[UUID, str]) -> None:
    for candidate_id, name in written.items():
        assert app.load(Candidate, candidate_id).identity[0].value == name


def test_file_to_file_under_load_then_the_old_key_is_destroyed(
    settings: Settings, tmp_path: Path
) -> None:
    old = settings.master_key_path
    new_path = tmp_path / "new" / "master.key"
    new = FileKeyProvider.from_file(new_path, create=True)
    moved = settings.model_copy(update={"master_key_file": new_path})
    written, app = rotate_under_load(settings, new, moved)
    app.close()
    old.unlink()  # the old key destroyed
    app = build_app(moved)
    try:
        opens(app, written)
    finally:
        app.close()
    # the old key, had it been kept, is refused now: exit 78 (a ConfigError family line)
    FileKeyProvider.from_file(old, create=True)  # another key at the old place
    with pytest.raises((WrongMasterKeyError, ConfigError)):
        build_app(settings)


def test_file_to_pkcs11_under_load(settings: Settings, softhsm: Token) -> None:
    label = key_label()
    hsm_settings = softhsm.settings(settings, label)
    new = Pkcs11KeyProvider.from_settings(hsm_settings, create=True)
    written, app = rotate_under_load(settings, new, hsm_settings)
    app.close()
    settings.master_key_path.unlink()  # the old key file destroyed
    app = build_app(hsm_settings)
    try:
        opens(app, written)
        assert keys_of(app).provider.kind == "pkcs11"
    finally:
        app.close()


def test_pkcs11_to_pkcs11_on_one_token_under_load(settings: Settings, softhsm: Token) -> None:
    """Both keys on one token, in one process: the providers share its one logged-in session."""
    old_settings = softhsm.settings(settings, key_label())
    new_settings = softhsm.settings(settings, key_label())
    new = Pkcs11KeyProvider.from_settings(new_settings, create=True)
    written, app = rotate_under_load(old_settings, new, new_settings)
    app.close()
    old = Pkcs11KeyProvider.from_settings(old_settings, create=False)
    old.destroy_key()  # the old key destroyed in the token
    old.close()
    app = build_app(new_settings)
    try:
        opens(app, written)
    finally:
        app.close()


class FailingAfter(FileKeyProvider):
    """The new key's holder failing midway (a token pulled out, a process killed): after
    `n` wraps every wrap fails as an unreachable token does."""

    def __init__(self, inner: FileKeyProvider, n: int) -> None:
        super().__init__(inner._key, inner.path)
        self.left = n

    def wrap(self, data_key: bytes) -> bytes:
        if self.left <= 0:
            raise ConfigError("BACKCHECK_PKCS11_MODULE: the token cannot be reached")
        self.left -= 1
        return super().wrap(data_key)


def test_a_rotation_cut_off_midway_is_finished_by_running_it_again(
    settings: Settings, tmp_path: Path
) -> None:
    app = build_app(settings)
    written = {register(app, f"Kept Candidate {i}"): f"Kept Candidate {i}" for i in range(30)}
    app.views.catch_up()  # the views written too, so their MAC key is made before the rotation
    new_path = tmp_path / "new.key"
    new = FileKeyProvider.from_file(new_path, create=True)
    failing = FailingAfter(new, 12)
    with pytest.raises(ConfigError, match="cannot be reached"):
        rotate_master(app, keys_of(app), failing, batch=5)
    # cut off in the third batch: two batches wrapped by the new key beside the old, the third
    # rolled back; every data key still wrapped by the old key, the store bound to it
    assert masters(settings, "next_master") == {new.key_id: 10, None: 20 + VIEWS_KEY}
    assert masters(settings) == {keys_of(app).provider.key_id: 30 + VIEWS_KEY}
    app.close()
    app = build_app(settings)
    opens(app, written)
    rotation = app.load(MasterKeyRotation, rotation_id(new.key_id))
    assert not rotation.finished
    third = FileKeyProvider.from_file(tmp_path / "third.key", create=True)
    with pytest.raises(RotationUnfinishedError, match=f"rotation to master key {new.key_id}"):
        rotate_master(app, keys_of(app), third)
    report = rotate_master(app, keys_of(app), new)
    assert report.resumed
    assert report.rewrapped == 30 + VIEWS_KEY - 10
    app.close()
    settings.master_key_path.unlink()
    moved = settings.model_copy(update={"master_key_file": new_path})
    app = build_app(moved)
    try:
        opens(app, written)
        recorded = app.recorder.select_events(rotation_id(new.key_id))
        assert [r.topic.rsplit(".", 1)[1] for r in recorded] == ["Started", "Finished"]
    finally:
        app.close()


def test_rotating_to_the_store_s_own_key_is_refused(settings: Settings) -> None:
    from infra.privacy.rotation import AlreadyThatKeyError

    app = build_app(settings)
    try:
        same = FileKeyProvider.from_file(settings.master_key_path, create=False)
        with pytest.raises(AlreadyThatKeyError):
            rotate_master(app, keys_of(app), same)
    finally:
        app.close()


def test_a_process_still_holding_the_old_key_is_refused_its_next_new_data_key(
    settings: Settings, tmp_path: Path
) -> None:
    stale = build_app(settings)  # another process, opened before the rotation
    register(stale, "Early Candidate")
    rotating = build_app(settings)
    new = FileKeyProvider.from_file(tmp_path / "new.key", create=True)
    rotate_master(rotating, keys_of(rotating), new)
    rotating.close()
    try:
        with pytest.raises(WrongMasterKeyError, match="rotated to another master key"):
            register(stale, "Late Candidate")
    finally:
        stale.close()
    assert set(masters(settings)) == {new.key_id}


def test_a_rotation_cut_off_after_its_switch_is_recorded_finished_by_running_it_again(
    settings: Settings, tmp_path: Path
) -> None:
    """The store on the new key, the finish not recorded (a crash in between): the command
    run again, with the old key configured or with it deleted, records the finish."""
    from infra.privacy.rotation import _switch
    from tests.e2e.test_cli import run

    app = build_app(settings)
    written = {
        register(app, f"Switched Candidate {i}"): f"Switched Candidate {i}" for i in range(3)
    }
    new_path = tmp_path / "new.key"
    new = FileKeyProvider.from_file(new_path, create=True)
    app.commit(MasterKeyRotation.start(keys_of(app).provider.key_id, new.key_id, 3))
    assert _switch(keys_of(app), keys_of(app).provider, new, set()) == 3
    app.close()
    env = {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
    }
    settings.master_key_path.unlink()  # even with the old key gone
    again = run(env, "keys", "rotate-master", "--to-key-file", str(new_path), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) | {"rotation": None, "from_key": None} == {
        "rotation": None,
        "from_key": None,
        "to_key": new.key_id,
        "rewrapped": 0,
        "unreadable": 0,
        "resumed": True,
    }
    assert not settings.master_key_path.exists()  # no key was left made for the old place
    app = build_app(settings.model_copy(update={"master_key_file": new_path}))
    try:
        assert app.load(MasterKeyRotation, rotation_id(new.key_id)).finished
        opens(app, written)
    finally:
        app.close()


def test_a_rotation_cut_off_before_its_first_batch_is_abandoned_even_after_another_one(
    settings: Settings, tmp_path: Path
) -> None:
    """Cut off before its first batch, a rotation wraps nothing: it refuses no other rotation,
    and was left started in the log for good, `--abandon` finding nothing to give up. It is
    found by its events, and abandoned with nothing to clear, after a rotation to another key
    too; the rotation the store did switch to is never taken for it."""
    from infra.privacy.rotation import abandon_rotation

    app = build_app(settings)
    try:
        written = {register(app, f"Early Candidate {i}"): f"Early Candidate {i}" for i in range(3)}
        lost = FileKeyProvider.from_file(tmp_path / "lost.key", create=True)
        with pytest.raises(ConfigError, match="cannot be reached"):
            rotate_master(app, keys_of(app), FailingAfter(lost, 0), batch=2)
        assert masters(settings, "next_master") == {None: sum(masters(settings).values())}
        other = FileKeyProvider.from_file(tmp_path / "other.key", create=True)
        rotate_master(app, keys_of(app), other)  # not refused: nothing shows the first

        report = abandon_rotation(app, keys_of(app))

        assert report.as_dict() == {
            "rotation": str(rotation_id(lost.key_id)),
            "key": other.key_id,
            "abandoned_key": lost.key_id,
            "cleared": 0,
            "recorded": True,
        }
        assert app.load(MasterKeyRotation, rotation_id(lost.key_id)).abandoned
        assert app.load(MasterKeyRotation, rotation_id(other.key_id)).finished
        with pytest.raises(NothingToAbandonError, match="no rotation is unfinished"):
            abandon_rotation(app, keys_of(app))
        opens(app, written)
    finally:
        app.close()


def test_abandon_tells_a_rotation_cut_off_after_its_switch_to_record_its_finish(
    settings: Settings, tmp_path: Path
) -> None:
    """The store on the new key, the finish not recorded: nothing to abandon (every data key
    is wrapped by the new key, the store's), but `no rotation is unfinished` was not so; the
    refusal says which one is, and how it is finished."""
    from infra.privacy.rotation import _switch, abandon_rotation

    app = build_app(settings)
    register(app, "Switched Candidate")
    new = FileKeyProvider.from_file(tmp_path / "new.key", create=True)
    app.commit(MasterKeyRotation.start(keys_of(app).provider.key_id, new.key_id, 1))
    _switch(keys_of(app), keys_of(app).provider, new, set())
    try:
        with pytest.raises(NothingToAbandonError) as refused:
            abandon_rotation(app, keys_of(app))
    finally:
        app.close()

    assert str(refused.value) == (
        f"the rotation to master key {new.key_id} is not recorded as finished, but it switched "
        f"the store to that key, the store's now: run it again to {new.key_id} to record its "
        "finish; nothing to abandon"
    )
