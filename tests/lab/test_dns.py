"""Internal DNS in the lab: a VM asks the resolver DHCP gave it
(169.254.169.254, answered on its own host) with dig, over UDP and TCP,
for its project's names and addresses; another project's names are not
answered; a deleted port's name stops resolving within a second; a name
outside the cloud is REFUSED at once (no upstream)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from overcast.lab import probe, vm
from overcast.plan.leases import SERVER_IP

from .conftest import Lab

pytestmark = pytest.mark.root

OTHER_PROJECT = "0ddba11c0ffee0000000000000000042"


def _make_tenant(lab: Lab) -> dict[str, Any]:
    net = lab.api.call("POST", "/v2.0/networks", {"network": {
        "name": "net-dns", "dns_domain": "dns.example."}})["network"]
    subnet = lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.46.0.0/24", "ip_version": 4}})["subnet"]
    lab.vm("dn1", "host1", "net-dns", "10.46.0.11")
    lab.vm("dn2", "host2", "net-dns", "10.46.0.12")
    lab.api.call("PUT", f"/v2.0/ports/{lab.vms['dn2']['port_id']}", {"port": {"dns_name": "db"}})
    # another project's network on the same hosts, with the same addresses
    other = lab.api.call("POST", "/v2.0/networks", {"network": {
        "name": "net-dns-other", "project_id": OTHER_PROJECT, "dns_domain": "dns.example."}})["network"]
    lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": other["id"], "cidr": "10.46.0.0/24", "ip_version": 4,
        "project_id": OTHER_PROJECT}})
    lab.vms["dnx"] = vm.create("dnx", "host1", other["id"], "10.46.0.13")  # an operator's port
    return {"network": net, "subnet": subnet, "other": other}


@pytest.fixture
def tenant(lab: Lab) -> dict[str, Any]:
    return lab.tenant("dns", _make_tenant)


def dig(ns: str, *args: str) -> list[str]:
    out = probe.in_ns(ns, ["dig", "+short", "+time=1", "+tries=1", f"@{SERVER_IP}", *args])
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout.split()


def status(ns: str, *args: str) -> str:
    out = probe.in_ns(ns, ["dig", "+time=1", "+tries=1", f"@{SERVER_IP}", *args]).stdout
    words = out.split("status: ", 1)
    return words[1].split(",", 1)[0] if len(words) == 2 else out


def test_a_vm_resolves_its_projects_names_and_addresses_over_udp_and_tcp(
        lab: Lab, tenant: dict[str, Any]) -> None:
    ns = lab.vms["dn1"]["netns"]
    lease = vm.lease_dir(lab.vms["dn1"])
    assert (lease / "dns").read_text().split() == [SERVER_IP]  # DHCP named the resolver
    for transport in ("+notcp", "+tcp"):
        assert dig(ns, transport, "db.dns.example") == ["10.46.0.12"]  # a VM on host2, renamed
        assert dig(ns, transport, "host-10-46-0-11.dns.example") == ["10.46.0.11"]  # itself
        assert dig(ns, transport, "-x", "10.46.0.12") == ["db.dns.example."]
    assert status(ns, "nothere.dns.example") == "NXDOMAIN"
    assert status(ns, "db.dns.example", "AAAA") == "NOERROR"  # the name exists: NODATA


def test_another_projects_names_are_not_answered(lab: Lab, tenant: dict[str, Any]) -> None:
    spy = lab.vms["dnx"]["netns"]
    assert dig(spy, "db.dns.example") == []  # same domain, other project: not its names
    assert dig(spy, "host-10-46-0-13.dns.example") == ["10.46.0.13"]  # its own, yes
    assert dig(lab.vms["dn1"]["netns"], "host-10-46-0-13.dns.example") == []


def test_a_name_outside_the_cloud_is_refused_at_once(lab: Lab, tenant: dict[str, Any]) -> None:
    started = time.monotonic()
    assert status(lab.vms["dn1"]["netns"], "www.example.com") == "REFUSED"
    assert time.monotonic() - started < 1.0


def test_a_deleted_ports_name_stops_resolving_within_a_second(lab: Lab, tenant: dict[str, Any]) -> None:
    lab.vms["dn3"] = vm.create("dn3", "host2", "net-dns", "10.46.0.14")
    ns = lab.vms["dn1"]["netns"]
    assert dig(ns, "host-10-46-0-14.dns.example") == ["10.46.0.14"]
    lab.api.call("DELETE", f"/v2.0/ports/{lab.vms['dn3']['port_id']}")
    deleted = time.monotonic()
    while dig(ns, "host-10-46-0-14.dns.example"):
        assert time.monotonic() - deleted < 1.0, "the deleted port's name still resolves"
        time.sleep(0.02)
    vm.delete("dn3")
    lab.vms.pop("dn3")
