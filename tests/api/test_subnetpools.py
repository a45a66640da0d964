"""Subnet pools as Neutron serves them (subnet_allocation, default-subnetpools,
subnetpool-prefix-ops): CRUD, Neutron's defaults and validation (nothing
written on a refusal), prefixes that only grow, the prefix actions,
subnets that take their CIDR from a pool (best fit, lowest first; a given
CIDR; exhaustion; bounds; quota), default pools, tenancy, a pool in use
cannot go, and concurrent allocations never handing out one prefix twice."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from overcast.api import Api
from overcast.store import MemoryStore, SqliteStore

from .helpers import Direct, Projects, assert_error, dump

PATH = "/v2.0/subnetpools"
SUBNETS = "/v2.0/subnets"


def pool(c: Direct, *prefixes: str, **attrs: Any) -> dict[str, Any]:
    return c.create("subnetpool", "subnetpools", **{"name": "p", "prefixes": list(prefixes),
                                                    **attrs})


def subnet(c: Direct, net: dict[str, Any], **attrs: Any) -> Any:
    return c.post(SUBNETS, {"subnet": {"network_id": net["id"], **attrs}})


def cidr_of(r: Any) -> str:
    assert r.status == 201, r.body
    return str(r["subnet"]["cidr"])


def act(c: Direct, p: dict[str, Any], action: str, *prefixes: Any) -> Any:
    return c.put(f"{PATH}/{p['id']}/{action}", {"prefixes": list(prefixes)})


class Three(Projects):
    """alice and bob, members of two projects, and ops, the admin."""


# the pool itself ----------------------------------------------------------------------
def test_create_show_list_update_delete(client: Direct) -> None:
    made = pool(client, "10.0.1.0/24", "10.0.0.0/24", "10.0.0.128/25", "192.168.0.0/24",
                description="office", tags=["a"])
    # merged and compacted, in address order; the family from the prefixes; Neutron's defaults
    assert made["prefixes"] == ["10.0.0.0/23", "192.168.0.0/24"]
    # (Neutron shows the prefix lengths as strings)
    assert (made["ip_version"], made["min_prefixlen"], made["max_prefixlen"],
            made["default_prefixlen"], made["default_quota"], made["address_scope_id"],
            made["shared"], made["is_default"]) == (4, "8", "32", "8", None, None, False, False)
    assert (made["name"], made["description"], made["tags"], made["project_id"]) == (
        "p", "office", ["a"], "lab")
    six = pool(client, "2001:db8::/48", name="six")
    assert (six["ip_version"], six["min_prefixlen"], six["max_prefixlen"],
            six["default_prefixlen"]) == (6, "64", "128", "64")
    assert client.get(f"{PATH}/{made['id']}")["subnetpool"] == made
    assert [p["id"] for p in client.get(PATH, params={"ip_version": "6"})["subnetpools"]] == [
        six["id"]]
    r = client.put(f"{PATH}/{made['id']}", {"subnetpool": {
        "name": "q", "min_prefixlen": 16, "default_prefixlen": 24, "max_prefixlen": 28,
        "default_quota": 1024}})
    assert r.status == 200, r.body
    assert (r["subnetpool"]["name"], r["subnetpool"]["min_prefixlen"],
            r["subnetpool"]["default_prefixlen"], r["subnetpool"]["max_prefixlen"],
            r["subnetpool"]["default_quota"], r["subnetpool"]["revision_number"]) == (
        "q", "16", "24", "28", 1024, 2)
    assert client.delete(f"{PATH}/{made['id']}").status == 204
    err = assert_error(client.get(f"{PATH}/{made['id']}"), 404, type="SubnetPoolNotFound")
    assert err["message"] == f"Subnet pool {made['id']} could not be found."


def test_prefix_lengths_read_as_neutron_shows_them(client: Direct) -> None:
    """Strings, whether the request sent numbers or strings (tempest compares
    them with the strings it sent); filters and sorts still work on them."""
    made = pool(client, "10.11.12.0/24", min_prefixlen="29")
    shown = client.get(f"{PATH}/{made['id']}")["subnetpool"]
    assert (shown["min_prefixlen"], shown["default_prefixlen"], shown["max_prefixlen"]) == (
        "29", "29", "32")
    r = client.put(f"{PATH}/{made['id']}", {"subnetpool": {"min_prefixlen": "28",
                                                           "max_prefixlen": 30}})
    assert (r["subnetpool"]["min_prefixlen"], r["subnetpool"]["max_prefixlen"]) == ("28", "30")
    wide = pool(client, "10.0.0.0/16", default_prefixlen=9)
    assert [p["id"] for p in client.get(PATH, params={"min_prefixlen": "28"})[
        "subnetpools"]] == [made["id"]]
    by_length = client.get(PATH, params={"sort_key": "default_prefixlen"})["subnetpools"]
    assert [p["default_prefixlen"] for p in by_length] == ["9", "29"]  # by number
    assert [p["id"] for p in by_length] == [wide["id"], made["id"]]


def test_a_prefix_with_host_bits_is_its_network(client: Direct) -> None:
    """Neutron's type:subnet_list takes 10.11.12.13/24, its pool keeps 10.11.12.0/24."""
    assert pool(client, "10.11.12.13/24", "10.11.13.1/24")["prefixes"] == ["10.11.12.0/23"]
    assert pool(client, "2001:DB8::1/64")["prefixes"] == ["2001:db8::/64"]


