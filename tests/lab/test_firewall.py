"""Security groups enforced end to end, through the API: a VM put in a new
group without ingress rules cannot be reached by another VM (on another
host), and a rule ``tcp/<port>`` from that VM's address opens exactly that
within a second of the API's answer."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from overcast.lab import control, probe

from .conftest import RESYNC, Lab

pytestmark = pytest.mark.root

PORT = 7022
OPEN_DEADLINE = 1.0  # the rule must work this long after the API answered

# accepts connections until killed; one line per connection
SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16); print("ready", flush=True)
while True:
    c, peer = s.accept(); c.sendall(b"hello"); c.close(); print("accepted", peer[0], flush=True)
"""

# connects until one connection answers or the deadline passes; prints the
# CLOCK_MONOTONIC time of the answer (comparable with the test's clock)
CLIENT = r"""
import socket, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        c = socket.create_connection((host, port), timeout=0.05)
        if c.recv(5) == b"hello":
            print("open", time.monotonic(), flush=True); sys.exit(0)
    except OSError:
        time.sleep(0.01)
print("closed", flush=True); sys.exit(1)
"""


def _make_tenant_fw(lab: Lab) -> dict[str, Any]:
    net, subnet = lab.api.create_network("net-fw", "10.5.0.0/24")
    lab.vm("f1", "host1", "net-fw", "10.5.0.11")
    lab.vm("f2", "host2", "net-fw", "10.5.0.12")
    return {"network": net, "subnet": subnet}


@pytest.fixture
def server(lab: Lab) -> Iterator[subprocess.Popen[str]]:
    lab.tenant("fw", _make_tenant_fw)
    proc = subprocess.Popen(["ip", "netns", "exec", lab.vms["f2"]["netns"], sys.executable, "-c",
                             SERVER, str(PORT)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and "ready" in proc.stdout.readline()
        yield proc
    finally:
        proc.kill()
        proc.wait()


def connect(lab: Lab, within: float) -> subprocess.CompletedProcess[str]:
    return probe.in_ns(lab.vms["f1"]["netns"], [sys.executable, "-c", CLIENT,
                                                 lab.vms["f2"]["ips"][0], str(PORT), str(within)])


def test_a_new_group_without_ingress_keeps_a_vm_out_and_a_rule_lets_it_in(
        lab: Lab, server: subprocess.Popen[str]) -> None:
    f1, f2 = lab.vms["f1"], lab.vms["f2"]
    assert connect(lab, 5.0).returncode == 0  # the default group: members reach each other
    group = lab.api.call("POST", "/v2.0/security-groups",
                         {"security_group": {"name": "fw-closed"}})["security_group"]
    try:
        lab.api.call("PUT", f"/v2.0/ports/{f2['port_id']}",
                     {"port": {"security_groups": [group["id"]]}})
        deadline = time.monotonic() + 5.0
        while connect(lab, 0.2).returncode == 0:  # until the agent on host2 enforces it
            assert time.monotonic() < deadline, "f2 still reachable 5 s after leaving the group"
        # absence: SYNs leave f1 and none arrives at f2 (a capture on each)
        syn = f"tcp port {PORT} and tcp[tcpflags] & tcp-syn != 0"
        with probe.Capture(f1["netns"], "eth0", syn, "out") as left, \
                probe.Capture(f2["netns"], "eth0", syn, "in") as arrived:
            assert connect(lab, 1.0).returncode != 0
        assert left.frames and arrived.frames == [], arrived.frames
        assert probe.ping(f1["netns"], f2["ips"][0], 2).returncode != 0
        rule = {"security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
                "protocol": "tcp", "port_range_min": PORT, "port_range_max": PORT,
                "remote_ip_prefix": f"{f1['ips'][0]}/32"}
        client = subprocess.Popen(["ip", "netns", "exec", f1["netns"], sys.executable, "-c", CLIENT,
                                   f2["ips"][0], str(PORT), str(OPEN_DEADLINE + 1.0)],
                                  stdout=subprocess.PIPE, text=True)
        lab.api.call("POST", "/v2.0/security-group-rules", {"security_group_rule": rule})
        answered = time.monotonic()
        out, _ = client.communicate(timeout=10)
        assert out.startswith("open"), f"tcp/{PORT} still closed {OPEN_DEADLINE + 1.0} s on"
        opened = float(out.split()[1])
        assert opened - answered < OPEN_DEADLINE, f"opened {opened - answered:.3f} s after the API"
        # exactly that: ping (no rule) stays out
        assert probe.ping(f1["netns"], f2["ips"][0], 2).returncode != 0
    finally:
        default = [g["id"] for g in lab.api.call("GET", "/v2.0/security-groups")["security_groups"]
                   if g["name"] == "default" and g["project_id"] == group["project_id"]]
        lab.api.call("PUT", f"/v2.0/ports/{f2['port_id']}", {"port": {"security_groups": default}})
        lab.api.call("DELETE", f"/v2.0/security-groups/{group['id']}")


def nft(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return probe.in_ns(ns, ["nft", *args])


def test_a_table_flushed_or_deleted_by_hand_fails_closed_or_is_repaired_at_once(
        lab: Lab, server: subprocess.Popen[str]) -> None:
    host2 = lab.topo.host("host2").netns
    assert connect(lab, 5.0).returncode == 0
    # rules flushed while the agent cannot repair them: f2 is out of reach
    with control.paused("agent-host2"):
        assert nft(host2, "flush", "table", "bridge", "overcast_fw").returncode == 0
        assert "policy drop" in nft(host2, "list", "chain", "bridge", "overcast_fw",
                                    "prerouting").stdout
        assert connect(lab, 1.0).returncode != 0
    assert connect(lab, RESYNC + 3.0).returncode == 0  # refilled at the next resync
    # the table deleted: the agent's loop sees it gone and makes it again at once
    assert nft(host2, "delete", "table", "bridge", "overcast_fw").returncode == 0
    gone = time.monotonic()
    while nft(host2, "list", "chain", "bridge", "overcast_fw", "prerouting").returncode != 0:
        assert time.monotonic() - gone < 1.0, "the deleted table was not made again within 1 s"
        time.sleep(0.01)
    assert connect(lab, 5.0).returncode == 0
