"""The distributed router in the real lab: two subnets behind one router,
VMs on three hosts. Routed traffic goes source VM -> the router on the
source host -> VXLAN straight to the destination host: a third host that has
the router sees none of it, the destination host sees this host's MAC
(never the gateway's) and no ARP crosses the overlay. Removing an interface
and deleting the router clean every host."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import replace
from typing import Any

import pytest

from overcast.lab import control, ipcmd, probe
from overcast.lab.fabric import HOST_UNDERLAY_IF
from overcast.linux.ra_sender import INTERVAL as RA_INTERVAL
from overcast.plan import names
from overcast.plan.routers import host_mac

from . import traffic
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
    """(The lab as it is now: a host may have joined since it came up.)"""
    return control.current_topology().host(host).netns


def test_vms_on_two_subnets_ping_and_connect_on_one_host_and_across_hosts(
        lab: Lab, routed: dict[str, Any]) -> None:
    # a port is ACTIVE once its own host has plugged it; the other hosts' routers learn
    # its neighbour entry in their own next pass
    _until_ping(lab.vms["r1c"]["netns"], "10.1.2.11")
    pinged(lab, "r1a", "10.1.2.11")  # same host
    pinged(lab, "r1a", "10.1.2.12")  # host1 -> host2
    pinged(lab, "r1c", "10.1.2.11")  # host3 -> host1
    for client, server in (("r1a", "r2a"), ("r1a", "r2b")):
        ok = probe.tcp_echo(lab.vms[server]["netns"], lab.vms[server]["ips"][0],
                            lab.vms[client]["netns"])
        assert ok, f"TCP {client} -> {server} across the router"
    for iface in routed["interfaces"]:  # realized: one agent says so
        _until(lambda i=iface: _status(lab, i["port_id"]) == "ACTIVE", "interface ACTIVE")


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


def _status(lab: Lab, port_id: str) -> str:
    return str(lab.api.call("GET", f"/v2.0/ports/{port_id}")["port"]["status"])


def _fip_status(lab: Lab, fip_id: str) -> str:
    return str(lab.api.call("GET", f"/v2.0/floatingips/{fip_id}")["floatingip"]["status"])


def _namespaces(lab: Lab, router_id: str) -> dict[str, bool]:
    """On which host the router's namespace is, over every host the lab has now (a
    host another test added later included: it can be a router's home too)."""
    listed = set(ipcmd.netns_list())
    return {h.name: names.router_netns(router_id, h.name) in listed
            for h in control.current_topology().hosts}


def _until(check: Any, what: str, within: float = CONVERGE) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_router_exists_where_its_networks_have_ports_else_on_one_host_and_removal_cleans_every_host(
        lab: Lab) -> None:
    net, sub = lab.api.create_network("short-lived", "10.1.9.0/24", "10.1.9.1")
    other, sub_other = lab.api.create_network("short-lived-2", "10.1.8.0/24", "10.1.8.1")
    router = lab.api.call("POST", "/v2.0/routers", {"router": {"name": "r-tmp"}})["router"]
    rid = router["id"]
    ifaces = [lab.api.call("PUT", f"/v2.0/routers/{rid}/add_router_interface",
                           {"subnet_id": s["id"]})["port_id"] for s in (sub, sub_other)]
    # no port on its networks yet: made on one host of its own, which realizes and reports
    # its interfaces (as Neutron's scheduler puts every router on an agent)
    _until(lambda: all(_status(lab, i) == "ACTIVE" for i in ifaces), "interfaces ACTIVE")
    assert sum(_namespaces(lab, rid).values()) == 1, _namespaces(lab, rid)
    lab.vm("tmp1", "host2", "short-lived", "10.1.9.11")
    _until(lambda: {h for h, made in _namespaces(lab, rid).items() if made} == {"host2"},
           "the router's namespace on host2 only")
    _until(lambda: all(_status(lab, i) == "ACTIVE" for i in ifaces), "interfaces ACTIVE on host2")
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
    assert not [ln["ifname"] for h in control.current_topology().hosts
                for ln in ipcmd.links(h.netns)
                if ln["ifname"].startswith(names.ROUTER_PORT_PREFIX)
                and ln.get("ifalias", "").endswith(iface_port)]


