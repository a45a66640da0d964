"""An in-process store: the fake that implements the real contract.

Thread-safe (one lock, with a Condition that wakes watchers), keeps the event
history for watches, compacts it, and expires leases lazily: every operation
first sweeps the leases whose time has come (each expired lease deletes its
keys in one revision of its own).  The clock is injectable so tests can
expire leases without sleeping.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable

from overcast.store import rules
from overcast.store.base import (
    CompactedError,
    Compare,
    Delete,
    Event,
    KeyValue,
    LeaseNotFound,
    Op,
    Put,
    RangeResult,
    Store,
    StoreError,
    TxnResult,
    Watcher,
    prefix_end,
)
from overcast.store.sortedkeys import SortedKeys

WAIT_SLICE = 0.05  # a waiting watcher re-checks leases at least this often


class _Lease:
    __slots__ = ("ttl", "expires_at", "keys")

    def __init__(self, ttl: float, expires_at: float) -> None:
        self.ttl = ttl
        self.expires_at = expires_at
        self.keys: set[str] = set()


class MemoryStore(Store):
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        history_keep: int = 200_000,
    ) -> None:
        self._clock = clock
        self._history_keep = history_keep
        self._cond = threading.Condition(threading.Lock())
        self._kv: dict[str, KeyValue] = {}
        self._keys = SortedKeys()
        self._history: list[Event] = []
        self._rev = 0
        self._compact_rev = 0  # first revision whose events are kept
        self._leases: dict[int, _Lease] = {}
        self._lease_ids = itertools.count(1)
        self._closed = False

    # reads ----------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        with self._cond:
            self._sweep()
            return self._kv.get(key)

    def range(self, prefix: str) -> RangeResult:
        with self._cond:
            self._sweep()
            return RangeResult(self._slice(prefix, prefix_end(prefix)), self._rev)

    def revision(self) -> int:
        with self._cond:
            self._sweep()
            return self._rev

    def _slice(self, start: str, end: str) -> list[KeyValue]:
        kv = self._kv
        return [kv[k] for k in self._keys.between(start, end)]

    # writes ---------------------------------------------------------------
    def txn(
        self,
        compares: list[Compare],
        success: list[Op],
        failure: list[Op] | None = None,
    ) -> TxnResult:
        failure = rules.validate_txn(compares, success, failure)
        with self._cond:
            self._sweep()
            ok = all(self._holds(c) for c in compares)
            ops = success if ok else failure
            self._check_leases(ops)
            events = self._apply(ops, self._rev + 1)
            self._commit(events)
            return TxnResult(ok, self._rev)

    def _holds(self, c: Compare) -> bool:
        if c.range_end is None:
            kv = self._kv.get(c.key)
            return rules.compare_kvs(c, [kv] if kv is not None else [])
        return rules.compare_kvs(c, self._slice(c.key, c.range_end))

    def _check_leases(self, ops: list[Op]) -> None:
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self._leases:
                raise LeaseNotFound(f"put {op.key!r}: lease {op.lease} not found")

    def _apply(self, ops: list[Op], rev: int) -> list[Event]:
        events: list[Event] = []
        for op in ops:
            if isinstance(op, Put):
                self._put(op, rev)
                events.append(Event("put", op.key, op.value, rev))
            elif op.range_end is None:
                if op.key in self._kv:
                    self._remove(op.key)
                    events.append(Event("delete", op.key, b"", rev))
            else:
                for kv in self._slice(op.key, op.range_end):
                    self._remove(kv.key)
                    events.append(Event("delete", kv.key, b"", rev))
        return events

    def _put(self, op: Put, rev: int) -> None:
        old = self._kv.get(op.key)
        if old is None:
            self._keys.add(op.key)
            kv = KeyValue(op.key, op.value, rev, rev, 1, op.lease)
        else:
            kv = KeyValue(op.key, op.value, old.create_revision, rev, old.version + 1, op.lease)
            if old.lease and old.lease != op.lease:
                self._leases[old.lease].keys.discard(op.key)
        if op.lease:
            self._leases[op.lease].keys.add(op.key)
        self._kv[op.key] = kv

    def _remove(self, key: str) -> None:
        kv = self._kv.pop(key)
        self._keys.discard(key)
        if kv.lease and kv.lease in self._leases:
            self._leases[kv.lease].keys.discard(key)

    def _commit(self, events: list[Event]) -> None:
        if not events:
            return
        self._rev += 1
        self._history.extend(events)
        excess = self._rev - self._history_keep + 1
        if excess > self._compact_rev and excess - self._compact_rev >= max(
            1, self._history_keep // 10
        ):
            self._compact_locked(excess)
        self._cond.notify_all()

    # compaction -----------------------------------------------------------
    def compact(self, revision: int) -> None:
        with self._cond:
            if revision > self._rev:
                raise StoreError(
                    f"cannot compact at revision {revision}: current revision is {self._rev}"
                )
            self._compact_locked(revision)

    def _compact_locked(self, revision: int) -> None:
        if revision <= self._compact_rev:
            return
        cut = bisect.bisect_left(self._history, revision, key=lambda e: e.revision)
        del self._history[:cut]
        self._compact_rev = revision
        self._cond.notify_all()

    # leases ---------------------------------------------------------------
    def lease_grant(self, ttl: float) -> int:
        if ttl <= 0:
            raise StoreError(f"lease ttl must be positive, got {ttl}")
        with self._cond:
            self._sweep()
            lease_id = next(self._lease_ids)
            self._leases[lease_id] = _Lease(ttl, self._clock() + ttl)
            return lease_id

    def lease_keepalive(self, lease: int) -> None:
        with self._cond:
            self._sweep()
            found = self._leases.get(lease)
            if found is None:
                raise LeaseNotFound(f"lease {lease} not found (expired, revoked or never granted)")
            found.expires_at = self._clock() + found.ttl

    def lease_revoke(self, lease: int) -> None:
        with self._cond:
            self._sweep()
            if lease not in self._leases:
                raise LeaseNotFound(f"lease {lease} not found (expired, revoked or never granted)")
            self._drop_lease(lease)

    def _drop_lease(self, lease: int) -> None:
        keys = sorted(self._leases.pop(lease).keys)
        self._commit(self._apply([Delete(k) for k in keys], self._rev + 1))

    def _sweep(self) -> None:
        if not self._leases:
            return
        now = self._clock()
        for lease_id in [i for i, le in self._leases.items() if le.expires_at <= now]:
            self._drop_lease(lease_id)

    # watch ----------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int,
              exclude: tuple[str, ...] = ()) -> Watcher:
        with self._cond:
            self._sweep()
            start = start_revision if start_revision > 0 else self._rev + 1
            if start < self._compact_rev:
                raise CompactedError(start, self._compact_rev)
            return _MemoryWatcher(self, prefix, start, exclude)

    def _events_from(self, prefix: str, start: int,
                     exclude: tuple[str, ...] = ()) -> tuple[list[Event], int]:
        """Events under prefix, and under none of ``exclude``, from revision
        ``start``; and the next revision to read.  Caller holds the lock."""
        if start < self._compact_rev:
            raise CompactedError(start, self._compact_rev)
        idx = bisect.bisect_left(self._history, start, key=lambda e: e.revision)
        found = [e for e in itertools.islice(self._history, idx, None)
                 if e.key.startswith(prefix) and not (exclude and e.key.startswith(exclude))]
        return found, max(start, self._rev + 1)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _MemoryWatcher(Watcher):
    def __init__(self, store: MemoryStore, prefix: str, start: int,
                 exclude: tuple[str, ...] = ()) -> None:
        self._store = store
        self._prefix = prefix
        self._exclude = exclude
        self._next = start
        self._closed = False

    def next_batch(self, timeout: float) -> list[Event]:
        store = self._store
        deadline = time.monotonic() + max(timeout, 0.0)
        with store._cond:
            while not self._closed and not store._closed:
                store._sweep()
                events, self._next = store._events_from(self._prefix, self._next, self._exclude)
                if events:
                    return events
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                store._cond.wait(min(left, WAIT_SLICE))
        return []

    def close(self) -> None:
        with self._store._cond:
            self._closed = True
            self._store._cond.notify_all()
