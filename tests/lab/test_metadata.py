"""The metadata service in the lab: each VM reads its own network
metadata at http://169.254.169.254/latest/meta-data/ from its own host, and
nothing of another VM's."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.lab import probe

from .conftest import Lab

pytestmark = pytest.mark.root

BASE = "http://169.254.169.254/latest/meta-data/"


def _make_tenant(lab: Lab) -> dict[str, Any]:
    net = lab.api.call("POST", "/v2.0/networks", {"network": {
        "name": "net-md", "dns_domain": "md.example."}})["network"]
    lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.47.0.0/24", "ip_version": 4}})
    lab.vm("md1", "host1", "net-md", "10.47.0.11")
    lab.vm("md2", "host1", "net-md", "10.47.0.12")
    lab.vm("md3", "host2", "net-md", "10.47.0.13")
    return {"network": net}


@pytest.fixture
def tenant(lab: Lab) -> dict[str, Any]:
    return lab.tenant("metadata", _make_tenant)


def get(ns: str, path: str) -> tuple[str, str]:
    out = probe.in_ns(ns, ["curl", "-s", "-m", "3", "-w", "\\n%{http_code}", BASE + path])
    body, _, code = out.stdout.rpartition("\n")
    return code, body


@pytest.mark.parametrize("name", ["md1", "md2", "md3"])
def test_each_vm_reads_its_own_metadata(lab: Lab, tenant: dict[str, Any], name: str) -> None:
    me = lab.vms[name]
    ns = me["netns"]
    assert get(ns, "local-ipv4") == ("200", me["ips"][0])
    assert get(ns, "mac") == ("200", me["mac"])
    assert get(ns, "instance-id") == ("200", f"lab-vm-{name}")  # the port's device_id
    host = "host-" + me["ips"][0].replace(".", "-")
    assert get(ns, "local-hostname") == ("200", f"{host}.md.example")
    code, listing = get(ns, "")
    assert code == "200" and "local-ipv4" in listing.split()
    others = [v["ips"][0] for n, v in lab.vms.items() if n.startswith("md") and n != name]
    assert not any(ip in listing for ip in others)
    assert get(ns, "public-ipv4")[0] == "404"  # no floating IP
