"""Per-rule counters: the rule sets count per element, the counters survive
every diff and never make observed differ from desired, an element shared
by two rules counts for both, and the upgrade that gives the sets their
counters is one batch the kernel accepts (the fake refuses, as the kernel
does, to delete a set that a rule still uses)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from overcast.linux.fake import FakeKernel, FakeKernelError
from overcast.plan import plan_host
from overcast.plan.diff import diff
from overcast.plan.firewall import FirewallPlan
from overcast.plan.firewall_counters import element_counters, hits, rule_counters
from overcast.plan.names import FW_TABLE
from overcast.plan.state import KernelState
from overcast.plan.subsystems.firewall import NftRuleset, batch

from .test_firewall_golden import WEB, converge, group, kernel_for, rule, vm, world

WIDE = rule(40, WEB, protocol="tcp", port_range_min=20, port_range_max=30, remote_ip_prefix="10.0.0.0/8")
INSIDE = rule(41, WEB, protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="10.0.0.0/8")
NARROW = rule(44, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
              remote_ip_prefix="10.1.0.0/16")  # inside WIDE, with a narrower remote
APART = rule(45, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
             remote_ip_prefix="192.168.0.0/16")  # the same port, a disjoint remote
OTHER = rule(42, WEB, protocol="udp", port_range_min=53, port_range_max=53)
EGRESS = rule(43, WEB, "egress")


def setup(*rules: object) -> tuple[FakeKernel, KernelState, FirewallPlan | None]:
    view = world([vm(1, "h1", "10.0.0.1", (WEB,))], [group(WEB)], list(rules))  # type: ignore[arg-type]
    plan = plan_host(view)
    kernel = kernel_for(view)
    converge(kernel, plan.state)
    return kernel, plan.state, plan.firewall


def observed_ruleset(kernel: FakeKernel) -> NftRuleset:
    (ruleset,) = kernel.observe()[NftRuleset]
    return ruleset


def test_rule_sets_count_per_element_and_others_do_not() -> None:
    kernel, _, _ = setup(OTHER, EGRESS)
    rows = {(body["family"], body["name"]): body for item in kernel.nftables.rows()
            for kind, body in item.items() if kind == "set"}
    assert rows[("inet", "in4_port")]["stmt"] == [{"counter": None}]
    assert "stmt" not in rows[("bridge", "mac_ok")]
    (elem,) = rows[("inet", "in4_port")]["elem"]
    assert elem["elem"]["counter"] == {"packets": 0, "bytes": 0}
    assert elem["elem"]["comment"] == OTHER.id


def test_an_element_shared_by_two_rules_counts_for_both() -> None:
    kernel, _, fw = setup(WIDE, INSIDE, OTHER, EGRESS)
    assert fw is not None
    shared = [e for e, ids in fw.sources.items() if len(ids) == 2]
    assert [fw.sources[e] for e in shared] == [(f"security_group_rule/{WIDE.id}",
                                                f"security_group_rule/{INSIDE.id}")]
    kernel.nftables.count("inet", FW_TABLE, "in4_port", WIDE.id, 3, 180)
    counted = element_counters(observed_ruleset(kernel))
    assert counted[shared[0]] == (3, 180)
    assert rule_counters(counted, fw.sources) == {
        WIDE.id: (3, 180), INSIDE.id: (3, 180), OTHER.id: (0, 0), EGRESS.id: (0, 0)}
    assert hits(observed_ruleset(kernel), fw.sources) == {WIDE.id: (3, 180), INSIDE.id: (3, 180)}


def test_a_rule_inside_a_wider_remote_counts_the_hits_of_the_element_covering_it() -> None:
    kernel, _, fw = setup(WIDE, NARROW, APART)
    assert fw is not None
    rule_elements = {e: ids for e, ids in fw.sources.items() if e.set == "in4_port"}
    # NARROW has no element of its own: the wide one admits its packets and lists it
    assert sorted(rule_elements.values()) == [(f"security_group_rule/{WIDE.id}",
                                               f"security_group_rule/{NARROW.id}"),
                                              (f"security_group_rule/{APART.id}",)]
    kernel.nftables.count("inet", FW_TABLE, "in4_port", WIDE.id, 2, 120)
    assert hits(observed_ruleset(kernel), fw.sources) == {WIDE.id: (2, 120), NARROW.id: (2, 120)}


def test_a_rule_overlapping_a_wider_one_in_part_is_listed_where_they_meet() -> None:
    part = rule(46, WEB, protocol="tcp", port_range_min=25, port_range_max=40,
                remote_ip_prefix="10.1.0.0/16")
    _, _, fw = setup(WIDE, part)
    assert fw is not None
    ids = {e.key: tuple(i.split("/")[1] for i in v) for e, v in fw.sources.items() if e.set == "in4_port"}
    assert sorted(ids.values()) == [(WIDE.id, part.id), (part.id,)]  # 10/8 x 20-30; 10.1/16 x 31-40
    (own,) = [k for k, v in ids.items() if v == (part.id,)]
    assert json.loads(own)["concat"][1:] == [{"prefix": {"addr": "10.1.0.0", "len": 16}}, 6,
                                             {"range": [31, 40]}]


def test_counters_survive_a_change_and_never_make_observed_differ() -> None:
    kernel, state, fw = setup(OTHER, EGRESS)
    assert fw is not None
    kernel.nftables.count("inet", FW_TABLE, "in4_port", OTHER.id, 5, 400)
    assert diff(state, kernel.observe()) == []  # counter values are not part of an element
    view = world([vm(1, "h1", "10.0.0.1", (WEB,))], [group(WEB)], [OTHER, EGRESS, WIDE])
    plan = plan_host(view)
    changes = converge(kernel, plan.state)
    assert changes and diff(plan.state, kernel.observe()) == []
    assert plan.firewall is not None
    assert hits(observed_ruleset(kernel), plan.firewall.sources) == {OTHER.id: (5, 400)}


def test_the_upgrade_to_counted_sets_is_one_batch_that_refills_the_chains_using_them() -> None:
    view = world([vm(1, "h1", "10.0.0.1", (WEB,))], [group(WEB)], [OTHER, EGRESS])
    new_state = plan_host(view).state
    (new,) = new_state[NftRuleset]
    old = replace(new, sets=frozenset(replace(s, counter=False) for s in new.sets))
    kernel = kernel_for(view)
    converge(kernel, KernelState.of(new_state.records - {new}, [old]))
    assert not element_counters(observed_ruleset(kernel))
    commands = batch(observed_ruleset(kernel), new)
    flushed = {c["flush"]["chain"]["name"] for c in commands if "chain" in c.get("flush", {})}
    assert flushed == {"egress", "ingress"}  # the chains that look the rule sets up
    converge(kernel, new_state)
    assert diff(new_state, kernel.observe()) == []
    assert set(element_counters(observed_ruleset(kernel)).values()) == {(0, 0)}


def test_the_fake_refuses_to_delete_a_set_a_rule_uses() -> None:
    kernel, _, _ = setup(OTHER, EGRESS)
    with pytest.raises(FakeKernelError, match="busy"):
        kernel.nft([{"delete": {"set": {"family": "inet", "table": FW_TABLE, "name": "in4_port"}}}])
