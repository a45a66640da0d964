"""DHCPv6 in the lab: ISC dhclient -6 in a VM on a dhcpv6-stateful subnet
gets the port's IPv6 address from its own host, and on a dhcpv6-stateless
subnet the DNS servers and domain; the requests stay at the VM's tap."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from overcast.lab import probe
from overcast.plan.names import vxlan_name

from .conftest import Lab

pytestmark = pytest.mark.root


def _make_tenant(lab: Lab) -> dict[str, Any]:
    net, _ = lab.api.create_network("net-d6", "10.50.0.0/24", dns_domain="d6.example.")
    full = lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "fd00:50::/64", "ip_version": 6,
        "ipv6_address_mode": "dhcpv6-stateful", "dns_nameservers": ["fd00:50::53"]}})["subnet"]
    lab.vm("d61", "host1", "net-d6")
    lab.vm("d62", "host2", "net-d6")
    return {"network": net, "stateful": full}


@pytest.fixture
def tenant(lab: Lab) -> dict[str, Any]:
    return lab.tenant("dhcpv6", _make_tenant)


def ipv6_on(ns: str) -> None:
    """IPv6 on the VM's NIC (the lab's VMs have it off), without DAD: its
    link-local address usable at once, which dhclient binds to."""
    for key in ("all.accept_dad", "eth0.accept_dad"):
        probe.in_ns(ns, ["sysctl", "-q", "-w", f"net.ipv6.conf.{key}=0"])
    for key in ("all.disable_ipv6", "eth0.disable_ipv6"):
        probe.in_ns(ns, ["sysctl", "-q", "-w", f"net.ipv6.conf.{key}=0"])
    deadline = time.monotonic() + 5
    while "scope link" not in probe.in_ns(ns, ["ip", "-6", "addr", "show", "dev", "eth0"]).stdout:
        assert time.monotonic() < deadline, "no IPv6 link-local address on the VM's eth0"
        time.sleep(0.05)


def dhclient6(ns: str, tmp: Path, *flags: str) -> dict[str, str]:
    record, script = tmp / "record", tmp / "script.sh"
    script.write_text(f'#!/bin/sh\n{{ echo "reason=$reason"; env | grep ^new_; }} >> {record}\n')
    script.chmod(0o755)
    out = probe.in_ns(ns, ["dhclient", "-6", "-1", "-v", *flags, "-sf", str(script),
                           "-lf", str(tmp / "leases"), "-pf", str(tmp / "pid"), "eth0"], timeout=30)
    pid = (tmp / "pid").read_text().strip() if (tmp / "pid").exists() else ""
    if pid:
        subprocess.run(["kill", pid], check=False)
    assert out.returncode == 0, out.stderr
    return dict(line.split("=", 1) for line in record.read_text().splitlines() if "=" in line)


def test_dhclient6_gets_the_ports_address_from_its_own_host(lab: Lab, tenant: dict[str, Any],
                                                            tmp_path: Path) -> None:
    d61 = lab.vms["d61"]
    port = lab.api.call("GET", f"/v2.0/ports/{d61['port_id']}")["port"]
    (v6,) = [f["ip_address"] for f in port["fixed_ips"] if ":" in f["ip_address"]]
    ipv6_on(d61["netns"])
    host2 = lab.topo.host("host2").netns
    with probe.Capture(host2, vxlan_name(tenant["network"]["id"]), "udp port 547 or udp port 546") as cap:
        got = dhclient6(d61["netns"], tmp_path)
    assert got["reason"] == "BOUND6" and got["new_ip6_address"] == v6
    assert got["new_dhcp6_name_servers"] == "fd00:50::53"
    assert got["new_dhcp6_domain_search"].rstrip(".") == "d6.example"
    assert cap.frames == []  # DHCPv6 never crossed the overlay


def test_a_stateless_subnet_gives_only_the_other_configuration(lab: Lab, tenant: dict[str, Any],
                                                               tmp_path: Path) -> None:
    net, _ = lab.api.create_network("net-d6s", "10.51.0.0/24")
    lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "fd00:51::/64", "ip_version": 6,
        "ipv6_address_mode": "dhcpv6-stateless", "dns_nameservers": ["fd00:51::53"]}})
    vm_ = lab.vm("d6s", "host1", "net-d6s")
    ipv6_on(vm_["netns"])
    got = dhclient6(vm_["netns"], tmp_path, "-S")
    assert got["new_dhcp6_name_servers"] == "fd00:51::53"
    assert "new_ip6_address" not in got
