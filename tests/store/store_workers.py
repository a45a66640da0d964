"""Worker functions for the concurrency tests, importable by spawned processes."""

from __future__ import annotations

import time
from typing import Any

from overcast.store import Compare, Put, SqliteStore, StmTxn, Store, open_store, transact

COUNTER = "/counter"
ALLOC = "/alloc/"


def cas_increments(store: Store, attempts: int, think: float = 0.0) -> int:
    """Read-compare-and-swap increments of one counter; returns how many won.
    ``think`` seconds pass between the read and the write (0 still yields the GIL),
    so that the writers really interleave."""
    won = 0
    for _ in range(attempts):
        kv = store.get(COUNTER)
        time.sleep(think)
        seen = kv.mod_revision if kv else 0
        n = int(kv.value) if kv else 0
        cmp = Compare(COUNTER, "mod", "==", seen) if kv else Compare(COUNTER, "version", "==", 0)
        if store.txn([cmp], [Put(COUNTER, str(n + 1).encode())]).succeeded:
            won += 1
    return won


def allocate_lowest(store: Store, owner: str) -> int:
    """Take the lowest free integer under /alloc/ (an IPAM-shaped transaction)."""

    def fn(tx: StmTxn) -> int:
        used = {int(kv.key[len(ALLOC) :]) for kv in tx.range(ALLOC)}
        n = next(i for i in range(len(used) + 1) if i not in used)
        time.sleep(0)  # let the other writers interleave
        tx.put(f"{ALLOC}{n:05d}", owner.encode())
        return n

    return transact(store, fn, retries=500)


def release(store: Store, n: int) -> None:
    transact(store, lambda tx: tx.delete(f"{ALLOC}{n:05d}"))


def allocations(store: Store, owner: str, count: int) -> list[int]:
    """Allocate ``count`` numbers, releasing every third one again."""
    kept: list[int] = []
    for i in range(count):
        n = allocate_lowest(store, owner)
        if i % 3 == 2:
            release(store, n)
        else:
            kept.append(n)
    return kept


# process entry points (each opens the shared file itself) -------------------
def proc_cas(path: str, attempts: int, start: Any) -> int:
    store = open_store(f"sqlite://{path}")
    start.wait()
    try:
        return cas_increments(store, attempts, think=0.0002)
    finally:
        store.close()


def proc_alloc(path: str, owner: str, count: int, start: Any) -> list[int]:
    store = SqliteStore(path)
    start.wait()
    try:
        return allocations(store, owner, count)
    finally:
        store.close()


def proc_watch_latency(path: str, key: str, count: int, ready: Any, out: Any) -> None:
    """Watch ``key``; for each event, report now minus the write time in its value."""
    store = SqliteStore(path)
    w = store.watch(key, 0)
    ready.set()
    latencies: list[float] = []
    deadline = time.monotonic() + 20
    while len(latencies) < count and time.monotonic() < deadline:
        for e in w.next_batch(1):
            latencies.append(time.time() - float(e.value))
    out.put(latencies)
    store.close()


def proc_lease_and_die(path: str, key: str, ttl: float) -> int:
    """An 'agent' that registers itself under a lease and exits without keepalives."""
    store = SqliteStore(path)
    lease = store.lease_grant(ttl)
    store.put(key, b"alive", lease)
    store.close()
    return lease


def proc_put_with_inherited(store: SqliteStore, key: str) -> None:
    """Runs in a forked child, using the parent's store object."""
    store.put(key, b"from child")
