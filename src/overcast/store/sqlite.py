"""The embedded default store: one SQLite file, no server.

Shared by several processes (the API server and the agents, some in other
network namespaces but on the same filesystem) and several threads in each:
WAL mode, ``synchronous=NORMAL``, one connection per thread (and per process
after a fork), ``BEGIN IMMEDIATE`` for every write.  Leases carry wall-clock
expiry times (``time.time()``) since the processes share no monotonic clock;
any process sweeps expired leases during its writes and its watch polls.

Writers queue on a lock file beside the database (``<file>-wlock``, flock)
before ``BEGIN IMMEDIATE``, polled at 0.2 ms growing to 2 ms, where SQLite's
own busy handler sleeps 1, 2, 5, 10 ... ms between attempts (a latency tail
under several writing processes); the wait is bounded by the same 30 s.

Watchers poll the history table: a write through any store object of this
process wakes this process's watchers at once; writes of other processes are
seen within ``poll_interval`` (10 ms).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from overcast.store import rules
from overcast.store.base import (
    CompactedError,
    Compare,
    Event,
    KeyValue,
    LeaseNotFound,
    Op,
    RangeResult,
    Store,
    StoreError,
    TxnResult,
    Watcher,
    prefix_end,
)
from overcast.store.sqlite_schema import BUSY_TIMEOUT_S, connect, initialize
from overcast.store.sqlite_txn import KV_COLS, WriteTxn

POLL_INTERVAL = 0.01
SWEEP_CHECK_INTERVAL = 0.05  # how often watch polls look for expired leases
MAX_REVS_PER_BATCH = 1000
GATE_FIRST_WAIT = 0.0002  # polling the writer gate: first wait, growing to
GATE_MAX_WAIT = 0.002


class _Signal:
    """Wakes the watchers of one file in this process when this process writes it."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.gen = 0

    def bump(self) -> None:
        with self.cond:
            self.gen += 1
            self.cond.notify_all()


_signals: dict[str, _Signal] = {}
_signals_lock = threading.Lock()


def _signal_for(path: str) -> _Signal:
    with _signals_lock:
        return _signals.setdefault(path, _Signal())


