"""The firewall's group sets are kept from one plan to the next
(``overcast.plan.firewall_groupsets``): a plan made with them must be the
plan made from nothing, byte for byte, after any sequence of changes; the
rule elements must be what ``sg_elements`` makes of each group set's rules
taken whole (the kept trees are a partition of that); input order still
does not matter; the cache stays bounded."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from ipaddress import ip_network

from hypothesis import given
from hypothesis import strategies as st

from overcast.model.types import AddressPair, FixedIP, SecurityGroupRule
from overcast.plan import HostView, plan_host
from overcast.plan.firewall import FirewallPlan, forget
from overcast.plan.firewall_expr import canonical
from overcast.plan.firewall_groupsets import CACHE, HOSTS
from overcast.plan.firewall_rules import RuleShape, rule_shape, sg_elements
from overcast.plan.firewall_space import Network
from overcast.plan.host import HostPlan
from overcast.plan.subsystems.firewall_records import RULE_SET_PREFIXES, NftElement

from .test_firewall_golden import DB, DEFAULT, LOOSE, WEB, group, rule, vm, world
from .test_firewall_invariants import FAST, views

GROUPS = [group(DEFAULT), group(WEB), group(DB), group(LOOSE, stateful=False)]


def outputs(plan: HostPlan) -> tuple[object, ...]:
    """Everything a plan says: its text, its ruleset, the firewall's
    elements' sources, tags, zones, what it enforces, the problems."""
    fw = plan.firewall
    assert fw is not None
    return (plan.render(), plan.state, fw.ruleset, dict(fw.sources), dict(fw.tags), dict(fw.zones),
            dict(fw.enforced), fw.problems, plan.problems)


def from_scratch(view: HostView) -> HostPlan:
    forget()
    return plan_host(view)


def whole(view: HostView, fw: FirewallPlan) -> dict[NftElement, tuple[str, ...]]:
    """The rule elements as ``sg_elements`` makes them from each group set's
    rules all at once (what the compiler did before it kept group sets)."""
    members: dict[str, list[Network]] = {}
    for p in view.ports:
        nets = [ip_network(f.ip_address) for f in p.fixed_ips]
        nets += [ip_network(a.ip_address, strict=False) for a in p.allowed_address_pairs]
        for g in set(p.security_groups):
            members.setdefault(g, []).extend(nets)
    found: dict[tuple[str, str, str], list[str]] = {}
    for groupset, tag in fw.tags.items():
        shaped: list[tuple[RuleShape, str]] = []
        for r in view.security_group_rules:
            shape = rule_shape(r, members, []) if r.security_group_id in groupset else None
            if shape is not None:
                shaped.append((shape, f"security_group_rule/{r.id}"))
        for family, set_, key, source in sg_elements(tag, shaped):
            found.setdefault((family, set_, canonical(key)), []).append(source)
    out = {}
    for (family, set_, key), sources in found.items():
        ids = tuple(sorted(set(sources)))
        out[NftElement(family, set_, key, "", ids[0].split("/", 1)[1])] = ids
    return out


def rule_elements(fw: FirewallPlan) -> dict[NftElement, tuple[str, ...]]:
    return {e: ids for e, ids in fw.sources.items() if e.set.startswith(RULE_SET_PREFIXES)}


def assert_as_from_scratch(view: HostView) -> HostPlan:
    """Plan ``view`` with whatever the cache holds; it must equal the plan
    from an empty cache, whose rule elements are those of the whole group sets."""
    kept = plan_host(view)
    fresh = from_scratch(view)
    assert outputs(kept) == outputs(fresh)
    assert fresh.firewall is not None
    assert rule_elements(fresh.firewall) == whole(view, fresh.firewall)
    return kept


def base() -> HostView:
    ports = [vm(1, "h1", "10.0.0.1,fd00::1", [DEFAULT, WEB]), vm(2, "h1", "10.0.0.2", [DB]),
             vm(3, "h2", "10.0.0.3", [DEFAULT]), vm(4, "h1", "10.0.0.4", [LOOSE])]
    rules = [rule(1, DEFAULT, remote_group_id=DEFAULT),
             rule(2, DEFAULT, ethertype="IPv6", remote_group_id=DEFAULT),
             rule(3, DEFAULT, "egress"),
             rule(4, WEB, protocol="tcp", port_range_min=80, port_range_max=80),
             rule(5, WEB, protocol="tcp", port_range_min=20, port_range_max=30,
                  remote_ip_prefix="10.1.0.0/16"),
             rule(6, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
                  remote_ip_prefix="10.1.2.0/24"),
             rule(7, DB, protocol="tcp", port_range_min=5432, port_range_max=5432,
                  remote_group_id=WEB),
             rule(8, DB, protocol="icmp", port_range_min=8),
             rule(9, LOOSE, protocol="udp", remote_ip_prefix="192.0.2.0/24"),
             rule(10, WEB, protocol="bogus")]
    return world(ports, GROUPS, rules)


def with_rules(view: HostView, rules: Sequence[SecurityGroupRule]) -> HostView:
    return replace(view, security_group_rules=list(rules))


