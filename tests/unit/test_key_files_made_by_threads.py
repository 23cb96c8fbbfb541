"""Key files made by two threads of one process at once: a new store's master key (opened by
two threads, as the HTTP server's may), its checkpoint signing key (two erasure receipts
signed at once) and the log's verifier key. Each is written aside and then linked or renamed
into place; the name written aside held the process id alone, so two threads of one process
wrote the same file: one linked the other's key into place, or found its draft gone.

The threads are real and write real files; a barrier at the link (or the rename) holds each
until both have written their draft, and the second goes on once the first has finished: one
interleaving of the many two threads can take, the one that made them collide every time."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from infra.audit.checkpoint import FileKeySigner
from infra.audit.notes import Signer
from infra.config import Settings
from infra.kafka.checkpoints import LOG_VKEY, keep_log_vkey
from infra.privacy.providers import load_master_key

Outcomes = dict[str, Any]


def in_two_threads(
    monkeypatch: pytest.MonkeyPatch, step: str, work: Callable[[], object]
) -> Outcomes:
    """What `work` returned (or raised) in each of two threads, `first` and `second`, once
    both had written their draft before either took the `os` `step` (link, replace) that
    puts it into place, the second taking it only after the first had returned."""
    both_written = threading.Barrier(2, timeout=30)
    first_done = threading.Event()
    into_place = getattr(os, step)

    def after_both_wrote(*args: Any, **kwargs: Any) -> Any:
        both_written.wait()
        if threading.current_thread().name == "second":
            assert first_done.wait(timeout=30)
        return into_place(*args, **kwargs)

    monkeypatch.setattr(os, step, after_both_wrote)
    outcomes: Outcomes = {}

    def run() -> None:
        name = threading.current_thread().name
        try:
            outcomes[name] = work()
        except Exception as e:
            outcomes[name] = e
        finally:
            if name == "first":
                first_done.set()

    threads = [threading.Thread(target=run, name=name) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    monkeypatch.undo()
    return outcomes


def test_two_threads_making_a_new_master_key_get_the_one_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys" / "master.key"

    made = in_two_threads(monkeypatch, "link", lambda: load_master_key(path, create=True))

    assert made["first"] == made["second"] == load_master_key(path, create=False)
    assert list(path.parent.iterdir()) == [path]  # no draft left behind


def test_two_threads_signing_with_a_new_checkpoint_key_sign_with_the_one_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys" / "checkpoint-signing.key"
    signer = FileKeySigner(path, create_if_missing=True)

    signed = in_two_threads(monkeypatch, "link", lambda: signer.sign(b"receipt"))

    assert not isinstance(signed["first"], Exception), signed["first"]
    assert not isinstance(signed["second"], Exception), signed["second"]
    assert signed["first"][0] == signed["second"][0]  # one key id
    public = load_pem_public_key(path.with_suffix(".pub").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    assert FileKeySigner(path, create_if_missing=False).sign(b"x")[0] == signed["first"][0]
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "checkpoint-signing.key",
        "checkpoint-signing.pub",
    ]


def test_two_threads_keeping_the_logs_verifier_key_both_keep_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", data_dir=tmp_path)
    settings.signing_key_path.parent.mkdir(parents=True)
    signer = Signer(settings.origin, Ed25519PrivateKey.generate())

    kept = in_two_threads(monkeypatch, "replace", lambda: keep_log_vkey(settings, signer))

    assert kept == {"first": None, "second": None}
    folder = settings.signing_key_path.parent
    assert (folder / LOG_VKEY).read_text() == signer.verifier.vkey + "\n"
    assert [p.name for p in folder.iterdir()] == [LOG_VKEY]
