"""Address scopes as Neutron serves them: CRUD and validation, tenancy
(admin, owner, another project, shared), the pools of a scope never
overlapping, a scope in use cannot go, and a network's
``ipv4_address_scope`` / ``ipv6_address_scope`` from its subnets' pools."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.store import MemoryStore

from .helpers import Direct, Projects, assert_error, dump

PATH = "/v2.0/address-scopes"
POOLS = "/v2.0/subnetpools"


def scope(c: Direct, **attrs: Any) -> dict[str, Any]:
    return c.create("address_scope", "address-scopes", **{"ip_version": 4, **attrs})


def pool(c: Direct, *prefixes: str, **attrs: Any) -> dict[str, Any]:
    return c.create("subnetpool", "subnetpools", name="p", prefixes=list(prefixes), **attrs)


class Three(Projects):
    """alice and bob, members of two projects, and ops, the admin."""


def test_create_show_list_update_delete(client: Direct) -> None:
    made = scope(client, name="blue", ip_version=6)
    assert (made["name"], made["ip_version"], made["shared"], made["project_id"],
            made["tenant_id"]) == ("blue", 6, False, "lab", "lab")
    assert client.get(f"{PATH}/{made['id']}")["address_scope"] == made
    four = scope(client, name="red", ip_version="4")  # a number as a string, as Neutron takes
    assert four["ip_version"] == 4
    listed = client.get(PATH, params={"ip_version": "6"})["address_scopes"]
    assert [s["id"] for s in listed] == [made["id"]]
    r = client.put(f"{PATH}/{made['id']}", {"address_scope": {"name": "green"}})
    assert r.status == 200, r.body
    assert (r["address_scope"]["name"], r["address_scope"]["revision_number"]) == ("green", 2)
    assert client.delete(f"{PATH}/{made['id']}").status == 204
    err = assert_error(client.get(f"{PATH}/{made['id']}"), 404, made["id"],
                       type="AddressScopeNotFound")
    assert err["message"] == f"Address scope {made['id']} could not be found."
    assert [s["id"] for s in client.get(PATH)["address_scopes"]] == [four["id"]]


def test_bad_input_is_refused_and_writes_nothing(client: Direct,
                                                 unchanged: Any) -> None:
    made = scope(client)
    unchanged()
    assert_error(client.post(PATH, {"address_scope": {"name": "x"}}), 400, "ip_version")
    assert_error(client.post(PATH, {"address_scope": {"ip_version": 5}}), 400,
                 "ip_version", "[4, 6]")
    assert_error(client.post(PATH, {"address_scope": {"ip_version": 4, "shared": "maybe"}}),
                 400, "shared")
    assert_error(client.post(PATH, {"address_scope": {"ip_version": 4, "colour": "x"}}),
                 400, "colour")
    assert_error(client.put(f"{PATH}/{made['id']}", {"address_scope": {"ip_version": 6}}),
                 400, "ip_version", "PUT")


def test_tenancy_and_sharing() -> None:
    w = Three()
    mine = scope(w.alice, name="mine")
    assert_error(w.alice.post(PATH, {"address_scope": {"ip_version": 4, "shared": True}}), 403,
                 "create_address_scope:shared")
    shared = scope(w.ops, name="common", shared=True, project_id="alice")
    assert shared["project_id"] == "alice"
    # bob sees the shared scope, not alice's own; he changes neither
    assert {s["id"] for s in w.bob.get(PATH)["address_scopes"]} == {shared["id"]}
    assert_error(w.bob.get(f"{PATH}/{mine['id']}"), 404, type="AddressScopeNotFound")
    assert_error(w.bob.put(f"{PATH}/{shared['id']}", {"address_scope": {"name": "x"}}), 403,
                 "update_address_scope")
    assert_error(w.bob.delete(f"{PATH}/{shared['id']}"), 403, "delete_address_scope")
    assert_error(w.bob.delete(f"{PATH}/{mine['id']}"), 404)
    # only an admin shares; nobody unshares
    assert_error(w.alice.put(f"{PATH}/{mine['id']}", {"address_scope": {"shared": True}}), 403,
                 "update_address_scope:shared")
    before = dump(w.store)
    err = assert_error(w.ops.put(f"{PATH}/{shared['id']}", {"address_scope": {"shared": False}}),
                       400, type="AddressScopeUpdateError")
    assert err["message"] == (f"Unable to update address scope {shared['id']} : Shared "
                              "address scope can't be unshared.")
    assert dump(w.store) == before
    r = w.ops.put(f"{PATH}/{mine['id']}", {"address_scope": {"shared": True}})
    assert r.status == 200 and r["address_scope"]["shared"] is True
    assert {s["id"] for s in w.bob.get(PATH)["address_scopes"]} == {shared["id"], mine["id"]}
    assert {s["id"] for s in w.ops.get(PATH)["address_scopes"]} == {shared["id"], mine["id"]}


def test_pools_join_a_scope_they_may_use_of_their_family() -> None:
    w = Three()
    private = scope(w.alice, name="private")
    six = scope(w.alice, ip_version=6)
    shared = scope(w.ops, shared=True)
    r = w.alice.post(POOLS, {"subnetpool": {"name": "p", "prefixes": ["10.0.0.0/16"],
                                            "address_scope_id": six["id"]}})
    assert_error(r, 400, "because subnetpool ip_version is not 6",
                 type="IllegalSubnetPoolIpVersionAssociationToAddressScope")
    before = dump(w.store)
    r = w.bob.post(POOLS, {"subnetpool": {"name": "p", "prefixes": ["10.0.0.0/16"],
                                          "address_scope_id": private["id"]}})
    assert_error(r, 404, private["id"], type="AddressScopeNotFound")
    assert dump(w.store) == before
    theirs = pool(w.bob, "10.0.0.0/16", address_scope_id=shared["id"])
    assert theirs["address_scope_id"] == shared["id"]
    mine = pool(w.alice, "10.0.0.0/16", address_scope_id=private["id"])
    assert w.alice.get(f"{POOLS}/{mine['id']}")["subnetpool"]["address_scope_id"] == \
        private["id"]
    # a pool in another project's shared scope is frozen for its owner (not for an admin)
    err = assert_error(w.bob.put(f"{POOLS}/{theirs['id']}", {"subnetpool": {"name": "x"}}),
                       400, type="IllegalSubnetPoolUpdate")
    assert err["message"] == (f"Illegal subnetpool update : subnetpool {theirs['id']} cannot "
                              "be updated when associated with shared address scope "
                              f"{shared['id']}.")
    assert w.ops.put(f"{POOLS}/{theirs['id']}", {"subnetpool": {"name": "x"}}).status == 200


def test_pools_of_one_scope_never_overlap(client: Direct, store: MemoryStore) -> None:
    blue = scope(client)
    red = scope(client)
    first = pool(client, "10.0.0.0/16", address_scope_id=blue["id"])
    pool(client, "10.0.0.0/16", address_scope_id=red["id"])  # another scope: fine
    pool(client, "10.0.0.0/16")  # no scope: fine
    beside = pool(client, "10.1.0.0/16", address_scope_id=blue["id"])
    before = dump(store)
    # (a prefix with host bits is its network, as Neutron reads it: 10.0.12.0/24)
    for prefix in ("10.0.128.0/20", "10.0.0.0/8", "10.0.12.13/24"):
        body = {"name": "p", "prefixes": [prefix], "address_scope_id": blue["id"]}
        err = assert_error(client.post(POOLS, {"subnetpool": body}), 409,
                           type="AddressScopePrefixConflict")
        assert err["message"] == ("Failed to associate address scope: subnetpools within an "
                                  "address scope must have unique prefixes.")
        assert dump(store) == before
    # growing into a neighbour of the scope, or moving into a scope it overlaps: the same
    assert_error(client.put(f"{POOLS}/{beside['id']}/add_prefixes",
                            {"prefixes": ["10.0.255.0/24"]}), 409,
                 type="AddressScopePrefixConflict")
    outside = pool(client, "10.0.5.0/24")
    assert_error(client.put(f"{POOLS}/{outside['id']}",
                            {"subnetpool": {"address_scope_id": blue["id"]}}), 409,
                 type="AddressScopePrefixConflict")
    r = client.put(f"{POOLS}/{first['id']}", {"subnetpool": {"address_scope_id": None}})
    assert r.status == 200 and r["subnetpool"]["address_scope_id"] is None
    r = client.put(f"{POOLS}/{outside['id']}", {"subnetpool": {"address_scope_id": blue["id"]}})
    assert r.status == 200, r.body


def test_a_scope_in_use_cannot_go(client: Direct) -> None:
    blue = scope(client)
    p = pool(client, "10.0.0.0/16", address_scope_id=blue["id"])
    err = assert_error(client.delete(f"{PATH}/{blue['id']}"), 409, type="AddressScopeInUse")
    assert err["message"] == (f"Unable to complete operation on address scope {blue['id']}. "
                              "There are one or more subnet pools in use on the address scope.")
    assert client.delete(f"{POOLS}/{p['id']}").status == 204
    assert client.delete(f"{PATH}/{blue['id']}").status == 204


def _subnet(c: Direct, net: dict[str, Any], **attrs: Any) -> Any:
    return c.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], **attrs}})


def test_a_network_shows_the_scopes_of_its_subnets(client: Direct) -> None:
    four, six = scope(client), scope(client, ip_version=6)
    p4 = pool(client, "10.0.0.0/16", address_scope_id=four["id"], default_prefixlen=24)
    p6 = pool(client, "2001:db8::/48", address_scope_id=six["id"])
    plain = pool(client, "172.16.0.0/12", default_prefixlen=24)
    net = client.network(name="n")
    assert (net["ipv4_address_scope"], net["ipv6_address_scope"]) == (None, None)
    assert _subnet(client, net, subnetpool_id=p4["id"]).status == 201
    shown = client.get(f"/v2.0/networks/{net['id']}")["network"]
    assert (shown["ipv4_address_scope"], shown["ipv6_address_scope"]) == (four["id"], None)
    assert _subnet(client, net, subnetpool_id=p6["id"], ip_version=6).status == 201
    listed = client.get("/v2.0/networks", params={"id": net["id"]})["networks"][0]
    assert (listed["ipv4_address_scope"], listed["ipv6_address_scope"]) == (four["id"], six["id"])
    # a subnet of a pool without a scope, or of none: no scope
    other = client.network(name="o")
    assert _subnet(client, other, subnetpool_id=plain["id"]).status == 201
    client.subnet(other["id"], "2001:db8:1::/64", ip_version=6)
    shown = client.get(f"/v2.0/networks/{other['id']}")["network"]
    assert (shown["ipv4_address_scope"], shown["ipv6_address_scope"]) == (None, None)


def test_a_network_keeps_one_scope_per_family(client: Direct, store: MemoryStore) -> None:
    blue, red = scope(client), scope(client)
    a = pool(client, "10.0.0.0/16", address_scope_id=blue["id"], default_prefixlen=24)
    b = pool(client, "10.1.0.0/16", address_scope_id=blue["id"], default_prefixlen=24)
    c = pool(client, "10.2.0.0/16", address_scope_id=red["id"], default_prefixlen=24)
    net = client.network(name="n")
    assert _subnet(client, net, subnetpool_id=a["id"]).status == 201
    assert _subnet(client, net, subnetpool_id=b["id"]).status == 201  # same scope: fine
    before = dump(store)
    assert_error(_subnet(client, net, subnetpool_id=c["id"]), 400, "same address scope",
                 type="NetworkAddressScopeAffinityError")
    assert_error(_subnet(client, net, cidr="10.9.0.0/24"), 400, "same subnet pool",
                 type="NetworkSubnetPoolAffinityError")
    # moving pool a to red would leave the network's subnets in two scopes
    assert_error(client.put(f"{POOLS}/{a['id']}", {"subnetpool": {"address_scope_id": red["id"]}}),
                 400, type="NetworkAddressScopeAffinityError")
    assert dump(store) == before


@pytest.mark.parametrize("alias,name,description", [
    ("address-scope", "Address scope", "Address scopes extension."),
])
def test_the_extension_is_advertised(client: Direct, alias: str, name: str,
                                     description: str) -> None:
    shown = client.get(f"/v2.0/extensions/{alias}")["extension"]
    assert (shown["alias"], shown["name"], shown["description"]) == (alias, name, description)
    assert "address_scopes" in {r["collection"] for r in client.get("/v2.0")["resources"]}