def test_the_prefix_actions_read_prefixes_as_neutron_does(client: Direct,
                                                         store: MemoryStore) -> None:
    """Neutron's add_prefixes and remove_prefixes hand the body's prefixes to
    netaddr unvalidated: host bits dropped, a bare address is its /32; a
    create or update's ``prefixes`` (type:subnet_list) wants a '/'."""
    p = pool(client, "10.0.0.0/24")
    r = act(client, p, "add_prefixes", "10.0.1.1/24", "10.0.9.1", "10.0.9.1/32")
    assert r.status == 200 and r.body == {"prefixes": ["10.0.0.0/23", "10.0.9.1/32"]}, r.body
    r = act(client, p, "remove_prefixes", "10.0.9.1", "10.0.1.7/24")
    assert r.status == 200 and r.body == {"prefixes": ["10.0.0.0/24"]}, r.body
    six = pool(client, "2001:db8::/64", name="six")
    r = act(client, six, "add_prefixes", "2001:db8:1::1")
    assert r.status == 200 and r.body == {"prefixes": ["2001:db8::/64", "2001:db8:1::1/128"]}
    before = dump(store)
    message = "'10.0.9.1' isn't a recognized IP subnet cidr, '10.0.9.1/32' is recommended"
    assert_error(client.post(PATH, {"subnetpool": {"name": "q", "prefixes": ["10.0.9.1"]}}),
                 400, "prefixes", message)
    assert_error(client.put(f"{PATH}/{p['id']}", {"subnetpool": {
        "prefixes": ["10.0.0.0/24", "10.0.9.1"]}}), 400, message)
    for written, recommended in (("10.0.0.0/255.0.0.0", "10.0.0.0/8"),
                                 ("10.1.0.0/0.0.255.255", "10.1.0.0/16")):
        assert_error(client.post(PATH, {"subnetpool": {"name": "q", "prefixes": [written]}}),
                     400, f"'{written}' isn't a recognized IP subnet cidr, "
                     f"'{recommended}' is recommended")  # netaddr's text or nothing (IPv4)
    assert dump(store) == before


