"""DHCP in the lab, end to end: the VM's own host answers real clients
(busybox udhcpc, ISC dhclient) from the API's view of the port, DHCP never
crosses the overlay, a subnet with DHCP disabled gets no answer, a VM that
asks for other MACs gets nothing, and a port whose address changed is NAKed
at its renewal and given the new one."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from overcast.lab import control, probe, vm
from overcast.plan.names import tap_name, vxlan_name

from .conftest import Lab

pytestmark = pytest.mark.root

WAIT = 10.0


def _make_tenant(lab: Lab) -> dict[str, Any]:
    net = lab.api.call("POST", "/v2.0/networks", {"network": {
        "name": "net-dh", "dns_domain": "dh.example."}})["network"]
    subnet = lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.44.0.0/24", "ip_version": 4,
        "dns_nameservers": ["10.44.0.53"],
        "host_routes": [{"destination": "172.16.0.0/12", "nexthop": "10.44.0.254"}]}})["subnet"]
    off = lab.api.call("POST", "/v2.0/networks", {"network": {"name": "net-nodh"}})["network"]
    lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": off["id"], "cidr": "10.45.0.0/24", "ip_version": 4, "enable_dhcp": False}})
    lab.vm("dh1", "host1", "net-dh", "10.44.0.11")
    lab.vm("dh2", "host2", "net-dh", "10.44.0.12")
    return {"network": net, "subnet": subnet, "off": off}


@pytest.fixture
def tenant(lab: Lab) -> dict[str, Any]:
    return lab.tenant("dhcp", _make_tenant)


def addresses(ns: str) -> list[str]:
    out = probe.in_ns(ns, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    return [word.split("/")[0] for line in out.splitlines() for word in line.split()
            if "/" in word and word[0].isdigit()]


def test_a_vm_boots_by_dhcp_with_its_subnets_configuration(lab: Lab, tenant: dict[str, Any]) -> None:
    dh1 = lab.vms["dh1"]
    assert dh1["dhcp"] and addresses(dh1["netns"]) == ["10.44.0.11"]
    routes = probe.in_ns(dh1["netns"], ["ip", "-4", "route"]).stdout
    assert "default via 10.44.0.1 dev eth0" in routes
    assert "172.16.0.0/12 via 10.44.0.254 dev eth0" in routes
    lease = vm.lease_dir(dh1)
    assert (lease / "hostname").read_text().strip() == "host-10-44-0-11"
    assert (lease / "domain").read_text().strip() == "dh.example"
    assert (lease / "dns").read_text().split() == ["10.44.0.53"]
    link = probe.in_ns(dh1["netns"], ["ip", "-o", "link", "show", "dev", "eth0"]).stdout
    assert " mtu 1450 " in link
    assert probe.ping(dh1["netns"], "10.44.0.12", 2).returncode == 0  # to the VM on host2


def test_isc_dhclient_gets_the_same_lease(lab: Lab, tenant: dict[str, Any], tmp_path: Path) -> None:
    dh2 = lab.vms["dh2"]
    record = tmp_path / "record"
    script = tmp_path / "script.sh"
    script.write_text(f'#!/bin/sh\nenv | grep ^new_ >> {record}\necho "reason=$reason" >> {record}\n')
    script.chmod(0o755)
    out = probe.in_ns(dh2["netns"], [
        "dhclient", "-1", "-v", "-sf", str(script), "-lf", str(tmp_path / "leases"),
        "-pf", str(tmp_path / "pid"), "eth0"], timeout=WAIT + 10)
    text = record.read_text() if record.exists() else ""
    try:
        assert out.returncode == 0, out.stderr
        got = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        assert got["reason"] == "BOUND"
        assert (got["new_ip_address"], got["new_routers"]) == ("10.44.0.12", "10.44.0.1")
        assert (got["new_domain_name"], got["new_host_name"]) == ("dh.example", "host-10-44-0-12")
        assert got["new_interface_mtu"] == "1450"
    finally:
        stop_daemon(tmp_path / "pid")


def stop_daemon(pidfile: Path, timeout: float = 5.0) -> None:
    """Stop the dhclient that went to the background, by the PID it wrote: the
    child writes its file after the parent returned, so wait for the file
    (a kill right away once missed it and left a dhclient running)."""
    deadline = time.monotonic() + timeout
    while not (pidfile.exists() and pidfile.read_text().strip()):
        if time.monotonic() > deadline:
            return  # it never went to the background
        time.sleep(0.05)
    pid = int(pidfile.read_text().strip())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline + timeout:
        time.sleep(0.05)


def test_dhcp_never_crosses_the_overlay(lab: Lab, tenant: dict[str, Any]) -> None:
    """While dh1 on host1 asks again, host2's VXLAN device sees none of it,
    but does see dh1's broadcast ARP (the capture is on the right device)."""
    dh1 = lab.vms["dh1"]
    host2 = lab.topo.host("host2").netns
    with probe.Capture(host2, vxlan_name(tenant["network"]["id"]), "udp port 67 or udp port 68 or arp") as cap:
        again = probe.in_ns(dh1["netns"], ["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0",
                                          "-s", "/bin/true", "-t", "3", "-T", "1"], timeout=WAIT)
        probe.in_ns(dh1["netns"], ["arping", "-c", "1", "-w", "1", "-I", "eth0", "10.44.0.200"])
    assert again.returncode == 0, again.stderr  # answered on host1
    assert not [f for f in cap.frames if "BOOTP" in f or ".67 " in f or ".68 " in f], cap.frames
    assert [f for f in cap.frames if "ARP" in f and "10.44.0.200" in f], cap.frames


