"""The distributed router in the real lab: two subnets behind one router,
VMs on three hosts. Routed traffic goes source VM -> the router on the
source host -> VXLAN straight to the destination host: a third host that has
the router sees none of it, the destination host sees this host's MAC
(never the gateway's) and no ARP crosses the overlay. Removing an interface
and deleting the router clean every host."""

from __future__ import annotations

import time
from typing import Any

import pytest

from overcast.lab import ipcmd, probe
from overcast.lab.fabric import HOST_UNDERLAY_IF
from overcast.plan import names
from overcast.plan.routers import host_mac

from .conftest import Lab

pytestmark = pytest.mark.root

CONVERGE = 10.0  # seconds an agent pass may take, at most, in this lab


def _routed(lab: Lab) -> dict[str, Any]:
    net1, sub1 = lab.api.create_network("routed-1", "10.1.1.0/24", "10.1.1.1")
    net2, sub2 = lab.api.create_network("routed-2", "10.1.2.0/24", "10.1.2.1")
    router = lab.api.call("POST", "/v2.0/routers", {"router": {"name": "r-ew"}})["router"]
    ifaces = [lab.api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                           {"subnet_id": s["id"]}) for s in (sub1, sub2)]
    lab.vm("r1a", "host1", "routed-1", "10.1.1.11")
    lab.vm("r2a", "host1", "routed-2", "10.1.2.11")
    lab.vm("r2b", "host2", "routed-2", "10.1.2.12")
    lab.vm("r1c", "host3", "routed-1", "10.1.1.13")  # host3 has the router too
    return {"networks": (net1, net2), "subnets": (sub1, sub2), "router": router,
            "interfaces": ifaces}


@pytest.fixture
def routed(lab: Lab) -> dict[str, Any]:
    return lab.tenant("routed", _routed)


def pinged(lab: Lab, src: str, dst_ip: str, count: int = 3) -> None:
    result = probe.ping(lab.vms[src]["netns"], dst_ip, count, "-W", "2")
    assert result.returncode == 0 and " 0% packet loss" in result.stdout, result.stdout + result.stderr


def host_ns(lab: Lab, host: str) -> str:
    return lab.topo.host(host).netns


def test_vms_on_two_subnets_ping_and_connect_on_one_host_and_across_hosts(
        lab: Lab, routed: dict[str, Any]) -> None:
    pinged(lab, "r1a", "10.1.2.11")  # same host
    pinged(lab, "r1a", "10.1.2.12")  # host1 -> host2
    pinged(lab, "r1c", "10.1.2.11")  # host3 -> host1
    for client, server in (("r1a", "r2a"), ("r1a", "r2b")):
        ok = probe.tcp_echo(lab.vms[server]["netns"], lab.vms[server]["ips"][0],
                            lab.vms[client]["netns"])
        assert ok, f"TCP {client} -> {server} across the router"


def test_routed_traffic_reaches_only_the_destination_host_with_the_source_hosts_mac(
        lab: Lab, routed: dict[str, Any]) -> None:
    net1, net2 = routed["networks"]
    gateway_macs = {lab.api.call("GET", f"/v2.0/ports/{i['port_id']}")["port"]["mac_address"]
                    for i in routed["interfaces"]}
    pinged(lab, "r1a", "10.1.2.12", 1)  # warm: nothing below may be a first-packet effect
    third = probe.Capture(host_ns(lab, "host3"), HOST_UNDERLAY_IF, "udp port 4789")
    arrivals = probe.Capture(host_ns(lab, "host2"), names.vxlan_name(net2["id"]))
    arp_back = probe.Capture(host_ns(lab, "host1"), names.vxlan_name(net2["id"]), "arp")
    with third, arrivals, arp_back:
        pinged(lab, "r1a", "10.1.2.12", 5)
    requests = [f for f in arrivals.frames if "10.1.1.11 > 10.1.2.12" in f and "echo request" in f]
    assert len(requests) == 5, arrivals.frames
    src_mac = host_mac(lab.topo.host("host1").underlay_ip)
    assert {f.split()[1] for f in requests} == {src_mac}, requests
    assert not [f for f in arrivals.frames if any(m in f for m in gateway_macs)], arrivals.frames
    assert not [f for f in third.frames if "10.1.1.11" in f or "10.1.2.12" in f], third.frames
    assert arp_back.frames == [], "no ARP comes over the overlay to the router"


def _namespaces(lab: Lab, router_id: str) -> dict[str, bool]:
    listed = set(ipcmd.netns_list())
    return {h.name: names.router_netns(router_id, h.name) in listed for h in lab.topo.hosts}


def _until(check: Any, what: str) -> None:
    deadline = time.monotonic() + CONVERGE
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_router_exists_where_its_networks_have_ports_and_removal_cleans_every_host(
        lab: Lab) -> None:
    net, sub = lab.api.create_network("short-lived", "10.1.9.0/24", "10.1.9.1")
    other, sub_other = lab.api.create_network("short-lived-2", "10.1.8.0/24", "10.1.8.1")
    router = lab.api.call("POST", "/v2.0/routers", {"router": {"name": "r-tmp"}})["router"]
    rid = router["id"]
    for s in (sub, sub_other):
        lab.api.call("PUT", f"/v2.0/routers/{rid}/add_router_interface", {"subnet_id": s["id"]})
    lab.vm("tmp1", "host2", "short-lived", "10.1.9.11")
    _until(lambda: _namespaces(lab, rid) == {"host1": False, "host2": True, "host3": False},
           "the router's namespace on host2 only")
    ns = names.router_netns(rid, "host2")
    pinged(lab, "tmp1", "10.1.8.1")  # the other interface's gateway, answered on host2
    iface_port = lab.api.call("PUT", f"/v2.0/routers/{rid}/remove_router_interface",
                              {"subnet_id": sub_other["id"]})["port_id"]
    gone = names.router_if_name(iface_port)
    _until(lambda: not ipcmd.link_exists(gone, ns)
           and not ipcmd.link_exists(names.router_port_name(iface_port), host_ns(lab, "host2")),
           "the removed interface's veth pair gone from host2")
    lab.api.call("PUT", f"/v2.0/routers/{rid}/remove_router_interface", {"subnet_id": sub["id"]})
    lab.api.call("DELETE", f"/v2.0/routers/{rid}")
    _until(lambda: not any(_namespaces(lab, rid).values()), "the router's namespaces gone")
    assert not [ln["ifname"] for h in lab.topo.hosts for ln in ipcmd.links(h.netns)
                if ln["ifname"].startswith(names.ROUTER_PORT_PREFIX)
                and ln.get("ifalias", "").endswith(iface_port)]