# --- SNAT and floating IPs ------------------------------------------------------------
def _with_gateway(lab: Lab) -> dict[str, Any]:
    from .test_external import external

    public = lab.tenant("external", external)["network"]
    routed = lab.tenant("routed", _routed)
    router = lab.api.call("PUT", f"/v2.0/routers/{routed['router']['id']}", {"router": {
        "external_gateway_info": {"network_id": public["id"]}}})["router"]
    # a group of their own lets ICMP and TCP 5001 in from anywhere to the VMs (the
    # project's default group, which other tests' VMs share, is left alone)
    group = lab.api.call("POST", "/v2.0/security-groups", {"security_group": {
        "name": "from-the-internet"}})["security_group"]
    for proto, port in (("icmp", None), ("tcp", 5001)):
        lab.api.call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": group["id"], "direction": "ingress", "protocol": proto,
            "port_range_min": port, "port_range_max": port, "remote_ip_prefix": "0.0.0.0/0"}})
    for name in ("r1a", "r2a", "r2b", "r1c"):
        port = lab.api.call("GET", f"/v2.0/ports/{lab.vms[name]['port_id']}")["port"]
        lab.api.call("PUT", f"/v2.0/ports/{port['id']}", {"port": {
            "security_groups": [*port["security_groups"], group["id"]]}})
    return {"public": public, "router": router, "group": group["id"],
            "gateway_ip": router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]}


@pytest.fixture
def gateway(lab: Lab) -> dict[str, Any]:
    return lab.tenant("gateway", _with_gateway)


def _request_sources(frames: list[str]) -> set[str]:
    """The source IPs of the ICMP echo requests in ``tcpdump -e`` lines."""
    found = (re.search(r": (\S+) > \S+: ICMP echo request", line) for line in frames)
    return {m.group(1) for m in found if m}


def _until_ping(ns: str, dst: str, timeout: float = CONVERGE) -> float:
    """Seconds until ``ns`` gets an answer from ``dst`` (one probe each 0.1 s)."""
    started = time.monotonic()
    while probe.ping(ns, dst, 1, "-W", "0.1").returncode != 0:
        assert time.monotonic() - started < timeout, f"{ns} -> {dst}: no answer in {timeout:g}s"
    return time.monotonic() - started


def test_a_vm_without_floating_ip_reaches_the_internet_from_the_gateway_address_only(
        lab: Lab, gateway: dict[str, Any]) -> None:
    from overcast.lab.fabric import EXT_NS

    _until_ping(lab.vms["r1a"]["netns"], "203.0.113.1")
    with probe.Capture(EXT_NS, "oc-ext0", "icmp") as seen:
        pinged(lab, "r1a", "203.0.113.1")
        pinged(lab, "r2b", "203.0.113.1")  # another subnet, another host
    assert _request_sources(seen.frames) == {gateway["gateway_ip"]}, seen.frames
    # nothing from the internet reaches the VM: no address of it is known out there
    with pytest.raises(Exception, match="failed|waited"):
        probe.tcp_echo(lab.vms["r1a"]["netns"], gateway["gateway_ip"], EXT_NS, timeout=2.0)


def test_a_floating_ip_is_reached_from_the_internet_at_the_vms_host_and_moves_in_a_second(
        lab: Lab, gateway: dict[str, Any]) -> None:
    from overcast.lab.fabric import EXT_NS
    from overcast.plan.routers import fip_mac

    rid = gateway["router"]["id"]
    fip = lab.api.call("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": gateway["public"]["id"],
        "port_id": lab.vms["r2b"]["port_id"]}})["floatingip"]
    address = fip["floating_ip_address"]
    _until_ping(EXT_NS, address)
    neigh = ipcmd.ip_json("neigh", "show", address, ns=EXT_NS)
    assert neigh[0]["lladdr"] == fip_mac(rid, "host2"), neigh  # answered by the VM's host
    _until(lambda: _fip_status(lab, fip["id"]) == "ACTIVE", "the floating IP ACTIVE")
    gw_port = lab.api.call("GET", "/v2.0/ports", None)["ports"]
    gw = next(p for p in gw_port if p["device_owner"] == "network:router_gateway"
              and p["device_id"] == rid)
    assert gw["status"] == "ACTIVE", gw  # its SNAT host has it
    ok = probe.tcp_echo(lab.vms["r2b"]["netns"], address, EXT_NS)
    assert ok  # TCP from the internet to the FIP, DNAT to the VM
    with probe.Capture(EXT_NS, "oc-ext0", "icmp") as seen:
        pinged(lab, "r2b", "203.0.113.1")
    assert _request_sources(seen.frames) == {address}, seen.frames
    # a closed port stays closed
    with pytest.raises(Exception, match="failed|waited"):
        probe.tcp_echo(lab.vms["r2b"]["netns"], address, EXT_NS, port=5002, timeout=2.0)
    moved = time.monotonic()
    lab.api.call("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {
        "port_id": lab.vms["r1c"]["port_id"]}})
    new_mac = fip_mac(rid, "host3")

    def arrived() -> bool:  # the internet sends to the new host, and it answers
        neigh = ipcmd.ip_json("neigh", "show", address, ns=EXT_NS)
        return bool(neigh) and neigh[0].get("lladdr") == new_mac and \
            probe.ping(EXT_NS, address, 1, "-W", "0.2").returncode == 0
    deadline = moved + 1.0
    while not arrived():
        assert time.monotonic() < deadline, ipcmd.ip_json("neigh", "show", address, ns=EXT_NS)
        time.sleep(0.02)
    took = time.monotonic() - moved
    print(f"FIP moved to another host's VM: answering after {took:.2f}s")
    lab.api.call("DELETE", f"/v2.0/floatingips/{fip['id']}")


