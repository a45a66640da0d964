"""Bulk shapes the agents and the API rely on (speed is measured in bench/store_ops.py)."""

from __future__ import annotations

from overcast.store import Compare, Put, Store


def test_many_small_txns_all_apply(store: Store) -> None:
    store.put("/net/1", b"x")
    for i in range(300):
        res = store.txn(
            [Compare("/net/1", "version", ">", 0)],
            [Put(f"/port/{i}/{j}", b"v" * 200) for j in range(5)],
        )
        assert res.succeeded
    assert len(store.range("/port/").kvs) == 1500
    assert store.revision() == 301


def test_range_of_ten_thousand_keys(store: Store) -> None:
    for batch in range(10):
        store.txn([], [Put(f"/obj/{batch:02d}/{i:04d}", b"v" * 100) for i in range(1000)])
    store.put("/other", b"")
    res = store.range("/obj/")
    assert len(res.kvs) == 10_000 and res.revision == 11
    assert [kv.key for kv in res.kvs] == sorted(kv.key for kv in res.kvs)
    assert "/other" not in {kv.key for kv in res.kvs}
