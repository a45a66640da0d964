"""Issue 11's "bugs seen by clients": each answer as Neutron's own code gives
it (db_base_plugin_v2, neutron-lib's validators and converters, securitygroups_db,
l3_db), since the SDK, the openstack CLI and tempest act on these answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from overcast.api import Api, Auth, policy
from overcast.api.auth import Context
from overcast.model import keys
from overcast.store import MemoryStore

from .helpers import Direct, assert_error

Obj = dict[str, Any]


def test_qos_policy_tags_are_at_neutrons_path(client: Direct) -> None:
    """openstacksdk's set_tags on a QoS policy PUTs /v2.0/policies/{id}/tags."""
    pol = client.create("policy", "qos/policies", name="q")
    r = client.put(f"/v2.0/policies/{pol['id']}/tags", {"tags": ["red", "blue"]})
    assert r.status == 200 and sorted(r["tags"]) == ["blue", "red"], r.body
    assert sorted(client.get(f"/v2.0/qos/policies/{pol['id']}")["policy"]["tags"]) == \
        ["blue", "red"]
    assert client.put(f"/v2.0/policies/{pol['id']}/tags/green").status == 201
    assert client.get(f"/v2.0/policies/{pol['id']}/tags/green").status == 204
    assert client.delete(f"/v2.0/policies/{pol['id']}/tags").status == 204
    assert client.get(f"/v2.0/qos/policies/{pol['id']}/tags")["tags"] == []
    assert_error(client.get("/v2.0/policies/no-such/tags"), 404)


def test_a_gateway_outside_the_cidr_is_accepted(client: Direct, net: Obj) -> None:
    """Neutron's check_gateway_invalid_in_subnet refuses only the network and
    broadcast addresses of the subnet itself."""
    sub = client.subnet(net["id"], "10.5.0.0/24", gateway_ip="10.9.0.1")
    assert sub["gateway_ip"] == "10.9.0.1"
    assert sub["allocation_pools"] == [{"start": "10.5.0.1", "end": "10.5.0.254"}]
    r = client.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"gateway_ip": "192.168.0.1"}})
    assert r.status == 200 and r["subnet"]["gateway_ip"] == "192.168.0.1", r.body
    port = client.port(net["id"])
    assert port["fixed_ips"][0]["ip_address"] == "10.5.0.1"
    assert_error(client.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.5.0.0"}}),
                 400, "gateway_ip")
    assert_error(client.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"gateway_ip": "fd00::1"}}),
                 400, "gateway_ip", "IPv4")


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "33:33:00:00:00:01", "fb:16:3e:00:00:01"])
def test_a_multicast_mac_is_accepted(client: Direct, net: Obj, subnet: Obj, mac: str) -> None:
    """neutron-lib's validate_mac_address refuses only all zeros and all ones."""
    assert client.port(net["id"], mac_address=mac)["mac_address"] == mac


@pytest.mark.parametrize("mac", ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "FF:FF:FF:FF:FF:FF"])
def test_all_zeros_and_all_ones_are_refused(client: Direct, net: Obj, subnet: Obj,
                                            unchanged: Any, mac: str) -> None:
    unchanged()
    r = client.post("/v2.0/ports", {"port": {"network_id": net["id"], "mac_address": mac}})
    assert_error(r, 400, "mac_address", "not a valid MAC address")


def test_an_overlapping_cidr_is_neutrons_400(client: Direct, net: Obj, subnet: Obj,
                                             unchanged: Any) -> None:
    """tempest's create_subnet tries the next CIDR only on a 400 that says
    'overlaps with another subnet'."""
    unchanged()
    r = client.post("/v2.0/subnets", {"subnet": {"network_id": net["id"],
                                                 "cidr": "10.0.0.128/25"}})
    assert_error(r, 400, "Requested subnet with cidr: 10.0.0.128/25", net["id"],
                 "overlaps with another subnet", type="InvalidInput")


@pytest.mark.parametrize(("alias", "name", "description"), [
    ("external-net", "Neutron external network",
     "Adds external network attribute to network resource."),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 "
     "Neutron networks and access to external networks via a NAT gateway."),
    ("security-group", "security-group", "The security groups extension."),
    ("agent", "agent", "The agent management extension."),
    ("standard-attr-revisions", "Resource revision numbers",
     "This extension will display the revision number of neutron resources."),
    ("net-mtu-writable", "Network MTU (writable)",
     "Provides a writable MTU attribute for a network resource."),
])
def test_extensions_have_neutrons_names(client: Direct, alias: str, name: str,
                                        description: str) -> None:
    ext = client.get(f"/v2.0/extensions/{alias}")["extension"]
    assert (ext["name"], ext["description"]) == (name, description)
    listed = {e["alias"]: e for e in client.get("/v2.0/extensions")["extensions"]}
    assert listed[alias] == ext


