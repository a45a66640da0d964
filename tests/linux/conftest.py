"""Fixtures for real-kernel tests: fresh named namespaces, always removed.

Every namespace is named ``oc-t-<run>-<role>``; ``<run>`` is unique to this
test run (the ownership mark), and only namespaces this fixture created are
removed, in ``finally``, even when the test fails.  Links live inside those
namespaces and go away with them.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from pyroute2 import netns

RUN = f"oc-t-{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"

MakeNs = Callable[[str], str]


@contextmanager
def namespaces(prefix: str) -> Iterator[MakeNs]:
    """``make(role)`` creates namespace ``<prefix>-<role>``; all it created are
    removed at the end (only those)."""
    created: list[str] = []

    def make(role: str) -> str:
        name = f"{prefix}-{role}"
        netns.create(name)
        created.append(name)
        return name

    try:
        yield make
    finally:
        for name in reversed(created):
            try:
                netns.remove(name)
            except OSError:
                pass


@pytest.fixture
def make_ns() -> Iterator[MakeNs]:
    with namespaces(RUN) as make:
        yield make


def sh(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command inside namespace ``ns`` (tests only; product code never does)."""
    return subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True, check=check, timeout=60)


def ip_json(ns: str, *args: str, tool: str = "ip") -> Any:
    """JSON output of ``ip`` (or ``bridge``) run against namespace ``ns``."""
    out = subprocess.run([tool, "-n", ns, "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def link(ns: str, name: str) -> dict[str, Any]:
    (found,) = ip_json(ns, "-d", "link", "show", "dev", name)
    return found  # type: ignore[no-any-return]


def add_workload(host_ns: str, vm_ns: str, tap: str, mac: str, cidr: str, mtu: int = 1450) -> None:
    """A veth "VM NIC": host end ``tap`` in the host, ``eth0`` in the VM."""
    subprocess.run(
        ["ip", "-n", host_ns, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", vm_ns],
        check=True,
    )
    for cmd in (
        ["link", "set", "eth0", "address", mac, "mtu", str(mtu), "up"],
        ["addr", "add", cidr, "dev", "eth0"],
        ["link", "set", "lo", "up"],
    ):
        subprocess.run(["ip", "-n", vm_ns, *cmd], check=True)
