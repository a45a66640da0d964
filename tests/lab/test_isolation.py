"""Two tenants with the same CIDR and the same IPs on the same hosts never
hear each other; broadcast reaches only hosts with ports on the network."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.lab import fabric, probe

from .conftest import Lab

pytestmark = pytest.mark.root

PROBE_ETHERTYPE = "88b5"  # IEEE local experimental


def _make_tenant_b(lab: Lab) -> dict[str, Any]:
    net, subnet = lab.api.create_network("net-b", "10.0.0.0/24")
    lab.vm("b1", "host1", "net-b", "10.0.0.11")  # same IP as a1, same host
    lab.vm("b3", "host2", "net-b", "10.0.0.13")  # same IP as a3, same host
    return {"network": net, "subnet": subnet}


@pytest.fixture
def tenant_b(lab: Lab, tenant_a: dict[str, Any]) -> dict[str, Any]:
    return lab.tenant("b", _make_tenant_b)


def own_macs(lab: Lab, vms: tuple[str, ...]) -> list[str]:
    """A tenant's VM MACs plus the hypervisors' own devices (bridge, tap, VXLAN
    chatter such as IGMP): a frame from any other MAC leaked in from elsewhere."""
    hosts = [h.netns for h in lab.topo.hosts]
    return [lab.vms[n]["mac"] for n in vms] + fabric.host_device_macs(hosts)


def noise_from_a1(lab: Lab) -> None:
    """Broadcast, ARP, unicast and crafted frames from a1, aimed also at B's MACs."""
    a1 = lab.vms["a1"]
    ns = a1["netns"]
    probe.in_ns(ns, ["arping", "-c", "2", "-w", "2", "-I", "eth0", "10.0.0.13"])
    probe.in_ns(ns, ["ping", "-b", "-c", "2", "-W", "1", "-i", "0.2", "10.0.0.255"])
    probe.ping(ns, "10.0.0.13", 2)
    frames = [(lab.vms[n]["mac"], PROBE_ETHERTYPE) for n in ("b1", "b3", "a3")]
    frames += [("ff:ff:ff:ff:ff:ff", PROBE_ETHERTYPE), ("fa:16:3e:de:ad:01", PROBE_ETHERTYPE),
               (lab.vms["b1"]["mac"], "0800"), (lab.vms["b3"]["mac"], "0806")]
    probe.send_frames(ns, "eth0", a1["mac"], frames)


def test_same_cidr_tenants_both_work(lab: Lab, tenant_b: dict[str, Any]) -> None:
    result = probe.ping(lab.vms["b1"]["netns"], "10.0.0.13", 2)
    assert result.returncode == 0, result.stdout
    echo = probe.tcp_echo(lab.vms["b3"]["netns"], "10.0.0.13", lab.vms["b1"]["netns"])
    assert echo.startswith("echo:")


def test_nothing_from_tenant_a_reaches_tenant_b(lab: Lab, tenant_b: dict[str, Any]) -> None:
    with probe.Capture(lab.vms["b1"]["netns"], "eth0") as cap_b1, \
            probe.Capture(lab.vms["b3"]["netns"], "eth0") as cap_b3, \
            probe.Capture(lab.vms["a3"]["netns"], "eth0") as cap_a3:
        noise_from_a1(lab)
    b_macs = own_macs(lab, ("b1", "b3"))
    a_macs = {lab.vms[n]["mac"] for n in ("a1", "a2", "a3")}
    assert not a_macs & {m.lower() for m in b_macs}
    assert cap_b1.foreign(b_macs) == [], cap_b1.frames
    assert cap_b3.foreign(b_macs) == [], cap_b3.frames
    # the capture works: a3 (same network as a1) saw a1's ARP requests and pings
    a3 = "\n".join(cap_a3.frames)
    assert "Request who-has 10.0.0.13" in a3 and "ICMP echo request" in a3, a3


def test_nothing_from_tenant_b_reaches_tenant_a(lab: Lab, tenant_b: dict[str, Any]) -> None:
    b1 = lab.vms["b1"]
    with probe.Capture(lab.vms["a1"]["netns"], "eth0") as cap_a1, \
            probe.Capture(lab.vms["a3"]["netns"], "eth0") as cap_a3:
        probe.in_ns(b1["netns"], ["arping", "-c", "2", "-w", "2", "-I", "eth0", "10.0.0.11"])
        probe.send_frames(b1["netns"], "eth0", b1["mac"],
                          [(lab.vms["a1"]["mac"], PROBE_ETHERTYPE),
                           (lab.vms["a3"]["mac"], PROBE_ETHERTYPE),
                           ("ff:ff:ff:ff:ff:ff", PROBE_ETHERTYPE)])
    a_macs = own_macs(lab, ("a1", "a2", "a3"))
    assert cap_a1.foreign(a_macs) == [] and cap_a3.foreign(a_macs) == [], \
        cap_a1.frames + cap_a3.frames


def test_broadcast_stays_on_interested_hosts(lab: Lab, tenant_b: dict[str, Any]) -> None:
    """host3 has no port on net-a: its underlay sees none of net-a's VXLAN
    traffic (other tenants of the lab may have ports there)."""
    vni = tenant_a_vni(lab)
    net_a = f"udp port 4789 and udp[12:4] & 0xffffff00 = {vni << 8}"  # the VXLAN header's VNI
    with probe.Capture("oc-host3", "oc-ul0", net_a) as cap_h3, \
            probe.Capture("oc-host2", "oc-ul0", net_a) as cap_h2:
        noise_from_a1(lab)
    assert cap_h3.frames == [], cap_h3.frames
    assert cap_h2.frames, "host2 (has a3 on net-a) should have received VXLAN traffic"


def tenant_a_vni(lab: Lab) -> int:
    net = lab.tenants["a"]["network"]
    vni = lab.api.call("GET", f"/v2.0/networks/{net['id']}")["network"]["provider:segmentation_id"]
    assert isinstance(vni, int) and vni > 0, vni
    return vni
