"""One real lab for the whole session: 3 hosts, always torn down.

A foreign namespace (``foreign-<pid>``, clearly not ours) exists before the
lab comes up; ``test_zz_down`` proves ``lab down`` leaves it alone.  The
fixture deletes it itself at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from overcast.lab import control, vm
from overcast.lab.topology import Topology, parse_topology

RESYNC = 2.0


@dataclass
class Lab:
    topo: Topology
    api: vm.Api
    foreign_ns: str
    vms: dict[str, dict[str, Any]] = field(default_factory=dict)

    def vm(self, name: str, host: str, network: str, ip: str | None = None) -> dict[str, Any]:
        self.vms[name] = vm.create(name, host, network, ip)
        return self.vms[name]


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    foreign = f"foreign-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        subprocess.run(["ip", "-n", foreign, "link", "add", "oc-notours", "type", "veth",
                        "peer", "name", "oc-notours-p"], check=True)
        control.down(quiet=True)  # a lab left up by the demo
        topo = parse_topology({"hosts": 3, "resync_interval": RESYNC})
        control.up(topo)
        yield Lab(topo, vm.Api(topo.api_url), foreign)
    finally:
        try:
            control.down(quiet=True)
        finally:
            subprocess.run(["ip", "netns", "delete", foreign], check=False)


@pytest.fixture(scope="session")
def tenant_a(lab: Lab) -> dict[str, Any]:
    """Network net-a 10.0.0.0/24 (MTU 1450): a1, a2 on host1, a3 on host2; host3 has none."""
    net, subnet = lab.api.create_network("net-a", "10.0.0.0/24")
    lab.vm("a1", "host1", "net-a", "10.0.0.11")
    lab.vm("a2", "host1", "net-a", "10.0.0.12")
    lab.vm("a3", "host2", "net-a", "10.0.0.13")
    return {"network": net, "subnet": subnet}
