"""The qos and dscp subsystems over NetlinkKernel on the real kernel: a
port's limits and DSCP mark made in one pass, what the VM sends really goes
through its ifb and reaches its peer with the mark (captured), a rate
change replaces the class in place (the qdisc and its counters stay), a
restarted driver finds nothing to do, and the policy's removal leaves no
qdisc, filter, ifb or table behind."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace
from typing import Any

import pytest

from overcast.agent.reconciler import reconcile
from overcast.agent.status import qos_short
from overcast.linux.netlink import NetlinkKernel
from overcast.model.types import (
    BandwidthLimitRule,
    DscpMarkingRule,
    FixedIP,
    Network,
    Port,
    QosPolicy,
)
from overcast.plan import HostView, plan_host
from overcast.plan.diff import diff
from overcast.plan.names import QOS_TABLE, qos_ifb_name, tap_name
from overcast.plan.subsystems.qos import Shaper

from .conftest import MakeNs, add_workload, sh

pytestmark = pytest.mark.root

NET = "aaaaaaaa-1111-4111-8111-0000000000a1"
POL = "90000000-0000-4000-8000-0000000000a1"
SUBNET = "5a000000-0000-4000-8000-0000000000a1"


def ports() -> list[Port]:
    return [Port(id=f"{n:08x}-1111-4111-8111-00000000000{n}", network_id=NET,
                 mac_address=f"fa:16:3e:00:00:0{n}", binding_host_id="h1",
                 fixed_ips=(FixedIP(SUBNET, f"10.7.0.{n}"),),
                 qos_policy_id=POL if n == 1 else None) for n in (1, 2)]


def view(ps: list[Port], egress: int = 10_000) -> HostView:
    rules = (BandwidthLimitRule(id="r1", policy_id=POL, max_kbps=egress, direction="egress"),
             BandwidthLimitRule(id="r2", policy_id=POL, max_kbps=5_000, direction="ingress"),
             DscpMarkingRule(id="r3", policy_id=POL, dscp_mark=26))
    return HostView("h1", "198.18.0.1", {"h1": "198.18.0.1"},
                    [Network(id=NET, network_type="local", mtu=1500)], ps, firewall=False,
                    dhcp=False, qos_policies=(QosPolicy(id=POL),), qos_rules=rules)


def converge(kernel: NetlinkKernel, v: HostView) -> list[str]:
    state = plan_host(v).state
    changes: list[str] = []
    for _ in range(2):
        done = reconcile(kernel, state)
        assert done.errors == (), [e.render() for e in done.errors]
        changes += [c.render() for c in done.changes]
    assert diff(state, kernel.observe()) == []
    return changes


def tc_json(ns: str, *args: str) -> list[dict[str, Any]]:
    """What ``tc`` says (the test's own view, never the product's)."""
    out: list[dict[str, Any]] = json.loads(sh(ns, "tc", "-s", "-j", *args).stdout or "[]")
    return out


def tos_of_pings(src_ns: str, dst_ns: str, dst_ip: str) -> set[int]:
    """The IPv4 TOS (IPv6: traffic class) bytes of echo requests ``dst_ns`` captured."""
    v6 = ":" in dst_ip
    bpf = "icmp6 and ip6[40] == 128" if v6 else "icmp[icmptype] == icmp-echo"
    field = "class " if v6 else "tos "
    dump = subprocess.Popen(["ip", "netns", "exec", dst_ns, "tcpdump", "-l", "-n", "-v", "-c",
                             "3", "-i", "eth0", bpf],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert dump.stderr is not None
        assert "listening on" in dump.stderr.readline()
        deadline = time.monotonic() + 10
        while dump.poll() is None:
            assert time.monotonic() < deadline, "no echo request captured"
            sh(src_ns, "ping", "-n", "-c", "1", "-W", "1", dst_ip, check=False)
        out = dump.communicate(timeout=5)[0]
    finally:
        if dump.poll() is None:
            dump.kill()
            dump.wait()
    return {int(ln.split(field)[1].split(",")[0], 16) for ln in out.splitlines() if field in ln}


def test_limits_and_mark_in_the_kernel_change_in_place_and_go(make_ns: MakeNs) -> None:
    host, v1, v2 = make_ns("qh"), make_ns("qv1"), make_ns("qv2")
    ps = ports()
    for p, vm in zip(ps, (v1, v2), strict=True):
        add_workload(host, vm, tap_name(p.id), p.mac_address,
                     f"{p.fixed_ips[0].ip_address}/24", mtu=1500)
    tap, ifb = tap_name(ps[0].id), qos_ifb_name(ps[0].id)
    with NetlinkKernel(host) as kernel:
        made = converge(kernel, view(ps))
        assert f"create redirect {tap} ingress to {ifb}" in made
        assert [q["handle"] for q in tc_json(host, "qdisc", "show", "dev", ifb, "root")] == ["4f43:"]
        assert [q["handle"] for q in tc_json(host, "qdisc", "show", "dev", tap, "root")] == ["4f43:"]
        # what v1 sends goes through its ifb and arrives marked; v2's own is not
        assert tos_of_pings(v1, v2, "10.7.0.2") == {26 << 2}
        assert tos_of_pings(v2, v1, "10.7.0.1") == {0}
        for vm, n in ((v1, 1), (v2, 2)):  # and IPv6 alike
            sh(vm, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0")
            sh(vm, "ip", "-6", "addr", "add", f"fd07::{n}/64", "dev", "eth0", "nodad")
        assert tos_of_pings(v1, v2, "fd07::2") == {26 << 2}
        (sent,) = tc_json(host, "qdisc", "show", "dev", ifb, "root")
        assert sent["packets"] >= 3
        changed = converge(kernel, view(ps, egress=20_000))
        assert [c for c in changed if "shape" in c] == [f"update shape {ifb} rate 20000kbit "
                                                        "burst 2000000b"]
        (after,) = tc_json(host, "qdisc", "show", "dev", ifb, "root")
        assert after["packets"] >= sent["packets"]  # the same qdisc: its counters went on
        classes = sh(host, "tc", "class", "show", "dev", ifb).stdout  # (no JSON for htb classes)
        assert "class htb 4f43:1 root prio 0 rate 20Mbit ceil 20Mbit" in classes, classes
    with NetlinkKernel(host) as again:  # an agent restarted: nothing to do
        assert diff(plan_host(view(ps, egress=20_000)).state, again.observe()) == []
        observed = again.observe()
        assert {s.dev for s in observed[Shaper]} == {tap, ifb}
        gone = converge(again, view([replace(ps[0], qos_policy_id=None), ps[1]]))
        assert len([c for c in gone if c.startswith("delete")]) == 4, gone
    assert tc_json(host, "qdisc", "show", "dev", tap, "root")[0]["handle"] != "4f43:"
    assert tc_json(host, "qdisc", "show", "dev", tap, "ingress") == []
    assert subprocess.run(["ip", "-n", host, "link", "show", ifb], capture_output=True).returncode != 0
    assert QOS_TABLE not in sh(host, "nft", "list", "tables").stdout


@pytest.mark.parametrize(("kbps", "burst"), [(300_000, 10_000), (1_000_000, 1),
                                             (10_000_000, 1000), (1_000_001, 0)])
def test_a_burst_the_kernel_rounds_is_in_place_pass_after_pass(
        make_ns: MakeNs, kbps: int, burst: int) -> None:
    """The kernel keeps a burst as ticks: what it gives back differs by a few
    bytes, and is still the shaper as planned (nothing said short, nothing redone)."""
    host, vm = make_ns("qr"), make_ns("qrv")
    p = ports()[0]
    add_workload(host, vm, tap_name(p.id), p.mac_address, "10.7.0.1/24", mtu=1500)
    v = replace(view([p]), qos_rules=(BandwidthLimitRule(
        id="r1", policy_id=POL, max_kbps=kbps, max_burst_kbps=burst, direction="ingress"),))
    plan = plan_host(v)
    with NetlinkKernel(host) as kernel:
        assert reconcile(kernel, plan.state).errors == ()
        again = reconcile(kernel, plan.state)
        assert again.changes == () and again.errors == ()
        assert qos_short(plan, again.observed, again.changes, again.errors) == {}


def test_a_burst_too_long_for_htb_is_capped_not_refused(make_ns: MakeNs) -> None:
    host, vm = make_ns("qc"), make_ns("qcv")
    p = ports()[0]
    add_workload(host, vm, tap_name(p.id), p.mac_address, "10.7.0.1/24", mtu=1500)
    v = replace(view([p]), qos_rules=(BandwidthLimitRule(  # 300 s of the rate: above 2**32 ticks
        id="r1", policy_id=POL, max_kbps=1000, max_burst_kbps=300_000, direction="ingress"),))
    plan = plan_host(v)
    with NetlinkKernel(host) as kernel:
        done = reconcile(kernel, plan.state)
        assert done.errors == (), [e.render() for e in done.errors]
    limit = plan.qos[p.id].ingress
    assert limit is not None and limit.burst_kbits == 274_000  # what htb holds at the rate


def reaches(vm: str, ip: str) -> None:
    """Pings until one is answered (a device just up may drop the first
    frames: the kernel activates its queue a moment later), at most 5 s."""
    deadline = time.monotonic() + 5
    while sh(vm, "ping", "-n", "-c", "1", "-W", "1", ip, check=False).returncode:
        assert time.monotonic() < deadline, f"{vm}: no answer from {ip}"


def egress_only(ps: list[Port]) -> HostView:
    return replace(view(ps), qos_rules=(BandwidthLimitRule(
        id="r1", policy_id=POL, max_kbps=10_000, direction="egress"),))


def test_foreign_filters_on_the_tap_neither_hide_nor_block_the_redirect(make_ns: MakeNs) -> None:
    """A foreign u32 filter on the tap's ingress first (it holds the u32 table
    800:), then one added and removed with iproute2's ``ingress`` keyword (the
    kernel then reports every filter of that qdisc under ffff:fff2): the
    redirect is made, seen, and deleted with the policy; the VM's traffic
    flows all along and the foreign filter stays."""
    host, v1, v2 = make_ns("qf"), make_ns("qfv1"), make_ns("qfv2")
    ps = ports()
    for p, vm in zip(ps, (v1, v2), strict=True):
        add_workload(host, vm, tap_name(p.id), p.mac_address,
                     f"{p.fixed_ips[0].ip_address}/24", mtu=1500)
    tap = tap_name(ps[0].id)
    sh(host, "tc", "qdisc", "add", "dev", tap, "handle", "ffff:", "ingress")
    sh(host, "tc", "filter", "add", "dev", tap, "parent", "ffff:", "prio", "10", "protocol",
       "ip", "u32", "match", "ip", "dst", "192.0.2.1/32", "classid", "1:1")
    with NetlinkKernel(host) as kernel:
        converge(kernel, egress_only(ps))
        reaches(v1, "10.7.0.2")
        sh(host, "tc", "filter", "add", "dev", tap, "ingress", "prio", "11", "protocol", "ip",
           "u32", "match", "ip", "dst", "192.0.2.2/32", "classid", "1:1")
        sh(host, "tc", "filter", "del", "dev", tap, "ingress", "prio", "11")
        assert diff(plan_host(egress_only(ps)).state, kernel.observe()) == []  # still seen
        gone = converge(kernel, egress_only([replace(ps[0], qos_policy_id=None), ps[1]]))
        assert f"delete redirect {tap} ingress to {qos_ifb_name(ps[0].id)}" in gone
    reaches(v1, "10.7.0.2")  # not redirected to an ifb that is gone
    left = sh(host, "tc", "filter", "show", "dev", tap, "ingress").stdout
    assert "pref 10 " in left and "pref 20291 " not in left  # theirs stays, ours went


def test_a_dscp_base_chain_made_again_by_hand_elsewhere_is_replaced(make_ns: MakeNs) -> None:
    host, vm = make_ns("qd"), make_ns("qdv")
    p = ports()[0]
    add_workload(host, vm, tap_name(p.id), p.mac_address, "10.7.0.1/24", mtu=1500)
    with NetlinkKernel(host) as kernel:
        converge(kernel, view([p]))
        sh(host, "nft", "flush chain bridge overcast_qos pre; delete chain bridge overcast_qos "
           "pre; add chain bridge overcast_qos pre { type filter hook prerouting priority -200 ; }")
        converge(kernel, view([p]))
    chain = sh(host, "nft", "list", "chain", "bridge", QOS_TABLE, "pre").stdout
    assert "priority -250" in chain and "iifname vmap @dscp" in chain, chain
