"""Per-rule counters: the rule sets count per element, the counters survive
every diff and never make observed differ from desired, an element shared
by two rules counts for both, and the upgrade that gives the sets their
counters is one batch the kernel accepts (the fake refuses, as the kernel
does, to delete a set that a rule still uses)."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import ip_network

import pytest

from overcast.linux.fake import FakeKernel, FakeKernelError
from overcast.plan import plan_host
from overcast.plan.diff import diff
from overcast.plan.firewall import FirewallPlan
from overcast.plan.firewall_counters import element_counters, hits, rule_counters
from overcast.plan.firewall_space import Box, disjoint_boxes
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
    assert rows[("inet", "in4_port_any")]["stmt"] == [{"counter": None}]
    assert "stmt" not in rows[("bridge", "mac_ok")]
    assert "elem" not in rows[("inet", "in4_port")]  # udp/53 from anywhere: keyed without address
    (elem,) = rows[("inet", "in4_port_any")]["elem"]
    assert elem["elem"]["counter"] == {"packets": 0, "bytes": 0}
    assert elem["elem"]["comment"] == OTHER.id


def ids_of(fw: FirewallPlan, set_: str = "in4_port") -> dict[str, tuple[str, ...]]:
    """Element key -> the rule ids it counts for."""
    return {e.key: tuple(i.split("/")[1] for i in v) for e, v in fw.sources.items() if e.set == set_}


def span(key: str, field: int = 1) -> object:
    """The destination port field of a port element (address . port . protocol . tag;
    ``field`` 0 for the sets without address, port . protocol . tag)."""
    return json.loads(key)["concat"][field]


def test_rules_of_one_remote_are_split_where_they_begin_and_end_and_count_their_own() -> None:
    """tcp/22 inside tcp/20-30, both from 10.0.0.0/8: the wide range is
    three elements, the middle one counted for both rules, the others for
    the wide rule alone: each rule counts exactly the packets its own box
    admitted."""
    _, _, fw = setup(WIDE, INSIDE, OTHER, EGRESS)
    assert fw is not None
    by_span = {json.dumps(span(k)): v for k, v in ids_of(fw).items() if json.loads(k)["concat"][2] == 6}
    assert by_span == {"22": (WIDE.id, INSIDE.id), '{"range": [20, 21]}': (WIDE.id,),
                       '{"range": [23, 30]}': (WIDE.id,)}
    hit = {"22": (3, 180), '{"range": [20, 21]}': (1, 60), '{"range": [23, 30]}': (2, 120)}
    counted = {e: hit[json.dumps(span(e.key))] for e in fw.sources if e.set == "in4_port"
               and json.loads(e.key)["concat"][2] == 6}
    assert rule_counters(counted, fw.sources) == {WIDE.id: (6, 360), INSIDE.id: (3, 180)}


def test_rules_overlapping_in_part_on_one_remote_share_only_the_overlap() -> None:
    low = rule(47, WEB, protocol="tcp", port_range_min=20, port_range_max=25)
    high = rule(48, WEB, protocol="tcp", port_range_min=24, port_range_max=30)
    _, _, fw = setup(low, high)
    assert fw is not None
    assert {json.dumps(span(k, 0)): v for k, v in ids_of(fw, "in4_port_any").items()} == {
        '{"range": [20, 23]}': (low.id,), '{"range": [24, 25]}': (low.id, high.id),
        '{"range": [26, 30]}': (high.id,)}


def test_identical_rules_of_two_groups_share_their_element_and_both_count_it() -> None:
    twin = rule(49, WEB, protocol="udp", port_range_min=53, port_range_max=53)
    kernel, _, fw = setup(OTHER, twin)
    assert fw is not None
    assert list(ids_of(fw, "in4_port_any").values()) == [(OTHER.id, twin.id)]
    kernel.nftables.count("inet", FW_TABLE, "in4_port_any", OTHER.id, 3, 180)
    assert hits(observed_ruleset(kernel), fw.sources) == {OTHER.id: (3, 180), twin.id: (3, 180)}


def test_a_rule_inside_a_wider_remote_counts_no_packets_of_the_wider_element() -> None:
    """tcp/22 from 10.1.0.0/16 inside tcp/20-30 from 10.0.0.0/8 (say of
    another project, both groups on one port) has no element of its own:
    the wide element's hits are not its packets (most may come from
    elsewhere in 10/8), so they count for the wide rule alone."""
    kernel, _, fw = setup(WIDE, NARROW, APART)
    assert fw is not None
    assert sorted(ids_of(fw).values()) == [(WIDE.id,), (APART.id,)]
    kernel.nftables.count("inet", FW_TABLE, "in4_port", WIDE.id, 2, 120)
    assert hits(observed_ruleset(kernel), fw.sources) == {WIDE.id: (2, 120)}


def test_a_rule_overlapping_a_wider_one_in_part_counts_its_own_part() -> None:
    part = rule(46, WEB, protocol="tcp", port_range_min=25, port_range_max=40,
                remote_ip_prefix="10.1.0.0/16")
    kernel, _, fw = setup(WIDE, part)
    assert fw is not None
    ids = ids_of(fw)
    assert sorted(ids.values()) == [(WIDE.id,), (part.id,)]  # 10/8 x 20-30; 10.1/16 x 31-40
    (own,) = [k for k, v in ids.items() if v == (part.id,)]
    assert json.loads(own)["concat"][:3] == [{"prefix": {"addr": "10.1.0.0", "len": 16}},
                                             {"range": [31, 40]}, 6]
    kernel.nftables.count("inet", FW_TABLE, "in4_port", WIDE.id, 2, 120)
    kernel.nftables.count("inet", FW_TABLE, "in4_port", part.id, 1, 60)
    assert hits(observed_ruleset(kernel), fw.sources) == {WIDE.id: (2, 120), part.id: (1, 60)}


def test_an_any_rule_inside_a_wider_remote_counts_nothing_of_it() -> None:
    wide = rule(50, WEB, remote_ip_prefix="10.0.0.0/8")
    inner = rule(51, WEB, remote_ip_prefix="10.1.0.0/16")
    same = rule(52, WEB, remote_ip_prefix="10.0.0.0/8", protocol="0")
    _, _, fw = setup(wide, inner, same)
    assert fw is not None
    assert list(ids_of(fw, "in4_any").values()) == [(wide.id, same.id)]


def test_thousands_of_nested_ranges_on_one_remote_are_kept_whole() -> None:
    """Splitting nested ranges at every end would cost (elements x rules)
    pairs quadratic in the rules: past the budget a merged range is one box
    listing the rules that cover it whole (else every rule in it)."""
    net = ip_network("10.0.0.0/8")
    nested = [(net, i, 400 - i, f"r{i:03}") for i in range(100)]
    assert disjoint_boxes(nested) == [Box(net, 0, 400, ("r000",))]
    assert disjoint_boxes([*nested[1:], (net, 350, 500, "x")]) == [
        Box(net, 1, 500, tuple(sorted([*(f"r{i:03}" for i in range(1, 100)), "x"])))]
    few = [(net, i, 40 - i, f"r{i}") for i in range(3)]  # within the budget: split
    assert [b.ids for b in disjoint_boxes(few)] == [("r0",), ("r0", "r1"), ("r0", "r1", "r2"),
                                                    ("r0", "r1"), ("r0",)]


def test_counters_survive_a_change_and_never_make_observed_differ() -> None:
    kernel, state, fw = setup(OTHER, EGRESS)
    assert fw is not None
    kernel.nftables.count("inet", FW_TABLE, "in4_port_any", OTHER.id, 5, 400)
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
    # the chains that look the rule sets up
    assert flushed == {"egress", "ingress", "egress_logged", "ingress_logged"}
    converge(kernel, new_state)
    assert diff(new_state, kernel.observe()) == []
    assert set(element_counters(observed_ruleset(kernel)).values()) == {(0, 0)}


def test_the_fake_refuses_to_delete_a_set_a_rule_uses() -> None:
    kernel, _, _ = setup(OTHER, EGRESS)
    with pytest.raises(FakeKernelError, match="busy"):
        kernel.nft([{"delete": {"set": {"family": "inet", "table": FW_TABLE, "name": "in4_port"}}}])