class _WriterGate:
    """One writer at a time per file: a thread lock in this process, then an
    exclusive flock shared by every process.  Waiting is bounded (``timeout``,
    then StoreError) as SQLite's busy timeout was: a writer frozen while
    holding the gate stalls the others, it does not hang them.  After a fork
    the child starts with a fresh lock and its own descriptor."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = os.getpid()
        self._closed = False

    def _for_this_process(self) -> None:
        if self._pid != os.getpid():  # forked: the parent's lock state and fd are not ours
            if self._fd is not None:
                os.close(self._fd)
            self._lock, self._fd, self._pid = threading.Lock(), None, os.getpid()

    @contextmanager
    def held(self) -> Iterator[None]:
        self._for_this_process()
        deadline = time.monotonic() + self.timeout
        if not self._lock.acquire(timeout=self.timeout):
            raise StoreError(f"{self.path}: no write turn within {self.timeout:g}s")
        try:
            if self._closed:
                raise StoreError(f"{self.path}: the store is closed")
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._flock(self._fd, deadline)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def _flock(self, fd: int, deadline: float) -> None:
        delay = GATE_FIRST_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if time.monotonic() > deadline:
                raise StoreError(f"{self.path}: another process has held the write lock for "
                                 f"{self.timeout:g}s")
            time.sleep(delay)
            delay = min(delay * 1.5, GATE_MAX_WAIT)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None


class SqliteStore(Store):
    def __init__(
        self,
        path: str,
        *,
        history_keep: int = 200_000,
        clock: Callable[[], float] = time.time,
        poll_interval: float = POLL_INTERVAL,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ) -> None:
        if history_keep < 1:
            raise StoreError(f"history_keep must be at least 1, got {history_keep}")
        self.path = os.path.abspath(path)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.history_keep = history_keep
        self.poll_interval = poll_interval
        self._clock = clock
        self._local = threading.local()
        self._conns: list[tuple[int, sqlite3.Connection]] = []
        self._conns_lock = threading.Lock()
        self._signal = _signal_for(self.path)
        self._gate = _WriterGate(self.path + "-wlock", busy_timeout)
        self._next_sweep_check = 0.0
        self._closed = False
        initialize(self._conn())

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # connections ----------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        local = self._local
        pid = os.getpid()
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        if conn is None or local.pid != pid:
            conn = connect(self.path)
            local.conn, local.pid = conn, pid
            with self._conns_lock:
                self._conns.append((pid, conn))
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def _writing(self) -> Iterator[WriteTxn]:
        with self._gate.held():
            with self._write_txn() as w:
                yield w

    @contextmanager
    def _write_txn(self) -> Iterator[WriteTxn]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:  # e.g. "database is locked" after busy_timeout
            raise StoreError(f"{self.path}: cannot begin a write transaction: {e}") from e
        try:
            w = WriteTxn(conn, self._clock())
            w.sweep()
            yield w
            w.finish(self.history_keep)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if w.rev != w.start_rev:
            self._signal.bump()

    # reads ----------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        row = self._conn().execute(f"SELECT {KV_COLS} FROM kv WHERE key = ?", (key,)).fetchone()
        return KeyValue(*row) if row else None

    def range(self, prefix: str) -> RangeResult:
        with self._reading() as conn:
            rev = conn.execute("SELECT revision FROM meta").fetchone()[0]
            if prefix:
                rows = conn.execute(
                    f"SELECT {KV_COLS} FROM kv WHERE key >= ? AND key < ? ORDER BY key",
                    (prefix, prefix_end(prefix)),
                ).fetchall()
            else:
                rows = conn.execute(f"SELECT {KV_COLS} FROM kv ORDER BY key").fetchall()
        return RangeResult([KeyValue(*r) for r in rows], rev)

    def revision(self) -> int:
        return int(self._conn().execute("SELECT revision FROM meta").fetchone()[0])

    # writes ---------------------------------------------------------------
    def txn(
        self,
        compares: list[Compare],
        success: list[Op],
        failure: list[Op] | None = None,
    ) -> TxnResult:
        failure = rules.validate_txn(compares, success, failure)
        with self._writing() as w:
            ok = w.all_hold(compares)
            w.apply(success if ok else failure)
        return TxnResult(ok, w.rev)

    def compact(self, revision: int) -> None:
        with self._writing() as w:
            if revision > w.rev:
                raise StoreError(
                    f"cannot compact at revision {revision}: current revision is {w.rev}"
                )
            w.compact(revision)

    # leases ---------------------------------------------------------------
    def lease_grant(self, ttl: float) -> int:
        if ttl <= 0:
            raise StoreError(f"lease ttl must be positive, got {ttl}")
        with self._writing() as w:
            cur = w.conn.execute(
                "INSERT INTO leases (ttl, expires_at) VALUES (?, ?)", (ttl, w.now + ttl)
            )
            lease_id = cur.lastrowid
        assert lease_id is not None
        return lease_id

    def lease_keepalive(self, lease: int) -> None:
        with self._writing() as w:
            found = w.conn.execute(
                "UPDATE leases SET expires_at = ? + ttl WHERE id = ?", (w.now, lease)
            ).rowcount
        if not found:  # raised after commit, so that the sweep above persists
            raise LeaseNotFound(f"lease {lease} not found (expired, revoked or never granted)")

    def lease_revoke(self, lease: int) -> None:
        with self._writing() as w:
            found = w.drop_lease(lease)
        if not found:
            raise LeaseNotFound(f"lease {lease} not found (expired, revoked or never granted)")

    def _maybe_sweep(self) -> None:
        """From watch polls: sweep expired leases if there are any (throttled)."""
        mono = time.monotonic()
        if mono < self._next_sweep_check:
            return
        self._next_sweep_check = mono + SWEEP_CHECK_INTERVAL
        due = (
            self._conn()
            .execute("SELECT 1 FROM leases WHERE expires_at <= ? LIMIT 1", (self._clock(),))
            .fetchone()
        )
        if due is not None:
            with self._writing():
                pass  # _writing sweeps

    # watch ----------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int,
              exclude: tuple[str, ...] = ()) -> Watcher:
        rev, compact_rev = self._meta()
        start = start_revision if start_revision > 0 else rev + 1
        if start < compact_rev:
            raise CompactedError(start, compact_rev)
        return _SqliteWatcher(self, prefix, start, exclude)

    def _meta(self) -> tuple[int, int]:
        row = self._conn().execute("SELECT revision, compact_revision FROM meta").fetchone()
        return int(row[0]), int(row[1])

    def _poll(self, prefix: str, start: int,
              exclude: tuple[str, ...] = ()) -> tuple[list[Event], int]:
        """Events under ``prefix`` (and none of ``exclude``) from revision
        ``start`` on; and the next start."""
        self._maybe_sweep()
        rev, compact_rev = self._meta()
        if start < compact_rev:
            raise CompactedError(start, compact_rev)
        events: list[Event] = []
        while not events and start <= rev:
            events, start, rev = self._read_history(prefix, start, exclude)
        return events, start

    def _read_history(self, prefix: str, start: int,
                      exclude: tuple[str, ...] = ()) -> tuple[list[Event], int, int]:
        with self._reading() as conn:
            rev, compact_rev = conn.execute(
                "SELECT revision, compact_revision FROM meta"
            ).fetchone()
            if start < compact_rev:
                raise CompactedError(start, compact_rev)
            upper = min(rev, start + MAX_REVS_PER_BATCH - 1)
            sql = "SELECT rev, key, type, value FROM history WHERE rev >= ? AND rev <= ?"
            args: tuple[object, ...] = (start, upper)
            if prefix:
                sql += " AND key >= ? AND key < ?"
                args += (prefix, prefix_end(prefix))
            for left_out in exclude:
                sql += " AND NOT (key >= ? AND key < ?)"
                args += (left_out, prefix_end(left_out))
            rows = conn.execute(sql + " ORDER BY rev, seq", args).fetchall()
        events = [Event("delete" if t else "put", k, v, r) for r, k, t, v in rows]
        return events, upper + 1, rev

    def close(self) -> None:
        self._closed = True
        pid = os.getpid()
        with self._conns_lock:
            mine = [c for p, c in self._conns if p == pid]
            self._conns = []
        for conn in mine:
            conn.close()
        self._gate.close()
        self._signal.bump()


class _SqliteWatcher(Watcher):
    def __init__(self, store: SqliteStore, prefix: str, start: int,
                 exclude: tuple[str, ...] = ()) -> None:
        self._store = store
        self._prefix = prefix
        self._exclude = exclude
        self._next = start
        self._closed = False

    def next_batch(self, timeout: float) -> list[Event]:
        store, signal = self._store, self._store._signal
        deadline = time.monotonic() + max(timeout, 0.0)
        while not self._closed and not store._closed:
            gen = signal.gen
            events, self._next = store._poll(self._prefix, self._next, self._exclude)
            if events:
                return events
            left = deadline - time.monotonic()
            if left <= 0:
                break
            with signal.cond:
                if signal.gen == gen:
                    signal.cond.wait(min(left, store.poll_interval))
        return []

    def close(self) -> None:
        self._closed = True
        self._store._signal.bump()
