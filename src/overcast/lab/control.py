"""Bring the lab up and down: wiring, API server and one agent per host."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from overcast.lab import fabric, ipcmd, processes, state
from overcast.lab.ipcmd import LabError
from overcast.lab.topology import (
    EXTERNAL_GW,
    EXTERNAL_PHYSNET,
    PUBLIC_ZONE,
    LabHost,
    Topology,
    make_host,
    parse_topology,
    topology_to_dict,
)

READY_TIMEOUT = 30.0


def current_topology() -> Topology:
    st = state.load()
    if st is None or not st.topology:
        raise LabError("no lab is up; run 'overcast lab up' first")
    return parse_topology(st.topology)


def up(topo: Topology) -> None:
    """Build the lab and start its processes; on any failure, undo everything."""
    existing = state.load()
    if existing is not None and (existing.namespaces or existing.processes):
        raise LabError("a lab is already up; run 'overcast lab down' first")
    try:
        with state.locked() as st:
            st.topology = topology_to_dict(topo)
            fabric.build_fabric(st, topo.underlay_mtu)
            for host in topo.hosts:
                fabric.build_host(st, host, topo.underlay_mtu)
        start_api(topo)
        wait_api(topo)
        start_public_dns()
        for host in topo.hosts:
            start_agent(topo, host)
        wait_agents(topo, [h.name for h in topo.hosts])
    except BaseException:
        down(quiet=True)
        raise


def add_host(name: str | None = None) -> LabHost:
    """A hypervisor joining the running lab later (wired, agent started, alive)."""
    topo = current_topology()
    index = max(h.index for h in topo.hosts) + 1
    host = make_host(index, name)
    if any(h.name == host.name for h in topo.hosts):
        raise LabError(f"host {host.name} already exists")
    with state.locked() as st:
        fabric.build_host(st, host, topo.underlay_mtu)
        st.topology["hosts"].append({"name": host.name, "underlay_ip": host.underlay_ip})
    start_agent(topo, host)
    wait_agents(topo, [host.name])
    return host


def start_api(topo: Topology) -> None:
    argv = [sys.executable, "-m", "overcast.api", "--bind", topo.api_bind,
            "--store", state.store_url(), "--underlay-mtu", str(topo.underlay_mtu),
            "--default-quota", "all=-1"]  # the lab's scenarios are not held to Neutron's quotas
    _start("api", argv, None)


def start_public_dns() -> None:
    """The public zone's authoritative DNS, in the lab's internet, on its gateway address."""
    _start("public-dns", [sys.executable, "-m", "overcast.publicdns", "--store",
                          state.store_url(), "--listen", f"{EXTERNAL_GW}:53",
                          "--zone", PUBLIC_ZONE, "--bind-public", "--grace", "2"],
           fabric.EXT_NS)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        soa = ipcmd.run(["dig", "+short", "+time=1", "+tries=1", f"@{EXTERNAL_GW}", "SOA",
                         PUBLIC_ZONE], ns=fabric.EXT_NS, check=False)
        if soa.returncode == 0 and soa.stdout.strip():
            return
        time.sleep(0.1)
    raise LabError(f"the public DNS in {fabric.EXT_NS} did not answer within "
                   f"{READY_TIMEOUT:g}s; its log is {log_path('public-dns')}")


def agent_argv(topo: Topology, host: LabHost) -> list[str]:
    return [sys.executable, "-m", "overcast.agent", "--host", host.name,
            "--store", state.store_url(), "--underlay-ip", host.underlay_ip,
            "--resync-interval", f"{topo.resync_interval:g}", "--lease-ttl", f"{topo.lease_ttl:g}",
            "--physical-network", f"{EXTERNAL_PHYSNET}={fabric.HOST_EXTERNAL_IF}",
            "--qos-uplink", f"{fabric.HOST_UNDERLAY_IF}={topo.uplink_kbps}"]


def start_agent(topo: Topology, host: LabHost) -> None:
    _start(f"agent-{host.name}", agent_argv(topo, host), host.netns)


def _start(name: str, argv: list[str], ns: str | None) -> None:
    record = processes.start(name, argv, state.state_dir(), ns)
    with state.locked() as st:
        st.processes[name] = record


def stop_process(name: str, sig: int | None = None) -> None:
    """Stop one of the lab's processes (by its recorded PID) and forget it."""
    with state.locked() as st:
        record = st.processes.pop(name, None)
    if record is not None:
        if sig is None:
            processes.stop(record)
        else:
            processes.stop(record, sig=sig)


@contextmanager
def paused(name: str) -> Iterator[None]:
    """Freeze one of the lab's processes (SIGSTOP by its recorded PID) for the block."""
    st = state.load()
    record = st.processes.get(name) if st is not None else None
    if record is None or not processes.is_running(record):
        raise LabError(f"{name} is not running")
    os.kill(int(record["pid"]), signal.SIGSTOP)
    try:
        yield
    finally:
        if processes.is_running(record):
            os.kill(int(record["pid"]), signal.SIGCONT)


def wait_api(topo: Topology, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        _check_alive("api")
        try:
            resp = httpx.get(f"{topo.api_url}/v2.0/networks", timeout=1.0)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.1)
    raise LabError(f"API at {topo.api_url} not ready after {timeout:g}s ({last}); "
                   f"see {log_path('api')}")


def alive_agents(topo: Topology) -> dict[str, bool]:
    resp = httpx.get(f"{topo.api_url}/v2.0/agents", timeout=5.0)
    resp.raise_for_status()
    return {a.get("host", ""): bool(a.get("alive")) for a in resp.json().get("agents", [])}


def wait_agents(topo: Topology, names: list[str], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    missing = list(names)
    while time.monotonic() < deadline:
        for name in names:
            _check_alive(f"agent-{name}")
        alive = alive_agents(topo)
        missing = [n for n in names if not alive.get(n)]
        if not missing:
            return
        time.sleep(0.1)
    raise LabError(f"agents not alive after {timeout:g}s: {', '.join(missing)}; "
                   f"see {', '.join(str(log_path('agent-' + n)) for n in missing)}")


def log_path(name: str) -> Path:
    return state.state_dir() / f"{name}.log"


def _check_alive(name: str) -> None:
    st = state.load()
    record = st.processes.get(name) if st else None
    if record is None or not processes.is_running(record):
        tail = _tail(log_path(name))
        raise LabError(f"process {name} exited during start-up; last log lines:\n{tail}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def down(quiet: bool = False) -> dict[str, Any]:
    """Stop exactly the recorded processes, delete exactly the lab's namespaces."""
    st = state.load() or state.LabState()
    stopped = []
    for name in sorted(st.processes, key=lambda n: n == "api"):
        processes.stop(st.processes[name])
        stopped.append(name)
    hosts = [h.name for h in parse_topology(st.topology).hosts] if st.topology else []
    # the agents are stopped: the router namespaces they made go first (their veth
    # pairs' host sides are in the host namespaces)
    deleted = fabric.destroy_namespaces(fabric.router_namespaces(hosts))
    deleted += fabric.destroy_namespaces(st.namespaces + fabric.lab_namespaces())
    state.remove_all()
    if not quiet:
        print(f"lab down: stopped {len(stopped)} processes, deleted {len(deleted)} namespaces")
    return {"stopped": stopped, "namespaces": deleted}