@pytest.mark.parametrize("body,status,words,type_", [
    ({"prefixes": ["10.0.0.0/8"]}, 400, ("name",), None),
    ({"name": "p"}, 400, ("prefixes",), None),
    ({"name": "p", "prefixes": []}, 400, ("Empty subnet pool prefix list.",),
     "EmptySubnetPoolPrefixList"),
    ({"name": "p", "prefixes": ["10.0.0.0/8", "2001:db8::/32"]}, 400,
     ("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",), "PrefixVersionMismatch"),
    ({"name": "p", "prefixes": ["10.0.0.0/33"]}, 400, ("prefixes", "not a valid IP subnet"),
     None),
    ({"name": "p", "prefixes": ["10.0.0.0/8", "10.0.0.0/8"]}, 400, ("Duplicate",), None),
    ({"name": "p", "prefixes": "10.0.0.0/8"}, 400, ("prefixes", "not a list"), None),
    ({"name": "p", "prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "max_prefixlen": 16}, 400,
     ("Illegal prefix bounds: min_prefixlen=24, max_prefixlen=16.",),
     "IllegalSubnetPoolPrefixBounds"),
    ({"name": "p", "prefixes": ["10.0.0.0/8"], "max_prefixlen": 33}, 400,
     ("Illegal prefix bounds: max_prefixlen=33, ip_version_max=32.",), None),
    ({"name": "p", "prefixes": ["10.0.0.0/8"], "min_prefixlen": 16, "default_prefixlen": 12},
     400, ("Illegal prefix bounds: default_prefixlen=12, min_prefixlen=16.",), None),
    ({"name": "p", "prefixes": ["10.0.0.0/8"], "max_prefixlen": 24, "default_prefixlen": 26},
     400, ("Illegal prefix bounds: default_prefixlen=26, max_prefixlen=24.",), None),
    ({"name": "p", "prefixes": ["10.0.0.0/8"], "min_prefixlen": -1}, 400,
     ("min_prefixlen", "non-negative"), None),
    ({"name": "p", "prefixes": ["10.0.0.0/8"], "ip_version": 4}, 400,
     ("ip_version", "not allowed"), None),
    ({"name": "p", "prefixes": ["10.0.0.0/8"], "address_scope_id": "0" * 32}, 404,
     ("Address scope",), "AddressScopeNotFound"),
    # neutron-lib's uuid_or_none: a 400 before any lookup
    ({"name": "p", "prefixes": ["10.0.0.0/8"], "address_scope_id": "foo-addr-scope"}, 400,
     ("Invalid input for address_scope_id. Reason: 'foo-addr-scope' is not a valid UUID.",),
     None),
])
def test_bad_pools_are_refused_and_write_nothing(client: Direct, unchanged: Any,
                                                 body: dict[str, Any], status: int,
                                                 words: tuple[str, ...],
                                                 type_: str | None) -> None:
    unchanged()
    assert_error(client.post(PATH, {"subnetpool": body}), status, *words, type=type_)


def test_prefixes_only_grow(client: Direct, store: MemoryStore) -> None:
    p = pool(client, "10.0.0.0/24")
    r = client.put(f"{PATH}/{p['id']}", {"subnetpool": {"prefixes": ["10.0.1.0/24",
                                                                      "10.0.0.0/24"]}})
    assert r.status == 200 and r["subnetpool"]["prefixes"] == ["10.0.0.0/23"]
    before = dump(store)
    for prefixes in (["10.0.0.0/24"], ["10.0.0.0/23", "2001:db8::/64"], ["2001:db8::/64"]):
        r = client.put(f"{PATH}/{p['id']}", {"subnetpool": {"prefixes": prefixes}})
        assert r.status == 400, (prefixes, r.body)
    err = assert_error(client.put(f"{PATH}/{p['id']}", {"subnetpool": {
        "prefixes": ["10.0.1.0/24"]}}), 400, type="IllegalSubnetPoolPrefixUpdate")
    assert err["message"] == ("Illegal update to prefixes: Existing prefixes must be a subset "
                              "of the new prefixes.")
    assert_error(client.put(f"{PATH}/{p['id']}", {"subnetpool": {"shared": True}}), 400,
                 "shared", "PUT")
    assert_error(client.put(f"{PATH}/{p['id']}", {"subnetpool": {"max_prefixlen": 4}}), 400,
                 "Illegal prefix bounds")
    assert dump(store) == before


def test_prefix_actions(client: Direct, store: MemoryStore) -> None:
    p = pool(client, "10.0.0.0/24", default_prefixlen=26)
    net = client.network(name="n")
    r = act(client, p, "add_prefixes", "10.0.1.0/24", "10.0.4.0/22")
    assert r.status == 200 and r.body == {"prefixes": ["10.0.0.0/23", "10.0.4.0/22"]}
    assert client.get(f"{PATH}/{p['id']}")["subnetpool"]["prefixes"] == r["prefixes"]
    assert cidr_of(subnet(client, net, subnetpool_id=p["id"])) == "10.0.0.0/26"
    before = dump(store)
    err = assert_error(act(client, p, "remove_prefixes", "10.0.0.0/25"), 400,
                       type="IllegalSubnetPoolPrefixUpdate")
    assert err["message"] == ("Illegal update to prefixes: One or more the prefixes to be "
                              "removed is in use by a subnet..")  # sic, Neutron's
    bodies: list[Any] = [{}, {"prefixes": []}, {"prefixes": "10.0.0.0/8"}, []]
    for body in bodies:
        assert_error(client.put(f"{PATH}/{p['id']}/add_prefixes", body), 400,
                     "Request body contains invalid data")
    assert_error(act(client, p, "add_prefixes", "10.0.0.0/33"), 400, "10.0.0.0/33")
    assert_error(act(client, p, "add_prefixes", "2001:db8::/64"), 400,
                 type="PrefixVersionMismatch")
    # removing what is not in the pool changes nothing
    r = act(client, p, "remove_prefixes", "192.168.0.0/24")
    assert r.status == 200 and r.body == {"prefixes": ["10.0.0.0/23", "10.0.4.0/22"]}
    assert dump(store) == before
    r = act(client, p, "remove_prefixes", "10.0.1.0/24", "10.0.6.0/23")
    assert r.status == 200 and r.body == {"prefixes": ["10.0.0.0/24", "10.0.4.0/23"]}
    assert_error(client.put(f"{PATH}/{'0' * 32}/add_prefixes", {"prefixes": ["10.9.0.0/24"]}),
                 404, type="SubnetPoolNotFound")


def test_a_pool_in_use_cannot_go(client: Direct, store: MemoryStore) -> None:
    p = pool(client, "10.0.0.0/16", default_prefixlen=24)
    net = client.network(name="n")
    made = subnet(client, net, subnetpool_id=p["id"])
    before = dump(store)
    err = assert_error(client.delete(f"{PATH}/{p['id']}"), 400, type="SubnetPoolDeleteError")
    assert err["message"] == "Unable to delete subnet pool: Subnet pool has existing allocations."
    assert dump(store) == before
    assert client.delete(f"{SUBNETS}/{made['subnet']['id']}").status == 204
    assert client.delete(f"{PATH}/{p['id']}").status == 204


# subnets from a pool ------------------------------------------------------------------
def test_subnets_take_the_best_fitting_lowest_prefix(client: Direct) -> None:
    p = pool(client, "10.0.0.0/16", "10.1.0.0/26", default_prefixlen=24, min_prefixlen=16)
    net = client.network(name="n")
    first = subnet(client, net, subnetpool_id=p["id"], ip_version=4)
    assert cidr_of(first) == "10.0.0.0/24"  # the pool's default_prefixlen
    s = first["subnet"]
    assert (s["subnetpool_id"], s["ip_version"], s["gateway_ip"], s["allocation_pools"]) == (
        p["id"], 4, "10.0.0.1", [{"start": "10.0.0.2", "end": "10.0.0.254"}])
    assert cidr_of(subnet(client, net, subnetpool_id=p["id"])) == "10.0.1.0/24"
    # a /26 fits the small prefix exactly: the smallest free block goes first (Neutron's order)
    assert cidr_of(subnet(client, net, subnetpool_id=p["id"], prefixlen=26)) == "10.1.0.0/26"
    assert cidr_of(subnet(client, net, subnetpool_id=p["id"], prefixlen="26")) == "10.0.2.0/26"
    assert cidr_of(subnet(client, net, subnetpool_id=p["id"], prefixlen=26)) == "10.0.2.64/26"
    assert cidr_of(subnet(client, net, subnetpool_id=p["id"], prefixlen=23)) == "10.0.4.0/23"
    # a CIDR in the pool, with its own pools and gateway
    given = subnet(client, net, subnetpool_id=p["id"], cidr="10.0.3.0/24", gateway_ip=None,
                   allocation_pools=[{"start": "10.0.3.10", "end": "10.0.3.20"}])
    assert cidr_of(given) == "10.0.3.0/24"
    assert (given["subnet"]["gateway_ip"], given["subnet"]["allocation_pools"]) == (
        None, [{"start": "10.0.3.10", "end": "10.0.3.20"}])
    # a freed prefix is free again
    assert client.delete(f"{SUBNETS}/{first['subnet']['id']}").status == 204
    assert cidr_of(subnet(client, net, subnetpool_id=p["id"])) == "10.0.0.0/24"
    listed = client.get(SUBNETS, params={"subnetpool_id": p["id"]})["subnets"]
    assert len(listed) == 7


def test_a_pool_runs_out(client: Direct, store: MemoryStore) -> None:
    p = pool(client, "10.0.0.0/24", default_prefixlen=25)
    net = client.network(name="n")
    assert [cidr_of(subnet(client, net, subnetpool_id=p["id"])) for _ in range(2)] == [
        "10.0.0.0/25", "10.0.0.128/25"]
    other = client.network(name="m")
    before = dump(store)
    err = assert_error(subnet(client, net, subnetpool_id=p["id"], prefixlen=28), 409,
                       type="SubnetAllocationError")
    assert err["message"] == ("Failed to allocate subnet: Insufficient prefix space to allocate "
                              "subnet size /28.")
    assert_error(subnet(client, other, subnetpool_id=p["id"], cidr="10.0.0.0/26"), 409,
                 "Cannot allocate requested subnet from the available set of prefixes")
    assert dump(store) == before


@pytest.mark.parametrize("attrs,status,words,type_", [
    ({"prefixlen": 20}, 400, ("Unable to allocate subnet with prefix length 20, minimum allowed "
                              "prefix is 22.",), "MinPrefixSubnetAllocationError"),
    ({"prefixlen": 29}, 400, ("Unable to allocate subnet with prefix length 29, maximum allowed "
                              "prefix is 28.",), "MaxPrefixSubnetAllocationError"),
    ({"cidr": "10.0.0.0/30"}, 400, ("maximum allowed prefix is 28",), None),
    ({"cidr": "10.0.0.0/24", "prefixlen": 24}, 400,
     ("cidr and prefixlen must not be supplied together",), None),
    ({"allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.9"}]}, 400,
     ("allocation_pools allowed only for specific subnet requests.",), None),
    ({"ip_version": 6}, 400, ("Cannot allocate IPv6 subnet from IPv4 subnet pool",), None),
    ({"cidr": "10.9.0.0/24"}, 409, ("Cannot allocate requested subnet",),
     "SubnetAllocationError"),
    ({"cidr": "2001:db8::/64"}, 400, ("Cannot allocate IPv6 subnet from IPv4 subnet pool",),
     None),
    ({"cidr": "10.0.0.1/24"}, 400, ("cidr",), None),
    ({"prefixlen": -1}, 400, ("prefixlen", "non-negative"), None),
    ({"use_default_subnetpool": True}, 400,
     ("subnetpool_id and use_default_subnetpool cannot both be specified",), None),
])
def test_bad_allocations_are_refused(client: Direct, unchanged: Any, attrs: dict[str, Any],
                                     status: int, words: tuple[str, ...],
                                     type_: str | None) -> None:
    p = pool(client, "10.0.0.0/16", min_prefixlen=22, default_prefixlen=24, max_prefixlen=28)
    net = client.network(name="n")
    unchanged()
    assert_error(subnet(client, net, subnetpool_id=p["id"], **attrs), status, *words,
                 type=type_)


