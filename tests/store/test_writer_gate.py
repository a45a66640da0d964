"""The SQLite store's writer gate: bounded waits, and safe across fork."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from overcast.store import SqliteStore, StoreError


def test_a_writer_frozen_holding_the_gate_stalls_others_for_a_bounded_time(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SqliteStore(str(db), busy_timeout=0.3)
    other = os.open(str(db) + "-wlock", os.O_RDWR | os.O_CREAT)  # another writer's hold
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        with pytest.raises(StoreError, match="write lock"):
            store.put("/k", b"1")
        assert store.get("/k") is None  # nothing half-written
        fcntl.flock(other, fcntl.LOCK_UN)
        store.put("/k", b"2")
        assert store.get("/k").value == b"2"  # type: ignore[union-attr]
    finally:
        os.close(other)
        store.close()


def test_a_child_forked_while_a_thread_writes_can_write(tmp_path: Path) -> None:
    """The parent's thread holds the gate at the fork: the child's copy of the
    thread lock would stay locked forever; the child starts afresh instead and
    writes once the parent's writer is done."""
    store = SqliteStore(str(tmp_path / "s.db"), busy_timeout=10)
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store._gate.held():
            holding.set()
            release.wait(10)
    t = threading.Thread(target=writer)
    t.start()
    assert holding.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: write, report by exit status only
        code = 1
        try:
            store.put("/from-child", b"x")
            code = 0
        finally:
            os._exit(code)
    time.sleep(0.2)
    release.set()
    t.join(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get("/from-child") is not None
    store.close()


def test_a_closed_store_refuses_writes(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.put("/k", b"1")
