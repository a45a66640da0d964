"""End-to-end proof of the layer: two "hosts" (namespaces) joined by a veth
underlay on 198.18.x, each planned and reconciled with NetlinkKernel; VMs in
child namespaces ping each other over VXLAN, and other networks stay apart.
The ports have no addresses in the model, so port security is off on them:
the firewall is there (its ruleset, tags 0) but checks nothing."""

from __future__ import annotations

import subprocess

import pytest

from overcast.agent.reconciler import reconcile
from overcast.linux.netlink import NetlinkKernel
from overcast.model.types import Network, Port
from overcast.plan import HostView, plan_host
from overcast.plan.names import tap_name

from .conftest import MakeNs, add_workload, sh

pytestmark = pytest.mark.root

HOSTS = {"h1": "198.18.1.1", "h2": "198.18.1.2"}
NET_A = "aaaaaaaa-0000-4000-8000-00000000000a"
NET_B = "bbbbbbbb-0000-4000-8000-00000000000b"
NETWORKS = [Network(id=NET_A, segmentation_id=5001), Network(id=NET_B, segmentation_id=5002)]
VM1 = Port(id="a1a1a1a1-0000-4000-8000-000000000001", network_id=NET_A, mac_address="fa:16:3e:0a:00:01", binding_host_id="h1", port_security_enabled=False)
VM2 = Port(id="a2a2a2a2-0000-4000-8000-000000000002", network_id=NET_A, mac_address="fa:16:3e:0a:00:02", binding_host_id="h2", port_security_enabled=False)
VM3 = Port(id="b3b3b3b3-0000-4000-8000-000000000003", network_id=NET_B, mac_address="fa:16:3e:0b:00:03", binding_host_id="h2", port_security_enabled=False)
VM4 = Port(id="b4b4b4b4-0000-4000-8000-000000000004", network_id=NET_B, mac_address="fa:16:3e:0b:00:04", binding_host_id="h1", port_security_enabled=False)
IPS = {VM1.id: "10.0.0.1", VM2.id: "10.0.0.2", VM3.id: "10.0.0.3", VM4.id: "10.0.0.4"}


def underlay(h1: str, h2: str) -> None:
    subprocess.run(["ip", "-n", h1, "link", "add", "ocu0", "type", "veth", "peer", "name", "ocu0", "netns", h2], check=True)
    for ns, host in ((h1, "h1"), (h2, "h2")):
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{HOSTS[host]}/24", "dev", "ocu0"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "ocu0", "up"], check=True)


def converge(ns: str, host: str, ports: list[Port]) -> None:
    plan = plan_host(HostView(host, HOSTS[host], HOSTS, NETWORKS, ports))
    assert plan.problems == ()
    with NetlinkKernel(ns) as kernel:
        for _ in range(2):  # a fresh host: the firewall's chains, then the taps
            result = reconcile(kernel, plan.state)
            assert result.errors == (), [e.render() for e in result.errors]
        assert reconcile(kernel, plan.state).changes == ()


def ping(vm_ns: str, ip: str, *extra: str) -> bool:
    return sh(vm_ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", *extra, ip, check=False).returncode == 0


def test_vms_on_two_hosts_talk_over_vxlan_and_networks_stay_isolated(make_ns: MakeNs) -> None:
    h1, h2 = make_ns("h1"), make_ns("h2")
    vms = {p.id: make_ns(f"vm{n}") for n, p in enumerate((VM1, VM2, VM3, VM4), start=1)}
    underlay(h1, h2)
    for p in (VM1, VM2, VM3, VM4):
        host_ns = h1 if p.binding_host_id == "h1" else h2
        add_workload(host_ns, vms[p.id], tap_name(p.id), p.mac_address, f"{IPS[p.id]}/24")
    ports = [VM1, VM2, VM3, VM4]
    converge(h1, "h1", ports)
    converge(h2, "h2", ports)

    assert ping(vms[VM1.id], IPS[VM2.id])  # A: h1 -> h2 over VXLAN 5001
    assert ping(vms[VM4.id], IPS[VM3.id])  # B: h1 -> h2 over VXLAN 5002
    assert ping(vms[VM1.id], IPS[VM2.id], "-M", "do", "-s", "1422")  # full 1450 MTU, no fragments
    assert not ping(vms[VM1.id], IPS[VM3.id])  # A cannot reach B
    assert not ping(vms[VM4.id], IPS[VM2.id])  # B cannot reach A

    # VM2 leaves h2: the overlay to it is removed on h1, h2 forgets network A.
    converge(h1, "h1", [VM1, VM3, VM4])
    converge(h2, "h2", [VM1, VM3, VM4])
    assert not ping(vms[VM1.id], IPS[VM2.id])
    assert ping(vms[VM4.id], IPS[VM3.id])  # B untouched by A's change
