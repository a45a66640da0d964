"""Each request's work is proportional to its size (issue 7, item 12).

For every heavy request shape, one request with N elements and one with 10N
go through ``Api.handle`` on a fresh store each; the larger must take less
than ``RATIO`` times the smaller (linear is 10x, quadratic 100x).  Times are
the best of a few runs, and a shape gets up to ``ROUNDS`` tries, so that a
busy 2-core machine does not fail it; work that grows with the square of the
request fails every round (and stops early when it is far off).  The store's own part, a transaction of K reads
and W writes committing in O(K+W), is timed the same way on both backends.

``bench/api_bulk.py`` prints the same shapes side by side (``SHAPES``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from overcast.api import Api
from overcast.api.config import ApiConfig
from overcast.api.errors import BadRequest
from overcast.api.quotas import NO_LIMITS
from overcast.api.wire import Request, decode_body
from overcast.model import keys
from overcast.store import MemoryStore, Put, SqliteStore, StmTxn, Store, transact

N = 100  # elements of the small request; 10N stays within a bulk body's limit
RATIO = 20.0
ROUNDS = 3
SMALL_RUNS, LARGE_RUNS = 5, 3

MakeStore = Callable[[], Store]


def post(api: Api, path: str, body: Any, method: str = "POST") -> Any:
    data = b"" if body is None else json.dumps(body).encode()
    resp = api.handle(Request(method, path, [], {}, data))
    assert resp.status == (201 if method == "POST" else 200), (path, resp.status,
                                                                 str(resp.body)[:300])
    return resp.body


def _network(api: Api) -> str:
    return str(post(api, "/v2.0/networks", {"network": {"name": "n"}})["network"]["id"])


def _subnet(api: Api, net: str) -> str:
    body = {"subnet": {"network_id": net, "cidr": "10.0.0.0/8", "ip_version": 4}}
    return str(post(api, "/v2.0/subnets", body)["subnet"]["id"])


@dataclass(frozen=True)
class Shape:
    """One heavy request: ``setup`` makes what it needs (not timed) and returns
    the request's path and body for ``n`` elements."""
    name: str
    setup: Callable[[Api, int], tuple[str, Any]]
    n: int = N
    method: str = "POST"


def _networks(api: Api, n: int) -> tuple[str, Any]:
    return "/v2.0/networks", {"networks": [{} for _ in range(n)]}


def _network_tags(api: Api, n: int) -> tuple[str, Any]:
    return "/v2.0/networks", {"networks": [{"tags": [f"t{i}-{j}" for j in range(10)]}
                                           for i in range(n)]}


def _subnets(api: Api, n: int) -> tuple[str, Any]:
    nets = post(api, "/v2.0/networks", {"networks": [{} for _ in range(n)]})["networks"]
    return "/v2.0/subnets", {"subnets": [
        {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4} for net in nets]}


def _subnets_one_network(api: Api, n: int) -> tuple[str, Any]:
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


def _ports_address_pairs(api: Api, n: int) -> tuple[str, Any]:
    net = _network(api)
    _subnet(api, net)
    return "/v2.0/ports", {"ports": [
        {"network_id": net,
         "allowed_address_pairs": [{"ip_address": f"192.168.{i % 256}.{j}"} for j in range(10)]}
        for i in range(n)]}


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


def _port_update_fixed_ips(api: Api, n: int) -> tuple[str, Any]:
    """A port with n addresses on one subnet, sent its fixed_ips back naming only the subnet."""
    path, body = _port_fixed_ips(api, n)
    port = post(api, path, body)["port"]
    return f"/v2.0/ports/{port['id']}", {"port": {
        "fixed_ips": [{"subnet_id": f["subnet_id"]} for f in port["fixed_ips"]]}}


def _router_routes(api: Api, n: int) -> tuple[str, Any]:
    net = _network(api)
    sub = _subnet(api, net)
    router = post(api, "/v2.0/routers", {"router": {"name": "r"}})["router"]
    post(api, f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub}, "PUT")
    return f"/v2.0/routers/{router['id']}", {"router": {"routes": [
        {"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.9"} for i in range(n)]}}


def _security_groups(api: Api, n: int) -> tuple[str, Any]:
    return "/v2.0/security-groups", {"security_groups": [{"name": f"g{i}"} for i in range(n)]}


def _rules(api: Api, n: int) -> tuple[str, Any]:
    group = post(api, "/v2.0/security-groups", {"security_group": {"name": "g"}})
    return "/v2.0/security-group-rules", {"security_group_rules": [
        {"security_group_id": group["security_group"]["id"], "direction": "ingress",
         "protocol": "tcp", "port_range_min": i + 1, "port_range_max": i + 1}
        for i in range(n)]}


def _rules_with_counters(api: Api, n: int) -> tuple[str, Any]:
    """Listing n rules while three hosts report counters for every one of
    them: the hosts' keys are read once per request, not once per rule."""
    path, body = _rules(api, n)
    for start in range(0, n, 500):
        post(api, path, {"security_group_rules": body["security_group_rules"][start:start + 500]})
    rules = post(api, path, None, "GET")["security_group_rules"]
    for host in ("h1", "h2", "h3"):
        api.store.put(keys.firewall_counters(host), json.dumps(
            {"host": host, "rules": {r["id"]: [1, 60] for r in rules}}).encode())
    return path, None