def test_every_neutron_alias_has_neutrons_date(client: Direct) -> None:
    """Only Overcast's own extensions carry Overcast's date and their alias as name."""
    for ext in client.get("/v2.0/extensions")["extensions"]:
        own = ext["alias"].startswith("overcast-")
        assert (ext["updated"] == "2026-11-01T00:00:00-00:00") == own, ext
        assert (ext["name"] == ext["alias"]) == (own or ext["alias"] in (
            "agent", "security-group", "standard-attr-description")), ext


def test_a_full_page_has_a_next_link(client: Direct) -> None:
    """Neutron's get_pagination_links: only a short page ends the walk."""
    for i in range(4):
        client.network(name=f"n{i}")
    r = client.get("/v2.0/networks", params={"limit": "4"})
    assert len(r["networks"]) == 4
    (nxt,) = [link["href"] for link in r["networks_links"] if link["rel"] == "next"]
    marker = nxt.split("marker=")[1]
    assert marker == r["networks"][-1]["id"]
    last = client.get("/v2.0/networks", params={"limit": "4", "marker": marker})
    assert last["networks"] == []
    assert [link["rel"] for link in last["networks_links"]] == ["previous"]
    r = client.get("/v2.0/networks", params={"limit": "5"})
    assert "networks_links" not in r.body


def test_subnets_filter_on_shared(client: Direct) -> None:
    """neutron-lib's subnet 'shared' is a filter (its network's) that is never shown."""
    mine = client.subnet(client.network(name="mine")["id"], "10.1.0.0/24")
    common = client.subnet(client.network(name="common", shared=True)["id"], "10.2.0.0/24")
    ids = {s["id"] for s in client.get("/v2.0/subnets", params={"shared": "false"})["subnets"]}
    assert ids == {mine["id"]}
    got = client.get("/v2.0/subnets", params=[("shared", "True"), ("fields", "id")])["subnets"]
    assert got == [{"id": common["id"]}]
    assert all("shared" not in s for s in client.get("/v2.0/subnets")["subnets"])


def _group(client: Direct, name: str, **attrs: Any) -> Obj:
    return client.create("security_group", "security-groups", name=name, **attrs)


def test_stateful_and_stateless_groups_are_not_mixed_on_a_port(client: Direct, net: Obj,
                                                               subnet: Obj,
                                                               unchanged: Any) -> None:
    """Neutron's _validate_sgs_for_port, on create and on update."""
    full, bare = _group(client, "full"), _group(client, "bare", stateful=False)
    port = client.port(net["id"], security_groups=[full["id"]])
    unchanged()
    r = client.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                             "security_groups": [full["id"], bare["id"]]}})
    assert_error(r, 409, "Cannot apply both stateful and stateless security groups",
                 type="SecurityGroupConflict")
    r = client.put(f"/v2.0/ports/{port['id']}",
                   {"port": {"security_groups": [full["id"], bare["id"]]}})
    assert_error(r, 409, "stateful and stateless", type="SecurityGroupConflict")


def test_a_group_in_use_keeps_its_statefulness(client: Direct, net: Obj, subnet: Obj) -> None:
    """Neutron's update_security_group: SecurityGroupInUse while a port has it."""
    used, free = _group(client, "used"), _group(client, "free")
    port = client.port(net["id"], security_groups=[used["id"]])
    r = client.put(f"/v2.0/security-groups/{used['id']}",
                   {"security_group": {"stateful": False}})
    assert_error(r, 409, f"Security Group {used['id']} in use", type="SecurityGroupInUse")
    same = client.put(f"/v2.0/security-groups/{used['id']}",
                      {"security_group": {"stateful": True, "description": "d"}})
    assert same.status == 200, same.body
    flipped = client.put(f"/v2.0/security-groups/{free['id']}",
                         {"security_group": {"stateful": False}})
    assert flipped.status == 200 and flipped["security_group"]["stateful"] is False
    assert client.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": []}}).status == 200
    r = client.put(f"/v2.0/security-groups/{used['id']}", {"security_group": {"stateful": False}})
    assert r.status == 200, r.body


