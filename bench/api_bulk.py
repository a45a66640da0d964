"""Cost of one large request: each heavy request shape with N and with 10N
elements, through ``Api.handle`` (no HTTP), printed side by side with the
ratio.  Work proportional to the request gives about 10x; work that grows
with the square of it gives about 100x.

    .venv/bin/python bench/api_bulk.py                      # every shape, its test's N
    .venv/bin/python bench/api_bulk.py -n 100 --shapes networks,port_fixed_ips
    .venv/bin/python bench/api_bulk.py --store sqlite       # on a SQLite file
    .venv/bin/python bench/api_bulk.py --profile port_fixed_ips -n 3000   # cProfile one

The shapes are those of ``tests/api/test_cost.py`` (``SHAPES``), which asserts
the ratio; a bulk body holds at most 1,000 objects, so N is at most 100 for
the bulk shapes.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.api.test_cost import SHAPES, time_request  # noqa: E402

from overcast.store import MemoryStore, Store, open_store  # noqa: E402


def best_of(make_store: Callable[[], Store], name: str, n: int, repeat: int) -> float:
    return min(time_request(make_store, SHAPES[name], n) for _ in range(repeat))


def _stores(kind: str, tmp: str) -> Callable[[], Store]:
    if kind == "memory":
        return MemoryStore
    counter = iter(range(10**6))
    return lambda: open_store(f"sqlite://{tmp}/bulk-{next(counter)}.db")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("-n", type=int, help="elements in the small request (default: the test's)")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset")
    ap.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--profile", metavar="SHAPE", help="cProfile one request of n elements")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="oc-bench-bulk-") as tmp:
        make_store = _stores(args.store, tmp)
        if args.profile:
            prof = cProfile.Profile()
            shape = SHAPES[args.profile]
            prof.runcall(time_request, make_store, shape, args.n or shape.n)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
            return
        print(f"store={args.store} best of {args.repeat}")
        print(f"{'shape':24}{'N':>6}{'N s':>9}{'10N':>7}{'10N s':>9}{'ratio':>8}")
        for name in args.shapes.split(","):
            n = args.n or SHAPES[name].n
            small = best_of(make_store, name, n, args.repeat)
            large = best_of(make_store, name, 10 * n, args.repeat)
            print(f"{name:24}{n:>6}{small:>9.4f}{10 * n:>7}{large:>9.4f}"
                  f"{large / small:>7.1f}x", flush=True)


if __name__ == "__main__":
    main()
