"""The tc primitives of NetlinkKernel against the real kernel, each test in
fresh namespaces ``oc-tcd-*``: they do to the kernel what FakeKernel's do
to its rows (the same sequences, the same ``tc_rows``), a class changes in
place, a redirect redirects, refusals say why, and rates read back."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from pyroute2 import IPRoute

from overcast.linux.fake import FakeKernel
from overcast.linux.netlink import NetlinkKernel
from overcast.linux.tc import burst_bytes
from overcast.plan.raw import (
    TC_H_INGRESS,
    TC_H_INGRESS_PARENT,
    TC_H_ROOT,
    KernelIO,
    KernelRefusal,
    KernelRows,
    TcClass,
    TcFilter,
    TcQdisc,
)
from overcast.plan.subsystem import Subsystem

from .conftest import add_workload, namespaces, sh

pytestmark = pytest.mark.root

RUN = f"oc-tcd-{os.getpid() % 100000}{uuid.uuid4().hex[:4]}"
TAP, IFB, GONE = "tcd-tap", "tcd-ifb", "tcd-gone"
HTB = 0x10000  # 1:
KBIT10, MBIT100, GBIT10, GBIT40 = 1_250, 12_500_000, 1_250_000_000, 5_000_000_000  # bytes/s
Row = TcQdisc | TcClass | TcFilter


@pytest.fixture
def host() -> Iterator[str]:
    """A namespace with ``tcd-tap``, a veth whose peer is ``eth0`` in a second
    namespace (10.77.0.1/24 here, 10.77.0.2/24 there, both up)."""
    with namespaces(RUN) as make:
        ns, peer = make("h"), make("p")
        add_workload(ns, peer, TAP, "fa:16:3e:77:00:02", "10.77.0.2/24")
        sh(ns, "ip", "addr", "add", "10.77.0.1/24", "dev", TAP)
        sh(ns, "ip", "link", "set", TAP, "up")
        yield ns


def fake_host() -> FakeKernel:
    fake = FakeKernel()
    fake.add_device(TAP, "veth")
    return fake


def add_ifb(io: KernelIO) -> None:
    io.link_add(IFB, "ifb", 1500, {})
    io.link_set(IFB, 1500, "overcast:test", True)


def shaped(io: KernelIO) -> None:
    """Root htb qdiscs on the tap and the ifb, classes at 10 kbit/s to
    40 Gbit/s, the tap's ingress redirected to the ifb."""
    add_ifb(io)
    for dev in (TAP, IFB):
        io.tc_qdisc("add", dev, "htb", HTB, TC_H_ROOT, default=0x10)
    io.tc_class("replace", TAP, 0x10010, HTB, KBIT10, 1600)
    io.tc_class("replace", TAP, 0x10030, HTB, GBIT40, 1_000_000)
    io.tc_class("replace", IFB, 0x10010, HTB, MBIT100, 125_000)
    io.tc_class("replace", IFB, 0x10020, 0x10010, GBIT10, 15_000)  # under 1:10
    io.tc_qdisc("add", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
    io.tc_redirect("add", TAP, 1, IFB)


def added_again(io: KernelIO) -> None:
    io.tc_qdisc("add", TAP, "htb", HTB, TC_H_ROOT, default=0x10)
    io.tc_qdisc("add", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)


def ingress_gone(io: KernelIO) -> None:
    io.tc_redirect("add", TAP, 7, IFB)
    io.tc_qdisc("del", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)


def target_gone(io: KernelIO) -> None:
    io.tc_qdisc("add", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
    io.tc_redirect("add", TAP, 2, IFB)
    io.link_del(IFB)


Step = Callable[[KernelIO], None]
SEQUENCE: list[tuple[str, Step]] = [
    ("shaped", shaped),
    ("adds again: no-ops", added_again),
    # the new parent is ignored: htb keeps a class where it is
    ("class changed", lambda io: io.tc_class("replace", TAP, 0x10010, 0x10030, MBIT100, 20_000)),
    ("redirect gone", lambda io: io.tc_redirect("del", TAP, 1, "")),
    ("class gone", lambda io: io.tc_class("del", IFB, 0x10020, 0x10010)),
    ("ingress gone, with its filter", ingress_gone),
    ("htb gone, with its classes", lambda io: io.tc_qdisc("del", TAP, "htb", HTB, TC_H_ROOT)),
    ("target gone: the redirect has none", target_gone),
]


def _key(row: Row) -> tuple[str, str, int]:
    return (type(row).__name__, row.dev, row.prio if isinstance(row, TcFilter) else row.handle)


def close_burst(got: int, want: int) -> bool:
    return abs(got - want) <= max(64, want * 0.005)


def assert_same(real: list[Row], fake: list[Row]) -> None:
    """The same rows in the same order, bursts read from the kernel within rounding."""
    assert [_key(r) for r in real] == [_key(r) for r in fake]
    for got, want in zip(real, fake, strict=True):
        if isinstance(got, TcClass) and isinstance(want, TcClass):
            assert close_burst(got.burst, want.burst) and close_burst(got.cburst, want.cburst), \
                (got, want)
            got = replace(got, burst=want.burst, cburst=want.cburst)
        assert got == want


def test_each_primitive_does_to_the_kernel_what_the_fake_does(host: str) -> None:
    fake = fake_host()
    devices = (TAP, IFB, "tcd-none")
    with NetlinkKernel(host) as kernel:
        for name, step in SEQUENCE:
            step(kernel)
            step(fake)
            try:
                assert_same(kernel.tc_rows(devices), fake.tc_rows(devices))
            except AssertionError as exc:
                raise AssertionError(f"after {name}: {exc}") from None
    assert [r for r in fake.tc_rows(devices) if isinstance(r, TcFilter)] == [
        TcFilter(TAP, TC_H_INGRESS_PARENT, 2, "u32", True, "")]


def test_observe_hands_the_same_rows_to_subsystems(host: str) -> None:
    """A subsystem that reads tc rows in its observe gets what tc_rows reads."""
    seen: list[list[Row]] = []

    def observe(rows: KernelRows) -> tuple[object, ...]:
        seen.append(rows.tc_rows((TAP, IFB)))
        seen.append(rows.tc_rows((TAP, IFB)))  # the same read: no second dump
        return ()

    probe = Subsystem("tc-probe", (), lambda ctx: None, observe, lambda io, change: None)
    with NetlinkKernel(host, subsystems=(probe,)) as kernel:
        shaped(kernel)
        kernel.observe()
        assert len(seen) == 2 and seen[0] is seen[1]
        assert seen[0] == kernel.tc_rows((TAP, IFB))
    assert any(isinstance(r, TcFilter) and r.match_all and r.redirect == IFB for r in seen[0])


def test_class_replace_changes_the_rate_in_place(host: str) -> None:
    with NetlinkKernel(host) as kernel:
        kernel.tc_qdisc("add", TAP, "htb", HTB, TC_H_ROOT, default=0x10)
        kernel.tc_class("replace", TAP, 0x10010, HTB, MBIT100, 20_000)
        sh(host, "ping", "-c", "5", "-i", "0.05", "-W", "1", "10.77.0.2")
        before = qdisc_stats(host, TAP, "htb")
        assert before["packets"] >= 5
        kernel.tc_class("replace", TAP, 0x10010, HTB, GBIT10, 150_000)
        after = qdisc_stats(host, TAP, "htb")
        (cls,) = [r for r in kernel.tc_rows([TAP]) if isinstance(r, TcClass)]
    assert (cls.rate, cls.ceil) == (GBIT10, GBIT10) and close_burst(cls.burst, 150_000)
    # a qdisc made again would count from zero
    assert after["handle"] == before["handle"] == "1:" and after["packets"] >= before["packets"]


def test_a_redirect_sends_what_the_tap_receives_out_of_the_ifb(host: str) -> None:
    with NetlinkKernel(host) as kernel:
        add_ifb(kernel)
        kernel.tc_qdisc("add", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
        before = tx_packets(host, IFB)
        kernel.tc_redirect("add", TAP, 1, IFB)
        peer = host[:-1] + "p"
        sh(peer, "ping", "-c", "5", "-i", "0.05", "-W", "1", "10.77.0.1", check=False)
        assert tx_packets(host, IFB) >= before + 5
        kernel.tc_redirect("del", TAP, 1, "")
        settled = tx_packets(host, IFB)
        sh(peer, "ping", "-c", "3", "-i", "0.05", "-W", "1", "10.77.0.1", check=False)
        assert tx_packets(host, IFB) == settled


def test_foreign_filters_and_qdiscs_are_read_as_they_are(host: str) -> None:
    """What someone else made: a u32 filter with a real key (not match-all,
    no redirect), a match-all one that mirrors (no redirect), a root qdisc
    of another kind; the kernel's default qdiscs (handle 0) are left out.
    (This kernel has u32 as its only classifier.)"""
    with NetlinkKernel(host) as kernel:
        assert kernel.tc_rows([TAP]) == []  # noqueue 0: only
        add_ifb(kernel)
        kernel.tc_qdisc("add", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
        tc = ["tc", "filter", "add", "dev", TAP, "parent", "ffff:"]
        sh(host, *tc, "protocol", "ip", "prio", "3", "u32", "match", "ip", "dport", "53",
           "0xffff")
        sh(host, *tc, "protocol", "all", "prio", "4", "u32", "match", "u32", "0", "0", "action",
           "mirred", "egress", "mirror", "dev", IFB)
        sh(host, "tc", "qdisc", "add", "dev", IFB, "root", "handle", "5:", "pfifo")
        assert kernel.tc_rows([TAP, IFB]) == [
            TcQdisc(TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS),
            TcFilter(TAP, TC_H_INGRESS_PARENT, 3, "u32"),
            TcFilter(TAP, TC_H_INGRESS_PARENT, 4, "u32", match_all=True),
            TcQdisc(IFB, "pfifo", 0x50000, TC_H_ROOT),
        ]
        with pytest.raises(KernelRefusal, match="exists"):
            kernel.tc_qdisc("add", IFB, "htb", HTB, TC_H_ROOT, default=0x10)


REFUSED: list[tuple[str, Step]] = [
    ("a class under a missing qdisc", lambda io: io.tc_class("replace", TAP, 0x20010, 0x20000,
                                                             MBIT100, 20_000)),
    ("a redirect without an ingress qdisc", lambda io: io.tc_redirect("add", IFB, 1, TAP)),
    ("a redirect to a missing device", lambda io: io.tc_redirect("add", TAP, 3, GONE)),
    ("a redirect of that priority again", lambda io: io.tc_redirect("add", TAP, 1, IFB)),
    ("a qdisc on a missing device", lambda io: io.tc_qdisc("add", GONE, "htb", HTB, TC_H_ROOT)),
    ("a class on a missing device", lambda io: io.tc_class("replace", GONE, 0x10010, HTB,
                                                           MBIT100, 20_000)),
    ("another htb at the root", lambda io: io.tc_qdisc("add", TAP, "htb", 0x20000, TC_H_ROOT)),
    ("another kind at the root", lambda io: io.tc_qdisc("add", IFB, "pfifo", 0x10000,
                                                        TC_H_ROOT)),
    ("a missing class deleted", lambda io: io.tc_class("del", IFB, 0x10077, HTB)),
    ("a missing filter deleted", lambda io: io.tc_redirect("del", TAP, 9, "")),
    ("a missing qdisc deleted", lambda io: io.tc_qdisc("del", IFB, "ingress", TC_H_INGRESS_PARENT,
                                                       TC_H_INGRESS)),
    ("a class with children deleted", lambda io: io.tc_class("del", IFB, 0x10010, HTB)),
]


@pytest.mark.parametrize("case", [name for name, _ in REFUSED])
def test_refusals_say_why_and_change_nothing(host: str, case: str) -> None:
    step = dict(REFUSED)[case]
    fake = fake_host()
    shaped(fake)
    devices = (TAP, IFB)
    with NetlinkKernel(host) as kernel:
        shaped(kernel)
        before = kernel.tc_rows(devices)
        for io in (kernel, fake):
            with pytest.raises(KernelRefusal) as refused:
                step(io)
            assert str(refused.value).strip(), case
        assert kernel.tc_rows(devices) == before
        assert_same(before, fake.tc_rows(devices))


@pytest.mark.parametrize(("rate", "burst"), [(KBIT10, 1_600), (KBIT10, 3_000), (MBIT100, 20_000),
                                             (GBIT10, 15_000), (GBIT10, 1_250_000),
                                             (GBIT40, 100_000)])
def test_rates_and_bursts_read_back(host: str, rate: int, burst: int) -> None:
    with NetlinkKernel(host) as kernel:
        kernel.tc_qdisc("add", TAP, "htb", HTB, TC_H_ROOT, default=0x10)
        kernel.tc_class("replace", TAP, 0x10010, HTB, rate, burst)
        (cls,) = [r for r in kernel.tc_rows([TAP]) if isinstance(r, TcClass)]
    assert (cls.handle, cls.parent, cls.rate, cls.ceil) == (0x10010, HTB, rate, rate)
    assert close_burst(cls.burst, burst) and close_burst(cls.cburst, burst), cls
    with IPRoute(netns=host) as ipr:  # pyroute2's decoding agrees
        (msg,) = ipr.get_classes(index=ipr.link_lookup(ifname=TAP)[0])
        options = msg.get("TCA_OPTIONS")
        parms = options.get("TCA_HTB_PARMS")
        assert (options.get("TCA_HTB_RATE64") or parms["rate"]) == rate
        assert burst_bytes(rate, parms["buffer"]) == cls.burst


def qdisc_stats(ns: str, dev: str, kind: str) -> dict[str, Any]:
    (found,) = [q for q in tc_json(ns, "-s", "qdisc", "show", "dev", dev) if q["kind"] == kind]
    return {"handle": found["handle"], "packets": found["packets"]}


def tx_packets(ns: str, dev: str) -> int:
    out = subprocess.run(["ip", "-n", ns, "-j", "-s", "link", "show", "dev", dev],
                         capture_output=True, text=True, check=True).stdout
    return int(json.loads(out)[0]["stats64"]["tx"]["packets"])


def tc_json(ns: str, *args: str) -> list[dict[str, Any]]:
    """iproute2's view, to check ours against (tests only)."""
    out = subprocess.run(["tc", "-n", ns, "-j", *args], capture_output=True, text=True,
                         check=True).stdout
    found: list[dict[str, Any]] = json.loads(out or "[]")
    return found