def test_a_subnet_with_dhcp_disabled_gets_no_answer(lab: Lab, tenant: dict[str, Any]) -> None:
    lab.vms["nodh"] = quiet = vm.create("nodh", "host1", "net-nodh", "10.45.0.5")
    assert not quiet["dhcp"]  # the lab wrote its address itself
    with probe.Capture(quiet["netns"], "eth0", "udp port 68") as cap:
        asked = probe.in_ns(quiet["netns"], ["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0",
                                            "-s", "/bin/true", "-t", "2", "-T", "1"], timeout=WAIT)
    assert asked.returncode != 0 and "no lease" in asked.stderr
    assert cap.frames == []  # no OFFER ever reached the VM


def test_a_vm_asking_for_other_macs_gets_nothing(lab: Lab, tenant: dict[str, Any]) -> None:
    """DHCP starvation: the VM's frames come from MACs that are not its
    port's; its host answers none of them (nor does anyone else)."""
    lab.vms["dh3"] = dh3 = vm.create("dh3", "host1", "net-dh", "10.44.0.13")
    ns = dh3["netns"]
    probe.in_ns(ns, ["ip", "link", "set", "eth0", "address", "fa:16:3e:ba:d0:01"])
    try:
        with probe.Capture(ns, "eth0", "udp port 68") as cap:
            asked = probe.in_ns(ns, ["busybox", "udhcpc", "-f", "-q", "-n", "-i", "eth0",
                                     "-s", "/bin/true", "-t", "2", "-T", "1"], timeout=WAIT)
        assert asked.returncode != 0 and "no lease" in asked.stderr
        assert cap.frames == []
    finally:
        probe.in_ns(ns, ["ip", "link", "set", "eth0", "address", dh3["mac"]])