def test_a_subnet_without_cidr_needs_a_pool(client: Direct, net: dict[str, Any],
                                            unchanged: Any) -> None:
    unchanged()
    assert_error(subnet(client, net), 400, "a subnetpool must be specified in the absence of "
                 "a cidr")
    assert_error(subnet(client, net, cidr=None, prefixlen=24), 400, "a subnetpool must be")
    assert_error(subnet(client, net, subnetpool_id="0" * 32, prefixlen=24), 404,
                 type="SubnetPoolNotFound")


def test_the_quota_of_a_project() -> None:
    """default_quota counts /32s: 512 of them are two /24s, for each project."""
    w = Three()
    shared = pool(w.ops, "10.0.0.0/16", shared=True, default_prefixlen=24, default_quota=512)
    taken: list[str] = []
    for c in (w.alice, w.bob):
        net = c.network(name="n")
        taken += [cidr_of(subnet(c, net, subnetpool_id=shared["id"])) for _ in range(2)]
        err = assert_error(subnet(c, net, subnetpool_id=shared["id"], prefixlen=32), 409,
                           type="SubnetPoolQuotaExceeded")
        assert err["message"] == "Per-project subnet pool prefix quota exceeded."
    assert taken == [f"10.0.{i}.0/24" for i in range(4)]
    assert len(w.ops.get(SUBNETS, params={"subnetpool_id": shared["id"]})["subnets"]) == 4


