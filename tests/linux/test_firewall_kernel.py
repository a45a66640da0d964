"""The firewall's ruleset in a real namespace: it loads, observe gives back
what was compiled (diff empty), a one-rule change and a revert converge in
one batch each, and the FakeNft element cases are the kernel's.

Namespaces are ``oc-fw-<run>-<role>`` (``<run>`` as in conftest's mark),
made and removed by this file only."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from overcast.linux.netlink import NetlinkKernel
from overcast.plan import plan_host
from overcast.plan.diff import diff
from overcast.plan.names import tap_name
from overcast.plan.raw import KernelRefusal
from overcast.plan.state import KernelState
from overcast.plan.subsystems.links import Bridge
from plan.scenarios import NET_B
from plan.test_firewall_golden import (  # tests/ is on the path (rootdir of both packages)
    DB,
    DEFAULT,
    WEB,
    WITH_FW,
    compiled,
    default_rules,
    group,
    rule,
    vm,
    world,
)
from plan.test_firewall_invariants import ELEMENT_BASE, ELEMENT_CASES

from .conftest import RUN, namespaces

pytestmark = pytest.mark.root
PREFIX = "oc-fw" + RUN.removeprefix("oc-t")


@pytest.fixture
def fw_ns() -> Iterator[Callable[[str], str]]:
    with namespaces(PREFIX) as make:
        yield make


def test_the_ruleset_loads_round_trips_and_changes_by_elements(fw_ns: Callable[[str], str]) -> None:
    ports = [vm(1, "h1", "10.0.0.1,2001:db8::1", (DEFAULT, WEB)), vm(2, "h2", "10.0.0.2", (DB,)),
             vm(3, "h1", "10.0.0.3", (), port_security_enabled=False)]
    rules = [*default_rules(DEFAULT),
             rule(10, WEB, protocol="tcp", port_range_min=20, port_range_max=30, remote_ip_prefix="10.0.0.0/8"),
             rule(11, WEB, protocol="tcp", port_range_min=80, port_range_max=80, remote_group_id=DB),
             rule(12, WEB, protocol="icmp", port_range_min=8),
             rule(13, WEB, ethertype="IPv6", protocol="udp", port_range_min=53, port_range_max=53)]
    view = world(ports, [group(DEFAULT), group(WEB), group(DB)], rules)
    changed = replace(view, security_group_rules=rules[:-1])
    with NetlinkKernel(fw_ns("load"), subsystems=WITH_FW) as kernel:
        for v in (view, changed, view):
            state = KernelState.of([compiled(v).ruleset])
            errors = kernel.apply(diff(state, kernel.observe(), WITH_FW))
            assert errors == [], [e.render() for e in errors]
            assert diff(state, kernel.observe(), WITH_FW) == []
        kernel.apply(diff(KernelState(), kernel.observe(), WITH_FW))
        assert kernel.nft_rows() == []


@pytest.mark.parametrize("batch,refused", ELEMENT_CASES)
def test_the_fake_element_cases_are_the_kernels(fw_ns: Callable[[str], str],
                                                batch: list[dict[str, Any]], refused: bool) -> None:
    case = ELEMENT_CASES.index((batch, refused))
    with NetlinkKernel(fw_ns(f"el{case}")) as kernel:
        kernel.nft(ELEMENT_BASE)
        outcome: Any = None
        try:
            kernel.nft(batch)
        except KernelRefusal as exc:
            outcome = exc
        assert (outcome is not None) == refused, (batch, outcome)


def test_a_sequence_of_host_plans_converges_on_the_kernel(fw_ns: Callable[[str], str]) -> None:
    """plan_host's whole state (links and ruleset, as the agent applies it)
    through changes that delete single-address elements of concatenated
    interval sets (a remote member leaves) and a network's zone with its
    verdict map element: each converges, replay is a no-op."""
    ns = fw_ns("seq")
    for n in (1, 2, 3):
        subprocess.run(["ip", "-n", ns, "link", "add", tap_name(vm(n, "h1", "").id), "type", "veth",
                        "peer", "name", f"peer{n}"], check=True)
    one = [vm(1, "h1", "10.0.0.1"), vm(4, "h2", "10.0.0.4")]
    two = [*one, vm(2, "h1", "10.1.0.2", network=NET_B), vm(5, "h2", "10.0.0.5")]
    groups, rules = [group(DEFAULT)], [*default_rules(DEFAULT),
                                       rule(9, DEFAULT, protocol="tcp", port_range_min=22,
                                            port_range_max=22, remote_ip_prefix="10.9.0.7/32")]
    views = [world(p, groups, r) for p, r in ((one, rules), (two, rules), (one, rules[:-1]),
                                               (two, rules), ([], rules))]
    with NetlinkKernel(ns) as kernel:
        for view in views:
            state = plan_host(view).state
            for _ in range(2):  # a fresh host: the chains first, then the taps
                errors = kernel.apply(diff(state, kernel.observe()))
                assert errors == [], [e.render() for e in errors]
            assert diff(state, kernel.observe()) == []


def test_flushed_rules_fail_closed_and_are_refilled(fw_ns: Callable[[str], str]) -> None:
    """``nft flush table bridge overcast_fw`` by hand: the base chains stay
    with policy drop (nothing bridged passes), observe sees the chains
    changed, and the next pass refills them in one update."""
    ns = fw_ns("flush")
    view = world([vm(1, "h1", "10.0.0.1")], [group(DEFAULT)], default_rules(DEFAULT))
    state = plan_host(view).state
    with NetlinkKernel(ns) as kernel:
        for _ in range(2):
            assert kernel.apply(diff(state, kernel.observe())) == []
        subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "table", "bridge", "overcast_fw"],
                       check=True)
        listed = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "chain", "bridge",
                                 "overcast_fw", "prerouting"], check=True, capture_output=True,
                                text=True).stdout
        assert "policy drop" in listed
        changes = diff(state, kernel.observe())
        assert [(c.op, type(c.obj).__name__) for c in changes] == [("update", "NftRuleset")]
        assert kernel.apply(changes) == []
        assert diff(state, kernel.observe()) == []


def test_br_netfilter_per_bridge_is_set_and_repaired(fw_ns: Callable[[str], str]) -> None:
    ns = fw_ns("brnf")
    view = world([vm(1, "h1", "10.0.0.1")], [group(DEFAULT)], default_rules(DEFAULT))
    state = plan_host(view).state
    (bridge,) = state[Bridge]
    with NetlinkKernel(ns) as kernel:
        for _ in range(2):
            assert kernel.apply(diff(state, kernel.observe())) == []

        def nf() -> tuple[int, int]:
            out = subprocess.run(["ip", "-n", ns, "-d", "-j", "link", "show", bridge.name],
                                 check=True, capture_output=True, text=True).stdout
            data = json.loads(out)[0]["linkinfo"]["info_data"]
            return data["nf_call_iptables"], data["nf_call_ip6tables"]

        assert nf() == (1, 1)
        subprocess.run(["ip", "-n", ns, "link", "set", bridge.name, "type", "bridge",
                        "nf_call_iptables", "0"], check=True)
        changes = diff(state, kernel.observe())
        assert [(c.op, type(c.obj).__name__) for c in changes] == [("update", "Bridge")]
        assert kernel.apply(changes) == [] and nf() == (1, 1)


def test_table_handles_change_when_a_table_is_deleted(fw_ns: Callable[[str], str]) -> None:
    ns = fw_ns("handles")
    state = plan_host(world([], [], [])).state
    with NetlinkKernel(ns) as kernel:
        assert kernel.table_handles() == frozenset()
        assert kernel.apply(diff(state, kernel.observe())) == []
        made = kernel.table_handles()
        assert {h.rsplit(":", 1)[0] for h in made} == {"nft:bridge:overcast_fw", "nft:inet:overcast_fw"}
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "bridge", "overcast_fw"],
                       check=True)
        assert kernel.table_handles() != made
