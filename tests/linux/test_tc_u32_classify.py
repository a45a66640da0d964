"""The u32 classify primitive (``tc_classify``) and htb classes with a ceil
against the real kernel, in fresh namespaces ``oc-tcu-*``: the driver does
what FakeKernel does (the same rows), a key at a negative offset is
accepted, and a VM's frames leaving by a VXLAN device over the uplink (or
bridged onto it, flat) land in the class of its MAC, counted by the kernel."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from overcast.agent.reconciler import reconcile
from overcast.linux.fake import FakeKernel
from overcast.linux.netlink import NetlinkKernel
from overcast.plan.diff import diff
from overcast.plan.raw import TC_H_ROOT, KernelIO, KernelRefusal, TcClass, TcFilter, TcQdisc
from overcast.plan.state import KernelState
from overcast.plan.subsystems.uplink_qos import (
    Guarantee,
    UplinkRoot,
    flat_keys,
    uplink_burst,
    vxlan_keys,
)

from .conftest import add_workload, namespaces, sh

pytestmark = pytest.mark.root

RUN = f"oc-tcu-{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
UPLINK, TAP = "tcu-ul", "tcu-tap"
MAC = "fa:16:3e:78:00:02"
ROOT = 0x4F430000
CAP, REST, MIN = 25_000_000, 5_000_000, 15_000_000  # bytes/s
BURST = 250_000
PRIO = 0x4F43
Row = TcQdisc | TcClass | TcFilter


@pytest.fixture
def host() -> Iterator[str]:
    """A namespace with the uplink ``tcu-ul`` (a veth to a second namespace,
    10.78.0.1/24 here, 10.78.0.2/24 there) and a VM's ``tcu-tap``."""
    with namespaces(RUN) as make:
        ns, peer, vm = make("h"), make("p"), make("v")
        subprocess.run(["ip", "-n", ns, "link", "add", UPLINK, "type", "veth", "peer", "name",
                        "eth0", "netns", peer], check=True)
        sh(ns, "ip", "addr", "add", "10.78.0.1/24", "dev", UPLINK)
        sh(ns, "ip", "link", "set", UPLINK, "up")
        sh(peer, "ip", "addr", "add", "10.78.0.2/24", "dev", "eth0")
        sh(peer, "ip", "link", "set", "eth0", "up")
        add_workload(ns, vm, TAP, MAC, "10.79.0.1/24")
        # no IPv6 from the VM: its router solicitations and MLD reports, sent
        # seconds after the link is up, would count in its class beside the pings
        sh(vm, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh(ns, "ip", "link", "set", TAP, "up")
        yield ns


def shares(io: KernelIO) -> None:
    io.tc_qdisc("add", UPLINK, "htb", ROOT, TC_H_ROOT, default=2)
    io.tc_class("replace", UPLINK, ROOT | 1, ROOT, CAP, BURST)
    io.tc_class("replace", UPLINK, ROOT | 2, ROOT | 1, REST, BURST, ceil=CAP)
    io.tc_class("replace", UPLINK, ROOT | 0x1001, ROOT | 1, MIN, BURST, ceil=CAP)
    io.tc_classify("add", UPLINK, ROOT, PRIO, 0x80000001, vxlan_keys(MAC, 77), ROOT | 0x1001)
    io.tc_class("replace", UPLINK, ROOT | 0x1002, ROOT | 1, MIN // 3, BURST, ceil=CAP)
    io.tc_classify("add", UPLINK, ROOT, PRIO, 0x80000002, flat_keys(MAC), ROOT | 0x1002)


def rate_changed(io: KernelIO) -> None:
    io.tc_class("replace", UPLINK, ROOT | 0x1001, ROOT | 1, MIN // 2, BURST, ceil=CAP)
    io.tc_class("replace", UPLINK, ROOT | 2, ROOT | 1, REST * 2, BURST, ceil=CAP)


def one_gone(io: KernelIO) -> None:
    io.tc_classify("del", UPLINK, ROOT, PRIO, 0x80000002)
    io.tc_class("del", UPLINK, ROOT | 0x1002, ROOT | 1)


SEQUENCE: list[tuple[str, Callable[[KernelIO], None]]] = [
    ("shares", shares),
    ("rates changed in place", rate_changed),
    ("one port's filter and class gone", one_gone),
    ("the root gone, with its classes and filters",
     lambda io: io.tc_qdisc("del", UPLINK, "htb", ROOT, TC_H_ROOT)),
]


def fake_host() -> FakeKernel:
    fake = FakeKernel()
    fake.add_device(UPLINK, "veth")
    return fake


def assert_same(real: list[Row], fake: list[Row]) -> None:
    """The same rows, bursts within the kernel's rounding."""
    assert len(real) == len(fake), (real, fake)
    for got, want in zip(real, fake, strict=True):
        if isinstance(got, TcClass) and isinstance(want, TcClass):
            for a, b in ((got.burst, want.burst), (got.cburst, want.cburst)):
                assert abs(a - b) <= max(64, b // 200), (got, want)
            got = replace(got, burst=want.burst, cburst=want.cburst)
        assert got == want


def test_classify_does_to_the_kernel_what_the_fake_does(host: str) -> None:
    fake = fake_host()
    with NetlinkKernel(host) as kernel:
        for name, step in SEQUENCE:
            step(kernel)
            step(fake)
            try:
                assert_same(kernel.tc_rows([UPLINK]), fake.tc_rows([UPLINK]))
            except AssertionError as exc:
                raise AssertionError(f"after {name}: {exc}") from None
            if name == "shares":
                filters = [r for r in kernel.tc_rows([UPLINK]) if isinstance(r, TcFilter)]
                assert [(f.handle, f.classid, f.keys) for f in filters] == [
                    (0x80000001, ROOT | 0x1001, vxlan_keys(MAC, 77)),
                    (0x80000002, ROOT | 0x1002, flat_keys(MAC))]
                assert any(off < 0 for _, _, off in filters[1].keys)
                classes = {r.handle: r for r in kernel.tc_rows([UPLINK]) if isinstance(r, TcClass)}
                assert (classes[ROOT | 2].rate, classes[ROOT | 2].ceil) == (REST, CAP)
    assert fake.tc_rows([UPLINK]) == []


REFUSED: list[tuple[str, Callable[[KernelIO], None]]] = [
    ("the same handle again",
     lambda io: io.tc_classify("add", UPLINK, ROOT, PRIO, 0x80000001, flat_keys(MAC), ROOT | 2)),
    ("a filter on a missing qdisc",
     lambda io: io.tc_classify("add", UPLINK, 0x10000, PRIO, 0x80000003, flat_keys(MAC), 2)),
    ("a missing filter deleted", lambda io: io.tc_classify("del", UPLINK, ROOT, PRIO, 0x80000009)),
    ("a class a filter points at deleted",
     lambda io: io.tc_class("del", UPLINK, ROOT | 0x1001, ROOT | 1)),
    ("a ceil below the rate",
     lambda io: io.tc_class("replace", UPLINK, ROOT | 3, ROOT | 1, CAP, BURST, ceil=REST)),
]


@pytest.mark.parametrize("case", [name for name, _ in REFUSED])
def test_refusals_say_why_and_change_nothing(host: str, case: str) -> None:
    step = dict(REFUSED)[case]
    fake = fake_host()
    shares(fake)
    with NetlinkKernel(host) as kernel:
        shares(kernel)
        before = kernel.tc_rows([UPLINK])
        for io in (kernel, fake):
            with pytest.raises(KernelRefusal) as refused:
                step(io)
            assert str(refused.value).strip(), case
        assert kernel.tc_rows([UPLINK]) == before
        assert_same(before, fake.tc_rows([UPLINK]))


def class_packets(ns: str) -> dict[str, int]:
    """Packets sent by each class, as iproute2 prints them (no JSON for htb classes)."""
    out = subprocess.run(["tc", "-n", ns, "-s", "class", "show", "dev", UPLINK],
                         capture_output=True, text=True, check=True).stdout
    found = re.findall(r"class htb (\S+) .*?\n\s*Sent \d+ bytes (\d+) pkt", out)
    return {handle: int(packets) for handle, packets in found}


def ping_from_vm(host: str, count: int = 20) -> None:
    vm = host[:-1] + "v"
    sh(vm, "ip", "neigh", "replace", "10.79.0.2", "lladdr", "02:00:00:00:00:99", "dev", "eth0",
       "nud", "permanent")
    sh(vm, "ping", "-c", str(count), "-i", "0.02", "-W", "0.2", "10.79.0.2", check=False)


def test_a_vms_vxlan_frames_land_in_its_class(host: str) -> None:
    """The VM's frames, encapsulated by a VXLAN device whose underlay is the
    uplink, count in the port's class; unmatched traffic in the default."""
    sh(host, "ip", "link", "add", "tcu-br", "type", "bridge")
    sh(host, "ip", "link", "add", "tcu-vx", "type", "vxlan", "id", "77", "local", "10.78.0.1",
       "dstport", "4789", "dev", UPLINK, "nolearning")
    for dev in (TAP, "tcu-vx"):
        sh(host, "ip", "link", "set", dev, "master", "tcu-br")
    for dev in ("tcu-vx", "tcu-br"):
        sh(host, "ip", "link", "set", dev, "up")
    sh(host, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "tcu-vx", "dst", "10.78.0.2")
    with NetlinkKernel(host) as kernel:
        shares(kernel)
    ping_from_vm(host)
    counted = class_packets(host)
    assert counted["4f43:1001"] >= 20 and counted["4f43:1002"] == 0
    sh(host, "ping", "-c", "5", "-i", "0.02", "-W", "0.2", "10.78.0.2", check=False)
    after = class_packets(host)
    assert after["4f43:2"] >= counted["4f43:2"] + 5 and after["4f43:1001"] == counted["4f43:1001"]


def test_a_vms_bridged_frames_land_in_its_class_by_a_negative_offset(host: str) -> None:
    """Flat: the VM's frames bridged onto the uplink as they are; the key at
    -8 (the source MAC, in the Ethernet header before the network header)."""
    sh(host, "ip", "link", "add", "tcu-br", "type", "bridge")
    for dev in (TAP, UPLINK):
        sh(host, "ip", "link", "set", dev, "master", "tcu-br")
    sh(host, "ip", "link", "set", "tcu-br", "up")
    with NetlinkKernel(host) as kernel:
        shares(kernel)
    ping_from_vm(host)
    counted = class_packets(host)
    assert counted["4f43:1002"] >= 20 and counted["4f43:1001"] == 0


def test_the_subsystem_on_the_kernel_applies_once_and_reads_back_as_made(host: str) -> None:
    """Apply twice is a no-op on the real kernel: a restarted agent finds nothing to do."""
    root = UplinkRoot(UPLINK, CAP, REST, uplink_burst(CAP))
    share = Guarantee(UPLINK, 0x1001, MIN, CAP, uplink_burst(CAP), vxlan_keys(MAC, 77), TAP)
    want = KernelState.of([root, share])
    with NetlinkKernel(host) as kernel:
        result = reconcile(kernel, want)
        assert result.errors == () and len(result.changes) == 2
        assert diff(want, kernel.observe()) == []
        smaller = KernelState.of([replace(root, rest=REST * 2),
                                  replace(share, rate=MIN // 2)])
        assert [c.op for c in reconcile(kernel, smaller).changes] == ["update", "update"]
        assert diff(smaller, kernel.observe()) == []
        assert reconcile(kernel, KernelState.of([])).errors == ()
        assert kernel.tc_rows([UPLINK]) == []
