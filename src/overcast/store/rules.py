"""Semantics shared by the backends: how a Compare is judged, which op lists are legal.

Both follow etcd v3 exactly, so that code tested against the embedded
backends behaves the same on etcd:

* a single-key compare on a missing key compares against version, create and
  mod revision 0; a ``value`` compare on a missing key never holds;
* a range compare holds when it holds for every existing key in the range; an
  empty range is judged like a missing key;
* one branch of a transaction may not put the same key twice, nor put a key
  that one of its deletes covers (etcd: "duplicate key given in txn request").
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Iterable
from typing import Any

from overcast.store.base import Compare, Delete, KeyValue, Op, Put, StoreError

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
TARGETS = ("version", "create", "mod", "value")


def validate_compare(c: Compare) -> None:
    """Reject a malformed compare before anything is evaluated."""
    if c.target not in TARGETS:
        raise StoreError(f"compare on {c.key!r}: unknown target {c.target!r}")
    if c.op not in OPS:
        raise StoreError(f"compare on {c.key!r}: unknown operator {c.op!r}")
    want = bytes if c.target == "value" else int
    if not isinstance(c.value, want) or isinstance(c.value, bool):
        raise StoreError(
            f"compare on {c.key!r}: target {c.target!r} needs a {want.__name__}, "
            f"got {type(c.value).__name__}"
        )


def target_of(c: Compare, kv: KeyValue) -> int | bytes:
    if c.target == "version":
        return kv.version
    if c.target == "create":
        return kv.create_revision
    if c.target == "mod":
        return kv.mod_revision
    return kv.value


def compare_missing(c: Compare) -> bool:
    """The verdict for a missing key (or an empty range)."""
    if c.target == "value":
        return False
    return OPS[c.op](0, c.value)


def compare_kvs(c: Compare, kvs: Iterable[KeyValue]) -> bool:
    """The verdict over the existing keys a compare covers (one for a single key)."""
    fn = OPS[c.op]
    seen = False
    for kv in kvs:
        seen = True
        if not fn(target_of(c, kv), c.value):
            return False
    return True if seen else compare_missing(c)


def validate_ops(ops: list[Op]) -> None:
    """Raise StoreError for ops etcd would refuse (duplicate or overlapping keys).
    O(n log n) in the number of ops: a delete is looked up among the puts, not
    compared with each of them."""
    puts: set[str] = set()
    deletes: list[Delete] = []
    for op in ops:
        if isinstance(op, Put):
            if not isinstance(op.value, bytes):
                raise StoreError(f"put {op.key!r}: value must be bytes")
            if op.key in puts:
                raise StoreError(f"duplicate key given in txn request: {op.key!r}")
            puts.add(op.key)
        elif isinstance(op, Delete):
            deletes.append(op)
        else:
            raise StoreError(f"unknown txn op {op!r}")
    ordered: list[str] | None = None
    for d in deletes:
        if d.range_end is None:
            hit = d.key if d.key in puts else None
        else:
            ordered = sorted(puts) if ordered is None else ordered
            i = bisect.bisect_left(ordered, d.key)
            hit = ordered[i] if i < len(ordered) and ordered[i] < d.range_end else None
        if hit is not None:
            raise StoreError(f"duplicate key given in txn request: {hit!r} (put and delete)")


def validate_txn(compares: list[Compare], success: list[Op],
                 failure: list[Op] | None) -> list[Op]:
    """Check a whole transaction before any backend touches its data; returns
    the failure ops (empty when none were given)."""
    for c in compares:
        validate_compare(c)
    validate_ops(success)
    validate_ops(failure or [])
    return failure or []
