"""Concurrent writers: threads on both backends, processes sharing one SQLite file."""

from __future__ import annotations

import multiprocessing
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from overcast.store import Event, SqliteStore, Store

from . import store_workers as workers

THREADS = 4


def check_alloc_history(store: Store) -> None:
    """No number was ever handed out while it was held: no put onto an existing key."""
    held: set[str] = set()
    w = store.watch(workers.ALLOC, 1)
    final = store.revision()
    events: list[Event] = []
    while not events or events[-1].revision < final:
        batch = w.next_batch(1)
        assert batch
        events.extend(batch)
    for e in events:
        if e.type == "put":
            assert e.key not in held, f"{e.key} allocated twice (revision {e.revision})"
            held.add(e.key)
        else:
            held.discard(e.key)


def test_cas_counter_threads(store: Store) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        won = list(pool.map(workers.cas_increments, [store] * THREADS, [150] * THREADS))
    assert int(store.get(workers.COUNTER).value) == sum(won)  # type: ignore[union-attr]
    assert 150 <= sum(won) < THREADS * 150  # progress, and real contention


def test_stm_allocation_threads(store: Store) -> None:
    owners = [f"t{i}" for i in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        kept = list(pool.map(workers.allocations, [store] * THREADS, owners, [24] * THREADS))
    flat = [n for k in kept for n in k]
    assert len(flat) == len(set(flat)) == THREADS * 16
    stored = {
        int(kv.key[len(workers.ALLOC) :]): kv.value.decode()
        for kv in store.range(workers.ALLOC).kvs
    }
    assert stored == {n: owner for owner, ns in zip(owners, kept, strict=True) for n in ns}
    check_alloc_history(store)


def _spawn() -> multiprocessing.context.SpawnContext:
    return multiprocessing.get_context("spawn")


def test_cas_counter_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SqliteStore(path)
    ctx = _spawn()
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(3) as pool:
            pending = [pool.apply_async(workers.proc_cas, (path, 200, start)) for _ in range(3)]
            time.sleep(0.3)
            start.set()
            won = [p.get(60) for p in pending]
    assert int(store.get(workers.COUNTER).value) == sum(won)  # type: ignore[union-attr]
    assert store.revision() == sum(won)
    assert sum(won) < 3 * 200  # the processes really contended
    store.close()


def test_stm_allocation_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SqliteStore(path)
    ctx = _spawn()
    owners = ["p0", "p1", "p2"]
    with ctx.Manager() as manager:
        start = manager.Event()
        with ctx.Pool(3) as pool:
            pending = [pool.apply_async(workers.proc_alloc, (path, o, 30, start)) for o in owners]
            time.sleep(0.3)
            start.set()
            kept = [p.get(60) for p in pending]
    flat = [n for k in kept for n in k]
    assert len(flat) == len(set(flat)) == 60
    stored = {
        int(kv.key[len(workers.ALLOC) :]): kv.value.decode()
        for kv in store.range(workers.ALLOC).kvs
    }
    assert stored == {n: owner for owner, ns in zip(owners, kept, strict=True) for n in ns}
    check_alloc_history(store)
    store.close()


def test_cross_process_watch_latency(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SqliteStore(path)
    ctx = _spawn()
    ready, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=workers.proc_watch_latency, args=(path, "/lat", 20, ready, out))
    proc.start()
    try:
        assert ready.wait(30)
        for i in range(20):
            store.put("/noise", str(i).encode())  # other traffic in between
            store.put("/lat", repr(time.time()).encode())
            time.sleep(0.02)
        latencies = out.get(timeout=30)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    assert len(latencies) == 20
    assert max(latencies) < 0.1, latencies
    assert statistics.median(latencies) < 0.03, latencies
    store.close()


def test_lease_of_dead_process_expires_for_others(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    store = SqliteStore(path)
    ctx = _spawn()
    with ctx.Pool(1) as pool:
        pool.apply(workers.proc_lease_and_die, (path, "/alive/h1", 0.3))
    kv = store.get("/alive/h1")
    assert kv is not None and kv.lease != 0
    w = store.watch("/alive/", kv.mod_revision + 1)
    assert w.next_batch(5) == [Event("delete", "/alive/h1", b"", kv.mod_revision + 1)]
    assert store.get("/alive/h1") is None
    store.close()


def test_store_object_survives_fork(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "shared.db"))
    store.put("/parent", b"")
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=workers.proc_put_with_inherited, args=(store, "/child"))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert store.get("/child").value == b"from child"  # type: ignore[union-attr]
    store.put("/parent", b"again")  # the parent's own connection still works
    assert store.revision() == 3
    store.close()
