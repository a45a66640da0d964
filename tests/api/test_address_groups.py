"""Address groups as Neutron serves them: CRUD, add_addresses and
remove_addresses, Neutron's refusals (nothing written on a refusal),
tenancy, and security group rules naming a group
(``remote_address_group_id``): shown, part of what makes a rule a
duplicate, one remote only, and a group in use cannot go."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Direct, Projects, assert_error, dump

PATH = "/v2.0/address-groups"


def make(c: Direct, **attrs: Any) -> dict[str, Any]:
    return c.create("address_group", "address-groups", **attrs)


def act(c: Direct, group: dict[str, Any], action: str, *addresses: Any) -> Any:
    return c.put(f"{PATH}/{group['id']}/{action}", {"addresses": list(addresses)})


def rule(c: Direct, sg: dict[str, Any], **attrs: Any) -> Any:
    return c.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", **attrs}})


@pytest.fixture
def sg(client: Direct) -> dict[str, Any]:
    return client.create("security_group", "security-groups", name="web")


def test_create_show_list_update_delete(client: Direct) -> None:
    made = make(client, name="office", description="the office",
                addresses=["2001:db8::/64", "192.0.2.5/24", "10.0.0.1/32"])
    # each the network of its prefix, in address order (IPv4 first)
    assert made["addresses"] == ["10.0.0.1/32", "192.0.2.0/24", "2001:db8::/64"]
    assert (made["name"], made["description"], made["project_id"], made["tenant_id"]) == (
        "office", "the office", "lab", "lab")
    assert client.get(f"{PATH}/{made['id']}")["address_group"] == made
    assert [g["id"] for g in client.get(PATH, params={"name": "office"})["address_groups"]] == \
        [made["id"]]
    assert client.get(PATH, params={"name": "elsewhere"})["address_groups"] == []
    r = client.put(f"{PATH}/{made['id']}", {"address_group": {"name": "hq", "description": ""}})
    assert r.status == 200, r.body
    assert (r["address_group"]["name"], r["address_group"]["addresses"]) == ("hq", made["addresses"])
    assert r["address_group"]["revision_number"] == made["revision_number"] + 1
    empty = make(client, name="none")
    assert empty["addresses"] == []
    assert client.delete(f"{PATH}/{made['id']}").status == 204
    assert_error(client.get(f"{PATH}/{made['id']}"), 404, made["id"], type="AddressGroupNotFound")
    assert [g["id"] for g in client.get(PATH)["address_groups"]] == [empty["id"]]


def test_addresses_change_only_through_the_actions(client: Direct) -> None:
    group = make(client, name="g", addresses=["10.0.0.0/24"])
    assert_error(client.put(f"{PATH}/{group['id']}", {"address_group": {"addresses": []}}),
                 400, "addresses", "PUT")
    r = act(client, group, "add_addresses", "10.1.0.7", "2001:db8::1", "10.2.0.9/16", "10.1.0.7")
    assert r.status == 200, r.body
    # a bare address is a host prefix here (not on create); repeats are one
    assert r["address_group"]["addresses"] == ["10.0.0.0/24", "10.1.0.7/32", "10.2.0.0/16",
                                               "2001:db8::1/128"]
    assert client.get(f"{PATH}/{group['id']}")["address_group"] == r["address_group"]
    r = act(client, group, "remove_addresses", "10.1.0.7/32", "10.2.0.0/16")
    assert r.status == 200, r.body
    assert r["address_group"]["addresses"] == ["10.0.0.0/24", "2001:db8::1/128"]
    r = act(client, group, "remove_addresses", "10.0.0.0/24", "2001:db8::1")
    assert r.status == 200 and r["address_group"]["addresses"] == []


def test_refusals_write_nothing(client: Direct) -> None:
    group = make(client, name="g", addresses=["10.0.0.0/24", "10.1.0.1/32"])
    before = dump(client.api.store)
    for bad in (["10.0.0.256/32"], ["not-an-address"], ["10.0.0.0/33"], [42], "10.0.0.0/24"):
        r = client.post(PATH, {"address_group": {"name": "x", "addresses": bad}})
        assert_error(r, 400, "addresses", type="HTTPBadRequest")
        assert_error(client.put(f"{PATH}/{group['id']}/add_addresses", {"addresses": bad}),
                     400, "addresses")
    # Neutron's create takes prefixes only, and each once
    assert_error(client.post(PATH, {"address_group": {"addresses": ["10.0.0.1"]}}), 400,
                 "10.0.0.1", "10.0.0.1/32")
    assert_error(client.post(PATH, {"address_group": {"addresses": ["10.0.0.0/24"] * 2}}), 400,
                 "Duplicate")
    assert_error(act(client, group, "add_addresses", "10.2.0.0/24", "10.0.0.5/24"), 400,
                 "10.0.0.0/24", group["id"], type="AddressesAlreadyExist")
    # Neutron's AddressesNotFound is a NotFound: 404
    assert_error(act(client, group, "remove_addresses", "10.1.0.1/32", "10.9.0.0/16"), 404,
                 "10.9.0.0/16", group["id"], type="AddressesNotFound")
    bodies: list[Any] = [{}, {"addresses": ["10.2.0.0/24"], "x": 1},
                         {"address_group": {"addresses": []}}, ["10.2.0.0/24"]]
    for body in bodies:
        assert_error(client.put(f"{PATH}/{group['id']}/add_addresses", body), 400, "addresses")
    assert dump(client.api.store) == before
    missing = "6f0e7a9c-0000-4000-8000-0000000000aa"
    assert_error(act(client, {"id": missing}, "add_addresses", "10.2.0.0/24"), 404, missing,
                 type="AddressGroupNotFound")


def test_a_rule_from_an_address_group(client: Direct, sg: dict[str, Any]) -> None:
    group = make(client, name="g", addresses=["10.0.0.0/24"])
    r = rule(client, sg, protocol="tcp", port_range_min=22, port_range_max=22,
             remote_address_group_id=group["id"])
    assert r.status == 201, r.body
    made = r["security_group_rule"]
    assert (made["remote_address_group_id"], made["remote_ip_prefix"], made["remote_group_id"]) == (
        group["id"], None, None)
    assert client.get(f"/v2.0/security-group-rules/{made['id']}")["security_group_rule"] == made
    shown = client.get(f"/v2.0/security-groups/{sg['id']}")["security_group"]
    assert made in shown["security_group_rules"]
    listed = client.get("/v2.0/security-group-rules",
                        params={"remote_address_group_id": group["id"]})["security_group_rules"]
    assert [x["id"] for x in listed] == [made["id"]]
    # the same rule again is a duplicate; from another group or none it is another rule
    assert_error(rule(client, sg, protocol="tcp", port_range_min=22, port_range_max=22,
                      remote_address_group_id=group["id"]), 409, made["id"],
                 type="SecurityGroupRuleExists")
    other = make(client, name="h", addresses=["10.0.0.0/24"])
    for remote in ({"remote_address_group_id": other["id"]}, {}):
        r = rule(client, sg, protocol="tcp", port_range_min=22, port_range_max=22, **remote)
        assert r.status == 201, r.body
    # the group's egress rules (made with it) name none
    rules = client.get(f"/v2.0/security-groups/{sg['id']}")["security_group"]["security_group_rules"]
    assert [x["remote_address_group_id"] for x in rules if x["direction"] == "egress"] == [None, None]


def test_a_rule_has_one_remote(client: Direct, sg: dict[str, Any]) -> None:
    group = make(client, name="g", addresses=["10.0.0.0/24"])
    before = dump(client.api.store)
    for other in ({"remote_ip_prefix": "10.0.0.0/8"}, {"remote_group_id": sg["id"]}):
        r = rule(client, sg, remote_address_group_id=group["id"], **other)
        assert_error(r, 400, "remote_address_group_id", next(iter(other)),
                     type="SecurityGroupMultipleRemoteEntites")
    missing = "6f0e7a9c-0000-4000-8000-0000000000aa"
    assert_error(rule(client, sg, remote_address_group_id=missing), 404, missing,
                 type="AddressGroupNotFound")
    assert dump(client.api.store) == before


def test_a_group_in_use_cannot_go(client: Direct, sg: dict[str, Any]) -> None:
    group = make(client, name="g", addresses=["10.0.0.0/24"])
    made = rule(client, sg, remote_address_group_id=group["id"])["security_group_rule"]
    before = dump(client.api.store)
    assert_error(client.delete(f"{PATH}/{group['id']}"), 409, group["id"],
                 type="AddressGroupInUse")
    assert dump(client.api.store) == before
    # its addresses still change while it is in use
    assert act(client, group, "add_addresses", "10.1.0.0/24").status == 200
    assert client.delete(f"/v2.0/security-group-rules/{made['id']}").status == 204
    assert client.delete(f"{PATH}/{group['id']}").status == 204


class Two(Projects):
    """alice and bob, members of two projects, and ops, the admin."""


def test_tenancy() -> None:
    w = Two()
    mine = make(w.alice, name="a", addresses=["10.0.0.0/24"])
    theirs = make(w.bob, name="b", addresses=["10.1.0.0/24"])
    before = dump(w.store)
    # another project's group is as if there were none, whatever one does to it
    for call in (lambda: w.alice.get(f"{PATH}/{theirs['id']}"),
                 lambda: w.alice.put(f"{PATH}/{theirs['id']}", {"address_group": {"name": "x"}}),
                 lambda: w.alice.delete(f"{PATH}/{theirs['id']}"),
                 lambda: act(w.alice, theirs, "add_addresses", "10.9.0.0/24"),
                 lambda: act(w.alice, theirs, "remove_addresses", "10.1.0.0/24")):
        assert_error(call(), 404, theirs["id"], type="AddressGroupNotFound")
    assert [g["id"] for g in w.alice.get(PATH)["address_groups"]] == [mine["id"]]
    # a rule of alice's may not name bob's group
    sg = w.alice.create("security_group", "security-groups", name="web")
    after_sg = dump(w.store)
    assert_error(rule(w.alice, sg, remote_address_group_id=theirs["id"]), 404, theirs["id"],
                 type="AddressGroupNotFound")
    assert dump(w.store) == after_sg
    assert before.items() <= after_sg.items()
    # only an admin makes one for another project; the admin sees and changes all
    assert_error(w.alice.post(PATH, {"address_group": {"project_id": "bob"}}), 400,
                 "'project_id' other than the authenticated project")
    made = make(w.ops, name="for-bob", project_id="bob")
    assert made["project_id"] == "bob"
    assert {g["id"] for g in w.ops.get(PATH)["address_groups"]} == {mine["id"], theirs["id"],
                                                                   made["id"]}
    assert act(w.ops, theirs, "add_addresses", "10.2.0.0/24").status == 200
    assert w.bob.get(f"{PATH}/{theirs['id']}")["address_group"]["addresses"] == [
        "10.1.0.0/24", "10.2.0.0/24"]


def test_the_extensions_are_advertised(client: Direct) -> None:
    aliases = {e["alias"]: e for e in client.get("/v2.0/extensions")["extensions"]}
    assert aliases["address-group"]["name"] == "Address group"
    assert aliases["security-groups-remote-address-group"]["description"] == \
        "Add new field of remote address group id in SG rules"
    assert client.get("/v2.0/extensions/address-group")["extension"] == aliases["address-group"]
    resources = {r["collection"] for r in client.get("/v2.0")["resources"]}
    assert "address_groups" in resources
