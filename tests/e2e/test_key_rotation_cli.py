"""`backcheck keys rotate-master` and the key faults as the commands report them (issue 21):
a rotation from the command line, after which the old key file is deleted and every value
reads with the new key; every key fault one line, exit 78, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from uuid import UUID

import pytest

from domain.master_key import rotation_id
from infra.bootstrap import build_app
from infra.config import ConfigError, Settings
from infra.privacy.providers import FileKeyProvider
from infra.privacy.rotation import rotate_master
from tests import story as s
from tests.e2e.test_cli import run
from tests.e2e.test_master_key_file import refused
from tests.hsm import Token, key_label
from tests.integration.test_master_key_rotation import FailingAfter, keys_of, masters

EX_CONFIG = 78


def env_of(settings: Settings) -> dict[str, str]:
    return {
        "BACKCHECK_DATABASE_URL": str(settings.database_url),
        "BACKCHECK_DATA_DIR": str(settings.data_dir),
    }


def with_candidate(settings: Settings) -> UUID:
    app = build_app(settings)
    try:
        return s.consented_candidate(app, "Qian Duoduo").candidate_id
    finally:
        app.close()


def read_name(env: dict[str, str], candidate_id: UUID) -> str:
    read = run(
        env,
        *("read", "profile", str(candidate_id), "--as", s.RECRUITER, "--role", "recruiter"),
        *("--purpose", s.PURPOSE, "--json"),
    )
    assert read.returncode == 0, read.stderr
    return read.stdout


def test_rotate_to_a_new_key_file_then_delete_the_old(settings: Settings, tmp_path: Path) -> None:
    candidate_id = with_candidate(settings)
    env = env_of(settings)
    new = tmp_path / "rotated" / "master.key"

    rotated = run(env, "keys", "rotate-master", "--to-key-file", str(new), "--new-key", "--json")

    assert rotated.returncode == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    assert report["rewrapped"] >= 1
    assert report["to_key"].startswith("file:")
    assert report["resumed"] is False
    assert new.stat().st_mode & 0o777 == 0o600
    settings.master_key_path.unlink()  # the old key destroyed
    moved = {**env, "BACKCHECK_MASTER_KEY_FILE": str(new)}
    assert "Qian Duoduo" in read_name(moved, candidate_id)
    again = run(moved, "keys", "rotate-master", "--to-key-file", str(new))
    assert again.returncode == 3  # the store's key already: nothing to rotate
    assert "nothing to rotate" in refused(again)


def test_rotate_to_a_key_in_the_token(settings: Settings, softhsm: Token) -> None:
    candidate_id = with_candidate(settings)
    label = key_label()
    env = {**env_of(settings), **softhsm.env()}

    mistyped = run(env, "keys", "rotate-master", "--to-pkcs11-label", label)
    assert mistyped.returncode == EX_CONFIG
    assert refused(mistyped) == (
        f"Configuration error (config): --to-pkcs11-label: no AES key labelled {label!r} on "
        "the configured token; to make one there, add --new-key"
    )
    assert "Qian Duoduo" in read_name(env, candidate_id)  # still on its own key

    rotated = run(env, "keys", "rotate-master", "--to-pkcs11-label", label, "--new-key")

    assert rotated.returncode == 0, rotated.stderr
    assert "rotated: master key file:" in rotated.stdout
    settings.master_key_path.unlink()
    on_token = {**env, "BACKCHECK_KEY_PROVIDER": "pkcs11", "BACKCHECK_PKCS11_KEY_LABEL": label}
    assert "Qian Duoduo" in read_name(on_token, candidate_id)


def test_a_key_file_that_is_not_there_is_refused_unless_a_new_key_is_asked_for(
    settings: Settings, tmp_path: Path
) -> None:
    candidate_id = with_candidate(settings)
    env = env_of(settings)
    mistyped = tmp_path / "no-such-dir" / "mastr.key"

    result = run(env, "keys", "rotate-master", "--to-key-file", str(mistyped))

    assert result.returncode == EX_CONFIG
    assert refused(result) == (
        f"Configuration error (config): --to-key-file: no master key at {mistyped}; to make a "
        "new key there, add --new-key"
    )
    assert not mistyped.parent.exists()  # nothing made, not even its directory
    assert "Qian Duoduo" in read_name(env, candidate_id)  # still on its own key


@pytest.mark.parametrize(
    ("text", "mode", "said"),
    [
        (bytes(range(32)).hex(), 0o644, "may be read or written by its group and everyone"),
        ("not a key", 0o600, "a master key is 64 hex digits (32 bytes)"),
    ],
)
def test_a_new_key_file_that_cannot_be_used_is_refused_naming_to_key_file(
    settings: Settings, tmp_path: Path, text: str, mode: int, said: str
) -> None:
    candidate_id = with_candidate(settings)
    env = env_of(settings)
    new = tmp_path / "new.key"
    new.write_text(text + "\n")
    new.chmod(mode)

    result = run(env, "keys", "rotate-master", "--to-key-file", str(new))

    assert result.returncode == EX_CONFIG
    line = refused(result)
    # the option given, not the store's own key setting, which is fine
    assert line.startswith(f"Configuration error (config): --to-key-file: {new}"), line
    assert said in line
    assert "Qian Duoduo" in read_name(env, candidate_id)  # still on its own key


def test_a_rotation_needs_one_destination(settings: Settings) -> None:
    result = run(env_of(settings), "keys", "rotate-master")
    assert result.returncode == 2
    assert "give one of --to-key-file and --to-pkcs11-label" in refused(result)


@pytest.fixture
def on_token(settings: Settings, softhsm: Token) -> dict[str, str]:
    """A store whose master key is in the token, with a candidate in it."""
    label = key_label()
    with_candidate(softhsm.settings(settings, label))
    return {
        **env_of(settings),
        **softhsm.env(),
        "BACKCHECK_KEY_PROVIDER": "pkcs11",
        "BACKCHECK_PKCS11_KEY_LABEL": label,
    }


REGISTER = json.dumps({"name": "Li Lei", "actor": "hr:li.na"})


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"BACKCHECK_PKCS11_PIN": "0000"}, "BACKCHECK_PKCS11_PIN: the token 'backcheck-test'"),
        ({"BACKCHECK_PKCS11_PIN": ""}, "BACKCHECK_PKCS11_PIN: required with"),
        ({"BACKCHECK_PKCS11_TOKEN_LABEL": "gone"}, "no token labelled 'gone'"),
        ({"BACKCHECK_PKCS11_MODULE": "/nowhere/libhsm.so"}, "cannot load the PKCS#11 module"),
        # the token's store unreachable: the module does not initialise
        ({"SOFTHSM2_CONF": "/nowhere/softhsm2.conf"}, "cannot load the PKCS#11 module"),
        ({"BACKCHECK_PKCS11_KEY_LABEL": "another"}, "no master key labelled 'another'"),
        ({"BACKCHECK_KEY_PROVIDER": "file"}, "there is no master key at"),
        ({"BACKCHECK_KEY_PROVIDER": "vault"}, "BACKCHECK_KEY_PROVIDER: 'vault' is not"),
    ],
)
def test_a_key_fault_on_the_token_is_one_line_and_exit_78(
    on_token: dict[str, str], change: dict[str, str], said: str
) -> None:
    env = {k: v for k, v in {**on_token, **change}.items() if v}
    for command in (("do", "register-candidate", REGISTER), ("audit", "check")):
        result = run(env, *command)
        assert result.returncode == EX_CONFIG, result.stderr
        assert said in refused(result)
    machine = run(env, "do", "register-candidate", REGISTER, "--json")
    assert machine.returncode == EX_CONFIG
    assert "Traceback" not in machine.stderr


def test_a_key_file_fault_is_one_line_and_exit_78(settings: Settings, tmp_path: Path) -> None:
    with_candidate(settings)
    env = env_of(settings)
    other = tmp_path / "other.key"
    other.write_text(bytes(range(32)).hex() + "\n")
    other.chmod(0o600)
    directory = tmp_path / "a-directory"
    directory.mkdir()
    cases = {
        str(other): "is not this store's master key",
        str(tmp_path / "missing.key"): "there is no master key at",
        str(directory): str(directory),
    }
    for path, said in cases.items():
        result = run(
            {**env, "BACKCHECK_MASTER_KEY_FILE": path}, "do", "register-candidate", REGISTER
        )
        assert result.returncode == EX_CONFIG, result.stderr
        assert said in refused(result)


def test_config_show_masks_the_pin(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "BACKCHECK_PKCS11_PIN").write_text("from-the-secrets-4711\n")
    shown = run(
        {"BACKCHECK_DATA_DIR": str(tmp_path), "BACKCHECK_PKCS11_PIN": "in-the-env-0815"},
        *("config", "show", "--json"),
    )
    assert shown.returncode == 0, shown.stderr
    assert "0815" not in shown.stdout
    pin = json.loads(shown.stdout)["settings"]["BACKCHECK_PKCS11_PIN"]
    assert pin == {"value": "****", "from": "environment"}
    secret = run(
        {"BACKCHECK_DATA_DIR": str(tmp_path), "BACKCHECK_SECRETS_DIR": str(secrets)},
        *("config", "show", "--json"),
    )
    assert "4711" not in secret.stdout
    assert json.loads(secret.stdout)["settings"]["BACKCHECK_PKCS11_PIN"]["from"] == "secrets"


def cut_off(settings: Settings, new_path: Path) -> str:
    """A rotation of the store to a new key at `new_path`, cut off midway (some data keys
    wrapped by it beside the old wrapping): the new key's id."""
    app = build_app(settings)
    try:
        for i in range(6):
            s.register(app, f"Cut Candidate {i}")
        new = FileKeyProvider.from_file(new_path, create=True)
        with pytest.raises(ConfigError, match="cannot be reached"):
            rotate_master(app, keys_of(app), FailingAfter(new, 3), batch=2)
        return new.key_id
    finally:
        app.close()


