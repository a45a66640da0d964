"""Bad input: a 4xx in the Neutron shape that names the field and the value, and
nothing written to the store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from overcast.api import Api, ApiConfig, Seams
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump


@pytest.fixture
def unchanged(store: MemoryStore, subnet: dict[str, Any]) -> Iterator[None]:
    """The test's failing requests must leave the store exactly as it was."""
    before = dump(store)
    yield
    assert dump(store) == before


def post(client: Direct, collection: str, member: str, **attrs: Any):  # type: ignore[no-untyped-def]
    return client.post(f"/v2.0/{collection}", {member: attrs})


# subnets ----------------------------------------------------------------------------
@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "banana", "300.1.2.0/24", "10.0.0/8x"])
def test_malformed_cidr(client: Direct, net: dict[str, Any], unchanged: None, cidr: str) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr=cidr)
    assert_error(r, 400, "cidr", cidr)


def test_cidr_with_host_bits(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.1.0.1/24")
    assert_error(r, 400, "cidr", "10.1.0.1/24", "host bits", "10.1.0.0/24")


def test_cidr_of_wrong_type(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr=42)
    assert_error(r, 400, "cidr", "42")


def test_ip_version_not_matching_cidr(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="fd00::/64",
             ip_version=4)
    assert_error(r, 400, "ip_version", "fd00::/64")


def test_gateway_not_an_address(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.1.0.0/24",
             gateway_ip="gw")
    assert_error(r, 400, "gateway_ip", "gw")


def test_gateway_inside_pool(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.1.0.0/24",
             gateway_ip="10.1.0.5",
             allocation_pools=[{"start": "10.1.0.2", "end": "10.1.0.100"}])
    err = assert_error(r, 409, "allocation_pools", "10.1.0.5", "10.1.0.2-10.1.0.100")
    assert "gateway" in err["message"]


def test_overlapping_pools(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.1.0.0/24",
             allocation_pools=[{"start": "10.1.0.10", "end": "10.1.0.20"},
                               {"start": "10.1.0.30", "end": "10.1.0.40"},
                               {"start": "10.1.0.15", "end": "10.1.0.25"}])
    assert_error(r, 409, "allocation_pools[2]", "allocation_pools[0]", "overlaps")


def test_pool_outside_subnet(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.1.0.0/24",
             allocation_pools=[{"start": "10.1.0.10", "end": "10.1.1.20"}])
    assert_error(r, 400, "allocation_pools[0]", "10.1.1.20")


def test_pool_start_after_end(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.1.0.0/24",
             allocation_pools=[{"start": "10.1.0.20", "end": "10.1.0.10"}])
    assert_error(r, 400, "allocation_pools[0]", "10.1.0.20", "10.1.0.10")


def test_pool_missing_end(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.1.0.0/24",
             allocation_pools=[{"start": "10.1.0.20"}])
    assert_error(r, 400, "allocation_pools", "end")


def test_bad_nameserver(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.1.0.0/24",
             dns_nameservers=["8.8.8.8", "dns.example"])
    assert_error(r, 400, "dns_nameservers[1]", "dns.example")


def test_overlapping_subnets_on_one_network(client: Direct, net: dict[str, Any], subnet: dict[str, Any],
                                            unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id=net["id"], cidr="10.0.0.128/25")
    assert_error(r, 400, "10.0.0.128/25", "overlaps with another subnet", type="InvalidInput")


def test_same_cidr_on_another_network_is_fine(client: Direct, subnet: dict[str, Any]) -> None:
    other = client.network(name="other")
    assert client.subnet(other["id"], "10.0.0.0/24")["cidr"] == "10.0.0.0/24"


def test_subnet_on_missing_network(client: Direct, unchanged: None) -> None:
    r = post(client, "subnets", "subnet", network_id="no-such-net", cidr="10.1.0.0/24")
    assert_error(r, 404, "no-such-net", type="NetworkNotFound")


# ports ------------------------------------------------------------------------------
def test_ip_outside_subnet(client: Direct, net: dict[str, Any], subnet: dict[str, Any], unchanged: None) -> None:
    r = post(client, "ports", "port", network_id=net["id"],
             fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "10.9.9.9"}])
    assert_error(r, 400, "fixed_ips", "10.9.9.9")
    r = post(client, "ports", "port", network_id=net["id"],
             fixed_ips=[{"ip_address": "10.9.9.9"}])
    assert_error(r, 400, "fixed_ips", "10.9.9.9")


