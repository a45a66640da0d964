"""Reads, writes, transactions and compares, on both backends."""

from __future__ import annotations

import pytest

from overcast.store import Compare, Delete, KeyValue, Put, Store, StoreError, prefix_end


def test_empty_store(store: Store) -> None:
    assert store.revision() == 0
    assert store.get("a") is None
    res = store.range("")
    assert res.kvs == [] and res.revision == 0


def test_put_get_versions_and_revisions(store: Store) -> None:
    assert store.put("a", b"1") == 1
    assert store.put("b", b"x") == 2
    assert store.put("a", b"2") == 3
    assert store.get("a") == KeyValue("a", b"2", create_revision=1, mod_revision=3, version=2)
    assert store.get("b") == KeyValue("b", b"x", create_revision=2, mod_revision=2, version=1)
    assert store.revision() == 3


def test_delete_and_recreate_resets_version(store: Store) -> None:
    store.put("a", b"1")
    store.put("a", b"2")
    assert store.delete("a") == 3
    assert store.get("a") is None
    store.put("a", b"3")
    assert store.get("a") == KeyValue("a", b"3", create_revision=4, mod_revision=4, version=1)


def test_delete_of_missing_key_does_not_advance_revision(store: Store) -> None:
    store.put("a", b"1")
    assert store.delete("zzz") == 1
    assert store.revision() == 1


def test_range_by_prefix_sorted_and_consistent(store: Store) -> None:
    for key in ["/n/b", "/n/a", "/m/x", "/n", "/n/a/deep", "/o"]:
        store.put(key, key.encode())
    res = store.range("/n/")
    assert [kv.key for kv in res.kvs] == ["/n/a", "/n/a/deep", "/n/b"]
    assert res.revision == 6
    assert [kv.key for kv in store.range("").kvs] == sorted(
        ["/n/b", "/n/a", "/m/x", "/n", "/n/a/deep", "/o"]
    )


def test_unicode_keys_sort_by_code_point(store: Store) -> None:
    keys = ["/k/z", "/k/é", "/k/日本", "/k/A", "/k/\U0001f600"]
    for k in keys:
        store.put(k, b"")
    assert [kv.key for kv in store.range("/k/").kvs] == sorted(keys)


def test_txn_all_ops_share_one_revision(store: Store) -> None:
    store.put("c", b"old")
    res = store.txn([], [Put("a", b"1"), Put("b", b"2"), Delete("c")])
    assert res.succeeded and res.revision == 2
    assert [(kv.key, kv.mod_revision) for kv in store.range("").kvs] == [("a", 2), ("b", 2)]


def test_txn_failure_branch(store: Store) -> None:
    store.put("a", b"1")
    res = store.txn([Compare("a", "value", "==", b"nope")], [Put("s", b"")], [Put("f", b"")])
    assert not res.succeeded and res.revision == 2
    assert store.get("s") is None and store.get("f") is not None


def test_failed_txn_without_failure_ops_writes_nothing(store: Store) -> None:
    store.put("a", b"1")
    res = store.txn([Compare("a", "version", "==", 5)], [Put("a", b"2")])
    assert res == type(res)(False, 1)
    assert store.get("a").value == b"1"  # type: ignore[union-attr]


def test_range_delete(store: Store) -> None:
    for k in ["p/a", "p/b", "p/c", "q/a"]:
        store.put(k, b"")
    res = store.txn([], [Delete("p/", prefix_end("p/"))])
    assert res.revision == 5
    assert [kv.key for kv in store.range("").kvs] == ["q/a"]
    w = store.watch("", 5)
    assert [(e.type, e.key, e.revision) for e in w.next_batch(1)] == [
        ("delete", "p/a", 5),
        ("delete", "p/b", 5),
        ("delete", "p/c", 5),
    ]


def test_range_delete_bounds(store: Store) -> None:
    for k in ["a", "b", "c", "d"]:
        store.put(k, b"")
    store.txn([], [Delete("b", "d")])
    assert [kv.key for kv in store.range("").kvs] == ["a", "d"]


# (target, op, value, expected) against key "k" with value b"m", create 1, mod 2, version 2
SINGLE_CASES = [
    ("version", "==", 2, True),
    ("version", "==", 1, False),
    ("version", "!=", 1, True),
    ("version", "<", 3, True),
    ("version", "<", 2, False),
    ("version", ">", 1, True),
    ("version", ">", 2, False),
    ("create", "==", 1, True),
    ("create", ">", 1, False),
    ("create", "<", 2, True),
    ("create", "!=", 1, False),
    ("mod", "==", 2, True),
    ("mod", "<", 2, False),
    ("mod", ">", 1, True),
    ("mod", "!=", 3, True),
    ("value", "==", b"m", True),
    ("value", "!=", b"m", False),
    ("value", "<", b"n", True),
    ("value", "<", b"m", False),
    ("value", ">", b"l", True),
    ("value", ">", b"ma", False),
]