def _until_tcp(server: dict[str, Any], address: str, port: int, opens: bool = True) -> str:
    """Until a TCP connection from the internet to ``address``:``port`` reaches
    ``server`` (listening on 5001), or with ``opens`` false fails; its echo."""
    from overcast.lab.fabric import EXT_NS

    deadline = time.monotonic() + CONVERGE
    while True:
        try:
            echoed = probe.tcp_echo(server["netns"], address, EXT_NS, connect_port=port,
                                    timeout=1.0)
        except Exception:
            if not opens:
                return ""
        else:
            if opens:
                return echoed
        assert time.monotonic() < deadline, f"{address}:{port} still {'closed' if opens else 'open'}"


def test_port_forwardings_of_a_floating_ip_reach_a_vm_on_another_host_through_the_snat_host(
        lab: Lab, gateway: dict[str, Any]) -> None:
    """As Neutron's are on the centralized router: the floating IP answered by
    the router's SNAT host, what arrives at a forwarded port DNATed to the
    VM wherever it is (here on another host), its replies back through the
    SNAT port; a port not forwarded stays closed; a forwarding deleted
    closes its port."""
    from overcast.lab.fabric import EXT_NS

    rid = gateway["router"]["id"]
    snat = _snat_host(lab, rid)
    assert snat is not None
    server = next(v for v in lab.vms.values()
                  if v["name"] in ("r1a", "r2b", "r1c") and v["host"] != snat)
    fip = lab.api.call("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": gateway["public"]["id"]}})["floatingip"]
    address = fip["floating_ip_address"]
    path = f"/v2.0/floatingips/{fip['id']}/port_forwardings"
    inside = {"protocol": "tcp", "internal_port_id": server["port_id"],
              "internal_ip_address": server["ips"][0]}
    one = lab.api.call("POST", path, {"port_forwarding": {
        **inside, "internal_port": 5001, "external_port": 2222}})["port_forwarding"]
    try:
        _until(lambda: _fip_status(lab, fip["id"]) == "ACTIVE", "the floating IP ACTIVE")
        gw = next(p for p in lab.api.call("GET", "/v2.0/ports")["ports"]
                  if p["device_owner"] == "network:router_gateway" and p["device_id"] == rid)
        # the first connection also waits for the address to be announced
        assert _until_tcp(server, address, 2222) == f"echo:hello-from-{EXT_NS}"
        neigh = ipcmd.ip_json("neigh", "show", address, ns=EXT_NS)
        assert neigh[0]["lladdr"] == gw["mac_address"], (neigh, snat)  # the SNAT host's
        # the VM's own port stays closed at the floating IP, and so does a port not forwarded
        for closed in (5001, 2223):
            with pytest.raises(Exception, match="failed|waited"):
                probe.tcp_echo(server["netns"], address, EXT_NS, connect_port=closed,
                               timeout=2.0)
        # deleted while another forwarding keeps the address: its open connection stops too
        lab.api.call("POST", path, {"port_forwarding": {
            **inside, "internal_port": 22, "external_port": 2300}})
        ends = traffic.stream(server["netns"], server["ips"][0], EXT_NS, 5001, (address, 2222))
        lab.api.call("DELETE", f"{path}/{one['id']}")
        answered = time.monotonic()
        talked = [traffic.summary(lines) for lines in traffic.stop_at(answered + 2.5, *ends)]
        late = [t - answered for t in talked[0]["times"] if t - answered >= 1.0]
        assert not late, f"the server still got data {late[0]:.2f} s after the delete"
        _until_tcp(server, address, 2222, opens=False)  # and 2222 stays closed
        # a range onto a range of one length (3001 is 5001) in its place
        lab.api.call("POST", path, {"port_forwarding": {
            **inside, "internal_port_range": "5000:5001", "external_port_range": "3000:3001"}})
        assert _until_tcp(server, address, 3001)
    finally:  # its forwardings first: a floating IP in use by them is not deleted (409)
        for left in lab.api.call("GET", path)["port_forwardings"]:
            lab.api.call("DELETE", f"{path}/{left['id']}")
        lab.api.call("DELETE", f"/v2.0/floatingips/{fip['id']}")