def readdressed(view: HostView, n: int, ip: str) -> HostView:
    ports = [replace(p, fixed_ips=(FixedIP("subnet-0", ip),)) if i == n else p
             for i, p in enumerate(view.ports)]
    return replace(view, ports=ports)


def regrouped(view: HostView, n: int, groups: Sequence[str]) -> HostView:
    ports = [replace(p, security_groups=tuple(groups)) if i == n else p
             for i, p in enumerate(view.ports)]
    return replace(view, ports=ports)


def steps() -> list[tuple[str, HostView]]:
    """A sequence of changes, each from the one before."""
    v = base()
    wide = rule(20, WEB, protocol="tcp", port_range_min=1, port_range_max=65535,
                remote_ip_prefix="10.0.0.0/8")
    out = [("base", v)]
    out.append(("add a rule", v := with_rules(v, [*v.security_group_rules, rule(
        11, WEB, protocol="tcp", port_range_min=443, port_range_max=443,
        remote_ip_prefix="198.51.100.0/24")])))
    out.append(("remove it", v := with_rules(v, list(v.security_group_rules)[:-1])))
    out.append(("a member's address changes", v := readdressed(v, 0, "10.0.0.9")))
    out.append(("a remote member gets an address pair", v := replace(v, ports=[
        *v.ports[:2], replace(v.ports[2], allowed_address_pairs=(AddressPair("10.9.0.0/16", ""),)),
        *v.ports[3:]])))
    out.append(("a prefix around others comes", v := with_rules(v, [*v.security_group_rules, wide])))
    out.append(("a rule inside it goes", v := with_rules(
        v, [r for r in v.security_group_rules if r.id != rule(6, WEB).id])))
    out.append(("the prefix around goes", v := with_rules(
        v, [r for r in v.security_group_rules if r.id != wide.id])))
    out.append(("a port moves to another group set", v := regrouped(v, 1, [DB, WEB])))
    out.append(("stateful and stateless together", v := regrouped(v, 3, [LOOSE, DB])))
    out.append(("a rule changes in place", v := with_rules(v, [
        replace(r, port_range_min=8080, port_range_max=8081) if r.id == rule(4, WEB).id else r
        for r in v.security_group_rules])))
    out.append(("a group is deleted", v := replace(
        v, security_groups=[g for g in v.security_groups if g.id != WEB],
        security_group_rules=[r for r in v.security_group_rules if r.security_group_id != WEB])))
    out.append(("rebuilt equal from values", v := replace(
        v, ports=[replace(p) for p in v.ports],
        security_group_rules=[replace(r) for r in v.security_group_rules])))
    out.append(("back to the start", base()))
    return out


def test_every_step_plans_as_from_scratch() -> None:
    from_scratch(base())
    seen = set()
    for name, view in steps():
        plan = assert_as_from_scratch(view)
        seen.add(plan.render())
        # and from this step's cache, straight to each other step
        for _, other in steps()[::4]:
            plan_host(view)
            assert outputs(plan_host(other)) == outputs(from_scratch(other)), name
    assert len(seen) > 8  # the steps do change the plan


def test_the_reverse_sequence_plans_as_from_scratch() -> None:
    for _, view in steps()[::-1]:
        assert_as_from_scratch(view)


@FAST
@given(st.lists(views(), min_size=2, max_size=5))
def test_random_sequences_plan_as_from_scratch(sequence: list[HostView]) -> None:
    from_scratch(sequence[0])
    for view in sequence:
        assert_as_from_scratch(view)


@FAST
@given(views(), st.randoms())
def test_input_order_is_irrelevant_with_the_cache_warm(view: HostView, rng: random.Random) -> None:
    expected = outputs(from_scratch(view))
    shuffled = replace(view, networks=rng.sample(view.networks, len(view.networks)),
                       ports=rng.sample(view.ports, len(view.ports)),
                       security_groups=rng.sample(view.security_groups, len(view.security_groups)),
                       security_group_rules=rng.sample(view.security_group_rules,
                                                       len(view.security_group_rules)))
    assert outputs(plan_host(shuffled)) == expected
    assert outputs(plan_host(view)) == expected


def many_rules(n: int) -> list[SecurityGroupRule]:
    return [rule(100 + i, WEB, protocol="tcp", port_range_min=20000 + i, port_range_max=20000 + i,
                 remote_ip_prefix=f"10.{128 + i // 256}.{i % 256}.0/24") for i in range(n)]


def test_a_one_rule_change_keeps_every_other_element_object() -> None:
    """The rule elements not concerned are the very objects of the last plan
    (so that comparing the two rulesets finds them at once)."""
    narrow = [r for r in base().security_group_rules if r.id != rule(4, WEB).id]  # not tcp from /0
    v = with_rules(base(), [*narrow, *many_rules(2000)])
    before = from_scratch(v).firewall
    extra = rule(5000, WEB, protocol="tcp", port_range_min=7000, port_range_max=7000,
                 remote_ip_prefix="192.0.2.0/24")
    after = plan_host(with_rules(v, [*v.security_group_rules, extra])).firewall
    assert before is not None and after is not None
    added = after.ruleset.elements - before.ruleset.elements
    assert [e.comment for e in added] == [extra.id]
    assert before.ruleset.elements <= after.ruleset.elements
    mine = {id(e) for e in rule_elements(before)}
    assert sum(id(e) in mine for e in rule_elements(after)) == len(mine) > 2000
    assert outputs(plan_host(v)) == outputs(from_scratch(v))


