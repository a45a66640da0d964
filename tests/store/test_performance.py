"""Coarse speed checks (generous bounds: the CI machine is shared)."""

from __future__ import annotations

import statistics
import time

from overcast.store import Compare, Put, Store


def test_small_txn_is_well_under_a_millisecond(store: Store) -> None:
    store.put("/net/1", b"x")
    times: list[float] = []
    for i in range(300):
        t0 = time.perf_counter()
        res = store.txn(
            [Compare("/net/1", "version", ">", 0)],
            [Put(f"/port/{i}/{j}", b"v" * 200) for j in range(5)],
        )
        times.append(time.perf_counter() - t0)
        assert res.succeeded
    assert statistics.median(times) < 0.001, statistics.median(times)


def test_range_of_ten_thousand_keys(store: Store) -> None:
    for batch in range(10):
        store.txn([], [Put(f"/obj/{batch:02d}/{i:04d}", b"v" * 100) for i in range(1000)])
    store.put("/other", b"")
    t0 = time.perf_counter()
    res = store.range("/obj/")
    elapsed = time.perf_counter() - t0
    assert len(res.kvs) == 10_000 and res.revision == 11
    assert elapsed < 0.25, elapsed