def test_metering_labels_count_what_the_router_sends_out_and_gets_back_less_exclusions(
        lab: Lab, gateway: dict[str, Any]) -> None:
    """Neutron's metering on the router's external gateway: a label counting
    all egress and ingress sees the pings of a VM through SNAT (counted by
    the SNAT host, whatever host the VM is on), a label that excludes the
    VM's subnet counts none of them (as Neutron's driver, an egress rule's
    prefix is the tenant's side); the counts are the API's."""
    labels = "/v2.0/metering/metering-labels"
    counting = lab.api.call("POST", labels, {"metering_label": {"name": "all"}})["metering_label"]
    excluding = lab.api.call("POST", labels, {"metering_label": {
        "name": "all-but-the-gateway"}})["metering_label"]
    made = []
    for label, direction, prefix, excluded in (
            (counting, "egress", "0.0.0.0/0", False), (counting, "ingress", "0.0.0.0/0", False),
            (excluding, "egress", "10.1.2.0/24", True),  # r2b's subnet
            (excluding, "egress", "0.0.0.0/0", False)):
        made.append(lab.api.call("POST", "/v2.0/metering/metering-label-rules", {
            "metering_label_rule": {"metering_label_id": label["id"], "direction": direction,
                                    "remote_ip_prefix": prefix, "excluded": excluded}}
                                 )["metering_label_rule"])
    try:
        _until_ping(lab.vms["r2b"]["netns"], "203.0.113.1")

        def counted(obj: dict[str, Any], kind: str = "metering-labels") -> int:
            got = lab.api.call("GET", f"/v2.0/metering/{kind}/{obj['id']}")
            return int(next(iter(got.values()))["overcast:packets"])
        def one_counted() -> bool:  # the rules are in place: from then on, 10 more
            probe.ping(lab.vms["r2b"]["netns"], "203.0.113.1", 1, "-W", "1")
            return counted(made[0], "metering-label-rules") > 0
        _until(one_counted, "a ping counted")
        before = {r["id"]: counted(r, "metering-label-rules") for r in made}
        pinged(lab, "r2b", "203.0.113.1", 10)
        _until(lambda: counted(made[0], "metering-label-rules") >= before[made[0]["id"]] + 10
               and counted(made[1], "metering-label-rules") >= before[made[1]["id"]] + 10,
               "10 requests out and 10 replies in counted")
        assert counted(counting) >= 20
        assert counted(excluding) == 0, "the excluded subnet was counted"
        got = lab.api.call("GET", f"/v2.0/metering/metering-label-rules/{made[0]['id']}")
        assert got["metering_label_rule"]["overcast:bytes"] >= 10 * 84  # ICMP echo, IP and up
    finally:
        for label in (counting, excluding):
            lab.api.call("DELETE", f"{labels}/{label['id']}")


def _open_vm(lab: Lab, name: str, host: str, group: str) -> dict[str, Any]:
    """A VM on ``routed-1`` on ``host`` that the internet may ping (``group`` added)."""
    made = lab.vms.get(name) or lab.vm(name, host, "routed-1")
    port = lab.api.call("GET", f"/v2.0/ports/{made['port_id']}")["port"]
    if group not in port["security_groups"]:
        lab.api.call("PUT", f"/v2.0/ports/{port['id']}", {"port": {
            "security_groups": [*port["security_groups"], group]}})
    return made