SHAPES = {s.name: s for s in (
    Shape("networks", _networks),
    Shape("network_tags", _network_tags),
    Shape("subnets", _subnets, 50),
    Shape("subnets_one_network", _subnets_one_network, 50),
    Shape("ports", _ports),
    Shape("ports_fixed_ips", _ports_fixed_ips),
    Shape("ports_address_pairs", _ports_address_pairs, 50),
    Shape("port_fixed_ips", _port_fixed_ips, 300),
    Shape("port_fixed_addresses", _port_fixed_addresses, 300),
    Shape("port_update_fixed_ips", _port_update_fixed_ips, 300, "PUT"),
    Shape("router_routes", _router_routes, 3, "PUT"),
    Shape("security_groups", _security_groups),
    Shape("rules", _rules),
    Shape("rules_listed_with_counters", _rules_with_counters, method="GET"),
)}


def time_request(make_store: MakeStore, shape: Shape, n: int) -> float:
    """Seconds for one request of ``shape`` with ``n`` elements on a fresh store."""
    store = make_store()
    try:
        api = Api(store, ApiConfig(quota_defaults=NO_LIMITS))  # thousands in one project
        path, body = shape.setup(api, n)
        t0 = time.perf_counter()
        post(api, path, body, shape.method)
        return time.perf_counter() - t0
    finally:
        store.close()


def assert_linear(measure: Callable[[int], float], n: int, what: str) -> None:
    """``measure(size)`` is the time of one run at ``size``.  Passes as soon as
    one run at 10n beats ``RATIO`` times the best of ``SMALL_RUNS`` at n; fails
    at once when two runs at 10n both took over twice that (no noise does that)."""
    tries = []
    for _ in range(ROUNDS):
        small = min(measure(n) for _ in range(SMALL_RUNS))
        large = float("inf")
        for run in range(LARGE_RUNS):
            large = min(large, measure(10 * n))
            if large < RATIO * small:
                return
            if run and large > 2 * RATIO * small:
                break
        tries.append(f"{small * 1e3:.1f} ms -> {large * 1e3:.1f} ms ({large / small:.0f}x)")
        if large > 2 * RATIO * small:
            break
    pytest.fail(f"{what}: {n} -> {10 * n} elements took more than {RATIO:g}x as long: "
                f"{'; '.join(tries)}")


def _memory_request(shape: Shape) -> Callable[[int], float]:
    return lambda n: time_request(MemoryStore, shape, n)


@pytest.mark.parametrize("name", list(SHAPES))
def test_request_cost_is_linear(name: str) -> None:
    shape = SHAPES[name]
    assert_linear(_memory_request(shape), shape.n, name)


def test_request_cost_is_linear_on_sqlite(tmp_path: Path) -> None:
    files = iter(range(10**6))

    def measure(n: int) -> float:
        return time_request(lambda: SqliteStore(str(tmp_path / f"{next(files)}.db")),
                            SHAPES["ports_fixed_ips"], n)
    assert_linear(measure, N, "ports_fixed_ips on SQLite")


# the store: a transaction of K reads and W writes commits in O(K+W) --------
def _transaction(store: Store, k: int) -> float:
    """K reads of existing keys, K prefix reads (each over a prefix this
    transaction writes into, as ``Repo.where`` reads an index it adds to),
    K puts and K deletes, in one transaction."""
    for start in range(0, k, 1000):
        store.txn([], [Put(f"/r/{i}", b"v") for i in range(start, min(k, start + 1000))])

    def work(tx: StmTxn) -> None:
        for i in range(k):
            tx.get(f"/r/{i}")
            tx.range(f"/w/{i}/")
            tx.put(f"/w/{i}/x", b"v")
            tx.delete(f"/d/{i}")
    t0 = time.perf_counter()
    transact(store, work)
    return time.perf_counter() - t0


def test_transaction_cost_is_linear_in_memory() -> None:
    assert_linear(lambda k: _transaction(MemoryStore(), k), 300, "memory transaction")


def test_transaction_cost_is_linear_on_sqlite(tmp_path: Path) -> None:
    files = iter(range(10**6))

    def measure(k: int) -> float:
        store = SqliteStore(str(tmp_path / f"{next(files)}.db"))
        try:
            return _transaction(store, k)
        finally:
            store.close()
    assert_linear(measure, 200, "SQLite transaction")


def test_body_decoding_is_linear() -> None:
    """A malformed body (an unterminated string of escaped quotes) costs the
    JSON check time linear in its size, never a scan per quote."""
    def measure(n: int) -> float:
        raw = ('{"network": {"name": "' + '\\"' * n).encode()
        t0 = time.perf_counter()
        with pytest.raises(BadRequest):
            decode_body(raw, 1 << 22)
        return time.perf_counter() - t0
    assert_linear(measure, 20_000, "an unterminated string body")