def test_a_changed_address_is_naked_at_renewal_and_the_new_one_offered(
        lab: Lab, tenant: dict[str, Any], tmp_path: Path) -> None:
    lab.vms["dh4"] = dh4 = vm.create("dh4", "host1", "net-dh", "10.44.0.14")
    record = tmp_path / "events"
    script = tmp_path / "udhcpc.sh"
    script.write_text(f'#!/bin/sh\necho "$1 $ip" >> {record}\n'
                      '[ "$1" = bound ] || [ "$1" = renew ] && ip addr replace "$ip/$mask" dev eth0\n'
                      '[ "$1" = deconfig ] && ip addr flush dev eth0\nexit 0\n')
    script.chmod(0o755)
    client = subprocess.Popen(["ip", "netns", "exec", dh4["netns"], "busybox", "udhcpc", "-f",
                               "-i", "eth0", "-s", str(script), "-t", "5", "-T", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(record, "bound 10.44.0.14")
        lab.api.call("PUT", f"/v2.0/ports/{dh4['port_id']}", {"port": {
            "fixed_ips": [{"subnet_id": tenant["subnet"]["id"], "ip_address": "10.44.0.24"}]}})
        # the agent has the new lease once the port's firewall has the new address
        wait_for_element(lab, "10.44.0.24", tap_name(dh4["port_id"]))
        client.send_signal(signal.SIGUSR1)  # renew now: the old address is refused
        events = wait_for(record, "bound 10.44.0.24")
        after = events[events.index("bound 10.44.0.14") + 1:]
        assert [e for e in after if e.startswith("nak")], events  # refused, then offered anew
        assert addresses(dh4["netns"]) == ["10.44.0.24"]
    finally:
        client.terminate()
        client.wait(timeout=5)


def wait_for(path: Path, line: str, timeout: float = WAIT) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if line in lines:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{line!r} not in {path} within {timeout:g}s: "
                         f"{path.read_text() if path.exists() else 'nothing'}")


def wait_for_element(lab: Lab, address: str, tap: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    host1 = lab.topo.host("host1").netns
    while time.monotonic() < deadline:
        out = probe.in_ns(host1, ["nft", "list", "set", "bridge", "overcast_fw", "ip4_host"]).stdout
        if any(tap in ln and address in ln for ln in out.splitlines()):
            return
        time.sleep(0.05)
    raise AssertionError(f"{address} on {tap} not in host1's firewall within {timeout:g}s")


def test_an_agent_restarted_keeps_every_lease(lab: Lab, tenant: dict[str, Any],
                                              tmp_path: Path) -> None:
    """A client bound before host1's agent is SIGKILLed renews after its
    restart and keeps its address (a lease is the port's address in the API,
    nothing the agent held); a VM made afterwards gets another address."""
    lab.vms["dh5"] = dh5 = vm.create("dh5", "host1", "net-dh", "10.44.0.15")
    record = tmp_path / "events"
    script = tmp_path / "udhcpc.sh"
    script.write_text(f'#!/bin/sh\necho "$1 $ip" >> {record}\nexit 0\n')
    script.chmod(0o755)
    client = subprocess.Popen(["ip", "netns", "exec", dh5["netns"], "busybox", "udhcpc", "-f",
                               "-i", "eth0", "-s", str(script), "-t", "5", "-T", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(record, "bound 10.44.0.15")
        log = control.log_path("agent-host1")
        offset = log.stat().st_size
        control.stop_process("agent-host1", sig=signal.SIGKILL)
        control.start_agent(lab.topo, lab.topo.host("host1"))
        control.wait_agents(lab.topo, ["host1"])
        deadline = time.monotonic() + 3 * WAIT  # a new process: its imports too, on a loaded machine
        while "first pass:" not in log.read_text()[offset:]:
            assert time.monotonic() < deadline, "the restarted agent made no pass"
            time.sleep(0.05)
        client.send_signal(signal.SIGUSR1)
        wait_for(record, "renew 10.44.0.15")
    finally:
        client.terminate()
        client.wait(timeout=5)
    lab.vms["dh6"] = dh6 = vm.create("dh6", "host1", "net-dh")
    assert dh6["dhcp"] and addresses(dh6["netns"]) == dh6["ips"][:1]
    assert dh6["ips"][0] not in {v["ips"][0] for n, v in lab.vms.items() if n != "dh6"}
