"""Which conntrack entries a firewall change closes: ``firewall_admits``
(the zones to look at, the entries the new ruleset no longer admits) and
the sweep after a pass on the fake kernel (``FakeConntrack``): exactly the
entries no rule admits any more go, those still admitted by another rule or
by the rest of a range stay, other zones are never read, and a change that
removes nothing reads nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from overcast.agent.reconciler import reconcile
from overcast.model.types import SecurityGroupRule
from overcast.plan import HostView
from overcast.plan.firewall_admits import Flow, Ruleset, admits, condemned, swept_zones
from overcast.plan.host import plan_host
from overcast.plan.subsystems.links import Attachment

from .scenarios import NET_A
from .test_firewall_golden import (
    DEFAULT,
    LOOSE,
    WEB,
    compiled,
    converge,
    default_rules,
    desired,
    group,
    kernel_for,
    rule,
    vm,
    world,
)

SERVER, CLIENT, OTHER = "10.0.0.1", "10.0.0.2", "10.0.0.5"
WEB_RULES = [
    rule(30, WEB, protocol="tcp", port_range_min=22, port_range_max=22, remote_ip_prefix="10.0.0.0/24"),
    rule(31, WEB, protocol="tcp", port_range_min=20, port_range_max=30, remote_ip_prefix="10.0.0.0/30"),
    rule(32, WEB, protocol="icmp"),
    rule(33, WEB, "egress", protocol="udp", port_range_min=53, port_range_max=53,
         remote_ip_prefix="192.0.2.0/24"),
    rule(34, WEB, protocol="tcp", port_range_min=8080, port_range_max=8080),
]
REMOVED = {WEB_RULES[0].id, WEB_RULES[2].id, WEB_RULES[3].id}  # tcp/22 from the /24, icmp, udp/53 out


def scene(rules: Sequence[SecurityGroupRule] = WEB_RULES) -> HostView:
    ports = [vm(1, "h1", SERVER, (WEB,)), vm(2, "h1", CLIENT), vm(5, "h1", OTHER),
             vm(6, "h1", "10.0.0.6", (), port_security_enabled=False),
             vm(7, "h1", "10.0.0.7", (LOOSE,))]
    return world(ports, [group(WEB), group(DEFAULT), group(LOOSE, stateful=False)],
                 [*default_rules(DEFAULT), *rules,
                  rule(40, LOOSE, protocol="tcp", port_range_min=1, port_range_max=65535)])


def flows(zone: int) -> dict[str, Flow]:
    tcp = {name: Flow(zone, 4, src, dst, 6, sport, dport) for name, (src, dst, sport, dport) in {
        "ssh from the client (both tcp/22 rules)": (CLIENT, SERVER, 40000, 22),
        "ssh from .5 (the /24 rule only)": (OTHER, SERVER, 40001, 22),
        "tcp/25 from the client (the rest of 20-30)": (CLIENT, SERVER, 40002, 25),
        "tcp/8080 from .5 (a rule that stays)": (OTHER, SERVER, 40003, 8080),
        "the client to .5 (default group)": (CLIENT, OTHER, 40004, 9000),
        "the port without port security out": ("10.0.0.6", "192.0.2.1", 40005, 443),
        "the stateless port out (no rule: its rules meet every packet)": ("10.0.0.7", "192.0.2.1", 40006, 443),
    }.items()}
    return {**tcp,
            "ping from .5 (icmp rule)": Flow(zone, 4, OTHER, SERVER, 1, 8 << 8, 77),
            "the server's dns query (egress udp/53)": Flow(zone, 4, SERVER, "192.0.2.9", 17, 5000, 53),
            "the server's dhcp request (constant)": Flow(zone, 4, "0.0.0.0", "255.255.255.255", 17, 68, 67),
            "the server to .5 on tcp/22 (no egress rule)": Flow(zone, 4, SERVER, OTHER, 6, 40007, 22)}


GONE = {"ssh from .5 (the /24 rule only)", "ping from .5 (icmp rule)",
        "the server's dns query (egress udp/53)"}
NEVER = {"the server to .5 on tcp/22 (no egress rule)"}  # not admitted before either


def masters(view: HostView) -> dict[str, str]:
    return {a.ifname: a.master for a in plan_host(view).state[Attachment]}


def test_admits_reads_the_compiled_rules_both_ways() -> None:
    plan = compiled(scene())
    rules, tag = Ruleset.of(plan.ruleset), plan.tags[(WEB,)]
    z = plan.zones[NET_A]
    assert admits(rules, tag, "ingress", Flow(z, 4, OTHER, SERVER, 6, 1, 22))
    assert not admits(rules, tag, "ingress", Flow(z, 4, "10.0.1.5", SERVER, 6, 1, 22))
    assert not admits(rules, tag, "ingress", Flow(z, 4, OTHER, SERVER, 6, 1, 31))
    assert admits(rules, tag, "ingress", Flow(z, 4, "198.51.100.1", SERVER, 1, 3 << 8 | 1, 0))
    assert admits(rules, tag, "egress", Flow(z, 4, SERVER, "192.0.2.200", 17, 1, 53))
    assert not admits(rules, tag, "egress", Flow(z, 4, SERVER, "192.0.3.1", 17, 1, 53))
    assert admits(rules, tag, "egress", Flow(z, 4, "0.0.0.0", "255.255.255.255", 17, 68, 67))
    assert admits(rules, tag, "egress", Flow(z, 6, "fe80::1", "ff02::2", 58, 133 << 8, 0))
    assert not admits(rules, tag, "egress", Flow(z, 6, "fe80::1", "ff02::2", 58, 128 << 8, 0))


def test_the_entries_no_rule_admits_any_more_are_condemned_and_only_those() -> None:
    before, after = scene(), scene([r for r in WEB_RULES if r.id not in REMOVED])
    z = compiled(before).zones[NET_A]
    entries = flows(z)
    assert {n for n, f in entries.items() if f in condemned(entries.values(), compiled(before).ruleset,
                                                             masters(before))} == NEVER
    doomed = condemned(entries.values(), compiled(after).ruleset, masters(after))
    assert {n for n, f in entries.items() if f in doomed} == GONE | NEVER
    # another zone (not a network of this host) is nobody's: nothing there is condemned
    assert condemned([replace(f, zone=z + 1) for f in entries.values()], compiled(after).ruleset,
                     masters(after)) == []


def test_only_a_change_that_removes_what_admits_traffic_names_zones() -> None:
    before, after = scene(), scene([r for r in WEB_RULES if r.id not in REMOVED])
    z = compiled(before).zones[NET_A]
    old, new = compiled(before).ruleset, compiled(after).ruleset
    assert swept_zones(old, new, masters(after)) == {z}
    added = scene([*WEB_RULES, rule(35, WEB, protocol="udp")])
    assert swept_zones(old, compiled(added).ruleset, masters(added)) == frozenset()  # nothing closes
    # a rule added inside another one's range splits that element: looked at, nothing condemned
    assert swept_zones(new, old, masters(before)) == {z}
    assert swept_zones(None, new, masters(after)) == frozenset()
    # a port moved to another group (its tag element changes)
    moved = replace(before, ports=[replace(p, security_groups=(WEB,)) if p.fixed_ips[0].ip_address == CLIENT
                                   else p for p in before.ports])
    assert swept_zones(old, compiled(moved).ruleset, masters(moved)) == {z}
    # a port without port security leaving touches no rule, tag of a secured port or address
    gone = replace(before, ports=[p for p in before.ports if p.fixed_ips[0].ip_address != "10.0.0.6"])
    assert swept_zones(old, compiled(gone).ruleset, masters(gone)) == frozenset()


def test_a_pass_that_removes_rules_deletes_exactly_the_entries_they_admitted() -> None:
    before, after = scene(), scene([r for r in WEB_RULES if r.id not in REMOVED])
    kernel = kernel_for(before)
    converge(kernel, desired(before))
    z = compiled(before).zones[NET_A]
    entries = flows(z)
    foreign = [replace(f, zone=7) for f in entries.values()]  # someone else's zone on the host
    kernel.conntrack.entries = {*entries.values(), *foreign}
    added = scene([*WEB_RULES, rule(35, WEB, protocol="udp")])
    reconcile(kernel, desired(added))
    assert kernel.conntrack.dumped == []  # elements added only: nothing read
    done = reconcile(kernel, desired(before))  # udp from anywhere removed again
    assert kernel.conntrack.dumped == [z]
    assert set(done.swept) == {entries[n] for n in NEVER}  # the others are still admitted
    done = reconcile(kernel, desired(after))
    assert kernel.conntrack.dumped == [z, z]
    assert set(done.swept) == {entries[n] for n in GONE}
    assert {n for n, f in entries.items() if f not in kernel.conntrack.entries} == GONE | NEVER
    assert set(foreign) <= kernel.conntrack.entries
