"""Deletion cleans the kernel, agents survive SIGKILL without traffic loss,
drift made by hand is repaired, and a host can join later."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from overcast.lab import control, ipcmd, probe, vm
from overcast.plan import names
from overcast.plan.services import service_id, service_netns

from .conftest import RESYNC, Lab

pytestmark = pytest.mark.root


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def link_names(ns: str) -> set[str]:
    return {link["ifname"] for link in ipcmd.links(ns)}


def lacks(ns: str, devices: set[str]) -> bool:
    return not devices & link_names(ns)


def fdb(ns: str, dev: str) -> set[tuple[str, str]]:
    out = subprocess.run(["bridge", "-j", "-n", ns, "fdb", "show", "dev", dev],
                         capture_output=True, text=True).stdout
    return {(e["mac"], e["dst"]) for e in json.loads(out or "[]") if "dst" in e}


def master_of(ns: str, ifname: str) -> str:
    return next((ln.get("master", "") for ln in ipcmd.links(ns) if ln["ifname"] == ifname), "")


def test_port_and_network_deletion_clean_the_kernel(lab: Lab, tenant_a: dict[str, Any]) -> None:
    net, _ = lab.api.create_network("net-c", "10.9.0.0/24")
    br, vx = names.bridge_name(net["id"]), names.vxlan_name(net["id"])
    c1, c2 = lab.vm("c1", "host3", "net-c"), lab.vm("c2", "host2", "net-c")
    assert {br, vx} <= link_names("oc-host3") and {br, vx} <= link_names("oc-host2")
    assert br not in link_names("oc-host1")
    assert (c1["mac"], "198.18.0.13") in fdb("oc-host2", vx)
    vm.delete("c1")
    eventually(lambda: not {br, vx} & link_names("oc-host3"), 5, f"{br}/{vx} gone from host3")
    eventually(lambda: (c1["mac"], "198.18.0.13") not in fdb("oc-host2", vx), 5,
               "host2 forgets c1's MAC")
    vm.delete("c2")
    lab.api.call("DELETE", f"/v2.0/networks/{net['id']}")
    for host in ("oc-host1", "oc-host2", "oc-host3"):
        eventually(partial(lacks, host, {br, vx}), 5, f"net-c devices gone from {host}")
    assert c2["port_id"]


def test_agent_sigkill_and_restart_lose_no_packet(lab: Lab, tenant_a: dict[str, Any]) -> None:
    a1, a3 = lab.vms["a1"], lab.vms["a3"]
    pinger = subprocess.Popen(["ip", "netns", "exec", a1["netns"], "ping", "-n", "-i", "0.05",
                               "-c", "160", "-W", "1", a3["ips"][0]],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)  # the ping is under way before the agents die
    hosts = ("host1", "host2")
    logs = {h: control.log_path(f"agent-{h}") for h in hosts}
    sizes = {h: p.stat().st_size for h, p in logs.items()}
    for host in hosts:
        control.stop_process(f"agent-{host}", sig=signal.SIGKILL)
    time.sleep(0.5)
    for host in hosts:
        control.start_agent(lab.topo, lab.topo.host(host))
    control.wait_agents(lab.topo, list(hosts))
    out, _ = pinger.communicate(timeout=30)
    assert " 0% packet loss" in out and "160 received" in out, out
    # Proof that each restarted agent has completed full passes: a probe
    # network with a port bound to each host, whose devices will never exist.
    # A pass reports such a port DOWN only after it has planned the whole
    # host, observed the kernel and applied its diff; every change it made is
    # logged before.  So once both probe ports are reported, every change the
    # restarted agents made is in their logs.
    net, _ = lab.api.create_network("net-probe", "10.8.0.0/24")
    # and its service namespace on each host (plan/services.py: a port there has a lease)
    probe_devices = (names.bridge_name(net["id"]), names.vxlan_name(net["id"]),
                     names.router_port_name(service_id(net["id"])),
                     *(service_netns(net["id"], h) for h in hosts))
    # without port security and groups, the probe's firewall elements are
    # the probe's own (its network's zone and VXLAN tag, its ports' tags)
    ports = {h: lab.api.call("POST", "/v2.0/ports", {"port": {
        "network_id": net["id"], "binding:host_id": h, "name": f"probe-{h}",
        "port_security_enabled": False, "security_groups": []}})["port"]
        for h in hosts}
    probe_ids = {net["id"], *(p["id"] for p in ports.values())}
    try:
        for host in hosts:
            reported = f"port {ports[host]['id']}: DOWN"
            eventually(partial(logged, logs[host], sizes[host], reported), 10,
                       f"the restarted agent on {host} reports its probe port")
        for host, path in logs.items():
            new = new_log(path, sizes[host])
            assert "full read" in new
            changed = [line for line in new.splitlines() if "applied:" in line
                       and not any(dev in line for dev in probe_devices)
                       and not firewall_change_of(line, probe_ids)]
            assert changed == [], f"restarted agent on {host} changed the kernel:\n{new}"
    finally:
        for port in ports.values():
            lab.api.call("DELETE", f"/v2.0/ports/{port['id']}")
        lab.api.call("DELETE", f"/v2.0/networks/{net['id']}")


def firewall_change_of(line: str, ids: set[str]) -> bool:
    """A logged firewall ruleset change whose elements are all of ``ids``
    and whose only chains are new networks' zones (``... firewall ruleset:
    +3 -0 elements of <id>, <id>; chains zone_45269``)."""
    _, found, rest = line.partition("firewall ruleset: ")
    elements, *others = rest.split("; ")
    if not found or " of " not in elements:
        return False
    zones_only = all(re.fullmatch(r"chains zone_\d+(, zone_\d+)*", part) for part in others)
    return zones_only and set(elements.split(" of ", 1)[1].split(", ")) <= ids


def logged(path: Path, offset: int, text: str) -> bool:
    return text in new_log(path, offset)


def new_log(path: Path, offset: int) -> str:
    """What was written to the log at ``path`` after its first ``offset`` bytes."""
    with open(path) as f:
        f.seek(offset)
        return f.read()


def test_drift_made_by_hand_is_repaired(lab: Lab, tenant_a: dict[str, Any]) -> None:
    net_id = tenant_a["network"]["id"]
    vx, br = names.vxlan_name(net_id), names.bridge_name(net_id)
    a3_entry = (lab.vms["a3"]["mac"], "198.18.0.12")
    tap = names.tap_name(lab.vms["a2"]["port_id"])
    assert a3_entry in fdb("oc-host1", vx) and master_of("oc-host1", tap) == br
    # The agent reacts to link events within milliseconds; freeze it so the
    # drift is certainly in place before it looks again.
    with control.paused("agent-host1"):
        ipcmd.ip("link", "set", tap, "nomaster", ns="oc-host1")
        subprocess.run(["bridge", "-n", "oc-host1", "fdb", "del", a3_entry[0], "dev", vx,
                        "dst", a3_entry[1]], check=True)
        assert a3_entry not in fdb("oc-host1", vx) and master_of("oc-host1", tap) == ""
    eventually(lambda: a3_entry in fdb("oc-host1", vx) and master_of("oc-host1", tap) == br,
               RESYNC + 2.0, "fdb entry and tap attachment restored")
    result = probe.ping(lab.vms["a2"]["netns"], lab.vms["a3"]["ips"][0], 2)
    assert result.returncode == 0, result.stdout


def test_host_joining_later_reaches_existing_vms(lab: Lab, tenant_a: dict[str, Any]) -> None:
    host = control.add_host("host4")
    assert host.underlay_ip == "198.18.0.14"
    a4 = lab.vm("a4", "host4", "net-a", "10.0.0.14")
    for other in ("a1", "a3"):
        out = probe.ping(a4["netns"], lab.vms[other]["ips"][0], 2)
        assert out.returncode == 0, out.stdout
        back = probe.ping(lab.vms[other]["netns"], a4["ips"][0], 2)
        assert back.returncode == 0, back.stdout
