"""The raw rtnetlink observe against the pyroute2 one, and the quiet data
plane (no IPv6 / IGMP chatter from our devices), in fresh namespaces."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from typing import IO

import pytest

from overcast.linux.devices import disable_ipv6, list_tap_devices
from overcast.linux.netlink import NetlinkKernel
from overcast.plan.diff import diff
from overcast.plan.names import bridge_name, tap_name, vxlan_name
from overcast.plan.subsystems.fdb import FdbEntry
from overcast.plan.subsystems.links import Attachment, Bridge, Vxlan

from .conftest import MakeNs, add_workload, ip_json, sh
from .test_netlink_kernel import NET_A, NET_L, P1, P2, P4, add_taps, converge, plan

pytestmark = pytest.mark.root

FOREIGN = (
    ["link", "add", "br-foreign", "type", "bridge"],
    ["link", "add", "vx-foreign", "type", "vxlan", "id", "77", "local", "198.18.9.9", "dstport", "4789"],
    ["link", "set", "vx-foreign", "master", "br-foreign"],
    ["link", "add", "ocbsomeoneelse", "type", "bridge"],
    ["link", "set", "ocbsomeoneelse", "alias", "not-overcast"],
    ["link", "add", "ocxunmarked", "type", "vxlan", "id", "78", "dstport", "4790", "learning"],
    ["link", "add", "tapforeign", "type", "veth", "peer", "name", "vmforeign"],
    ["link", "set", "tapforeign", "master", "br-foreign"],
    ["link", "set", "tapforeign", "up"],
    ["link", "add", "tapdown", "type", "veth", "peer", "name", "vmdown"],
    ["link", "add", "other0", "type", "veth", "peer", "name", "other1"],
    ["link", "set", "other0", "alias", "overcast:looks-ours-but-not-our-prefix"],
)


def test_fast_observe_equals_the_pyroute2_observe(make_ns: MakeNs) -> None:
    ns = make_ns("fo")
    add_taps(ns, P1, P4)
    for cmd in FOREIGN:
        subprocess.run(["ip", "-n", ns, *cmd], check=True)
    for fdb in (
        ["append", "00:00:00:00:00:00", "dev", "vx-foreign", "dst", "198.18.9.1"],
        ["add", "fa:16:3e:99:00:01", "dev", "ocxunmarked", "dst", "198.18.9.2"],
    ):
        subprocess.run(["bridge", "-n", ns, "fdb", *fdb], check=True)
    with NetlinkKernel(ns) as kernel:
        converge(kernel, plan(ports=(P1, P2, P4)).state)
        subprocess.run(["ip", "-n", ns, "link", "set", tap_name(P4.id), "down"], check=True)
        subprocess.run(["bridge", "-n", ns, "fdb", "append", "fa:16:3e:99:00:02", "dev", vxlan_name(NET_A),
                        "dst", "198.18.0.9"], check=True)
        fast, reference = kernel.observe(), kernel.observe_with_pyroute2()
    assert fast == reference
    for kind in (Vxlan, Bridge, FdbEntry, Attachment):
        assert fast[kind], kind
    assert {"tapforeign", "tapdown", tap_name(P1.id)} <= fast.devices_present
    assert "tapdown" not in fast.devices_up and tap_name(P4.id) not in fast.devices_up
    assert ("fa:16:3e:99:00:02", "198.18.0.9") in {(e.mac, e.dst) for e in fast[FdbEntry]}


def test_our_devices_have_ipv6_off_and_no_snooping(make_ns: MakeNs) -> None:
    ns = make_ns("q1")
    add_taps(ns, P1, P4)
    with NetlinkKernel(ns) as kernel:
        converge(kernel, plan(ports=(P1, P2, P4)).state)
    for dev in (bridge_name(NET_A), vxlan_name(NET_A), bridge_name(NET_L), tap_name(P1.id), tap_name(P4.id)):
        assert sh(ns, "sysctl", "-n", f"net.ipv6.conf.{dev}.disable_ipv6").stdout.strip() == "1", dev
    (br,) = ip_json(ns, "-d", "link", "show", "dev", bridge_name(NET_A))
    assert br["linkinfo"]["info_data"]["mcast_snooping"] == 0
    assert br["linkinfo"]["info_data"]["mcast_querier"] == 0


def test_a_new_network_is_silent_towards_the_vm(make_ns: MakeNs) -> None:
    """Capture on the VM's NIC while the agent builds bridge, VXLAN and tap:
    no IPv6 (MLD, RS, DAD) and no IGMP from the host side.

    The capture is known to be live before anything is built (tcpdump's
    "listening on", printed once the capture is active) and still live at
    the end: the VM then sends a marker datagram, which must be the first
    and only thing captured."""
    host, vm = make_ns("q2h"), make_ns("q2v")
    sh(host, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0")
    add_workload(host, vm, tap_name(P1.id), "fa:16:3e:00:00:01", "10.0.0.1/24")
    sh(vm, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1")  # the VM's own chatter is not the subject
    sh(vm, "ip", "neigh", "replace", "10.0.0.2", "lladdr", "fa:16:3e:00:00:02", "dev", "eth0",
       "nud", "permanent")  # the marker leaves without an ARP exchange
    capture = subprocess.Popen(
        ["ip", "netns", "exec", vm, "tcpdump", "-nn", "-l", "--immediate-mode", "-i", "eth0",
         f"ip6 or igmp or udp port {MARKER_PORT}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = Lines(capture.stderr)
        assert err.until(lambda line: line.startswith("listening on"), 10), err.seen
        with NetlinkKernel(host) as kernel:
            converge(kernel, plan(ports=(P1, P2)).state)
        time.sleep(CHATTER_WINDOW)  # DAD, MLD reports and RS all go out within it (IPv6 on)
        sh(vm, sys.executable, "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
           f".sendto(b'marker', ('10.0.0.2', {MARKER_PORT}))")
        out = Lines(capture.stdout)
        assert out.until(lambda line: MARKER in line, 10), (out.seen, err.seen)
    finally:
        capture.terminate()
        capture.wait(timeout=10)
    assert len(out.seen) == 1 and MARKER in out.seen[0], f"captured before the marker: {out.seen}"


MARKER_PORT = 9999
MARKER = f"> 10.0.0.2.{MARKER_PORT}: UDP"  # as tcpdump -nn prints the marker datagram
CHATTER_WINDOW = 2.5  # seconds; the kernel's first DAD/MLD/RS follow link-up within ~1 s


class Lines:
    """Lines of a child's pipe as they come, with a deadline (no blocking read)."""

    def __init__(self, pipe: IO[bytes] | None) -> None:
        assert pipe is not None
        self.fd = pipe.fileno()
        self.buffer = b""
        self.seen: list[str] = []

    def until(self, wanted: Callable[[str], bool], timeout: float) -> bool:
        """Read lines until one is ``wanted`` (True) or the time is up or the pipe ends (False)."""
        deadline = time.monotonic() + timeout
        while not any(wanted(line) for line in self.seen):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return False
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return False
            self.buffer += chunk
            *complete, self.buffer = self.buffer.split(b"\n")
            self.seen += [line.decode(errors="replace") for line in complete]
        return True