def test_the_same_group_twice_on_a_port_is_refused(client: Direct, net: Obj, subnet: Obj,
                                                   unchanged: Any) -> None:
    """neutron-lib's uuid_list validator."""
    sg = _group(client, "web")
    port = client.port(net["id"], security_groups=[sg["id"]])
    unchanged()
    for twice in ([sg["id"], sg["id"]], [sg["id"], sg["id"].upper()]):
        r = client.post("/v2.0/ports", {"port": {"network_id": net["id"],
                                                 "security_groups": twice}})
        assert_error(r, 400, "Invalid input for security_groups",
                     f"Duplicate items in the list: '{sg['id']}'")
        r = client.put(f"/v2.0/ports/{port['id']}", {"port": {"security_groups": twice}})
        assert_error(r, 400, "Duplicate items in the list")


def test_bulk_items_may_come_wrapped(client: Direct, net: Obj, subnet: Obj) -> None:
    """Neutron's prepare_request_body takes {"ports": [{"port": {...}}, {...}]}."""
    r = client.post("/v2.0/ports", {"ports": [{"port": {"network_id": net["id"], "name": "a"}},
                                              {"network_id": net["id"], "name": "b"}]})
    assert r.status == 201, r.body
    assert [p["name"] for p in r["ports"]] == ["a", "b"]
    r = client.post("/v2.0/networks", {"networks": [{"network": {"name": "w1"}}]})
    assert r.status == 201 and r["networks"][0]["name"] == "w1"


@pytest.mark.parametrize("key", ["port_id", "subnet_id"])
@pytest.mark.parametrize("value", ["xyz", 42, ""])
def test_an_interface_id_must_be_a_uuid(client: Direct, key: str, value: Any,
                                        unchanged: Any) -> None:
    """l3_db's _validate_interface_info: validate_uuid, a BadRequest of the router."""
    rtr = client.create("router", "routers", name="r")
    unchanged()
    for action in ("add_router_interface", "remove_router_interface"):
        r = client.put(f"/v2.0/routers/{rtr['id']}/{action}", {key: value})
        assert_error(r, 400, "Bad router request", "is not a valid UUID", type="BadRequest")


@pytest.fixture
def associated(client: Direct, net: Obj, subnet: Obj) -> Obj:
    ext = client.network(name="ext", **{"router:external": True})
    client.subnet(ext["id"], "172.24.0.0/24")
    rtr = client.create("router", "routers", name="r",
                        external_gateway_info={"network_id": ext["id"]})
    assert client.put(f"/v2.0/routers/{rtr['id']}/add_router_interface",
                      {"subnet_id": subnet["id"]}).status == 200
    port = client.port(net["id"])
    return client.create("floatingip", "floatingips", floating_network_id=ext["id"],
                         port_id=port["id"])


def test_an_empty_floating_ip_update_disassociates(client: Direct, associated: Obj) -> None:
    """l3_db: only an update that names something else keeps the port."""
    path = f"/v2.0/floatingips/{associated['id']}"
    r = client.put(path, {"floatingip": {"description": "kept"}})
    assert r.status == 200 and r["floatingip"]["port_id"] == associated["port_id"]
    r = client.put(path, {"floatingip": {}})
    assert r.status == 200, r.body
    fip = r["floatingip"]
    assert (fip["port_id"], fip["fixed_ip_address"], fip["router_id"]) == (None, None, None)
    assert fip["description"] == "kept"


def _revision(client: Direct, collection: str, member: str, id_: str) -> int:
    return int(client.get(f"/v2.0/{collection}/{id_}")[member]["revision_number"])


