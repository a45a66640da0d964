"""One real lab (3 hosts) shared by the lab tests, always torn down.

The session-scoped ``lab_session`` owns the lab: it brings it up when a test
first asks for ``lab`` and takes it down at the end of the session (a
finalizer, whatever ran and in whatever order).  A test that needs no lab
to be up (``test_down.py``, which builds and removes its own) calls
``lab_session.down()``; the next test asking for ``lab`` gets a fresh one,
and its tenants are made again.

A foreign namespace (``foreign-<pid>``, clearly not ours) exists for the whole
session; ``lab down`` must leave it alone.  The session deletes it at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
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
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def vm(self, name: str, host: str, network: str, ip: str | None = None,
           security_groups: list[str] | None = None) -> dict[str, Any]:
        self.vms[name] = vm.create(name, host, network, ip, security_groups=security_groups)
        return self.vms[name]

    def tenant(self, name: str, make: Callable[[Lab], dict[str, Any]]) -> dict[str, Any]:
        """The tenant ``name`` of this lab, made by ``make`` the first time."""
        if name not in self.tenants:
            self.tenants[name] = make(self)
        return self.tenants[name]


class LabSession:
    """The lab of this test session: up on demand, down at the end."""

    def __init__(self, foreign_ns: str) -> None:
        self.foreign_ns = foreign_ns
        self.current: Lab | None = None

    def up(self) -> Lab:
        if self.current is None:
            control.down(quiet=True)  # a lab left up by the demo or a crashed run
            topo = parse_topology({"hosts": 3, "resync_interval": RESYNC})
            control.up(topo)
            self.current = Lab(topo, vm.Api(topo.api_url), self.foreign_ns)
        return self.current

    def down(self) -> None:
        self.current = None
        control.down(quiet=True)


@pytest.fixture(scope="session")
def lab_session() -> Iterator[LabSession]:
    foreign = f"foreign-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    session = LabSession(foreign)
    try:
        subprocess.run(["ip", "-n", foreign, "link", "add", "oc-notours", "type", "veth",
                        "peer", "name", "oc-notours-p"], check=True)
        yield session
    finally:
        try:
            session.down()
        finally:
            subprocess.run(["ip", "netns", "delete", foreign], check=False)


@pytest.fixture
def lab(lab_session: LabSession) -> Lab:
    return lab_session.up()


def _make_tenant_a(lab: Lab) -> dict[str, Any]:
    net, subnet = lab.api.create_network("net-a", "10.0.0.0/24")
    lab.vm("a1", "host1", "net-a", "10.0.0.11")
    lab.vm("a2", "host1", "net-a", "10.0.0.12")
    lab.vm("a3", "host2", "net-a", "10.0.0.13")
    return {"network": net, "subnet": subnet}


@pytest.fixture
def tenant_a(lab: Lab) -> dict[str, Any]:
    """Network net-a 10.0.0.0/24 (MTU 1450): a1, a2 on host1, a3 on host2; host3 has none."""
    return lab.tenant("a", _make_tenant_a)