@pytest.mark.parametrize("target,op,value,expected", SINGLE_CASES)
def test_single_key_compare(
    store: Store, target: str, op: str, value: object, expected: bool
) -> None:
    store.put("k", b"x")
    store.put("k", b"m")
    res = store.txn([Compare("k", target, op, value)], [Put("done", b"")])  # type: ignore[arg-type]
    assert res.succeeded is expected
    assert (store.get("done") is not None) is expected


@pytest.mark.parametrize(
    "target,op,value,expected",
    [
        ("version", "==", 0, True),
        ("create", "==", 0, True),
        ("mod", "<", 1, True),
        ("mod", ">", 0, False),
        ("value", "==", b"", False),  # as etcd: a value compare on a missing key never holds
        ("value", "!=", b"x", False),
    ],
)
def test_compare_on_missing_key(
    store: Store, target: str, op: str, value: object, expected: bool
) -> None:
    assert store.txn([Compare("nope", target, op, value)], []).succeeded is expected  # type: ignore[arg-type]


def _range_store(store: Store) -> None:
    store.put("r/a", b"1")  # rev 1
    store.put("r/b", b"2")  # rev 2
    store.put("r/b", b"3")  # rev 3, version 2
    store.put("s/x", b"9")  # rev 4, outside the range


@pytest.mark.parametrize(
    "target,op,value,expected",
    [
        ("mod", "<", 4, True),
        ("mod", "<", 3, False),
        ("mod", ">", 0, True),
        ("mod", ">", 1, False),
        ("version", "==", 1, False),
        ("version", "<", 3, True),
        ("create", "<", 3, True),
        ("create", "==", 1, False),
        ("value", ">", b"0", True),
        ("value", "!=", b"3", False),
        ("value", "<", b"4", True),
    ],
)
def test_range_compare_holds_for_every_key(
    store: Store, target: str, op: str, value: object, expected: bool
) -> None:
    _range_store(store)
    c = Compare("r/", target, op, value, range_end=prefix_end("r/"))  # type: ignore[arg-type]
    assert store.txn([c], []).succeeded is expected


def test_range_compare_on_empty_range_is_judged_like_a_missing_key(store: Store) -> None:
    _range_store(store)
    end = prefix_end("t/")
    assert store.txn([Compare("t/", "mod", "<", 1, range_end=end)], []).succeeded
    assert store.txn([Compare("t/", "version", "==", 0, range_end=end)], []).succeeded
    assert not store.txn([Compare("t/", "create", ">", 0, range_end=end)], []).succeeded
    assert not store.txn([Compare("t/", "value", "==", b"", range_end=end)], []).succeeded


def test_all_compares_must_hold(store: Store) -> None:
    store.put("a", b"1")
    ok = Compare("a", "version", "==", 1)
    bad = Compare("a", "version", "==", 2)
    assert store.txn([ok, ok], []).succeeded
    assert not store.txn([ok, bad], []).succeeded


@pytest.mark.parametrize(
    "ops",
    [
        [Put("a", b"1"), Put("a", b"2")],
        [Put("a", b"1"), Delete("a")],
        [Delete("a", "c"), Put("b", b"")],
    ],
)
def test_duplicate_keys_in_one_branch_are_refused(store: Store, ops: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(StoreError, match="duplicate key"):
        store.txn([], ops)
    assert store.revision() == 0


def test_overlapping_deletes_are_allowed(store: Store) -> None:
    store.put("a", b"")
    store.put("b", b"")
    assert store.txn([], [Delete("a", "c"), Delete("b")]).revision == 3
    assert store.range("").kvs == []


@pytest.mark.parametrize(
    "compare",
    [
        Compare("a", "version", "==", b"1"),
        Compare("a", "value", "==", 1),
        Compare("a", "bogus", "==", 1),  # type: ignore[arg-type]
        Compare("a", "mod", "<=", 1),  # type: ignore[arg-type]
    ],
)
def test_malformed_compare_is_refused(store: Store, compare: Compare) -> None:
    with pytest.raises(StoreError):
        store.txn([compare], [Put("x", b"")])
    assert store.get("x") is None


def test_non_bytes_value_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        store.txn([], [Put("x", "text")])  # type: ignore[arg-type]


def test_compact_beyond_current_revision_is_refused(store: Store) -> None:
    store.put("a", b"")
    with pytest.raises(StoreError):
        store.compact(5)


def test_thousands_of_compares_in_one_txn(store: Store) -> None:
    store.txn([], [Put(f"/many/{i:04d}", b"v") for i in range(1200)])
    cmps = [Compare(f"/many/{i:04d}", "mod", "==", 1) for i in range(1200)]
    cmps.append(Compare("/many/absent", "version", "==", 0))
    assert store.txn(cmps, [Put("/ok", b"")]).succeeded
    store.put("/many/1100", b"changed")
    assert not store.txn(cmps, [Put("/ok2", b"")]).succeeded
    value_cmps = [Compare(f"/many/{i:04d}", "value", "==", b"v") for i in range(1000)]
    assert store.txn(value_cmps, []).succeeded
    assert not store.txn([*value_cmps, Compare("/many/1100", "value", "==", b"v")], []).succeeded