# default pools -------------------------------------------------------------------------
def test_default_pools() -> None:
    w = Three()
    net = w.alice.network(name="n")
    assert_error(subnet(w.alice, net, use_default_subnetpool=True, ip_version=4), 400,
                 "No default subnetpool found for IPv4")
    assert_error(w.alice.post(PATH, {"subnetpool": {"name": "d", "prefixes": ["10.0.0.0/8"],
                                                    "is_default": True}}), 403,
                 "create_subnetpool:is_default")
    four = pool(w.ops, "10.0.0.0/8", is_default=True, shared=True, default_prefixlen=24)
    six = pool(w.ops, "2001:db8::/32", is_default=True, shared=True)
    assert (four["is_default"], six["is_default"]) == (True, True)
    err = assert_error(w.ops.post(PATH, {"subnetpool": {"name": "d", "prefixes": ["11.0.0.0/8"],
                                                        "is_default": True}}), 400,
                       type="InvalidInput")
    assert err["message"] == ("Invalid input for operation: A default subnetpool for this IP "
                              "family has already been set. Only one default may exist per IP "
                              "family.")
    other = pool(w.ops, "11.0.0.0/8")
    assert_error(w.ops.put(f"{PATH}/{other['id']}", {"subnetpool": {"is_default": True}}), 400,
                 type="InvalidInput")
    made = subnet(w.alice, net, use_default_subnetpool=True, ip_version=4)
    assert cidr_of(made) == "10.0.0.0/24" and made["subnet"]["subnetpool_id"] == four["id"]
    made = subnet(w.alice, net, use_default_subnetpool=True, ip_version=6)
    assert cidr_of(made) == "2001:db8::/64" and made["subnet"]["subnetpool_id"] == six["id"]
    assert "use_default_subnetpool" not in made["subnet"]
    assert_error(subnet(w.alice, net, use_default_subnetpool=True), 400,
                 "ip_version must be specified in the absence of cidr and subnetpool_id")
    # the default can move: unset, then set elsewhere
    assert w.ops.put(f"{PATH}/{four['id']}", {"subnetpool": {"is_default": False}}).status == 200
    assert w.ops.put(f"{PATH}/{other['id']}", {"subnetpool": {"is_default": True}}).status == 200


