"""``lab down`` removes exactly what the lab made: this test builds its own
lab (two hosts, a network, a VM), runs ``overcast lab down`` and looks.  It
does not depend on when it runs: the session's shared lab is taken down
first (the next test that needs it gets a fresh one)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from overcast.lab import control, fabric, ipcmd, processes, state, vm
from overcast.lab.topology import parse_topology

from .conftest import RESYNC, LabSession

pytestmark = pytest.mark.root


@pytest.fixture
def own_lab(lab_session: LabSession) -> Iterator[None]:
    lab_session.down()
    topo = parse_topology({"hosts": 2, "resync_interval": RESYNC})
    try:
        control.up(topo)
        api = vm.Api(topo.api_url)
        _, sub = api.create_network("net-down", "10.7.0.0/24")
        vm.create("d1", "host1", "net-down")
        router = api.call("POST", "/v2.0/routers", {"router": {"name": "r-down"}})["router"]
        api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": sub["id"]})
        deadline = time.monotonic() + 10.0  # the agent on host1 makes the router's namespace
        while not fabric.router_namespaces(["host1"]):
            assert time.monotonic() < deadline, "no router namespace on host1"
            time.sleep(0.05)
        yield
    finally:
        control.down(quiet=True)  # whatever the test left


def test_lab_down_removes_everything_ours_and_nothing_else(
        own_lab: None, lab_session: LabSession) -> None:
    before = state.load()
    assert before is not None
    made, procs = list(before.namespaces), list(before.processes.values())
    assert {"oc-fabric", "oc-host1", "oc-host2", "oc-vm-d1"} <= set(made)
    assert {"api", "agent-host1", "agent-host2"} <= set(before.processes)
    assert all(processes.is_running(p) for p in procs)
    out = subprocess.run([sys.executable, "-m", "overcast.lab", "down"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    remaining = ipcmd.netns_list()
    assert not set(made) & set(remaining)
    assert fabric.lab_namespaces() == []
    assert fabric.router_namespaces(["host1", "host2"]) == []  # the agents' routers too
    assert not any(processes.is_running(p) for p in procs)
    assert not state.state_file().exists()
    assert lab_session.foreign_ns in remaining
    assert ipcmd.link_exists("oc-notours", ns=lab_session.foreign_ns)
