"""The SQLite file layout of :class:`overcast.store.sqlite.SqliteStore`, and how a
connection to it is opened.

One file, shared by several processes (API server, agents; some in other
network namespaces, all on one filesystem) and several threads in each.  WAL
mode lets readers run beside the one writer; writers serialize on
``BEGIN IMMEDIATE`` and wait for each other through ``busy_timeout``.
"""

from __future__ import annotations

import sqlite3

BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL,
    version INTEGER NOT NULL,
    lease INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS history (
    rev INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,  -- 0 put, 1 delete
    value BLOB NOT NULL,
    PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL,
    compact_revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, revision, compact_revision) VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS leases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ttl REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases(expires_at);
"""


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are begun explicitly)."""
    conn = sqlite3.connect(
        path,
        timeout=BUSY_TIMEOUT_S,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def initialize(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL and create the tables (idempotent, race-free)."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch the store file to WAL mode (got {mode})")
    conn.execute("BEGIN IMMEDIATE")
    try:
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
