"""Leases: expiry deletes the attached keys (as delete events), keepalive, revoke."""

from __future__ import annotations

import time

import pytest

from overcast.store import Event, LeaseNotFound, Put, Store, StoreError

from .store_testing import FakeClock, StoreFactory


def test_expiry_deletes_keys_in_one_revision(make_store: StoreFactory, clock: FakeClock) -> None:
    store = make_store(clock=clock)
    lease = store.lease_grant(10)
    store.txn([], [Put("/alive/h1", b"", lease), Put("/alive/h2", b"", lease)])
    store.put("/keep", b"")
    w = store.watch("", 3)
    clock.advance(9.9)
    assert store.get("/alive/h1") is not None
    assert w.next_batch(0.01) == []
    clock.advance(0.2)
    assert w.next_batch(1) == [
        Event("delete", "/alive/h1", b"", 3),
        Event("delete", "/alive/h2", b"", 3),
    ]
    assert [kv.key for kv in store.range("").kvs] == ["/keep"]
    assert store.revision() == 3


def test_keepalive_extends(make_store: StoreFactory, clock: FakeClock) -> None:
    store = make_store(clock=clock)
    lease = store.lease_grant(10)
    store.put("k", b"", lease)
    for _ in range(5):
        clock.advance(8)
        store.lease_keepalive(lease)
    assert store.get("k") is not None and store.get("k").lease == lease  # type: ignore[union-attr]
    clock.advance(11)
    store.revision()  # any operation may sweep
    store.put("other", b"")  # a write always sweeps
    assert store.get("k") is None


def test_keepalive_of_expired_lease_raises(make_store: StoreFactory, clock: FakeClock) -> None:
    store = make_store(clock=clock)
    lease = store.lease_grant(1)
    store.put("k", b"v", lease)
    clock.advance(2)
    with pytest.raises(LeaseNotFound):
        store.lease_keepalive(lease)
    assert store.get("k") is None
    w = store.watch("", 2)
    assert w.next_batch(0.5) == [Event("delete", "k", b"", 2)]


def test_unknown_lease(store: Store) -> None:
    with pytest.raises(LeaseNotFound):
        store.lease_keepalive(12345)
    with pytest.raises(LeaseNotFound):
        store.lease_revoke(12345)
    with pytest.raises(LeaseNotFound):
        store.put("k", b"", 12345)
    assert store.get("k") is None and store.revision() == 0


def test_revoke_deletes_keys(store: Store) -> None:
    lease = store.lease_grant(100)
    store.put("a", b"", lease)
    store.put("b", b"", lease)
    store.put("c", b"")
    store.lease_revoke(lease)
    assert [kv.key for kv in store.range("").kvs] == ["c"]
    assert store.revision() == 4
    with pytest.raises(LeaseNotFound):
        store.lease_keepalive(lease)


def test_put_without_lease_detaches_key(make_store: StoreFactory, clock: FakeClock) -> None:
    store = make_store(clock=clock)
    lease = store.lease_grant(5)
    store.put("a", b"1", lease)
    store.put("a", b"2")
    clock.advance(6)
    store.put("x", b"")
    assert store.get("a") is not None and store.get("a").lease == 0  # type: ignore[union-attr]


def test_moving_key_to_another_lease(make_store: StoreFactory, clock: FakeClock) -> None:
    store = make_store(clock=clock)
    short, long_ = store.lease_grant(5), store.lease_grant(50)
    store.put("a", b"", short)
    store.put("a", b"", long_)
    clock.advance(6)
    store.put("x", b"")
    assert store.get("a") is not None
    store.lease_revoke(long_)
    assert store.get("a") is None


def test_ids_are_distinct_and_ttl_must_be_positive(store: Store) -> None:
    assert len({store.lease_grant(1) for _ in range(20)}) == 20
    with pytest.raises(StoreError):
        store.lease_grant(0)


def test_real_clock_expiry_seen_by_watcher(make_store: StoreFactory) -> None:
    """No injected clock: a short ttl, and a waiting watcher alone notices the expiry."""
    store = make_store()
    lease = store.lease_grant(0.2)
    store.put("/alive/h", b"", lease)
    w = store.watch("/alive/", 2)
    t0 = time.monotonic()
    assert w.next_batch(3) == [Event("delete", "/alive/h", b"", 2)]
    assert 0.15 < time.monotonic() - t0 < 1.5
