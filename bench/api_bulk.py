"""Cost of one large request: each heavy request shape with N and with 10N
elements, through ``Api.handle`` (no HTTP), printed side by side with the
ratio.  Work proportional to the request gives about 10x; work that grows
with the square of it gives about 100x.

    .venv/bin/python bench/api_bulk.py                      # every shape, N=200
    .venv/bin/python bench/api_bulk.py -n 300 --shapes networks,port_fixed_ips
    .venv/bin/python bench/api_bulk.py --store sqlite       # on a SQLite file
    .venv/bin/python bench/api_bulk.py --profile port_fixed_ips -n 3000   # cProfile one

The shapes (``SHAPES``) are shared with ``tests/api/test_cost.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from overcast.api import Api, Request  # noqa: E402
from overcast.store import MemoryStore, Store, open_store  # noqa: E402


def post(api: Api, path: str, body: Any) -> Any:
    resp = api.handle(Request("POST", path, [], {}, json.dumps(body).encode()))
    assert resp.status == 201, (path, resp.status, str(resp.body)[:300])
    return resp.body


def _network(api: Api) -> str:
    return str(post(api, "/v2.0/networks", {"network": {"name": "n"}})["network"]["id"])


def _subnet(api: Api, net: str, cidr: str = "10.0.0.0/8") -> str:
    body = {"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}}
    return str(post(api, "/v2.0/subnets", body)["subnet"]["id"])


def _group(api: Api) -> str:
    return str(post(api, "/v2.0/security-groups",
                    {"security_group": {"name": "g"}})["security_group"]["id"])


@dataclass(frozen=True)
class Shape:
    """One heavy request: ``setup`` makes what it needs (its time is not
    counted) and returns the request's (path, body) for ``n`` elements."""
    name: str
    setup: Callable[[Api, int], tuple[str, Any]]


def _networks(api: Api, n: int) -> tuple[str, Any]:
    return "/v2.0/networks", {"networks": [{} for _ in range(n)]}


def _subnets(api: Api, n: int) -> tuple[str, Any]:
    net = _network(api)
    return "/v2.0/subnets", {"subnets": [
        {"network_id": net, "cidr": f"10.{i // 256}.{i % 256}.0/24", "ip_version": 4}
        for i in range(n)]}


def _ports(api: Api, n: int) -> tuple[str, Any]:
    net = _network(api)
    _subnet(api, net)
    return "/v2.0/ports", {"ports": [{"network_id": net} for _ in range(n)]}


def _ports_fixed_ips(api: Api, n: int) -> tuple[str, Any]:
    net = _network(api)
    sub = _subnet(api, net)
    return "/v2.0/ports", {"ports": [{"network_id": net, "fixed_ips": [{"subnet_id": sub}]}
                                     for _ in range(n)]}


def _port_fixed_ips(api: Api, n: int) -> tuple[str, Any]:
    net = _network(api)
    sub = _subnet(api, net)
    return "/v2.0/ports", {"port": {"network_id": net,
                                    "fixed_ips": [{"subnet_id": sub} for _ in range(n)]}}


def _port_fixed_addresses(api: Api, n: int) -> tuple[str, Any]:
    net = _network(api)
    sub = _subnet(api, net)
    return "/v2.0/ports", {"port": {"network_id": net, "fixed_ips": [
        {"subnet_id": sub, "ip_address": f"10.1.{i // 256}.{i % 256}"} for i in range(n)]}}


def _port_address_pairs(api: Api, n: int) -> tuple[str, Any]:
    net = _network(api)
    _subnet(api, net)
    return "/v2.0/ports", {"port": {"network_id": net, "allowed_address_pairs": [
        {"ip_address": f"192.168.{i // 256}.{i % 256}"} for i in range(n)]}}


def _security_groups(api: Api, n: int) -> tuple[str, Any]:
    return "/v2.0/security-groups", {"security_groups": [{"name": f"g{i}"} for i in range(n)]}


def _rules(api: Api, n: int) -> tuple[str, Any]:
    group = _group(api)
    return "/v2.0/security-group-rules", {"security_group_rules": [
        {"security_group_id": group, "direction": "ingress", "ethertype": "IPv4",
         "protocol": "tcp", "port_range_min": i + 1, "port_range_max": i + 1}
        for i in range(n)]}


def _network_tags(api: Api, n: int) -> tuple[str, Any]:
    return "/v2.0/networks", {"networks": [{"tags": [f"t{i}", f"u{i}"]} for i in range(n)]}


SHAPES = {s.name: s for s in (
    Shape("networks", _networks),
    Shape("subnets", _subnets),
    Shape("ports", _ports),
    Shape("ports_fixed_ips", _ports_fixed_ips),
    Shape("port_fixed_ips", _port_fixed_ips),
    Shape("port_fixed_addresses", _port_fixed_addresses),
    Shape("port_address_pairs", _port_address_pairs),
    Shape("security_groups", _security_groups),
    Shape("rules", _rules),
    Shape("network_tags", _network_tags),
)}


def time_once(make_store: Callable[[], Store], shape: Shape, n: int) -> float:
    """Seconds for one request of ``shape`` with ``n`` elements on a fresh store."""
    store = make_store()
    try:
        api = Api(store)
        path, body = shape.setup(api, n)
        t0 = time.perf_counter()
        post(api, path, body)
        return time.perf_counter() - t0
    finally:
        store.close()


def best_of(make_store: Callable[[], Store], shape: Shape, n: int, repeat: int) -> float:
    return min(time_once(make_store, shape, n) for _ in range(repeat))


def _stores(kind: str, tmp: str) -> Callable[[], Store]:
    if kind == "memory":
        return MemoryStore
    counter = iter(range(10**6))
    return lambda: open_store(f"sqlite://{tmp}/bulk-{next(counter)}.db")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200, help="elements in the small request")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset")
    ap.add_argument("--store", choices=("memory", "sqlite"), default="memory")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--profile", metavar="SHAPE", help="cProfile one request of n elements")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="oc-bench-bulk-") as tmp:
        make_store = _stores(args.store, tmp)
        if args.profile:
            prof = cProfile.Profile()
            prof.runcall(time_once, make_store, SHAPES[args.profile], args.n)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
            return
        print(f"store={args.store} best of {args.repeat}")
        print(f"{'shape':24}{'N':>6}{'N s':>9}{'10N':>7}{'10N s':>9}{'ratio':>8}")
        for name in args.shapes.split(","):
            shape = SHAPES[name]
            small = best_of(make_store, shape, args.n, args.repeat)
            large = best_of(make_store, shape, 10 * args.n, args.repeat)
            print(f"{name:24}{args.n:>6}{small:>9.4f}{10 * args.n:>7}{large:>9.4f}"
                  f"{large / small:>7.1f}x", flush=True)


if __name__ == "__main__":
    main()
