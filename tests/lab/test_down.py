"""``lab down`` removes exactly what the lab made: this test builds its own
lab (two hosts, a network, a VM), runs ``overcast lab down`` and looks.  It
does not depend on when it runs: the session's shared lab is taken down
first (the next test that needs it gets a fresh one)."""

from __future__ import annotations

import subprocess
import sys
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
        vm.Api(topo.api_url).create_network("net-down", "10.7.0.0/24")
        vm.create("d1", "host1", "net-down")
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
    assert not any(processes.is_running(p) for p in procs)
    assert not state.state_file().exists()
    assert lab_session.foreign_ns in remaining
    assert ipcmd.link_exists("oc-notours", ns=lab_session.foreign_ns)