def test_a_disassociated_floating_ip_stops_even_a_flow_running_through_the_change(
        lab: Lab, gateway: dict[str, Any]) -> None:
    """Its conntrack entry, which would keep the flow's NAT, goes with the
    address. (The VM is on the SNAT host: there the replies of a flow whose
    entry stayed would still leave by the gateway port, de-NATed to the
    floating IP, and the flow would go on.)"""
    from overcast.lab.fabric import EXT_NS

    from .test_firewall_groups import ping_replies
    from .traffic import Running

    snat = str(_snat_host(lab, gateway["router"]["id"]))
    vm = next((v for v in lab.vms.values() if v["host"] == snat and v["name"] in ("r1a", "r2b", "r1c")),
              None) or _open_vm(lab, "fip-near", snat, gateway["group"])
    # a second VM there keeps a floating IP on the router's qf- device, which stays
    keeper = lab.vms.get("fip-keeper") or lab.vm("fip-keeper", snat, "routed-1")
    kept = lab.api.call("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": gateway["public"]["id"], "port_id": keeper["port_id"]}})
    fip = lab.api.call("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": gateway["public"]["id"], "port_id": vm["port_id"]}})["floatingip"]
    address = fip["floating_ip_address"]
    _until_ping(EXT_NS, address)
    try:
        with Running(EXT_NS, ["ping", "-n", "-D", "-i", "0.05", address]) as running:
            running.wait_line("icmp_seq=3")
            cut = time.time()
            lab.api.call("PUT", f"/v2.0/floatingips/{fip['id']}",
                         {"floatingip": {"port_id": None}})
            assert _fip_status(lab, fip["id"]) == "DOWN"
            time.sleep(1.5)  # the flow runs on: its replies must stop within the first second
            replies = ping_replies(running.interrupt())
        assert replies[-1][0] < cut + 1.0, f"replies went on {replies[-1][0] - cut:.2f}s after"
    finally:
        for made in (fip, kept["floatingip"]):
            lab.api.call("DELETE", f"/v2.0/floatingips/{made['id']}")


# --- restart, MTU and ICMP errors through the router and NAT ---------------------------
UDP_REFUSED = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2]))); s.send(b"anyone?")
try:
    s.recv(100); print("answered")
except ConnectionRefusedError:
    print("refused")
except TimeoutError:
    print("silence")
