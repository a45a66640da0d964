"""``lab down`` (run last) removes exactly what the lab made."""

from __future__ import annotations

import subprocess
import sys

import pytest

from overcast.lab import fabric, ipcmd, processes, state

from .conftest import Lab

pytestmark = pytest.mark.root


def test_lab_down_removes_everything_ours_and_nothing_else(lab: Lab) -> None:
    before = state.load()
    assert before is not None
    made, procs = list(before.namespaces), list(before.processes.values())
    assert made and procs
    out = subprocess.run([sys.executable, "-m", "overcast.lab", "down"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    remaining = ipcmd.netns_list()
    assert not set(made) & set(remaining)
    assert fabric.lab_namespaces() == []
    assert not any(processes.is_running(p) for p in procs)
    assert not state.state_file().exists()
    assert lab.foreign_ns in remaining
    assert ipcmd.link_exists("oc-notours", ns=lab.foreign_ns)