def test_list_tap_devices_and_disable_ipv6_tolerate_what_is_not_there() -> None:
    assert list_tap_devices("/nonexistent/overcast") == frozenset()
    disable_ipv6("no-such-device-overcast")
    assert all(name.startswith("tap") for name in list_tap_devices())


def test_snooping_switched_on_by_hand_is_switched_off_again(make_ns: MakeNs) -> None:
    """Multicast snooping is observed state: a bridge that has it on (set by
    hand, or one adopted from elsewhere) gets one in-place update, nothing else."""
    ns = make_ns("q3")
    add_taps(ns, P1)
    desired = plan(ports=(P1, P2)).state
    with NetlinkKernel(ns) as kernel:
        converge(kernel, desired)
        subprocess.run(["ip", "-n", ns, "link", "set", bridge_name(NET_A), "type", "bridge",
                        "mcast_snooping", "1"], check=True)
        seen = kernel.observe()
        assert seen == kernel.observe_with_pyroute2()
        changes = diff(desired, seen)
        assert [(c.op, c.obj.name) for c in changes] == [("update", bridge_name(NET_A))]
        assert changes[0].old.mcast_snooping and not changes[0].obj.mcast_snooping
        converge(kernel, desired)
    (br,) = ip_json(ns, "-d", "link", "show", "dev", bridge_name(NET_A))
    assert br["linkinfo"]["info_data"]["mcast_snooping"] == 0


def test_ipv6_switched_on_by_hand_is_switched_off_again(make_ns: MakeNs) -> None:
    """IPv6 off on our bridge, VXLAN device and the taps we attach is observed
    state (read from the link dump): turned on by hand, it is turned off again."""
    ns = make_ns("q4")
    add_taps(ns, P1)
    desired = plan(ports=(P1, P2)).state
    devices = (bridge_name(NET_A), vxlan_name(NET_A), tap_name(P1.id))
    with NetlinkKernel(ns) as kernel:
        converge(kernel, desired)
        for dev in devices:
            sh(ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=0")
        seen = kernel.observe()
        assert seen == kernel.observe_with_pyroute2()
        changes = diff(desired, seen)
        touched = sorted((c.op, getattr(c.obj, "name", getattr(c.obj, "ifname", ""))) for c in changes)
        assert touched == sorted(("update", dev) for dev in devices)  # the VXLAN: its attachment
        converge(kernel, desired)
    for dev in devices:
        assert sh(ns, "sysctl", "-n", f"net.ipv6.conf.{dev}.disable_ipv6").stdout.strip() == "1", dev
