"""One write transaction of the SQLite backend, inside ``BEGIN IMMEDIATE``.

Applies ops at the next revision, sweeps expired leases (each in a revision
of its own), buffers history rows, and on ``finish`` writes the history, the
new revision and, now and then, the automatic compaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from overcast.store import rules
from overcast.store.base import Compare, Delete, LeaseNotFound, Op, Put

COLUMNS = {"version": "version", "create": "create_rev", "mod": "mod_rev", "value": "value"}
SQL_OPS = {"==": "=", "!=": "!=", "<": "<", ">": ">"}
ROW_INDEX = {"version": 0, "create": 1, "mod": 2, "value": 3}  # in rows of _fetch
FETCH_CHUNK = 500  # keys per bulk read (SQLite allows 32766 parameters)
COMPACT_EVERY = 1000  # automatic compaction runs when the revision crosses a multiple of this

PUT_SQL = (
    "INSERT INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, 1, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev, "
    "version = version + 1, lease = excluded.lease"
)
KV_COLS = "key, value, create_rev, mod_rev, version, lease"


class WriteTxn:
    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        row = conn.execute("SELECT revision, compact_revision FROM meta").fetchone()
        self.start_rev: int = row[0]
        self.rev: int = row[0]
        self.compact_rev: int = row[1]
        self.rows: list[tuple[int, int, str, int, bytes]] = []

    # compares -------------------------------------------------------------
    def all_hold(self, compares: list[Compare]) -> bool:
        """True if every compare holds.  Single-key compares are judged from one
        bulk read, so that a transaction with thousands of them (an STM commit
        after a large range read) stays short while it holds the write lock."""
        singles = [c for c in compares if c.range_end is None]
        with_value = any(c.target == "value" for c in singles)
        found = self._fetch({c.key for c in singles}, with_value)
        for c in singles:
            row = found.get(c.key)
            if row is None:
                if not rules.compare_missing(c):
                    return False
            elif not rules.OPS[c.op](row[ROW_INDEX[c.target]], c.value):
                return False
        return all(self._range_holds(c) for c in compares if c.range_end is not None)

    def _fetch(self, keys: set[str], with_value: bool) -> dict[str, tuple[Any, ...]]:
        """key -> (version, create, mod[, value]) for the keys that exist."""
        cols = "key, version, create_rev, mod_rev" + (", value" if with_value else "")
        ordered = sorted(keys)
        out: dict[str, tuple[Any, ...]] = {}
        for i in range(0, len(ordered), FETCH_CHUNK):
            chunk = ordered[i : i + FETCH_CHUNK]
            marks = ",".join("?" * len(chunk))
            cur = self.conn.execute(f"SELECT {cols} FROM kv WHERE key IN ({marks})", chunk)
            for row in cur.fetchall():
                out[row[0]] = row[1:]
        return out

    def _range_holds(self, c: Compare) -> bool:
        assert c.range_end is not None
        exists = self.conn.execute(
            "SELECT 1 FROM kv WHERE key >= ? AND key < ? LIMIT 1", (c.key, c.range_end)
        ).fetchone()
        if exists is None:
            return rules.compare_missing(c)
        col, op = COLUMNS[c.target], SQL_OPS[c.op]
        bad = self.conn.execute(
            f"SELECT 1 FROM kv WHERE key >= ? AND key < ? AND NOT ({col} {op} ?) LIMIT 1",
            (c.key, c.range_end, c.value),
        ).fetchone()
        return bad is None

    # ops ------------------------------------------------------------------
    def apply(self, ops: list[Op]) -> None:
        rev = self.rev + 1
        rows: list[tuple[int, int, str, int, bytes]] = []
        for op in ops:
            if isinstance(op, Put):
                self._put(op, rev)
                rows.append((rev, len(rows), op.key, 0, op.value))
            else:
                for key in self._delete(op):
                    rows.append((rev, len(rows), key, 1, b""))
        if rows:
            self.rev = rev
            self.rows.extend(rows)

    def _put(self, op: Put, rev: int) -> None:
        if op.lease:
            found = self.conn.execute("SELECT 1 FROM leases WHERE id = ?", (op.lease,)).fetchone()
            if found is None:
                raise LeaseNotFound(f"put {op.key!r}: lease {op.lease} not found")
        self.conn.execute(PUT_SQL, (op.key, op.value, rev, rev, op.lease))

    def _delete(self, op: Delete) -> list[str]:
        if op.range_end is None:
            cur = self.conn.execute("DELETE FROM kv WHERE key = ? RETURNING key", (op.key,))
        else:
            cur = self.conn.execute(
                "DELETE FROM kv WHERE key >= ? AND key < ? RETURNING key", (op.key, op.range_end)
            )
        return sorted(r[0] for r in cur.fetchall())

    # leases ---------------------------------------------------------------
    def sweep(self) -> None:
        """Delete every expired lease and its keys (one revision per lease)."""
        expired = self.conn.execute(
            "SELECT id FROM leases WHERE expires_at <= ? ORDER BY id", (self.now,)
        ).fetchall()
        for (lease_id,) in expired:
            self.drop_lease(lease_id)

    def drop_lease(self, lease_id: int) -> bool:
        """Delete a lease and its keys; False if it did not exist."""
        cur = self.conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,))
        if cur.rowcount == 0:
            return False
        keys = self.conn.execute(
            "SELECT key FROM kv WHERE lease = ? ORDER BY key", (lease_id,)
        ).fetchall()
        self.apply([Delete(k) for (k,) in keys])
        return True

    # compaction and commit ------------------------------------------------
    def compact(self, revision: int) -> None:
        if revision <= self.compact_rev:
            return
        self.conn.execute("DELETE FROM history WHERE rev < ?", (revision,))
        self.conn.execute("UPDATE meta SET compact_revision = ?", (revision,))
        self.compact_rev = revision

    def finish(self, history_keep: int) -> None:
        if not self.rows:
            return
        self.conn.executemany(
            "INSERT INTO history (rev, seq, key, type, value) VALUES (?, ?, ?, ?, ?)", self.rows
        )
        self.conn.execute("UPDATE meta SET revision = ?", (self.rev,))
        every = max(1, min(COMPACT_EVERY, history_keep // 10))
        if self.rev // every != self.start_rev // every:
            self.compact(self.rev - history_keep + 1)