# tenancy --------------------------------------------------------------------------------
def test_tenancy() -> None:
    w = Three()
    mine = pool(w.alice, "10.0.0.0/16", default_prefixlen=24)
    assert_error(w.alice.post(PATH, {"subnetpool": {"name": "s", "prefixes": ["10.0.0.0/8"],
                                                    "shared": True}}), 403,
                 "create_subnetpool:shared")
    shared = pool(w.ops, "172.16.0.0/12", shared=True, default_prefixlen=24)
    assert {p["id"] for p in w.bob.get(PATH)["subnetpools"]} == {shared["id"]}
    assert {p["id"] for p in w.ops.get(PATH)["subnetpools"]} == {shared["id"], mine["id"]}
    assert_error(w.bob.get(f"{PATH}/{mine['id']}"), 404, type="SubnetPoolNotFound")
    net = w.bob.network(name="n")
    assert_error(subnet(w.bob, net, subnetpool_id=mine["id"]), 404, mine["id"],
                 type="SubnetPoolNotFound")
    assert cidr_of(subnet(w.bob, net, subnetpool_id=shared["id"])) == "172.16.0.0/24"
    assert_error(w.bob.put(f"{PATH}/{shared['id']}", {"subnetpool": {"name": "x"}}), 403,
                 "update_subnetpool")
    assert_error(act(w.bob, shared, "add_prefixes", "192.168.0.0/24"), 403, "add_prefixes")
    assert_error(act(w.bob, mine, "add_prefixes", "192.168.0.0/24"), 404)
    assert_error(w.bob.delete(f"{PATH}/{shared['id']}"), 403, "delete_subnetpool")
    assert_error(w.bob.delete(f"{PATH}/{mine['id']}"), 404)
    assert act(w.alice, mine, "add_prefixes", "10.1.0.0/16").status == 200
    made = w.ops.create("subnetpool", "subnetpools", name="for-bob", project_id="bob",
                        prefixes=["10.9.0.0/16"])
    assert made["project_id"] == "bob"
    assert w.bob.get(f"{PATH}/{made['id']}")["subnetpool"]["name"] == "for-bob"


