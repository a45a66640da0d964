"""extraroute-atomic as Neutron's: PUT add_extraroutes / remove_extraroutes
with {"router": {"routes": [...]}}, one store transaction each, adding a
present route or removing a missing one a no-op, the result checked as a
routes update is; the owner's (another project's router is not there)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump

Obj = dict[str, Any]
TOKENS = {"t-admin": Context("ops", True), "t-alice": Context("alice", False),
          "t-bob": Context("bob", False)}


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def cloud(store: MemoryStore) -> dict[str, Direct]:
    api = Api(store, auth=Auth(dict(TOKENS)))
    return {name.removeprefix("t-"): Direct(api, name) for name in TOKENS}


@pytest.fixture
def router(cloud: dict[str, Direct]) -> Obj:
    alice = cloud["alice"]
    net = alice.network(name="n")
    sub = alice.subnet(net["id"], "10.0.0.0/24")
    rtr = alice.create("router", "routers", name="r")
    assert alice.put(f"/v2.0/routers/{rtr['id']}/add_router_interface",
                     {"subnet_id": sub["id"]}).status == 200
    return rtr


def _route(n: int, hop: str = "10.0.0.5") -> dict[str, str]:
    return {"destination": f"192.168.{n}.0/24", "nexthop": hop}


def _edit(c: Direct, rtr: Obj, action: str, *routes: dict[str, str]) -> Any:
    return c.put(f"/v2.0/routers/{rtr['id']}/{action}", {"router": {"routes": list(routes)}})


def test_add_and_remove(cloud: dict[str, Direct], router: Obj) -> None:
    alice = cloud["alice"]
    r = _edit(alice, router, "add_extraroutes", _route(1), _route(2))
    assert r.status == 200, r.body
    assert r["router"]["id"] == router["id"]
    assert r["router"]["routes"] == [_route(1), _route(2)]
    rev = r["router"]["revision_number"]
    # present routes are no-ops; the same destination through another nexthop is another route
    r = _edit(alice, router, "add_extraroutes", _route(2), _route(2, "10.0.0.6"), _route(2))
    assert r["router"]["routes"] == [_route(1), _route(2), _route(2, "10.0.0.6")]
    r = _edit(alice, router, "remove_extraroutes", _route(2), _route(9))
    assert r.status == 200 and r["router"]["routes"] == [_route(1), _route(2, "10.0.0.6")]
    assert r["router"]["revision_number"] > rev
    shown = alice.get(f"/v2.0/routers/{router['id']}")["router"]
    assert shown["routes"] == r["router"]["routes"]


def test_a_noop_edit_is_answered(cloud: dict[str, Direct], router: Obj) -> None:
    alice = cloud["alice"]
    r = _edit(alice, router, "remove_extraroutes", _route(3))
    assert r.status == 200 and r["router"]["routes"] == []
    assert _edit(alice, router, "add_extraroutes").status == 200


@pytest.mark.parametrize("body", [
    {}, {"routes": []}, {"router": {}}, {"router": {"routes": "x"}},
    {"router": {"routes": [{"destination": "192.168.1.0/24"}]}},
    {"router": {"routes": [{"destination": "nowhere", "nexthop": "10.0.0.5"}]}},
    {"router": {"routes": [], "name": "x"}},
])
def test_malformed_bodies_are_400(cloud: dict[str, Direct], router: Obj, store: MemoryStore,
                                  body: Any) -> None:
    before = dump(store)
    r = cloud["alice"].put(f"/v2.0/routers/{router['id']}/add_extraroutes", body)
    assert_error(r, 400)
    assert dump(store) == before


def test_the_result_is_checked_as_a_routes_update(cloud: dict[str, Direct], router: Obj,
                                                  store: MemoryStore) -> None:
    alice = cloud["alice"]
    assert _edit(alice, router, "add_extraroutes", _route(1)).status == 200
    before = dump(store)
    r = _edit(alice, router, "add_extraroutes", _route(4), _route(5, "172.16.0.1"))
    assert_error(r, 400, "172.16.0.1", "not connected", type="InvalidRoutes")
    r = _edit(alice, router, "add_extraroutes", *[_route(n) for n in range(10, 40)])
    assert_error(r, 400, "exceeds the maximum 30", type="RoutesExhausted")
    assert dump(store) == before


def test_the_owners_and_the_admins(cloud: dict[str, Direct], router: Obj,
                                   store: MemoryStore) -> None:
    before = dump(store)
    for action in ("add_extraroutes", "remove_extraroutes"):
        assert_error(_edit(cloud["bob"], router, action, _route(1)), 404, type="RouterNotFound")
    assert dump(store) == before
    r = _edit(cloud["admin"], router, "add_extraroutes", _route(7))
    assert r.status == 200 and r["router"]["routes"] == [_route(7)]
    assert_error(_edit(cloud["alice"], {"id": "00000000-0000-0000-0000-000000000000"},
                       "add_extraroutes", _route(1)), 404)


def test_concurrent_adds_from_two_workers_lose_nothing(store: MemoryStore, router: Obj) -> None:
    """Two API workers on one store: each add is one optimistic transaction,
    so no read-modify-write race drops a route."""
    workers = [Direct(Api(store, auth=Auth(dict(TOKENS))), "t-alice") for _ in range(2)]
    errors: list[Any] = []

    def add(c: Direct, base: int) -> None:
        for n in range(base, base + 12):
            r = _edit(c, router, "add_extraroutes", _route(n))
            if r.status != 200:
                errors.append(r.body)
    threads = [threading.Thread(target=add, args=(c, 12 * i)) for i, c in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    routes = workers[0].get(f"/v2.0/routers/{router['id']}")["router"]["routes"]
    assert sorted(r["destination"] for r in routes) == sorted(
        f"192.168.{n}.0/24" for n in range(24))


def test_it_is_advertised_with_neutrons_name(cloud: dict[str, Direct]) -> None:
    ext = cloud["bob"].get("/v2.0/extensions/extraroute-atomic")["extension"]
    assert ext["name"] == "Atomically add/remove extra routes"