@pytest.mark.parametrize("ip", ["10.0.0.0", "10.0.0.255"])
def test_network_and_broadcast_address(client: Direct, net: dict[str, Any], subnet: dict[str, Any],
                                       unchanged: None, ip: str) -> None:
    r = post(client, "ports", "port", network_id=net["id"],
             fixed_ips=[{"subnet_id": subnet["id"], "ip_address": ip}])
    assert_error(r, 400, "fixed_ips", ip)


def test_ip_not_an_address(client: Direct, net: dict[str, Any], subnet: dict[str, Any], unchanged: None) -> None:
    r = post(client, "ports", "port", network_id=net["id"],
             fixed_ips=[{"subnet_id": subnet["id"], "ip_address": "ten"}])
    assert_error(r, 400, "fixed_ips", "ten")


def test_subnet_of_another_network(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    other = client.network(name="other")
    before = dump(client.api.store)
    r = post(client, "ports", "port", network_id=other["id"],
             fixed_ips=[{"subnet_id": subnet["id"]}])
    assert_error(r, 400, "fixed_ips", subnet["id"], other["id"])
    assert dump(client.api.store) == before


def test_ip_already_allocated(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    first = client.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.7"}])
    before = dump(client.api.store)
    r = post(client, "ports", "port", network_id=net["id"],
             fixed_ips=[{"ip_address": "10.0.0.7"}])
    assert_error(r, 409, "10.0.0.7", subnet["id"], type="IpAddressAlreadyAllocated")
    assert dump(client.api.store) == before
    # after the owner is deleted, the address is free again
    assert client.delete(f"/v2.0/ports/{first['id']}").status == 204
    assert client.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.7"}])


def test_gateway_address_is_not_a_port_address(client: Direct, net: dict[str, Any], subnet: dict[str, Any],
                                               unchanged: None) -> None:
    r = post(client, "ports", "port", network_id=net["id"],
             fixed_ips=[{"ip_address": "10.0.0.1"}])
    assert_error(r, 409, "10.0.0.1", "gateway")


@pytest.mark.parametrize("mac", ["ff:ff:ff:ff:ff:ff",
                                 "00:00:00:00:00:00", "fa:16:3e:zz:00:01", "fa:16:3e:00:01"])
def test_mac_not_unicast_or_malformed(client: Direct, net: dict[str, Any], subnet: dict[str, Any],
                                      unchanged: None, mac: str) -> None:
    r = post(client, "ports", "port", network_id=net["id"], mac_address=mac)
    assert_error(r, 400, "mac_address", mac)


def test_mac_already_in_use(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    client.port(net["id"], mac_address="fa:16:3e:00:00:01")
    before = dump(client.api.store)
    r = post(client, "ports", "port", network_id=net["id"], mac_address="FA:16:3E:00:00:01")
    assert_error(r, 409, "fa:16:3e:00:00:01", type="MacAddressInUse")
    assert dump(client.api.store) == before


def test_pool_exhaustion_is_a_clear_409(client: Direct) -> None:
    n = client.network(name="tiny")
    s = client.subnet(n["id"], "10.20.0.0/29",
                      allocation_pools=[{"start": "10.20.0.2", "end": "10.20.0.4"}])
    got = [client.port(n["id"])["fixed_ips"][0]["ip_address"] for _ in range(3)]
    assert got == ["10.20.0.2", "10.20.0.3", "10.20.0.4"]
    before = dump(client.api.store)
    r = post(client, "ports", "port", network_id=n["id"])
    err = assert_error(r, 409, n["id"], type="IpAddressGenerationFailure")
    assert "No more IP addresses" in err["message"]
    assert dump(client.api.store) == before
    # an explicit address outside the pool but inside the subnet still works
    assert client.port(n["id"], fixed_ips=[{"subnet_id": s["id"], "ip_address": "10.20.0.6"}])


def test_port_on_missing_network(client: Direct, unchanged: None) -> None:
    assert_error(post(client, "ports", "port", network_id="gone"), 404, "gone")


def test_port_with_missing_security_group(client: Direct, net: dict[str, Any], subnet: dict[str, Any],
                                          unchanged: None) -> None:
    r = post(client, "ports", "port", network_id=net["id"], security_groups=["no-sg"])
    assert_error(r, 404, "no-sg")


def test_address_pair_bad(client: Direct, net: dict[str, Any], subnet: dict[str, Any], unchanged: None) -> None:
    r = post(client, "ports", "port", network_id=net["id"],
             allowed_address_pairs=[{"ip_address": "10.0.0.300"}])
    assert_error(r, 400, "allowed_address_pairs", "10.0.0.300")


# networks ---------------------------------------------------------------------------
@pytest.mark.parametrize("vni", [0, 16_777_216, -5])
def test_vni_out_of_range(client: Direct, unchanged: None, vni: int) -> None:
    r = client.post("/v2.0/networks", {"network": {"provider:segmentation_id": vni}})
    assert_error(r, 400, "segmentation_id", str(vni))


def test_vni_outside_configured_range() -> None:
    store = MemoryStore()
    client = Direct(Api(store, ApiConfig(vni_range=(100, 102))))
    r = client.post("/v2.0/networks", {"network": {"provider:segmentation_id": 99}})
    assert_error(r, 400, "segmentation_id", "99", "100-102")
    assert [client.network()["provider:segmentation_id"] for _ in range(3)] == [100, 101, 102]
    before = dump(store)
    assert_error(client.post("/v2.0/networks", {"network": {}}), 409,
                 type="NoNetworkAvailable")
    assert dump(store) == before


def test_vni_in_use(client: Direct) -> None:
    n = client.network(**{"provider:segmentation_id": 4242})
    assert n["provider:segmentation_id"] == 4242
    before = dump(client.api.store)
    r = client.post("/v2.0/networks", {"network": {"provider:segmentation_id": 4242}})
    assert_error(r, 409, "4242", type="TunnelIdInUse")
    assert dump(client.api.store) == before
    # freed by deletion
    assert client.delete(f"/v2.0/networks/{n['id']}").status == 204
    assert client.network(**{"provider:segmentation_id": 4242})


def test_unknown_network_type(client: Direct, unchanged: None) -> None:
    r = client.post("/v2.0/networks", {"network": {"provider:network_type": "geneve"}})
    assert_error(r, 400, "network_type", "geneve")


def test_delete_network_with_ports(client: Direct, store: MemoryStore, net: dict[str, Any],
                                   subnet: dict[str, Any]) -> None:
    client.port(net["id"])
    before = dump(store)
    r = client.delete(f"/v2.0/networks/{net['id']}")
    assert_error(r, 409, net["id"], type="NetworkInUse")
    assert dump(store) == before
    assert client.get(f"/v2.0/subnets/{subnet['id']}").status == 200


def test_delete_subnet_with_ports(client: Direct, store: MemoryStore, net: dict[str, Any],
                                  subnet: dict[str, Any]) -> None:
    p = client.port(net["id"])
    before = dump(store)
    assert_error(client.delete(f"/v2.0/subnets/{subnet['id']}"), 409, subnet["id"], p["id"],
                 type="SubnetInUse")
    assert dump(store) == before


def test_delete_network_releases_everything(client: Direct, store: MemoryStore, net: dict[str, Any],
                                            subnet: dict[str, Any]) -> None:
    p = client.port(net["id"])
    assert client.delete(f"/v2.0/ports/{p['id']}").status == 204
    assert client.delete(f"/v2.0/networks/{net['id']}").status == 204
    # what remains: the project's default security group (objects and index
    # entries) and the index layout marker; no allocation, index entry or object
    # of the network, its subnet or its port
    # (and what the API starts with: the default segment range, the rule template)
    started = ("/oc/meta/", "/oc/obj/network_segment_range/", "/oc/obj/default_security_group_rule/")
    left = [k for k in dump(store) if "/security_group" not in k and not k.startswith(started)]
    assert left == [], left


# security group rules -------------------------------------------------------------
@pytest.fixture
def sg(client: Direct) -> dict[str, Any]:
    return client.create("security_group", "security-groups", name="web")


def rule(client: Direct, sg: dict[str, Any], **attrs: Any):  # type: ignore[no-untyped-def]
    return client.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", **attrs}})


def test_port_range_min_above_max(client: Direct, sg: dict[str, Any]) -> None:
    before = dump(client.api.store)
    r = rule(client, sg, protocol="tcp", port_range_min=90, port_range_max=80)
    assert_error(r, 400, "port_range_min",
                 "For TCP/UDP protocols, port_range_min must be <= port_range_max")
    assert dump(client.api.store) == before


def test_port_out_of_range(client: Direct, sg: dict[str, Any]) -> None:
    r = rule(client, sg, protocol="udp", port_range_min=1, port_range_max=70000)
    assert_error(r, 400, "port_range_max", "70000")


def test_unknown_protocol(client: Direct, sg: dict[str, Any]) -> None:
    before = dump(client.api.store)
    assert_error(rule(client, sg, protocol="bogus"), 400, "protocol", "bogus")
    assert_error(rule(client, sg, protocol="300"), 400, "protocol", "300")
    assert dump(client.api.store) == before


def test_ethertype_not_matching_prefix(client: Direct, sg: dict[str, Any]) -> None:
    before = dump(client.api.store)
    r = rule(client, sg, ethertype="IPv6", remote_ip_prefix="10.0.0.0/8")
    assert_error(r, 400, "remote_ip_prefix", "10.0.0.0/8", "IPv6")
    r = rule(client, sg, ethertype="IPv4", remote_ip_prefix="2001:db8::/32")
    assert_error(r, 400, "remote_ip_prefix", "2001:db8::/32", "IPv4")
    assert_error(rule(client, sg, ethertype="IPv5"), 400, "ethertype", "IPv5")
    assert_error(rule(client, sg, direction="sideways"), 400, "direction", "sideways")
    assert dump(client.api.store) == before


def test_duplicate_rule(client: Direct, sg: dict[str, Any]) -> None:
    first = rule(client, sg, protocol="tcp", port_range_min=22, port_range_max=22,
                 remote_ip_prefix="10.0.0.0/8")
    assert first.status == 201
    rid = first["security_group_rule"]["id"]
    before = dump(client.api.store)
    r = rule(client, sg, protocol="tcp", port_range_min=22, port_range_max=22,
             remote_ip_prefix="10.0.0.0/8")
    assert_error(r, 409, rid, type="SecurityGroupRuleExists")
    # the same rule spelled with a protocol number
    r = rule(client, sg, protocol="6", port_range_min=22, port_range_max=22,
             remote_ip_prefix="10.0.0.0/8")
    assert_error(r, 409, rid, type="SecurityGroupRuleExists")
    # ... or with host bits, which Neutron drops (10.1.2.3/8 is 10.0.0.0/8)
    r = rule(client, sg, protocol="tcp", port_range_min=22, port_range_max=22,
             remote_ip_prefix="10.1.2.3/8")
    assert_error(r, 409, rid, type="SecurityGroupRuleExists")
    assert dump(client.api.store) == before
    # a different port is not a duplicate
    assert rule(client, sg, protocol="tcp", port_range_min=23, port_range_max=23).status == 201


# bodies -------------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [b"{", b"{'network': {}}", b"\xff\xfe", b"[1,2"])
def test_malformed_json(client: Direct, unchanged: None, raw: bytes) -> None:
    r = client.call("POST", "/v2.0/networks", raw=raw)
    assert_error(r, 400, "JSON")


def test_body_over_limit_direct() -> None:
    store = MemoryStore()
    client = Direct(Api(store, ApiConfig(max_body_bytes=1000)))
    started = dump(store)  # only what the API wrote at start
    big = {"network": {"name": "n", "description": "x" * 2000}}
    assert_error(client.post("/v2.0/networks", big), 413, "1000",
                 type="RequestEntityTooLarge")
    assert dump(store) == started


def test_body_over_limit_http(api_url: str) -> None:
    limit = ApiConfig().max_body_bytes
    payload = b'{"network": {"name": "' + b"x" * (limit + 10) + b'"}}'
    r = httpx.post(f"{api_url}/v2.0/networks", content=payload,
                   headers={"content-type": "application/json"})
    assert_error(r, 413, str(limit), type="RequestEntityTooLarge")
    # and streamed without a Content-Length
    r = httpx.post(f"{api_url}/v2.0/networks", content=iter([payload[:1000], payload[1000:]]))
    assert_error(r, 413, str(limit))
    assert httpx.get(f"{api_url}/v2.0/networks").json() == {"networks": []}


def test_malformed_json_http(api_url: str) -> None:
    r = httpx.post(f"{api_url}/v2.0/networks", content=b"{nope",
                   headers={"content-type": "application/json"})
    assert_error(r, 400, "JSON")


def test_same_ip_requested_twice(client: Direct, net: dict[str, Any], subnet: dict[str, Any],
                                 unchanged: None) -> None:
    r = post(client, "ports", "port", network_id=net["id"],
             fixed_ips=[{"ip_address": "10.0.0.50"}, {"ip_address": "10.0.0.50"}])
    err = assert_error(r, 400, "fixed_ips", "10.0.0.50")
    assert "already allocated" not in err["message"]


# floating IPs ----------------------------------------------------------------------
@pytest.fixture
def ext(client: Direct) -> dict[str, Any]:
    n = client.network(name="ext", **{"router:external": True})
    client.subnet(n["id"], "203.0.113.0/29")
    return n


@pytest.mark.parametrize("address", ["198.51.100.1", "nonsense"])
def test_floating_ip_address_outside_external_subnets(client: Direct, ext: dict[str, Any],
                                                      address: str) -> None:
    before = dump(client.api.store)
    r = client.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": ext["id"], "floating_ip_address": address}})
    err = assert_error(r, 400, "floating_ip_address", address)
    assert "fixed_ips" not in err["message"]
    assert dump(client.api.store) == before


def test_floating_ip_taken_and_exhausted(client: Direct, ext: dict[str, Any]) -> None:
    fip = client.create("floatingip", "floatingips", floating_network_id=ext["id"],
                        floating_ip_address="203.0.113.3")
    assert fip["floating_ip_address"] == "203.0.113.3"
    r = client.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": ext["id"], "floating_ip_address": "203.0.113.3"}})
    assert_error(r, 409, "203.0.113.3", type="IpAddressAlreadyAllocated")
    for _ in range(4):  # .2 .4 .5 .6 are left in the /29
        client.create("floatingip", "floatingips", floating_network_id=ext["id"])
    before = dump(client.api.store)
    r = client.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": ext["id"]}})
    assert_error(r, 409, ext["id"], type="IpAddressGenerationFailure")
    assert dump(client.api.store) == before


def test_floating_ip_on_internal_network(client: Direct, net: dict[str, Any], unchanged: None) -> None:
    r = client.post("/v2.0/floatingips", {"floatingip": {"floating_network_id": net["id"]}})
    assert_error(r, 400, net["id"], "external")


class _SameDraw(random.Random):
    """Randomness that draws 7 every time: every generated MAC is the same."""

    def randrange(self, *args: Any, **kw: Any) -> int:
        return 7


def test_mac_generation_never_reuses_a_mac(store: MemoryStore) -> None:
    client = Direct(Api(store, seams=Seams(rng=_SameDraw())))
    net = client.network(name="net")
    client.subnet(net["id"], "10.0.0.0/24")
    first = client.port(net["id"])
    assert first["mac_address"] == "fa:16:3e:07:07:07"
    before = dump(client.api.store)
    r = client.post("/v2.0/ports", {"port": {"network_id": net["id"]}})
    assert_error(r, 409, net["id"], "MAC", type="MacAddressGenerationFailure")
    assert dump(client.api.store) == before


def test_delete_network_takes_its_dhcp_ports(client: Direct, store: MemoryStore, net: dict[str, Any],
                                             subnet: dict[str, Any]) -> None:
    client.port(net["id"], device_owner="network:dhcp")
    assert client.delete(f"/v2.0/networks/{net['id']}").status == 204
    assert client.get("/v2.0/ports")["ports"] == []
    # what remains: the project's default security group (objects and index
    # entries) and the index layout marker; no allocation, index entry or object
    # of the network, its subnet or its port
    # (and what the API starts with: the default segment range, the rule template)
    started = ("/oc/meta/", "/oc/obj/network_segment_range/", "/oc/obj/default_security_group_rule/")
    left = [k for k in dump(store) if "/security_group" not in k and not k.startswith(started)]
    assert left == [], left


def test_rule_prefix_with_host_bits_is_read_as_its_network(client: Direct, sg: dict[str, Any]) -> None:
    """As Neutron: remote_ip_prefix is kept as given, normalized_cidr drops the
    host bits, and a bare address means that one host."""
    made = rule(client, sg, protocol="tcp", remote_ip_prefix="10.1.2.3/16")
    assert made.status == 201, made.body
    got = made["security_group_rule"]
    assert got["remote_ip_prefix"] == "10.1.2.3/16" and got["normalized_cidr"] == "10.1.0.0/16"
    host = rule(client, sg, protocol="udp", ethertype="IPv6", remote_ip_prefix="fd00::7")
    assert host.status == 201, host.body
    assert host["security_group_rule"]["normalized_cidr"] == "fd00::7/128"
    assert_error(rule(client, sg, protocol="tcp", remote_ip_prefix="10.1.2.300/16"), 400,
                 "remote_ip_prefix", "10.1.2.300/16")
