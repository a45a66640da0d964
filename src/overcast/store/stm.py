"""Optimistic software transactions over any Store, as etcd's STM.

``transact(store, fn)`` runs ``fn(tx)``; ``tx`` reads from the store and
buffers writes (reads see the buffered writes).  Commit is one ``store.txn``
whose compares assert that everything ``fn`` read is unchanged:

* every key read: mod revision equal to what was seen (version 0 if absent);
* every prefix read: no key in it with a mod revision newer than the read
  (a range compare), and every key seen in it still at its mod revision
  (so that a key deleted since the read is noticed too).

On conflict ``fn`` runs again with a fresh transaction, up to ``retries``
times, then :class:`ConflictError`.  ``fn`` may raise to abort: nothing is
written.  If it raises while its reads are already stale (it may have seen
an inconsistent mix), it is re-run instead, so an exception always reflects
a consistent view.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from overcast.store.base import (
    Compare,
    Delete,
    KeyValue,
    Op,
    Put,
    Store,
    StoreError,
    prefix_end,
)
from overcast.store.sortedkeys import SortedKeys

T = TypeVar("T")


class ConflictError(StoreError):
    """A transaction kept conflicting with concurrent writers and gave up."""


class _Stale(Exception):
    """Two reads of one attempt disagree: the attempt cannot commit."""


def dump_json(obj: Any) -> bytes:
    """The stored JSON form: compact, keys sorted (byte-for-byte deterministic)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


class StmTxn:
    """One attempt of a transaction.  Writes are buffered until commit."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._seen: dict[str, int] = {}  # key -> mod revision read (0: absent)
        self._cache: dict[str, KeyValue | None] = {}
        self._ranges: dict[str, int] = {}  # prefix -> revision of the read
        self._ranged: dict[str, list[KeyValue]] = {}  # prefix -> what the store returned
        self._writes: dict[str, Put | None] = {}  # None: delete
        self._written = SortedKeys()  # the keys of _writes, so a range merges only its own

    # reads ----------------------------------------------------------------
    def get(self, key: str, *, track: bool = True) -> bytes | None:
        """The value of ``key`` (with this transaction's writes applied).

        ``track=False`` reads without making the commit depend on it: for a key
        another writer owns that the transaction only shows (the API rendering
        a port's status, which agents write)."""
        if key in self._writes:
            w = self._writes[key]
            return w.value if w is not None else None
        if key not in self._cache:
            if not track:
                kv = self._store.get(key)
                return kv.value if kv is not None else None
            self._note(key, self._store.get(key))
        kv = self._cache[key]
        return kv.value if kv is not None else None

    def get_json(self, key: str) -> Any | None:
        raw = self.get(key)
        return json.loads(raw) if raw is not None else None

    def range(self, prefix: str, *, track: bool = True) -> list[KeyValue]:
        """Keys under ``prefix`` sorted by key, with this transaction's writes applied.
        A key written here and not yet committed has mod_revision 0.

        ``track=False`` reads without making the commit depend on the result:
        for callers that check what they rely on themselves (IPAM reads a
        subnet's allocations as a hint, then ``get``s the address it picks).

        A tracked prefix is read from the store once per transaction; reading
        it again costs only its keys and this transaction's writes under it."""
        kvs = self._ranged.get(prefix)
        if kvs is None:
            res = self._store.range(prefix)
            kvs = res.kvs
            if track:
                self._ranges[prefix] = res.revision
                self._ranged[prefix] = kvs
                for kv in kvs:
                    self._note(kv.key, kv)
        written = self._written.between(prefix, prefix_end(prefix)) if prefix else list(
            self._written)
        if not written:
            return list(kvs)
        merged = {kv.key: kv for kv in kvs}
        for key in written:
            w = self._writes[key]
            if w is None:
                merged.pop(key, None)
            else:
                old = merged.get(key)
                merged[key] = KeyValue(
                    key,
                    w.value,
                    old.create_revision if old else 0,
                    0,
                    (old.version if old else 0) + 1,
                    w.lease,
                )
        return [merged[k] for k in sorted(merged)]

    def range_json(self, prefix: str) -> list[tuple[str, Any]]:
        return [(kv.key, json.loads(kv.value)) for kv in self.range(prefix)]

    def _note(self, key: str, kv: KeyValue | None) -> None:
        mod = kv.mod_revision if kv is not None else 0
        if key in self._seen and self._seen[key] != mod:
            raise _Stale(key)
        self._seen[key] = mod
        self._cache[key] = kv

    # writes ---------------------------------------------------------------
    def put(self, key: str, value: bytes, lease: int = 0) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"put {key!r}: value must be bytes, got {type(value).__name__}")
        self._write(key, Put(key, value, lease))

    def put_json(self, key: str, obj: Any, lease: int = 0) -> None:
        self.put(key, dump_json(obj), lease)

    def delete(self, key: str) -> None:
        self._write(key, None)

    def _write(self, key: str, w: Put | None) -> None:
        if key not in self._writes:
            self._written.add(key)
        self._writes[key] = w

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under ``prefix`` (including ones written in this txn)."""
        for kv in self.range(prefix):
            self._write(kv.key, None)

    # commit ---------------------------------------------------------------
    def compares(self) -> list[Compare]:
        out: list[Compare] = []
        for key, mod in self._seen.items():
            if mod:
                out.append(Compare(key, "mod", "==", mod))
            else:
                out.append(Compare(key, "version", "==", 0))
        for prefix, rev in self._ranges.items():
            out.append(Compare(prefix, "mod", "<", rev + 1, range_end=prefix_end(prefix)))
        return out

    def ops(self) -> list[Op]:
        writes = self._writes
        return [w if (w := writes[k]) is not None else Delete(k) for k in self._written]


def transact_rev(store: Store, fn: Callable[[StmTxn], T], *, retries: int = 50) -> tuple[T, int]:
    """Run ``fn`` transactionally; return its result and the commit revision
    (for a transaction that wrote nothing: the revision its reads were valid at)."""
    for attempt in range(max(retries, 1)):
        if attempt >= 2:  # back off a little under contention, with jitter
            time.sleep(random.uniform(0, min(0.0002 * attempt, 0.005)))
        tx = StmTxn(store)
        try:
            result = fn(tx)
        except _Stale:
            continue
        except Exception:
            if _still_valid(store, tx):
                raise
            continue
        res = store.txn(tx.compares(), tx.ops())
        if res.succeeded:
            return result, res.revision
    raise ConflictError(f"transaction {getattr(fn, '__name__', fn)!r} conflicted {retries} times")


def transact(store: Store, fn: Callable[[StmTxn], T], *, retries: int = 50) -> T:
    """Run ``fn`` transactionally and return its result."""
    return transact_rev(store, fn, retries=retries)[0]


def _still_valid(store: Store, tx: StmTxn) -> bool:
    try:
        return store.txn(tx.compares(), []).succeeded
    except StoreError:
        return False
