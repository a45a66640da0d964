"""The firewall's ruleset in a real namespace: it loads, observe gives back
what was compiled (diff empty), a one-rule change and a revert converge in
one batch each, and the FakeNft element cases are the kernel's.

Namespaces are ``oc-fw-<run>-<role>`` (``<run>`` as in conftest's mark),
made and removed by this file only."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from pyroute2 import netns

from overcast.linux.netlink import NetlinkKernel
from overcast.plan.diff import diff
from overcast.plan.raw import KernelRefusal
from overcast.plan.state import KernelState
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

from .conftest import RUN

pytestmark = pytest.mark.root
PREFIX = "oc-fw" + RUN.removeprefix("oc-t")


@pytest.fixture
def fw_ns() -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(role: str) -> str:
        made.append(f"{PREFIX}-{role}")
        netns.create(made[-1])
        return made[-1]

    try:
        yield make
    finally:
        for name in made:
            try:
                netns.remove(name)
            except OSError:
                pass


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