def test_a_child_revises_its_parent(client: Direct, net: Obj) -> None:
    """Neutron's revises_on_change: a subnet its network, a rule its group, an
    interface its router (tempest checks each revision_number moves)."""
    n0 = _revision(client, "networks", "network", net["id"])
    sub = client.subnet(net["id"], "10.0.0.0/24")
    n1 = _revision(client, "networks", "network", net["id"])
    assert n1 > n0
    assert client.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"name": "x"}}).status == 200
    n2 = _revision(client, "networks", "network", net["id"])
    assert n2 > n1

    sg = client.create("security_group", "security-groups", name="web")
    g0 = _revision(client, "security-groups", "security_group", sg["id"])
    rule = client.create("security_group_rule", "security-group-rules",
                         security_group_id=sg["id"], direction="ingress", protocol="tcp")
    g1 = _revision(client, "security-groups", "security_group", sg["id"])
    assert g1 > g0
    assert client.delete(f"/v2.0/security-group-rules/{rule['id']}").status == 204
    assert _revision(client, "security-groups", "security_group", sg["id"]) > g1

    rtr = client.create("router", "routers", name="r")
    r0 = _revision(client, "routers", "router", rtr["id"])
    assert client.put(f"/v2.0/routers/{rtr['id']}/add_router_interface",
                      {"subnet_id": sub["id"]}).status == 200
    r1 = _revision(client, "routers", "router", rtr["id"])
    assert r1 > r0
    assert client.put(f"/v2.0/routers/{rtr['id']}/remove_router_interface",
                      {"subnet_id": sub["id"]}).status == 200
    assert _revision(client, "routers", "router", rtr["id"]) > r1

    assert client.delete(f"/v2.0/subnets/{sub['id']}").status == 204
    assert _revision(client, "networks", "network", net["id"]) > n2


def test_a_network_takes_any_mtu_its_subnets_need_68_or_1280(client: Direct,
                                                             unchanged: Any) -> None:
    """Neutron's _validate_subnet_network_mtu and _validate_change_network_mtu."""
    tiny = client.network(name="tiny", mtu=60)
    small = client.network(name="small", mtu=1000)
    v4 = client.subnet(small["id"], "10.1.0.0/24")
    unchanged()
    r = client.post("/v2.0/subnets", {"subnet": {"network_id": tiny["id"], "cidr": "10.0.0.0/24"}})
    assert_error(r, 409, f"MTU of {tiny['id']} is not valid, subnet requires a minimum of 68",
                 type="NetworkMTUSubnetConflict")
    r = client.post("/v2.0/subnets", {"subnet": {"network_id": small["id"], "cidr": "fd00::/64",
                                                 "ip_version": 6}})
    assert_error(r, 409, "minimum of 1280", type="NetworkMTUSubnetConflict")
    r = client.put(f"/v2.0/networks/{small['id']}", {"network": {"mtu": 67}})
    assert_error(r, 409, "minimum of 68", type="NetworkMTUSubnetConflict")
    assert v4["network_id"] == small["id"]


def test_an_ipv6_subnet_keeps_its_network_at_1280(client: Direct) -> None:
    net = client.network(name="v6", mtu=1400)
    client.subnet(net["id"], "fd00::/64", ip_version=6)
    r = client.put(f"/v2.0/networks/{net['id']}", {"network": {"mtu": 1279}})
    assert_error(r, 409, "minimum of 1280", type="NetworkMTUSubnetConflict")
    r = client.put(f"/v2.0/networks/{net['id']}", {"network": {"mtu": 1280}})
    assert r.status == 200 and r["network"]["mtu"] == 1280


def test_a_subnet_only_fixed_ip_is_a_second_address(client: Direct, net: Obj,
                                                    subnet: Obj) -> None:
    """Neutron's _get_changed_ips_for_port: the addresses a request names are
    matched first; a subnet-only entry then reuses what is left, or allocates."""
    port = client.port(net["id"])
    first = port["fixed_ips"][0]["ip_address"]
    path = f"/v2.0/ports/{port['id']}"
    r = client.put(path, {"port": {"fixed_ips": [*port["fixed_ips"],
                                                 {"subnet_id": subnet["id"]}]}})
    assert r.status == 200, r.body
    ips = [f["ip_address"] for f in r["port"]["fixed_ips"]]
    assert len(ips) == 2 and ips[0] == first and ips[1] != first
    r = client.put(path, {"port": {"fixed_ips": [{"subnet_id": subnet["id"]}]}})
    assert r.status == 200 and [f["ip_address"] for f in r["port"]["fixed_ips"]] == [first]


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
def test_an_automatic_address_subnet_with_ports_is_deleted(client: Direct, net: Obj,
                                                           subnet: Obj, mode: str) -> None:
    """Neutron removes the automatic addresses from the ports; a router
    interface still holds the subnet, and a stateful subnet's ports too."""
    v6 = client.subnet(net["id"], "fd00::/64", ip_version=6, ipv6_ra_mode=mode,
                       ipv6_address_mode=mode)
    port = client.port(net["id"])
    assert {f["subnet_id"] for f in port["fixed_ips"]} == {subnet["id"], v6["id"]}
    assert client.delete(f"/v2.0/subnets/{v6['id']}").status == 204
    left = client.get(f"/v2.0/ports/{port['id']}")["port"]
    assert [f["subnet_id"] for f in left["fixed_ips"]] == [subnet["id"]]
    assert left["revision_number"] > port["revision_number"]
    assert_error(client.delete(f"/v2.0/subnets/{subnet['id']}"), 409, type="SubnetInUse")

    v6 = client.subnet(net["id"], "fd01::/64", ip_version=6, ipv6_ra_mode=mode,
                       ipv6_address_mode=mode)
    rtr = client.create("router", "routers", name="r")
    assert client.put(f"/v2.0/routers/{rtr['id']}/add_router_interface",
                      {"subnet_id": v6["id"]}).status == 200
    assert_error(client.delete(f"/v2.0/subnets/{v6['id']}"), 409, type="SubnetInUse")


