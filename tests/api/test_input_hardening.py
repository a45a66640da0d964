"""Issue 7, items 7-11: input that crashed the API, corrupted its state or
escaped a check.  Each request that must fail is a 400 naming the field and
leaves the store exactly as it was."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from overcast.store import MemoryStore

from .helpers import Direct, Reply, assert_error, dump

ZONED = ["2001:db8:99::77%eth0", "2001:db8:99::1%0"]


def post(client: Direct, collection: str, member: str, **attrs: Any) -> Reply:
    return client.post(f"/v2.0/{collection}", {member: attrs})


@pytest.fixture
def v6(client: Direct, net: dict[str, Any]) -> dict[str, Any]:
    return client.subnet(net["id"], "2001:db8:99::/64", ip_version=6, name="v6")


def rejected(r: Reply, *words: str) -> None:
    assert_error(r, 400, *words)


# 7: IPv6 zone suffixes ----------------------------------------------------------------
@pytest.mark.parametrize("zoned", ["2001:db8:99::77%eth0", "2001:db8:99::78%0"])
def test_a_zoned_fixed_ip_is_not_a_second_spelling(client: Direct, net: dict[str, Any],
                                                   v6: dict[str, Any], unchanged: Any,
                                                   zoned: str) -> None:
    plain = zoned.split("%")[0]
    client.port(net["id"], fixed_ips=[{"subnet_id": v6["id"], "ip_address": plain}])
    unchanged()
    for ips in ([{"subnet_id": v6["id"], "ip_address": zoned}], [{"ip_address": zoned}]):
        rejected(post(client, "ports", "port", network_id=net["id"], fixed_ips=ips),
                 "fixed_ips", zoned)


@pytest.mark.parametrize("zone", ["%0", "%eth0"])
def test_the_gateway_cannot_be_taken_through_a_zone(client: Direct, net: dict[str, Any],
                                                    v6: dict[str, Any], unchanged: Any,
                                                    zone: str) -> None:
    unchanged()
    gateway = v6["gateway_ip"] + zone
    rejected(post(client, "ports", "port", network_id=net["id"],
                  fixed_ips=[{"subnet_id": v6["id"], "ip_address": gateway}]), "fixed_ips")


@pytest.mark.parametrize("zoned", ZONED)
@pytest.mark.parametrize("field", ["gateway_ip", "allocation_pools", "dns_nameservers",
                                   "host_routes"])
def test_subnet_addresses_take_no_zone(client: Direct, net: dict[str, Any], unchanged: Any,
                                       field: str, zoned: str) -> None:
    unchanged()
    value: Any = {
        "gateway_ip": zoned,
        "allocation_pools": [{"start": zoned, "end": "2001:db8:99::ff"}],
        "dns_nameservers": [zoned],
        "host_routes": [{"destination": "2001:db8:1::/64", "nexthop": zoned}],
    }[field]
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="2001:db8:99::/64",
             ip_version=6, **{field: value})
    rejected(r, field, zoned)


def test_a_subnet_update_takes_no_zoned_gateway(client: Direct, v6: dict[str, Any],
                                                unchanged: Any) -> None:
    unchanged()
    r = client.put(f"/v2.0/subnets/{v6['id']}", {"subnet": {"gateway_ip": "2001:db8:99::1%0"}})
    rejected(r, "gateway_ip")


@pytest.mark.parametrize("zoned", ZONED)
def test_allowed_address_pairs_take_no_zone(client: Direct, net: dict[str, Any],
                                            v6: dict[str, Any], unchanged: Any,
                                            zoned: str) -> None:
    unchanged()
    for pair in (zoned, "2001:db8:99::%eth0/64"):
        r = post(client, "ports", "port", network_id=net["id"],
                 allowed_address_pairs=[{"ip_address": pair}])
        rejected(r, "allowed_address_pairs")


@pytest.mark.parametrize("prefix", ["2001:db8:99::%eth0/64", "2001:db8:99::1%0"])
def test_security_group_prefixes_take_no_zone(client: Direct, unchanged: Any,
                                              prefix: str) -> None:
    sg = client.create("security_group", "security-groups", name="sg")
    unchanged()
    r = post(client, "security-group-rules", "security_group_rule",
             security_group_id=sg["id"], direction="ingress", ethertype="IPv6",
             remote_ip_prefix=prefix)
    rejected(r, "remote_ip_prefix")


def _external(client: Direct) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    ext = client.network(name="ext", **{"router:external": True})
    client.subnet(ext["id"], "203.0.113.0/24", enable_dhcp=False)
    sub6 = client.subnet(ext["id"], "2001:db8:e::/64", ip_version=6, enable_dhcp=False)
    return ext, sub6, client.create("router", "routers", name="r")


def test_router_gateway_addresses_take_no_zone(client: Direct, unchanged: Any) -> None:
    ext, sub6, router = _external(client)
    unchanged()
    info = {"network_id": ext["id"], "external_fixed_ips": [
        {"subnet_id": sub6["id"], "ip_address": "2001:db8:e::9%eth0"}]}
    r = client.put(f"/v2.0/routers/{router['id']}", {"router": {"external_gateway_info": info}})
    rejected(r, "external_gateway_info", "2001:db8:e::9%eth0")


def test_floating_ip_address_takes_no_zone(client: Direct, unchanged: Any) -> None:
    ext, _, _ = _external(client)
    unchanged()
    r = post(client, "floatingips", "floatingip", floating_network_id=ext["id"],
             floating_ip_address="2001:db8:e::9%eth0")
    rejected(r, "floating_ip_address")


def test_router_route_nexthop_takes_no_zone(client: Direct, net: dict[str, Any],
                                            v6: dict[str, Any], unchanged: Any) -> None:
    router = client.create("router", "routers", name="r")
    r = client.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": v6["id"]})
    assert r.status == 200, r.body
    unchanged()
    route = {"destination": "2001:db8:5::/64", "nexthop": "2001:db8:99::77%eth0"}
    r = client.put(f"/v2.0/routers/{router['id']}", {"router": {"routes": [route]}})
    rejected(r, "routes", "2001:db8:99::77%eth0")


# 8: MAC addresses -------------------------------------------------------------------
@pytest.mark.parametrize("mac", ["fa:16:3e:00:00:+1", "fa:16:3e:00:00:1", "fa:16:3e:00:00:001",
                                 "fa:16:3e:00:00: 1", "fa:16:3e:00-00-01", "fa16.3e00.0001"])
def test_each_mac_octet_is_two_hex_digits(client: Direct, net: dict[str, Any],
                                          unchanged: Any, mac: str) -> None:
    client.port(net["id"], mac_address="fa:16:3e:00:00:01")
    unchanged()
    rejected(post(client, "ports", "port", network_id=net["id"], mac_address=mac), "mac_address")
    r = post(client, "ports", "port", network_id=net["id"],
             allowed_address_pairs=[{"ip_address": "10.0.0.9", "mac_address": mac}])
    rejected(r, "allowed_address_pairs")


def test_macs_are_compared_and_stored_in_one_form(client: Direct, net: dict[str, Any]) -> None:
    port = client.port(net["id"], mac_address="FA-16-3E-00-00-02")
    assert port["mac_address"] == "fa:16:3e:00:00:02"
    assert client.get(f"/v2.0/ports/{port['id']}")["port"]["mac_address"] == "fa:16:3e:00:00:02"
    for same in ("fa:16:3e:00:00:02", "FA:16:3E:00:00:02", "fa-16-3e-00-00-02"):
        r = post(client, "ports", "port", network_id=net["id"], mac_address=same)
        assert_error(r, 409, "fa:16:3e:00:00:02", type="MacAddressInUse")
    pair = client.port(net["id"], allowed_address_pairs=[
        {"ip_address": "10.0.0.9", "mac_address": "AA-BB-CC-DD-EE-F0"}])
    assert pair["allowed_address_pairs"][0]["mac_address"] == "aa:bb:cc:dd:ee:f0"


# 9: ids and references ----------------------------------------------------------------
@pytest.mark.parametrize("bad", ["zz/evil", "zz%2Fevil", "../x", "", "a" * 65, 7, None,
                                 ["x"], "x\x00", "x y"])
def test_a_chosen_id_must_be_a_uuid(client: Direct, store: MemoryStore, bad: Any) -> None:
    before = dump(store)
    rejected(post(client, "networks", "network", id=bad), "id")
    assert dump(store) == before


@pytest.mark.parametrize("bad", ["my-network", "net1", "6b2a6b2a-6b2a-6b2a-6b2a-6b2a6b2a6b2"])
def test_a_chosen_id_that_is_a_token_but_not_a_uuid(client: Direct, store: MemoryStore,
                                                   bad: str) -> None:
    before = dump(store)
    rejected(post(client, "networks", "network", id=bad), "id", "UUID")
    assert dump(store) == before


def test_ids_and_references_are_canonical_uuids(client: Direct) -> None:
    chosen = uuid.uuid4()
    net = client.network(id=str(chosen).upper())
    assert net["id"] == str(chosen)
    assert client.get(f"/v2.0/networks/{chosen}")["network"]["id"] == str(chosen)
    # a second spelling of the same id is the same id
    r = post(client, "networks", "network", id=chosen.hex)
    assert r.status == 409, r.body
    sub = client.subnet(str(chosen).upper(), "10.0.0.0/24")
    assert sub["network_id"] == str(chosen)
    port = client.port(chosen.hex.upper(), fixed_ips=[{"subnet_id": sub["id"].upper()}])
    assert port["network_id"] == str(chosen)
    assert port["fixed_ips"][0]["subnet_id"] == sub["id"]


@pytest.mark.parametrize("field", ["network_id", "qos_policy_id", "security_groups"])
@pytest.mark.parametrize("bad", ["zz/evil", "x%2F..", "a" * 65, "", 12])
def test_a_malformed_reference_is_a_400(client: Direct, net: dict[str, Any], unchanged: Any,
                                        field: str, bad: Any) -> None:
    unchanged()
    attrs: dict[str, Any] = {"network_id": net["id"], field: [bad] if field ==
                             "security_groups" else bad}
    rejected(client.post("/v2.0/ports", {"port": attrs}), field)


def test_a_well_formed_unknown_reference_is_a_404(client: Direct, unchanged: Any) -> None:
    unchanged()
    for ref in (str(uuid.uuid4()), "gone"):
        assert_error(post(client, "ports", "port", network_id=ref), 404, ref)


def test_device_id_stays_free_text(client: Direct, net: dict[str, Any]) -> None:
    assert client.port(net["id"], device_id="lab-vm-one")["device_id"] == "lab-vm-one"


# 10: no 500 ---------------------------------------------------------------------------
SURROGATE = "\ud800"


def _raw(body: Any) -> bytes:
    return json.dumps(body).encode()  # ensure_ascii: the surrogate travels as \ud800


@pytest.mark.parametrize("collection,member,attrs,field", [
    ("networks", "network", {"name": SURROGATE}, "name"),
    ("networks", "network", {"id": SURROGATE}, "id"),
    ("networks", "network", {"description": "a" + SURROGATE}, "description"),
    ("networks", "network", {"tags": ["ok", SURROGATE]}, "tags"),
    ("networks", "network", {"qos_policy_id": SURROGATE}, "qos_policy_id"),
    ("networks", "network", {"dns_domain": SURROGATE}, "dns_domain"),
    ("networks", "network", {"project_id": SURROGATE}, "project_id"),
    ("ports", "port", {"network_id": SURROGATE}, "network_id"),
    ("ports", "port", {"device_id": SURROGATE}, "device_id"),
    ("ports", "port", {"dns_name": "\udfff"}, "dns_name"),
    ("ports", "port", {"security_groups": [SURROGATE]}, "security_groups"),
    ("ports", "port", {"fixed_ips": [{"subnet_id": SURROGATE}]}, "fixed_ips"),
    ("ports", "port", {"binding:profile": {"k": SURROGATE}}, "binding:profile"),
    ("ports", "port", {"binding:profile": {SURROGATE: 1}}, "binding:profile"),
    ("subnets", "subnet", {"network_id": SURROGATE, "cidr": "10.9.0.0/24"}, "network_id"),
    ("subnets", "subnet", {"subnetpool_id": SURROGATE}, "subnetpool_id"),
    ("security-group-rules", "security_group_rule", {"security_group_id": SURROGATE},
     "security_group_id"),
    ("security-group-rules", "security_group_rule", {"remote_group_id": SURROGATE},
     "remote_group_id"),
    ("routers", "router", {"external_gateway_info": {"network_id": SURROGATE}},
     "external_gateway_info"),
    ("floatingips", "floatingip", {"floating_network_id": SURROGATE}, "floating_network_id"),
    ("floatingips", "floatingip", {"port_id": SURROGATE}, "port_id"),
])
def test_a_lone_surrogate_is_a_400_naming_the_field(client: Direct, net: dict[str, Any],
                                                    unchanged: Any, collection: str,
                                                    member: str, attrs: dict[str, Any],
                                                    field: str) -> None:
    unchanged()
    r = client.post(f"/v2.0/{collection}", raw=_raw({member: attrs}))
    rejected(r, field)


def test_a_lone_surrogate_in_a_path_or_action_body_is_a_400(client: Direct,
                                                            unchanged: Any) -> None:
    router = client.create("router", "routers", name="r")
    unchanged()
    r = client.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                   raw=_raw({"subnet_id": SURROGATE}))
    rejected(r, "subnet_id")
    rejected(client.put(f"/v2.0/routers/{router['id']}/tags/{SURROGATE}"), "tag")
    r = client.put(f"/v2.0/routers/{router['id']}/tags", raw=_raw({"tags": [SURROGATE]}))
    rejected(r, "tags")


@pytest.mark.parametrize("attrs,field", [
    ({"name": "a\x00b"}, "name"), ({"tags": ["a\x00"]}, "tags"),
    ({"description": "\x00"}, "description"), ({"dns_domain": "a.\x00"}, "dns_domain")])
def test_a_nul_in_a_string_is_a_400(client: Direct, unchanged: Any, attrs: dict[str, Any],
                                    field: str) -> None:
    unchanged()
    rejected(post(client, "networks", "network", **attrs), field, "NUL")


@pytest.mark.parametrize("depth", [33, 50, 2000, 100_000])
def test_deep_nesting_is_a_400(client: Direct, unchanged: Any, depth: int) -> None:
    unchanged()
    for raw in (b"[" * depth + b"]" * depth,
                b'{"port": {"binding:profile": ' + b'{"a": ' * depth + b"1" + b"}" * depth
                + b"}}"):
        rejected(client.post("/v2.0/ports", raw=raw), "nested", "32")


def test_brackets_inside_strings_are_not_nesting(client: Direct) -> None:
    net = client.network(name="[" * 100 + '"\\"{' * 10)
    assert net["name"] == "[" * 100 + '"\\"{' * 10


NET = b"NET-ID"


@pytest.mark.parametrize("collection,raw", [
    ("networks", b'{"network": {"mtu": ' + b"9" * 5000 + b"}}"),
    ("networks", b'{"network": {"mtu": "' + b"9" * 5000 + b'"}}'),
    ("networks", b'{"network": {"mtu": 1e999}}'),
    ("networks", b'{"network": {"mtu": NaN}}'),
    ("networks", b'{"network": {"mtu": -Infinity}}'),
    ("ports", b'{"port": {"network_id": "NET-ID", "binding:profile": {"a": NaN}}}'),
    ("ports", b'{"port": {"network_id": "NET-ID", "binding:profile": {"a": Infinity}}}'),
    ("security-group-rules", b'{"security_group_rule": {"port_range_min": ' + b"9" * 4300
     + b"}}"),
])
def test_huge_and_non_finite_numbers_are_a_400(client: Direct, net: dict[str, Any],
                                               unchanged: Any, collection: str,
                                               raw: bytes) -> None:
    unchanged()
    r = client.post(f"/v2.0/{collection}", raw=raw.replace(NET, net["id"].encode()))
    assert r.status == 400, r.body


@pytest.mark.parametrize("value", ["１２８０", "١٢٨٠", "1280\x00", "+" * 10])
def test_integers_are_ascii_digits(client: Direct, unchanged: Any, value: str) -> None:
    unchanged()
    rejected(post(client, "networks", "network", mtu=value), "mtu")


# 11: subnets ----------------------------------------------------------------------------
def test_a_pool_cannot_hold_the_network_or_broadcast_address(client: Direct,
                                                             net: dict[str, Any],
                                                             unchanged: Any) -> None:
    unchanged()
    for pool in ({"start": "10.5.0.0", "end": "10.5.0.7"}, {"start": "10.5.0.1", "end": "10.5.0.7"},
                 {"start": "10.5.0.0", "end": "10.5.0.6"}):
        r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.5.0.0/29",
                 gateway_ip=None, allocation_pools=[pool])
        rejected(r, "allocation_pools", "network or broadcast")


def test_a_full_pool_of_a_small_subnet_hands_out_only_hosts(client: Direct,
                                                            net: dict[str, Any]) -> None:
    sub = client.subnet(net["id"], "10.5.0.0/29", gateway_ip=None,
                        allocation_pools=[{"start": "10.5.0.1", "end": "10.5.0.6"}])
    got = [client.port(net["id"])["fixed_ips"][0]["ip_address"] for _ in range(6)]
    assert got == [f"10.5.0.{i}" for i in range(1, 7)]
    assert_error(post(client, "ports", "port", network_id=net["id"]), 409,
                 type="IpAddressGenerationFailure")
    assert sub["allocation_pools"] == [{"start": "10.5.0.1", "end": "10.5.0.6"}]


@pytest.mark.parametrize("cidr,version", [("0.0.0.0/0", 4), ("::/0", 6)])
def test_a_subnet_of_every_address_is_refused(client: Direct, net: dict[str, Any],
                                              unchanged: Any, cidr: str, version: int) -> None:
    unchanged()
    for attrs in ({}, {"ip_version": version}):
        rejected(post(client, "subnets", "subnet", network_id=net["id"], cidr=cidr, **attrs),
                 "cidr", "prefix length")


@pytest.mark.parametrize("gateway", ["10.6.0.0", "10.6.0.255"])
def test_an_ipv4_gateway_is_not_the_network_or_broadcast_address(
        client: Direct, net: dict[str, Any], unchanged: Any, gateway: str) -> None:
    sub = client.subnet(net["id"], "10.7.0.0/24")
    unchanged()
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.6.0.0/24",
             gateway_ip=gateway)
    rejected(r, "gateway_ip", "network or broadcast")
    r = client.put(f"/v2.0/subnets/{sub['id']}",
                   {"subnet": {"gateway_ip": gateway.replace("10.6", "10.7")}})
    rejected(r, "gateway_ip", "network or broadcast")


def test_an_ipv6_gateway_may_be_the_subnet_router_anycast(client: Direct,
                                                          net: dict[str, Any]) -> None:
    """Neutron accepts it (IPv6 has no broadcast; ``check_gateway_invalid_in_subnet``
    refuses the network address only for IPv4), and so does a router interface."""
    sub = client.subnet(net["id"], "2001:db8:7::/64", ip_version=6, gateway_ip="2001:db8:7::")
    assert sub["gateway_ip"] == "2001:db8:7::"
    router = client.create("router", "routers", name="r")
    r = client.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status == 200, r.body


@pytest.mark.parametrize("attrs", [{}, {"ip_version": 6}])
def test_an_ipv6_cidr_gets_ipv6_defaults(client: Direct, net: dict[str, Any],
                                         attrs: dict[str, Any]) -> None:
    sub = client.subnet(net["id"], "::/64", **attrs)
    assert (sub["ip_version"], sub["gateway_ip"]) == (6, "::1")
    assert sub["allocation_pools"] == [{"start": "::2", "end": "::ffff:ffff:ffff:ffff"}]
    assert client.port(net["id"])["fixed_ips"][0]["ip_address"] == "::2"


def test_addresses_are_stored_in_canonical_form(client: Direct, net: dict[str, Any]) -> None:
    sub = client.subnet(net["id"], "2001:DB8:0:0::/64", ip_version=6,
                        gateway_ip="2001:DB8::0:1", dns_nameservers=["2001:4860:0:0::8888"],
                        allocation_pools=[{"start": "2001:DB8::10", "end": "2001:DB8::00FF"}],
                        host_routes=[{"destination": "2001:DB8:1::/64", "nexthop": "2001:DB8::A"}])
    assert sub["cidr"] == "2001:db8::/64" and sub["gateway_ip"] == "2001:db8::1"
    assert sub["dns_nameservers"] == ["2001:4860::8888"]
    assert sub["allocation_pools"] == [{"start": "2001:db8::10", "end": "2001:db8::ff"}]
    assert sub["host_routes"] == [{"destination": "2001:db8:1::/64", "nexthop": "2001:db8::a"}]


def test_an_upper_case_gateway_update_sees_the_port_using_it(client: Direct,
                                                             net: dict[str, Any],
                                                             unchanged: Any) -> None:
    sub = client.subnet(net["id"], "2001:db8:99::/64", ip_version=6,
                        allocation_pools=[{"start": "2001:db8:99::10", "end": "2001:db8:99::ff"}])
    # an explicit address outside the pool: only the in-use check can see it
    client.port(net["id"], fixed_ips=[{"subnet_id": sub["id"], "ip_address": "2001:db8:99::abc"}])
    unchanged()
    for spelling in ("2001:DB8:99::ABC", "2001:db8:99:0:0:0:0:abc"):
        r = client.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"gateway_ip": spelling}})
        assert_error(r, 409, "2001:db8:99::abc", type="GatewayConflictWithAllocationPools")


@pytest.mark.parametrize("cidr,attrs,field,words", [
    ("10.8.0.0/24", {"ipv6_ra_mode": "slaac"}, "ipv6_ra_mode", ("ip_version is 4",)),
    ("10.8.0.0/24", {"ipv6_address_mode": "dhcpv6-stateful"}, "ipv6_address_mode",
     ("ip_version is 4",)),
    ("2001:db8:8::/64", {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"},
     "ipv6_address_mode", ("must be equal",)),
    ("2001:db8:8::/80", {"ipv6_ra_mode": "slaac"}, "ipv6_ra_mode", ("/64",)),
    ("2001:db8:8::/80", {"ipv6_address_mode": "dhcpv6-stateless"}, "ipv6_address_mode",
     ("/64",)),
    ("2001:db8:8::/64", {"ipv6_address_mode": "slaac", "enable_dhcp": False},
     "ipv6_address_mode", ("enable_dhcp",)),
])
def test_ipv6_modes_as_neutron_checks_them(client: Direct, net: dict[str, Any], unchanged: Any,
                                           cidr: str, attrs: dict[str, Any], field: str,
                                           words: tuple[str, ...]) -> None:
    unchanged()
    rejected(post(client, "subnets", "subnet", network_id=net["id"], cidr=cidr, **attrs),
             field, *words)


@pytest.mark.parametrize("cidr,attrs", [
    ("2001:db8:8::/64", {"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
    ("2001:db8:8::/80", {"ipv6_address_mode": "dhcpv6-stateful"}),
    ("2001:db8:8::/64", {"ipv6_ra_mode": "dhcpv6-stateless"}),
])
def test_ipv6_modes_neutron_accepts(client: Direct, net: dict[str, Any], cidr: str,
                                    attrs: dict[str, Any]) -> None:
    sub = client.subnet(net["id"], cidr, ip_version=6, **attrs)
    for name, value in attrs.items():
        assert sub[name] == value


def test_dhcp_cannot_be_turned_off_under_ipv6_modes(client: Direct, net: dict[str, Any],
                                                    unchanged: Any) -> None:
    sub = client.subnet(net["id"], "2001:db8:8::/64", ip_version=6, ipv6_address_mode="slaac")
    unchanged()
    rejected(client.put(f"/v2.0/subnets/{sub['id']}", {"subnet": {"enable_dhcp": False}}),
             "enable_dhcp")


def test_neutron_list_limits_on_subnets(client: Direct, net: dict[str, Any],
                                        unchanged: Any) -> None:
    ok = client.subnet(net["id"], "10.9.0.0/24",
                       dns_nameservers=[f"192.0.2.{i}" for i in range(5)],
                       host_routes=[{"destination": f"172.16.{i}.0/24", "nexthop": "10.9.0.9"}
                                    for i in range(20)])
    unchanged()
    rejected(client.put(f"/v2.0/subnets/{ok['id']}", {"subnet": {
        "dns_nameservers": [f"192.0.2.{i}" for i in range(6)]}}), "dns_nameservers", "5")
    rejected(client.put(f"/v2.0/subnets/{ok['id']}", {"subnet": {"host_routes": [
        {"destination": f"172.16.{i}.0/24", "nexthop": "10.9.0.9"} for i in range(21)]}}),
        "host_routes", "20")


def test_fifty_tags_at_most_through_the_tags_api(client: Direct, unchanged: Any) -> None:
    net = client.network(name="n")
    unchanged()
    r = client.put(f"/v2.0/networks/{net['id']}/tags", {"tags": [f"t{i}" for i in range(51)]})
    rejected(r, "tags", "50")


def test_fifty_tags_at_most_in_a_body(client: Direct, unchanged: Any) -> None:
    unchanged()
    rejected(post(client, "networks", "network", tags=[f"t{i}" for i in range(51)]),
             "tags", "50")


def test_ten_allowed_address_pairs_at_most(client: Direct, net: dict[str, Any],
                                           unchanged: Any) -> None:
    pairs = [{"ip_address": f"10.0.0.{100 + i}"} for i in range(11)]
    client.port(net["id"], allowed_address_pairs=pairs[:10])
    unchanged()
    rejected(post(client, "ports", "port", network_id=net["id"], allowed_address_pairs=pairs),
             "allowed_address_pairs", "10")