"""


def test_icmp_errors_come_back_through_the_router_and_nat(lab: Lab, gateway: dict[str, Any]) -> None:
    vm_ns = lab.vms["r1a"]["netns"]
    _until_ping(vm_ns, "203.0.113.1")
    # port unreachable from the internet reaches the VM through SNAT (conntrack's related NAT)
    out = probe.in_ns(vm_ns, [sys.executable, "-c", UDP_REFUSED, "203.0.113.1", "9"])
    assert out.stdout.strip() == "refused", out.stdout + out.stderr
    # the router's hop: TTL exceeded, from the VM's own gateway
    ttl = probe.in_ns(vm_ns, ["ping", "-n", "-c", "1", "-t", "1", "-W", "2", "203.0.113.1"])
    assert "From 10.1.1.1" in ttl.stdout and "Time to live exceeded" in ttl.stdout, ttl.stdout


def test_the_path_mtu_from_the_internet_to_a_floating_ip_is_the_tenant_networks(
        lab: Lab, gateway: dict[str, Any]) -> None:
    from overcast.lab.fabric import EXT_NS

    fip = lab.api.call("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": gateway["public"]["id"],
        "port_id": lab.vms["r2b"]["port_id"]}})["floatingip"]
    address = fip["floating_ip_address"]
    try:
        _until_ping(EXT_NS, address)
        mtu = lab.vms["r2b"]["mtu"]  # 1450: VXLAN under a 1500 underlay; the internet has 1500
        too_big = probe.in_ns(EXT_NS, ["ping", "-n", "-c", "2", "-W", "2", "-M", "do", "-s",
                                       str(1500 - 28), address])
        assert f"mtu = {mtu}" in too_big.stdout + too_big.stderr, too_big.stdout + too_big.stderr
        fits = probe.in_ns(EXT_NS, ["ping", "-n", "-c", "2", "-W", "2", "-M", "do", "-s",
                                    str(mtu - 28), address])
        assert fits.returncode == 0, fits.stdout + fits.stderr
    finally:
        lab.api.call("DELETE", f"/v2.0/floatingips/{fip['id']}")


def test_agents_sigkilled_and_restarted_lose_no_routed_or_nated_packet(
        lab: Lab, gateway: dict[str, Any]) -> None:
    from .test_firewall_groups import kill_and_restart_agent, ping_replies
    from .traffic import Running

    agents = {a["host"]: a for a in lab.api.call("GET", "/v2.0/agents")["agents"]}
    snat = [h for h, a in agents.items()
            if gateway["router"]["id"] in a["configurations"].get("snat_routers", [])]
    assert len(snat) == 1, agents
    _until_ping(lab.vms["r1a"]["netns"], "203.0.113.1")
    east_west = Running(lab.vms["r1a"]["netns"], ["ping", "-n", "-D", "-i", "0.05", "10.1.2.12"])
    outbound = Running(lab.vms["r1a"]["netns"], ["ping", "-n", "-D", "-i", "0.05", "203.0.113.1"])
    now = replace(lab, topo=control.current_topology())  # the SNAT host may have joined later
    with east_west, outbound:
        for pinger in (east_west, outbound):
            pinger.wait_line("icmp_seq=20")  # a second of replies before the first kill
        killed = [kill_and_restart_agent(now, host, outbound)[1]
                  for host in dict.fromkeys(["host1", "host2", *snat])]
        # a reply sent after the last restart: a packet lost in any restart
        # is a gap in the sequence numbers; pings still in flight when ping
        # is stopped are not
        after = time.time() + 0.2
        for pinger in (east_west, outbound):
            pinger.wait_for(lambda lines: ping_replies(lines)[-1][0] > after, 5.0,
                            "ping replies after the last restart")
        lines = {"east-west": east_west.interrupt(), "outbound": outbound.interrupt()}
    for what, got in lines.items():
        replies = ping_replies(got)
        first_time, first_seq = replies[0]
        lost = sorted(set(range(1, replies[-1][1] + 1)) - {seq for _, seq in replies})
        # sent (every 50 ms from the first reply's) from half a second before the first kill
        during = [s for s in lost if first_time + (s - first_seq) * 0.05 > killed[0] - 0.5]
        if lost:
            print(f"{what}: lost pings {lost}, first kill at {killed[0]:.3f}, "
                  f"first reply {first_time:.3f}")
        assert not during, f"{what}: pings lost across the restarts: {during}:\n" + \
            "\n".join(got)


def _snat_host(lab: Lab, router_id: str) -> str | None:
    agents = lab.api.call("GET", "/v2.0/agents")["agents"]
    found = [a["host"] for a in agents if a["alive"]
             and router_id in a["configurations"].get("snat_routers", [])]
    return found[0] if found else None


def test_when_the_snat_host_dies_another_host_takes_over_and_new_connections_work(
        lab: Lab, gateway: dict[str, Any]) -> None:
    """The SNAT host's agent is SIGKILLed and its uplinks cut (the host is
    gone); once its liveness lease expires, another host with the external
    mapping does the router's SNAT, and a VM elsewhere opens new connections
    to the internet again. The outage is printed (and bounded here)."""
    import signal

    from overcast.lab.fabric import HOST_EXTERNAL_IF

    rid = gateway["router"]["id"]
    dead = _snat_host(lab, rid)
    assert dead is not None
    client = next(name for name in ("r1a", "r2b", "r1c") if lab.vms[name]["host"] != dead)
    ns = lab.vms[client]["netns"]
    _until_ping(ns, "203.0.113.1")
    dead_ns = host_ns(lab, dead)
    control.stop_process(f"agent-{dead}", sig=signal.SIGKILL)
    killed = time.monotonic()
    try:
        for dev in (HOST_EXTERNAL_IF, HOST_UNDERLAY_IF):
            ipcmd.ip("link", "set", dev, "down", ns=dead_ns)
        outage = _until_ping(ns, "203.0.113.1", timeout=lab.topo.lease_ttl + 8.0)
        outage = time.monotonic() - killed
        taker = _snat_host(lab, rid)
        assert taker not in (None, dead), taker
        print(f"SNAT failover {dead} -> {taker}: new connections after {outage:.2f}s "
              f"(lease TTL {lab.topo.lease_ttl:g}s)")
        assert outage <= lab.topo.lease_ttl + 3.0
    finally:
        for dev in (HOST_EXTERNAL_IF, HOST_UNDERLAY_IF):
            ipcmd.ip("link", "set", dev, "up", ns=dead_ns)
        topo = control.current_topology()  # the SNAT host may have joined later
        control.start_agent(topo, topo.host(dead))
        control.wait_agents(topo, [dead])
    _until(lambda: _snat_host(lab, rid) == dead, "the SNAT back on its first host")
    _until_ping(ns, "203.0.113.1")


def test_two_projects_with_the_same_cidr_behind_two_routers_both_reach_the_internet(
        lab: Lab, gateway: dict[str, Any]) -> None:
    from overcast.lab.fabric import EXT_NS

    public = gateway["public"]
    gateways = {}
    for project in ("same1", "same2"):
        _, sub = lab.api.create_network(f"{project}-net", "10.9.0.0/24", "10.9.0.1",
                                        project_id=project)
        router = lab.api.call("POST", "/v2.0/routers", {"router": {
            "name": f"{project}-router", "project_id": project,
            "external_gateway_info": {"network_id": public["id"]}}})["router"]
        lab.api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                     {"subnet_id": sub["id"]})
        gateways[project] = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        for host in ("host1", "host2"):  # the same address on the same hosts in both projects
            lab.vm(f"{project}-{host}", host, f"{project}-net", f"10.9.0.{10 + int(host[-1])}")
    for name in lab.vms:
        if name.startswith("same"):
            _until_ping(lab.vms[name]["netns"], "203.0.113.1")
    for project, address in gateways.items():
        with probe.Capture(EXT_NS, "oc-ext0", "icmp") as seen:
            for host in ("host1", "host2"):
                pinged(lab, f"{project}-{host}", "203.0.113.1")
        assert _request_sources(seen.frames) == {address}, (project, seen.frames)
    assert len(set(gateways.values())) == 2


def _v6_network(lab: Lab, name: str, prefix: str) -> dict[str, Any]:
    net = lab.api.call("POST", "/v2.0/networks", {"network": {"name": name}})["network"]
    subnet: dict[str, Any] = lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "ip_version": 6, "cidr": prefix,
        "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})["subnet"]
    return subnet


def _ipv6_on(lab: Lab, name: str) -> str:
    """IPv6 on in VM ``name`` (the lab makes VMs without), with router
    advertisements accepted; the address its port has (EUI-64 of its MAC)."""
    ns = lab.vms[name]["netns"]
    for key in ("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.eth0.disable_ipv6"):
        ipcmd.sysctl(ns, key, "0")
    ipcmd.sysctl(ns, "net.ipv6.conf.eth0.accept_ra", "1")
    port = lab.api.call("GET", f"/v2.0/ports/{lab.vms[name]['port_id']}")["port"]
    return str(port["fixed_ips"][0]["ip_address"])


def test_ipv6_subnets_are_routed_with_addresses_and_routes_from_router_advertisements(
        lab: Lab) -> None:
    subs = [_v6_network(lab, f"v6-{n}", f"2001:db8:{n}::/64") for n in ("a", "b")]
    router = lab.api.call("POST", "/v2.0/routers", {"router": {"name": "r-v6"}})["router"]
    for s in subs:
        lab.api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                     {"subnet_id": s["id"]})
    lab.vm("v6a", "host1", "v6-a")
    lab.vm("v6b", "host2", "v6-b")
    addresses = {name: _ipv6_on(lab, name) for name in ("v6a", "v6b")}

    def configured(name: str) -> bool:  # SLAAC gave the port's own address and a default route
        ns = lab.vms[name]["netns"]
        shown = probe.in_ns(ns, ["ip", "-6", "addr", "show", "dev", "eth0"]).stdout
        route = probe.in_ns(ns, ["ip", "-6", "route", "show", "default"]).stdout
        return addresses[name] in shown and "tentative" not in shown and "via fe80::" in route
    # a VM whose solicitations all came before its host's router could answer them is
    # configured by the next periodic advertisement: one interval more (a CI run failed on it)
    for name in addresses:
        _until(lambda n=name: configured(n), f"{name} configured by router advertisements",
               CONVERGE + RA_INTERVAL)
    deadline = time.monotonic() + CONVERGE
    while probe.ping(lab.vms["v6a"]["netns"], addresses["v6b"], 1, "-W", "0.3").returncode:
        assert time.monotonic() < deadline, "no routed IPv6 ping v6a (host1) -> v6b (host2)"
    pinged(lab, "v6a", addresses["v6b"])