def test_an_external_networks_free_floating_ips_go_with_it(client: Direct,
                                                           associated: Obj) -> None:
    """Neutron's delete_disassociated_floatingips on network delete; an
    associated one (its router holds the network) still blocks."""
    ext_id = associated["floating_network_id"]
    free = client.create("floatingip", "floatingips", floating_network_id=ext_id)
    other = client.network(name="ext2", **{"router:external": True})
    client.subnet(other["id"], "172.25.0.0/24")
    spare = client.create("floatingip", "floatingips", floating_network_id=other["id"])
    assert client.delete(f"/v2.0/networks/{other['id']}").status == 204
    assert_error(client.get(f"/v2.0/floatingips/{spare['id']}"), 404)
    assert client.get("/v2.0/ports", params={"network_id": other["id"]})["ports"] == []
    assert_error(client.delete(f"/v2.0/networks/{ext_id}"), 409, type="NetworkInUse")
    assert client.get(f"/v2.0/floatingips/{free['id']}").status == 200


def test_ports_take_a_dns_domain(client: Direct, net: Obj, subnet: Obj) -> None:
    """dns-domain-ports is advertised: dns_domain is stored, shown, updated and
    filtered on, with neutron-lib's validate_dns_domain."""
    port = client.port(net["id"], dns_domain="example.org.", dns_name="web")
    assert port["dns_domain"] == "example.org."
    r = client.put(f"/v2.0/ports/{port['id']}", {"port": {"dns_domain": "corp.example."}})
    assert r.status == 200 and r["port"]["dns_domain"] == "corp.example."
    got = client.get("/v2.0/ports", params={"dns_domain": "corp.example."})["ports"]
    assert [p["id"] for p in got] == [port["id"]]
    assert client.port(net["id"])["dns_domain"] == ""
    for bad, why in (("example.org", "is not a FQDN"), ("-a.org.", "hyphen"),
                     ("a..org.", "empty component"), ("a.123.", "all numeric"),
                     ("Ex_ample.org.", "alphanumeric")):
        r = client.post("/v2.0/ports", {"port": {"network_id": net["id"], "dns_domain": bad}})
        assert_error(r, 400, "Invalid input for dns_domain", why)


def test_one_external_network_is_the_default(client: Direct, net: Obj) -> None:
    """auto_allocate's is_default (openstack network create --default): only
    on an external network, one at a time (DefaultExternalNetworkExists)."""
    ext = client.network(name="public", is_default=True, **{"router:external": True})
    assert ext["is_default"] is True
    r = client.post("/v2.0/networks", {"network": {"name": "other", "is_default": True,
                                                   "router:external": True}})
    assert_error(r, 409, f"A default external network already exists: {ext['id']}.",
                 type="DefaultExternalNetworkExists")
    other = client.network(name="other", **{"router:external": True})
    r = client.put(f"/v2.0/networks/{other['id']}", {"network": {"is_default": True}})
    assert_error(r, 409, ext["id"], type="DefaultExternalNetworkExists")
    assert client.put(f"/v2.0/networks/{ext['id']}",
                      {"network": {"is_default": False}})["network"]["is_default"] is False
    r = client.put(f"/v2.0/networks/{other['id']}", {"network": {"is_default": True}})
    assert r.status == 200 and r["network"]["is_default"] is True
    # an internal network is never the default; one that stops being external stops being it
    assert client.network(name="inner", is_default=True)["is_default"] is False
    r = client.put(f"/v2.0/networks/{other['id']}", {"network": {"router:external": False}})
    assert r.status == 200 and r["network"]["is_default"] is False
    assert [n["id"] for n in client.get("/v2.0/networks", params={"is_default": "true"})
            ["networks"]] == []