def test_a_refused_rotation_to_a_new_key_makes_no_file_or_folder(
    settings: Settings, tmp_path: Path
) -> None:
    """`--new-key` made the new key's folders and file, then the rotation was refused (another
    one unfinished): a key no one would use, left beside the store's. What can refuse it is
    asked first; a refused run leaves nothing behind."""
    unfinished = cut_off(settings, tmp_path / "first.key")
    env = env_of(settings)
    new = tmp_path / "made" / "for" / "it" / "master.key"

    result = run(env, "keys", "rotate-master", "--to-key-file", str(new), "--new-key")

    assert result.returncode == 3, result.stderr
    assert f"a rotation to master key {unfinished} is not finished" in refused(result)
    assert not (tmp_path / "made").exists()


def recorded(settings: Settings, rotation: str) -> list[str]:
    """The events of a rotation, by name."""
    app = build_app(settings)
    try:
        stored = app.recorder.select_events(rotation_id(rotation))
        return [r.topic.rsplit(".", 1)[1] for r in stored]
    finally:
        app.close()


def test_a_rotation_whose_new_key_is_lost_is_abandoned_and_another_can_start(
    settings: Settings, tmp_path: Path
) -> None:
    """A rotation cut off midway whose new key is then lost: every later rotation was refused
    ("run it again to ... first") with no way out. `--abandon` gives it up, recorded; every
    data key stays wrapped by the store's key, and a rotation to another key goes through."""
    candidate_id = with_candidate(settings)
    lost_path = tmp_path / "lost.key"
    lost = cut_off(settings, lost_path)
    lost_path.unlink()
    env = env_of(settings)
    third = tmp_path / "third.key"
    blocked = run(env, "keys", "rotate-master", "--to-key-file", str(third), "--new-key")
    assert blocked.returncode == 3
    said = refused(blocked)
    assert f"run it again to {lost} to finish it" in said
    assert "if that key is lost, give it up with `backcheck keys rotate-master --abandon`" in said

    abandoned = run(env, "keys", "rotate-master", "--abandon", "--json")

    assert abandoned.returncode == 0, abandoned.stderr
    report = json.loads(abandoned.stdout)
    assert report["abandoned_key"] == lost
    assert report["cleared"] == 2  # the first batch of 2; the second rolled back
    assert report["recorded"] is True
    assert masters(settings, "next_master") == {None: sum(masters(settings).values())}
    assert set(masters(settings)) == {report["key"]}  # the store's key alone, as before
    assert recorded(settings, lost) == ["Started", "Abandoned"]
    assert "Qian Duoduo" in read_name(env, candidate_id)
    nothing = run(env, "keys", "rotate-master", "--abandon")
    assert nothing.returncode == 3
    assert refused(nothing).endswith(
        f"no rotation is unfinished: every data key is wrapped by the store's master key "
        f"{report['key']} alone; nothing to abandon"
    )

    rotated = run(env, "keys", "rotate-master", "--to-key-file", str(third), "--new-key")

    assert rotated.returncode == 0, rotated.stderr
    settings.master_key_path.unlink()
    moved = {**env, "BACKCHECK_MASTER_KEY_FILE": str(third)}
    assert "Qian Duoduo" in read_name(moved, candidate_id)
    verified = run(moved, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "key altered" not in verified.stdout


def test_abandon_takes_no_new_key(settings: Settings, tmp_path: Path) -> None:
    result = run(
        env_of(settings), "keys", "rotate-master", "--abandon", "--to-key-file", str(tmp_path)
    )
    assert result.returncode == 2
    assert "--abandon takes no new key" in refused(result)


# Sends the process its own signal from inside the new key's Nth wrap, then runs the CLI.
_SIGNALLED = """
import os, signal, sys
from infra.privacy.providers import FileKeyProvider
wrap, left = FileKeyProvider.wrap, [{wraps}]
def signalled(self, data_key):
    left[0] -= 1
    if left[0] == 0:
        os.kill(os.getpid(), signal.{signal})
    return wrap(self, data_key)
FileKeyProvider.wrap = signalled
sys.argv = ["backcheck", *sys.argv[1:]]
from infra.cli import main
main()
"""


def signalled_at(wraps: int, name: str) -> str:
    """The command line run with the signal `name` sent from inside the new key's wrap
    number `wraps` (the first batch's first: 1)."""
    return _SIGNALLED.replace("{wraps}", str(wraps)).replace("{signal}", name)


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_rotation_stopped_by_a_signal_says_in_one_line_how_to_resume_it(
    settings: Settings, tmp_path: Path, name: str, code: int
) -> None:
    """Ctrl-C or SIGTERM midway was typer's "Aborted" (exit 1) or a silent death: one line
    now says the rotation is unfinished, that running it again resumes it, and --abandon."""
    import subprocess
    import sys

    candidate_id = with_candidate(settings)
    app = build_app(settings)
    try:
        for i in range(4):
            s.register(app, f"Signalled Candidate {i}")
    finally:
        app.close()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}}
    env.update(env_of(settings))
    new = tmp_path / "new.key"
    args = ["keys", "rotate-master", "--to-key-file", str(new), "--new-key"]

    stopped = subprocess.run(
        [sys.executable, "-c", signalled_at(3, name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert stopped.returncode == code, stopped.stderr
    line = refused(stopped)
    key_id = FileKeyProvider.from_file(new, create=False).key_id
    assert line.startswith(
        f"rotation stopped by {name}: the rotation to master key {key_id} is not finished"
    )
    assert "run the same command again to resume it" in line
    assert "`backcheck keys rotate-master --abandon`" in line
    old = FileKeyProvider.from_file(settings.master_key_path, create=False).key_id
    assert set(masters(settings)) == {old}  # the store on its key as before

    again = run(env_of(settings), *args, "--json")

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["resumed"] is True
    settings.master_key_path.unlink()
    moved = {**env_of(settings), "BACKCHECK_MASTER_KEY_FILE": str(new)}
    assert "Qian Duoduo" in read_name(moved, candidate_id)


def test_a_rotation_stopped_before_its_first_batch_is_abandoned_as_its_stop_line_says(
    settings: Settings, tmp_path: Path
) -> None:
    """Stopped inside its first batch (rolled back), a rotation is recorded as started and
    wraps nothing: its stop line says to give it up with --abandon if its key is lost, and
    --abandon said `no rotation is unfinished` (exit 3), its start left unfinished in the log
    for good. It is found by its events now, and abandoned with nothing to clear."""
    import subprocess
    import sys

    candidate_id = with_candidate(settings)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("BACKCHECK_")}}
    env.update(env_of(settings))
    new = tmp_path / "new.key"
    args = ["keys", "rotate-master", "--to-key-file", str(new), "--new-key"]
    stopped = subprocess.run(
        [sys.executable, "-c", signalled_at(1, "SIGTERM"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stopped.returncode == 143, stopped.stderr
    lost = FileKeyProvider.from_file(new, create=False).key_id
    assert "if that key is lost, give it up with `backcheck keys rotate-master --abandon`" in (
        refused(stopped)
    )
    assert masters(settings, "next_master") == {None: sum(masters(settings).values())}
    assert recorded(settings, lost) == ["Started"]
    new.unlink()  # and then its key is lost

    abandoned = run(env_of(settings), "keys", "rotate-master", "--abandon", "--json")

    assert abandoned.returncode == 0, abandoned.stderr
    report = json.loads(abandoned.stdout)
    old = FileKeyProvider.from_file(settings.master_key_path, create=False).key_id
    assert report == {
        "rotation": str(rotation_id(lost)),
        "key": old,
        "abandoned_key": lost,
        "cleared": 0,
        "recorded": True,
    }
    assert recorded(settings, lost) == ["Started", "Abandoned"]
    assert set(masters(settings)) == {old}
    assert "Qian Duoduo" in read_name(env_of(settings), candidate_id)
    nothing = run(env_of(settings), "keys", "rotate-master", "--abandon")
    assert nothing.returncode == 3
    assert refused(nothing).endswith(
        f"no rotation is unfinished: every data key is wrapped by the store's master key "
        f"{old} alone; nothing to abandon"
    )
