"""Watch: ordered replay from a revision, following, prefix filtering, compaction."""

from __future__ import annotations

import threading
import time

import pytest

from overcast.store import CompactedError, Delete, Event, Put, Store

from .store_testing import StoreFactory, drain


def test_replays_history_in_order_then_follows(store: Store) -> None:
    store.put("/a/1", b"x")
    store.txn([], [Put("/a/2", b"y"), Put("/a/3", b"z")])
    store.delete("/a/1")
    w = store.watch("/a/", 1)
    assert drain(w) == [
        Event("put", "/a/1", b"x", 1),
        Event("put", "/a/2", b"y", 2),
        Event("put", "/a/3", b"z", 2),
        Event("delete", "/a/1", b"", 3),
    ]
    store.put("/a/4", b"w")
    assert w.next_batch(1) == [Event("put", "/a/4", b"w", 4)]
    assert w.next_batch(0.02) == []


def test_start_revision_is_inclusive(store: Store) -> None:
    for i in range(5):
        store.put("k", str(i).encode())
    assert [e.revision for e in drain(store.watch("k", 3))] == [3, 4, 5]


def test_start_zero_means_from_the_next_revision(store: Store) -> None:
    store.put("a", b"old")
    w = store.watch("", 0)
    assert w.next_batch(0.02) == []
    store.put("a", b"new")
    assert w.next_batch(1) == [Event("put", "a", b"new", 2)]


def test_prefix_filter(store: Store) -> None:
    store.txn([], [Put("/x/1", b""), Put("/y/1", b""), Put("/x", b"")])
    store.put("/y/2", b"")
    store.put("/x/2", b"")
    assert [(e.key, e.revision) for e in drain(store.watch("/x/", 1))] == [("/x/1", 1), ("/x/2", 3)]


def test_excluded_prefixes_are_left_out(store: Store) -> None:
    store.txn([], [Put("/x/a/1", b""), Put("/x/c/1", b""), Put("/x/b", b"")])
    for i in range(3):  # revisions with nothing else: the watcher still moves past them
        store.put(f"/x/c/{i}", b"")
    store.delete("/x/a/1")
    store.put("/x/cc", b"")
    w = store.watch("/x/", 1, exclude=("/x/c/", "/x/z/"))
    assert [(e.type, e.key, e.revision) for e in drain(w)] == [
        ("put", "/x/a/1", 1), ("put", "/x/b", 1), ("delete", "/x/a/1", 5), ("put", "/x/cc", 6)]
    store.put("/x/c/9", b"")
    assert w.next_batch(0.02) == []
    store.put("/x/d", b"")
    assert [e.key for e in w.next_batch(1)] == ["/x/d"]


def test_blocked_watcher_wakes_on_write(store: Store) -> None:
    w = store.watch("", 1)
    got: list[tuple[list[Event], float]] = []

    def wait() -> None:
        batch = w.next_batch(5)
        got.append((batch, time.monotonic()))

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.05)
    written = time.monotonic()
    store.put("k", b"v")
    t.join(5)
    assert got and got[0][0] == [Event("put", "k", b"v", 1)]
    assert got[0][1] - written < 0.5  # woken by the write, not by its 5 s timeout


def test_timeout_returns_empty(store: Store) -> None:
    w = store.watch("", 1)
    t0 = time.monotonic()
    assert w.next_batch(0.05) == []
    assert 0.04 <= time.monotonic() - t0 < 1


def test_closed_watcher_returns_nothing(store: Store) -> None:
    w = store.watch("", 1)
    w.close()
    store.put("k", b"")
    assert w.next_batch(0.01) == []


def test_watch_before_compaction_point_raises(store: Store) -> None:
    for i in range(6):
        store.put("k", str(i).encode())
    store.compact(4)
    with pytest.raises(CompactedError) as err:
        store.watch("", 3)
    assert err.value.requested == 3 and err.value.compact_revision == 4
    assert [e.revision for e in drain(store.watch("", 4))] == [4, 5, 6]


def test_lagging_watcher_raises_after_compaction(store: Store) -> None:
    store.put("k", b"0")
    w = store.watch("", 1)
    for i in range(5):
        store.put("k", str(i).encode())
    store.compact(4)
    with pytest.raises(CompactedError):
        w.next_batch(0.1)


def test_automatic_compaction_keeps_recent_history(make_store: StoreFactory) -> None:
    store = make_store(history_keep=20)
    for i in range(100):
        store.put("k", str(i).encode())
    with pytest.raises(CompactedError):
        store.watch("", 1)
    assert [e.revision for e in drain(store.watch("", 81))] == list(range(81, 101))


def test_many_revisions_without_matching_events_do_not_stall(store: Store) -> None:
    w = store.watch("/want/", 1)
    for i in range(0, 2500, 50):
        store.txn([], [Put(f"/other/{i + j}", b"") for j in range(50)])
        if i % 500 == 0:
            store.txn([], [Delete("/other/", "/other0")])
    for i in range(1200):
        store.put("/noise", str(i).encode())
    store.put("/want/x", b"1")
    t0 = time.monotonic()
    assert w.next_batch(2) == [Event("put", "/want/x", b"1", store.revision())]
    assert time.monotonic() - t0 < 1.5  # found before the 2 s timeout