def test_the_cache_keeps_only_the_last_plan_of_recent_hosts() -> None:
    CACHE.clear()
    ports = [vm(1, "h1", "10.0.0.1", [WEB]), vm(2, "h1", "10.0.0.2", [DB])]
    for i in range(1000):  # 1,000 different group sets, one plan each
        g = f"{i:08x}-0000-4000-8000-000000000000"
        plan_host(world([replace(p, security_groups=(g,)) for p in ports], [group(g)],
                        [rule(i, g, protocol="tcp", port_range_min=22, port_range_max=22)]))
    assert CACHE.size() == 1
    plan_host(world(ports, GROUPS, base().security_group_rules))
    assert CACHE.size() == 2
    for i in range(HOSTS + 3):  # two group sets on each host
        here = [replace(p, binding_host_id=f"host{i}") for p in ports]
        plan_host(replace(world(here, GROUPS, []), host=f"host{i}"))
    assert CACHE.size() == HOSTS * 2


def test_the_same_rule_objects_are_the_same_rules_a_list_changed_in_place_is_not() -> None:
    """The very rule objects of the last plan, in its order, are its rules
    (they are frozen); a list changed in place since is compared anew."""
    v = base()
    rules = list(v.security_group_rules)
    as_tuple = replace(v, security_group_rules=tuple(rules))
    assert outputs(plan_host(as_tuple)) == outputs(plan_host(as_tuple)) == outputs(from_scratch(v))
    extra = rule(30, WEB, protocol="udp", port_range_min=53, port_range_max=53)
    plan_host(v)
    v.security_group_rules.append(extra)  # type: ignore[attr-defined]  # the same list, one more
    assert outputs(plan_host(v)) == outputs(from_scratch(v))
    plan_host(as_tuple)
    assert outputs(plan_host(with_rules(v, (*rules, extra)))) == outputs(from_scratch(v))
    member = readdressed(v, 2, "10.0.0.33").ports[2]  # a remote member of DEFAULT
    v.ports[2] = member  # type: ignore[index]  # the same list of ports, one changed
    assert outputs(plan_host(v)) == outputs(from_scratch(v))


NESTED = ("0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/16", "10.0.0.0/24", "10.0.0.128/25", "10.0.0.5/32",
          "10.0.1.0/24", "10.1.0.0/16", "192.0.2.0/24", "::/0", "fd00::/8", "fd00::/64",
          "fd00::1/128")


@st.composite
def nested_rule(draw: st.DrawFn, n: int) -> SecurityGroupRule:
    remote = draw(st.sampled_from([*NESTED, DEFAULT]))
    kw: dict[str, object] = {"remote_group_id": remote} if remote == DEFAULT else {
        "remote_ip_prefix": remote}
    proto = draw(st.sampled_from([None, "tcp", "udp", "icmp"]))
    kw["protocol"] = proto
    if proto in ("tcp", "udp") and draw(st.booleans()):
        lo = draw(st.integers(1, 40))
        kw.update(port_range_min=lo, port_range_max=draw(st.integers(lo, 50)))
    if proto == "icmp" and draw(st.booleans()):
        kw.update(port_range_min=draw(st.integers(0, 3)))
    version = "IPv6" if ":" in remote else "IPv4" if remote != DEFAULT else draw(
        st.sampled_from(["IPv4", "IPv6"]))
    return rule(n, draw(st.sampled_from([WEB, DEFAULT])), draw(st.sampled_from(["ingress", "egress"])),
                version, **kw)


@FAST
@given(st.integers(2, 12).flatmap(lambda k: st.tuples(
    st.tuples(*(nested_rule(n) for n in range(1, k + 1))),
    st.lists(st.integers(0, k - 1), min_size=1, max_size=16))))
def test_one_rule_at_a_time_among_nested_prefixes_plans_as_from_scratch(
        case: tuple[tuple[SecurityGroupRule, ...], list[int]]) -> None:
    """Rules come and go one at a time among prefixes inside each other (trees
    merge and split), with a remote group whose member moves."""
    pool, toggles = case
    ports = [vm(1, "h1", "10.0.0.1,fd00::1", [DEFAULT, WEB]), vm(2, "h2", "10.0.0.5", [DEFAULT])]
    on = [True] * len(pool)
    view = world(ports, GROUPS, pool)
    from_scratch(view)
    for i in toggles:
        on[i] = not on[i]
        view = with_rules(view, [r for r, keep in zip(pool, on, strict=True) if keep])
        if i % 3 == 0:  # and the remote group's member moves
            view = readdressed(view, 1, "10.0.1.7" if view.ports[1].fixed_ips[0].ip_address ==
                               "10.0.0.5" else "10.0.0.5")
        assert_as_from_scratch(view)
