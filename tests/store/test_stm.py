"""STM: read-your-writes, conflict detection and retry, abort, commit revision."""

from __future__ import annotations

import pytest

from overcast.store import ConflictError, Put, StmTxn, Store, transact, transact_rev


def test_reads_see_own_writes(store: Store) -> None:
    store.put("/p/a", b"1")
    store.put("/p/b", b"2")

    def fn(tx: StmTxn) -> list[tuple[str, bytes]]:
        assert tx.get("/p/a") == b"1"
        tx.put("/p/a", b"new")
        tx.put("/p/c", b"3")
        tx.delete("/p/b")
        assert tx.get("/p/a") == b"new" and tx.get("/p/b") is None
        return [(kv.key, kv.value) for kv in tx.range("/p/")]

    assert transact(store, fn) == [("/p/a", b"new"), ("/p/c", b"3")]
    assert [(kv.key, kv.value) for kv in store.range("/p/").kvs] == [
        ("/p/a", b"new"),
        ("/p/c", b"3"),
    ]
    assert store.revision() == 3  # one commit


def test_json_helpers_are_compact_and_sorted(store: Store) -> None:
    def fn(tx: StmTxn) -> object:
        tx.put_json("/o/1", {"b": [1, 2], "a": "x"})
        return tx.get_json("/o/1"), tx.range_json("/o/"), tx.get_json("/o/none")

    assert transact(store, fn) == (
        {"a": "x", "b": [1, 2]},
        [("/o/1", {"a": "x", "b": [1, 2]})],
        None,
    )
    assert store.get("/o/1").value == b'{"a":"x","b":[1,2]}'  # type: ignore[union-attr]


def test_delete_prefix_includes_buffered_puts(store: Store) -> None:
    store.put("/d/a", b"")
    store.put("/e", b"")

    def fn(tx: StmTxn) -> None:
        tx.put("/d/new", b"")
        tx.delete_prefix("/d/")
        assert tx.range("/d/") == []
        tx.put("/d/after", b"x")

    transact(store, fn)
    assert [kv.key for kv in store.range("").kvs] == ["/d/after", "/e"]


def test_lease_is_passed_through(store: Store) -> None:
    lease = store.lease_grant(100)
    transact(store, lambda tx: tx.put("/alive/x", b"", lease=lease))
    store.lease_revoke(lease)
    assert store.get("/alive/x") is None


def _interfering(store: Store, fn_body, interference) -> tuple[object, int]:  # type: ignore[no-untyped-def]
    calls = 0

    def fn(tx: StmTxn) -> object:
        nonlocal calls
        calls += 1
        result = fn_body(tx)
        if calls == 1:
            interference()
        return result

    return transact(store, fn), calls


def test_conflict_on_key_read_reruns(store: Store) -> None:
    store.put("n", b"1")

    def incr(tx: StmTxn) -> int:
        n = int(tx.get("n") or b"0") + 1
        tx.put("n", str(n).encode())
        return n

    result, calls = _interfering(store, incr, lambda: store.put("n", b"10"))
    assert (result, calls) == (11, 2)
    assert store.get("n").value == b"11"  # type: ignore[union-attr]


def test_conflict_on_absent_key_read(store: Store) -> None:
    def claim(tx: StmTxn) -> str:
        if tx.get("owner") is not None:
            return "taken"
        tx.put("owner", b"me")
        return "mine"

    result, calls = _interfering(store, claim, lambda: store.put("owner", b"other"))
    assert (result, calls) == ("taken", 2)
    assert store.get("owner").value == b"other"  # type: ignore[union-attr]


@pytest.mark.parametrize("change", ["create", "modify", "delete"])
def test_conflict_on_range_read(store: Store, change: str) -> None:
    store.put("/r/1", b"")
    store.put("/r/2", b"")
    actions = {
        "create": lambda: store.put("/r/3", b""),
        "modify": lambda: store.put("/r/1", b"x"),
        "delete": lambda: store.delete("/r/2"),
    }

    def count(tx: StmTxn) -> int:
        n = len(tx.range("/r/"))
        tx.put("/count", str(n).encode())
        return n

    result, calls = _interfering(store, count, actions[change])
    assert calls == 2
    assert result == len(store.range("/r/").kvs)


def test_unrelated_write_does_not_conflict(store: Store) -> None:
    store.put("a", b"1")

    def fn(tx: StmTxn) -> bytes | None:
        tx.put("b", b"2")
        return tx.get("a")

    assert _interfering(store, fn, lambda: store.put("/other", b"")) == (b"1", 1)


def test_gives_up_with_conflict_error(store: Store) -> None:
    calls = 0

    def fn(tx: StmTxn) -> None:
        nonlocal calls
        calls += 1
        tx.get("hot")
        store.put("hot", str(calls).encode())
        tx.put("x", b"")

    with pytest.raises(ConflictError):
        transact(store, fn, retries=3)
    assert calls == 3
    assert store.get("x") is None


def test_exception_aborts_without_writing(store: Store) -> None:
    def fn(tx: StmTxn) -> None:
        tx.put("a", b"1")
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        transact(store, fn)
    assert store.revision() == 0


def test_exception_from_stale_view_is_retried(store: Store) -> None:
    """Invariant: a == b.  The first attempt sees a half-old, half-new view and
    raises; since its reads are stale, it runs again and sees a consistent one."""
    store.txn([], [Put("a", b"1"), Put("b", b"1")])
    calls = 0

    def fn(tx: StmTxn) -> bytes:
        nonlocal calls
        calls += 1
        a = tx.get("a")
        if calls == 1:
            store.txn([], [Put("a", b"2"), Put("b", b"2")])
        if tx.get("b") != a:
            raise AssertionError("invariant broken")
        return a or b""

    assert transact(store, fn) == b"2"
    assert calls == 2


def test_transact_rev(store: Store) -> None:
    store.put("x", b"")
    _, rev = transact_rev(store, lambda tx: tx.put("a", b""))
    assert rev == 2 == store.get("a").mod_revision  # type: ignore[union-attr]
    value, rev = transact_rev(store, lambda tx: tx.get("a"))
    assert (value, rev, store.revision()) == (b"", 2, 2)


def test_pending_write_in_range_has_mod_zero(store: Store) -> None:
    store.put("/k/a", b"1")

    def fn(tx: StmTxn) -> list[tuple[str, int, int, int]]:
        tx.put("/k/a", b"2")
        tx.put("/k/b", b"3")
        return [(kv.key, kv.create_revision, kv.mod_revision, kv.version) for kv in tx.range("/k/")]

    assert transact(store, fn) == [("/k/a", 1, 0, 2), ("/k/b", 0, 0, 1)]
