"""Store speed: small transactions and a 10,000-key range read, per backend.

Printed side by side in one run with a baseline: the same work as plain
``sqlite3`` statements on a bare key/value table (no revisions, no history),
so the cost of the store's bookkeeping is visible as a ratio.

    .venv/bin/python bench/store_ops.py [--txns 2000] [--keys 10000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from overcast.store import Compare, Put, open_store  # noqa: E402


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_store(url: str, txns: int, keys: int) -> dict[str, float]:
    store = open_store(url)
    store.put("/net/1", b"x")
    counter = iter(range(10**9))

    def small_txn() -> None:
        i = next(counter)
        store.txn([Compare("/net/1", "version", ">", 0)],
                  [Put(f"/port/{i}/{j}", b"v" * 200) for j in range(5)])

    txn_times = timed(small_txn, txns)
    for start in range(0, keys, 1000):
        store.txn([], [Put(f"/obj/{i:06d}", b"v" * 100) for i in range(start, min(keys, start + 1000))])
    range_times = timed(lambda: store.range("/obj/"), 5)
    store.close()
    return {"txn_p50_us": statistics.median(txn_times) * 1e6,
            "txn_p99_us": sorted(txn_times)[int(len(txn_times) * 0.99) - 1] * 1e6,
            "range_ms": statistics.median(range_times) * 1e3}


def bench_raw_sqlite(path: Path, txns: int, keys: int) -> dict[str, float]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB)")
    db.execute("INSERT INTO kv VALUES ('/net/1', x'78')")
    counter = iter(range(10**9))

    def small_txn() -> None:
        i = next(counter)
        db.execute("BEGIN IMMEDIATE")
        db.execute("SELECT value FROM kv WHERE key = '/net/1'").fetchone()
        db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)",
                       [(f"/port/{i}/{j}", b"v" * 200) for j in range(5)])
        db.execute("COMMIT")

    txn_times = timed(small_txn, txns)
    for start in range(0, keys, 1000):
        db.execute("BEGIN")
        db.executemany("INSERT INTO kv VALUES (?, ?)",
                       [(f"/obj/{i:06d}", b"v" * 100) for i in range(start, min(keys, start + 1000))])
        db.execute("COMMIT")
    range_times = timed(lambda: db.execute(
        "SELECT key, value FROM kv WHERE key >= '/obj/' AND key < '/obj0' ORDER BY key").fetchall(), 5)
    db.close()
    return {"txn_p50_us": statistics.median(txn_times) * 1e6,
            "txn_p99_us": sorted(txn_times)[int(len(txn_times) * 0.99) - 1] * 1e6,
            "range_ms": statistics.median(range_times) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--txns", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oc-bench-store-") as tmp:
        rows = {
            "raw sqlite3 (baseline)": bench_raw_sqlite(Path(tmp) / "raw.db", args.txns, args.keys),
            "overcast sqlite": bench_store(f"sqlite:///{tmp}/store.db", args.txns, args.keys),
            "overcast memory": bench_store("memory:", args.txns, args.keys),
        }
    base = rows["raw sqlite3 (baseline)"]
    print(f"{'backend':<24}{'txn p50 µs':>12}{'txn p99 µs':>12}{'range ' + str(args.keys) + ' ms':>16}"
          f"{'txn ×base':>11}{'range ×base':>13}")
    for name, r in rows.items():
        print(f"{name:<24}{r['txn_p50_us']:>12.0f}{r['txn_p99_us']:>12.0f}{r['range_ms']:>16.1f}"
              f"{r['txn_p50_us'] / base['txn_p50_us']:>11.2f}{r['range_ms'] / base['range_ms']:>13.2f}")


if __name__ == "__main__":
    main()