def test_only_the_admin_names_the_default() -> None:
    assert policy.RULES["create_network:is_default"] is policy.ADMIN
    assert policy.RULES["update_network:is_default"] is policy.ADMIN
    member = Direct(Api(MemoryStore(), auth=Auth({"t": Context("alice", False)})), "t")
    r = member.post("/v2.0/networks", {"network": {"name": "x", "is_default": True}})
    assert_error(r, 403, "create_network:is_default")


def test_a_port_stored_with_both_kinds_of_group_can_still_be_renamed(
        client: Direct, store: MemoryStore, net: Obj, subnet: Obj) -> None:
    """Neutron checks the mix of stateful and stateless groups only when the
    request names the groups: a port that holds both (made before the check)
    is renamed, and its groups are refused only when they are given."""
    full = client.create("security_group", "security-groups", name="full")
    less = client.create("security_group", "security-groups", name="less", stateful=False)
    port = client.port(net["id"], security_groups=[full["id"]])
    key = keys.obj("port", port["id"])
    kv = store.get(key)
    assert kv is not None
    raw = json.loads(kv.value)
    raw["security_groups"] = [full["id"], less["id"]]
    store.put(key, json.dumps(raw).encode())
    assert client.put(f"/v2.0/ports/{port['id']}", {"port": {"name": "renamed"}}).status == 200
    assert_error(client.put(f"/v2.0/ports/{port['id']}", {"port": {
        "security_groups": [full["id"], less["id"]]}}), 409, type="SecurityGroupConflict")


def test_a_port_with_a_multicast_mac_is_no_router_interface(client: Direct, net: Obj,
                                                           subnet: Obj) -> None:
    """The kernel gives no device a multicast MAC: such a port stays a port."""
    port = client.port(net["id"], mac_address="01:00:5e:00:00:fb")
    router = client.create("router", "routers", name="r")
    assert_error(client.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                            {"port_id": port["id"]}), 400, "multicast", type="BadRequest")
    assert client.get(f"/v2.0/ports/{port['id']}")["port"]["device_id"] == ""


@pytest.mark.parametrize("types,ok", [
    (["compute:"], True), (["test:type_1", "network:distributed"], True),
    (["neutron:x", "compute:nova", "e", ":"], True),
    (["bogus"], False), (["network"], False), ([7], False)])
def test_service_types_are_checked_as_neutron_checks_them(types: list[Any], ok: bool) -> None:
    """neutron-lib's validate_subnet_service_types: a device owner prefix, or
    any first character of "compute:" (its prefix list takes the string's
    characters); and the network's owner sets them (Neutron's admin-only rules
    are not enforced: the attribute has no enforce_policy)."""
    member = Direct(Api(MemoryStore(), auth=Auth({"t": Context("alice", False)})), "t")
    net = member.network(name="n")
    r = member.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                                 "cidr": "10.0.0.0/24", "service_types": types}})
    if ok:
        assert r.status == 201 and r["subnet"]["service_types"] == types, r.body
        r = member.put(f"/v2.0/subnets/{r['subnet']['id']}", {"subnet": {"service_types": []}})
        assert r.status == 200 and r["subnet"]["service_types"] == [], r.body
    else:
        err = assert_error(r, 400, "Invalid input for service_types")
        if types == ["bogus"]:
            assert err["message"] == ("Invalid input for service_types. Reason: Subnet service "
                                      "type bogus does not correspond to a valid device owner.")


def test_ports_take_addresses_from_the_subnets_of_their_service_type() -> None:
    """tempest's SubnetServiceTypeTestJSON: a port whose device_owner a subnet
    names gets its address there; one no subnet names, from a subnet for none."""
    member = Direct(Api(MemoryStore(), auth=Auth({"t": Context("alice", False)})), "t")
    net = member.network(name="n")
    one = member.subnet(net["id"], "192.168.1.0/24",
                        service_types=["test:type_1", "network:distributed"])
    two = member.subnet(net["id"], "192.168.2.0/24",
                        service_types=["test:type_2", "network:distributed"])
    plain = member.subnet(net["id"], "192.168.3.0/24")
    for owner, subnet in (("test:type_1", one), ("test:type_2", two), ("compute:nova", plain),
                          ("", plain)):
        port = member.port(net["id"], device_owner=owner)
        assert [f["subnet_id"] for f in port["fixed_ips"]] == [subnet["id"]], (owner, port)
