"""A router's SNAT port (docs/routers.md): one while the router has an
external gateway with enable_snat and an IPv4 interface, on one of its
interfaces' subnets, moved when that interface goes, gone with the gateway;
and the agents list says which host does SNAT for which router."""

from __future__ import annotations

import json
from typing import Any

import pytest

from overcast.model import keys
from overcast.model.scheduling import snat_host
from overcast.model.types import Host
from overcast.store import MemoryStore

from .helpers import Direct, assert_error

Obj = dict[str, Any]
SNAT = "network:router_centralized_snat"


@pytest.fixture
def ext(client: Direct) -> Obj:
    net = client.network(name="ext", **{"router:external": True,
                                         "provider:network_type": "flat",
                                         "provider:physical_network": "external"})
    client.subnet(net["id"], "203.0.113.0/24")
    return net


def router_with(client: Direct, ext: Obj, **gateway: Any) -> Obj:
    return client.create("router", "routers", name="r",
                         external_gateway_info={"network_id": ext["id"], **gateway})


def interface(client: Direct, router: Obj, cidr: str) -> Obj:
    net = client.network(name=cidr)
    sub = client.subnet(net["id"], cidr)
    r = client.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                   {"subnet_id": sub["id"]})
    assert r.status == 200, r.body
    return sub


def snat_ports(client: Direct, router: Obj) -> list[Obj]:
    found: list[Obj] = client.get("/v2.0/ports", params={"device_id": router["id"],
                                                         "device_owner": SNAT}).body["ports"]
    return found


def test_one_snat_port_on_an_interface_subnet_and_it_follows_the_interfaces(
        client: Direct, ext: Obj) -> None:
    router = router_with(client, ext)
    assert snat_ports(client, router) == []  # no interface: nothing to SNAT
    first = interface(client, router, "10.0.1.0/24")
    second = interface(client, router, "10.0.2.0/24")
    (port,) = snat_ports(client, router)
    subnet = port["fixed_ips"][0]["subnet_id"]
    assert subnet in (first["id"], second["id"])
    assert port["fixed_ips"][0]["ip_address"] not in ("10.0.1.1", "10.0.2.1")
    assert_error(client.delete(f"/v2.0/ports/{port['id']}"), 409, type="ServicePortInUse")
    client.put(f"/v2.0/routers/{router['id']}/remove_router_interface", {"subnet_id": subnet})
    (moved,) = snat_ports(client, router)
    assert moved["fixed_ips"][0]["subnet_id"] == ({first["id"], second["id"]} - {subnet}).pop()
    client.put(f"/v2.0/routers/{router['id']}", {"router": {"external_gateway_info": {}}})
    assert snat_ports(client, router) == []


def test_without_enable_snat_the_snat_port_stays_the_gateways_way_out(
        client: Direct, ext: Obj) -> None:
    router = router_with(client, ext, enable_snat=False)
    interface(client, router, "10.0.1.0/24")
    assert len(snat_ports(client, router)) == 1  # traffic leaves un-NATed, by the SNAT host
    client.put(f"/v2.0/routers/{router['id']}", {"router": {"external_gateway_info": {}}})
    assert snat_ports(client, router) == []


def test_the_agents_list_says_which_live_host_does_snat(client: Direct, store: MemoryStore,
                                                        ext: Obj) -> None:
    router = router_with(client, ext)
    interface(client, router, "10.0.1.0/24")
    # a gateway without address (its external network has no subnet): nobody SNATs for it
    bare = client.network(name="bare", **{"router:external": True,
                                          "provider:network_type": "flat",
                                          "provider:physical_network": "other"})
    unaddressed = router_with(client, bare)
    interface(client, unaddressed, "10.0.2.0/24")
    assert snat_ports(client, unaddressed) == []
    for name, mapped in (("h1", False), ("h2", True), ("h3", True)):
        features = {"bridge_mappings": {"external": "eth1", "other": "eth2"} if mapped else {},
                    "routers": True}
        host = Host(id=f"0000000{name[1]}-0000-4000-8000-000000000000", host=name, name=name,
                    underlay_ip=f"198.18.0.{name[1]}", features=features)
        store.put(keys.host(name), json.dumps(host.to_stored()).encode())
        if name != "h3":
            store.put(keys.alive(name), b"{}")
    agents = {a["host"]: a for a in client.get("/v2.0/agents").body["agents"]}
    assert snat_host(router["id"], ["h2"]) == "h2"
    assert agents["h2"]["configurations"]["snat_routers"] == [router["id"]]
    assert agents["h1"]["configurations"]["snat_routers"] == []
    assert agents["h3"]["configurations"]["snat_routers"] == []  # not alive


def test_a_route_via_the_snat_ports_address_is_refused(client: Direct, ext: Obj) -> None:
    router = router_with(client, ext)
    interface(client, router, "10.0.1.0/24")
    (port,) = snat_ports(client, router)
    hop = port["fixed_ips"][0]["ip_address"]
    r = client.put(f"/v2.0/routers/{router['id']}",
                   {"router": {"routes": [{"destination": "192.0.2.0/24", "nexthop": hop}]}})
    assert_error(r, 400, "the nexthop is used by router", type="InvalidRoutes")


def test_a_port_on_an_automatic_address_subnet_gets_the_eui64_of_its_mac(client: Direct) -> None:
    net = client.network(name="v6")
    sub = client.post("/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "ip_version": 6, "cidr": "2001:db8:a::/64",
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}}).body["subnet"]
    port = client.post("/v2.0/ports", {"port": {
        "network_id": net["id"], "mac_address": "fa:16:3e:12:34:56"}}).body["port"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "2001:db8:a:0:f816:3eff:fe12:3456"}]
    refused = client.post("/v2.0/ports", {"port": {
        "network_id": net["id"], "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "2001:db8:a::7"}]}})
    assert_error(refused, 400, "cannot be directly assigned", type="AllocationOnAutoAddressSubnet")