# concurrency -----------------------------------------------------------------------------
def test_concurrent_allocations_never_share_a_prefix(tmp_path: Path) -> None:
    """Four API workers on one SQLite file, each in its own thread, ask one pool
    of sixteen /28s for twenty: sixteen get distinct prefixes, four are told
    the pool is exhausted."""
    store = SqliteStore(str(tmp_path / "oc.db"))
    workers = [Direct(Api(store)) for _ in range(4)]
    p = pool(workers[0], "10.0.0.0/24", default_prefixlen=28)
    nets = [c.network(name=f"n{i}") for i, c in enumerate(workers)]
    outcomes: list[Any] = []
    start = threading.Barrier(len(workers))

    def run(i: int) -> None:
        start.wait(timeout=30)
        for _ in range(5):
            outcomes.append(subnet(workers[i], nets[i], subnetpool_id=p["id"]))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = sorted(r["subnet"]["cidr"] for r in outcomes if r.status == 201)
    refused = [r for r in outcomes if r.status != 201]
    assert made == sorted(f"10.0.0.{16 * i}/28" for i in range(16))
    assert len(refused) == 4
    for r in refused:
        assert_error(r, 409, type="SubnetAllocationError")


def test_the_extensions_are_advertised(client: Direct) -> None:
    aliases = {e["alias"]: e for e in client.get("/v2.0/extensions")["extensions"]}
    assert (aliases["subnet_allocation"]["name"], aliases["subnet_allocation"]["description"]) \
        == ("Subnet Allocation", "Enables allocation of subnets from a subnet pool")
    assert aliases["default-subnetpools"]["name"] == "Default Subnetpools"
    assert aliases["subnetpool-prefix-ops"]["description"] == \
        "Provides support for adjusting the prefix list of subnet pools"
    assert "subnetpools" in {r["collection"] for r in client.get("/v2.0")["resources"]}
