"""The writer lock beside a SQLite file: a second holder (another process, or another open
of the file) waits until the first lets go, and a forked child gets a lock of its own rather
than sharing its parent's."""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from infra.store.filelock import WriterLock, for_database


def take_and_report(lock: WriterLock, conn: Connection) -> None:
    with lock.held():
        conn.send("held")


def test_a_second_holder_waits_until_the_first_lets_go(tmp_path: Path) -> None:
    first, second = WriterLock(tmp_path / "s.sqlite"), WriterLock(tmp_path / "s.sqlite")
    taken = threading.Event()

    def take() -> None:
        with second.held():
            taken.set()

    with first.held():
        t = threading.Thread(target=take)
        t.start()
        assert not taken.wait(0.3)  # still waiting while the first holds it
    assert taken.wait(10)
    t.join()
    first.close()
    second.close()


def test_a_forked_child_waits_for_its_parents_lock_rather_than_sharing_it(
    tmp_path: Path,
) -> None:
    lock = WriterLock(tmp_path / "s.sqlite")
    fork = multiprocessing.get_context("fork")
    mine, theirs = fork.Pipe()
    with lock.held():  # the mutex and the open file are both held as the child is made
        child = fork.Process(target=take_and_report, args=(lock, theirs))
        child.start()
        assert not mine.poll(0.5)  # the child did not get in beside its parent
    assert mine.poll(10)
    assert mine.recv() == "held"
    child.join(10)
    assert child.exitcode == 0
    lock.close()


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    lock = WriterLock(tmp_path / "s.sqlite")
    inside, most = 0, 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(200):
            with lock.held():
                with guard:
                    inside += 1
                    most = max(most, inside)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1
    lock.close()


def test_a_holder_that_fails_lets_go_of_the_lock(tmp_path: Path) -> None:
    mine, another = WriterLock(tmp_path / "s.sqlite"), WriterLock(tmp_path / "s.sqlite")

    with pytest.raises(RuntimeError, match="the write failed"), mine.held():
        raise RuntimeError("the write failed")

    taken = threading.Event()

    def take(lock: WriterLock) -> None:
        with lock.held():
            taken.set()

    for lock in (another, mine):  # another open of the file, then this process's own threads
        taken.clear()
        t = threading.Thread(target=take, args=(lock,), daemon=True)
        t.start()
        assert taken.wait(5)
        t.join()
    mine.close()
    another.close()


def test_in_memory_databases_need_no_lock_and_files_get_one_beside_them() -> None:
    assert for_database(":memory:").path is None
    assert for_database("file:x?mode=memory&cache=shared").path is None
    found = for_database("/data/store.sqlite")
    assert found.path == Path("/data/store.sqlite.writer-lock")
    found_uri = for_database("file:/data/store.sqlite?mode=rwc")
    assert found_uri.path == Path("/data/store.sqlite.writer-lock")
