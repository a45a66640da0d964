"""Which conntrack entries a firewall change closes: ``firewall_admits``
(the zones to look at, the entries the new ruleset no longer admits) and
the sweep after a pass on the fake kernel (``FakeConntrack``): exactly the
entries no rule admits any more go, those still admitted by another rule or
by the rest of a range stay, other zones are never read, and a change that
removes nothing reads nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from overcast.agent.conntrack_sweep import Sweep
from overcast.agent.reconciler import reconcile
from overcast.linux.fake import FakeKernel
from overcast.model.types import AddressPair, SecurityGroupRule
from overcast.plan import HostView
from overcast.plan.diff import diff
from overcast.plan.firewall_admits import Flow, Ruleset, admits, condemned, swept_zones
from overcast.plan.firewall_chains import CLOSED_TIMEOUT
from overcast.plan.host import plan_host
from overcast.plan.names import FW_TABLE
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
    # the ruleset created (a table deleted by hand, the firewall turned on): every zone
    assert swept_zones(None, new, masters(after)) == {z} == set(compiled(after).zones.values())
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


def test_a_wide_allowed_address_pair_never_condemns_what_its_port_never_sees() -> None:
    """The reviewer's case: A (web: tcp/22 in only) holds the pair 0.0.0.0/0
    (VRRP, a VNF), B (default group) talks to a VM on h2 and to the
    internet.  Those frames leave through the VXLAN device and never meet
    A's ingress rules: nothing is condemned.  A host-length pair is judged
    as a fixed IP is."""
    a = vm(1, "h1", "10.0.0.1", (WEB,), allowed_address_pairs=(AddressPair("0.0.0.0/0", ""),))
    b, c = vm(2, "h1", "10.0.0.2"), vm(3, "h1", "10.0.0.3", (WEB,),
                                      allowed_address_pairs=(AddressPair("10.0.0.50", ""),))
    view = world([a, b, c, vm(9, "h2", "10.0.0.9")], [group(WEB), group(DEFAULT)],
                 [*default_rules(DEFAULT), WEB_RULES[0]])
    plan = compiled(view)
    z = plan.zones[NET_A]
    to_remote, to_internet = Flow(z, 4, "10.0.0.2", "10.0.0.9", 6, 40000, 80), \
        Flow(z, 4, "10.0.0.2", "192.0.2.1", 6, 40001, 443)
    to_pair = Flow(z, 4, "10.0.0.2", "10.0.0.50", 6, 40002, 80)  # c's /32 pair: c's ingress decides
    assert condemned([to_remote, to_internet, to_pair], plan.ruleset, masters(view)) == [to_pair]


def closed(kernel: FakeKernel) -> list[object]:
    return [e["elem"] for item in kernel.nftables.rows() if (s := item.get("set"))
            and s["table"] == FW_TABLE and s["name"] == "closed4" for e in s.get("elem", ())]


def test_a_swept_tcp_flow_is_closed_and_the_diff_leaves_it_alone() -> None:
    before, after = scene(), scene([r for r in WEB_RULES if r.id not in REMOVED])
    kernel = kernel_for(before)
    converge(kernel, desired(before))
    entries = flows(compiled(before).zones[NET_A])
    kernel.conntrack.entries = set(entries.values())
    done = reconcile(kernel, desired(after))
    ssh = entries["ssh from .5 (the /24 rule only)"]
    assert ssh in done.swept
    tcp = [f for f in done.swept if f.proto == 6]
    assert sorted(closed(kernel), key=str) == sorted(
        ({"val": {"concat": [f.src, f.dst, 6, f.sport, f.dport]}, "timeout": CLOSED_TIMEOUT}
         for f in tcp), key=str)
    assert diff(desired(after), kernel.observe()) == []  # observe leaves the sweep's elements out
    reconcile(kernel, desired(after))
    assert len(closed(kernel)) == len(tcp)


@pytest.mark.parametrize("failure", [OSError(110, "Connection timed out"),
                                     ValueError("malformed attribute")])
def test_a_failed_sweep_is_kept_and_done_at_the_next_pass(failure: Exception) -> None:
    before, after = scene(), scene([r for r in WEB_RULES if r.id not in REMOVED])
    kernel = kernel_for(before)
    converge(kernel, desired(before))
    z = compiled(before).zones[NET_A]
    entries = flows(z)
    kernel.conntrack.entries = set(entries.values())
    sweep = Sweep()
    kernel.conntrack.failures = [failure]
    done = reconcile(kernel, desired(after), sweep)
    assert done.errors == () and done.swept == () and sweep.pending == frozenset({z})
    assert kernel.conntrack.entries == set(entries.values())
    done = reconcile(kernel, desired(after), sweep)  # nothing changes in the ruleset now
    assert done.changes == () and {n for n, f in entries.items() if f in done.swept} == GONE | NEVER
    assert sweep.pending == frozenset()
    assert reconcile(kernel, desired(after), sweep).swept == ()


def test_an_agents_first_pass_sweeps_every_zone_of_its_ruleset() -> None:
    """An agent killed between an apply and its sweep: the next one's first
    pass finds nothing to change and still deletes what the rules do not
    admit."""
    after = scene([r for r in WEB_RULES if r.id not in REMOVED])
    kernel = kernel_for(after)
    converge(kernel, desired(after))
    z = compiled(after).zones[NET_A]
    entries = flows(z)
    kernel.conntrack.entries = set(entries.values())
    assert reconcile(kernel, desired(after)).swept == ()  # no change, no first pass: nothing read
    assert kernel.conntrack.dumped == []
    sweep = Sweep.first()
    done = reconcile(kernel, desired(after), sweep)
    assert kernel.conntrack.dumped == [z] and sweep.pending == frozenset()
    assert {n for n, f in entries.items() if f in done.swept} == GONE | NEVER


def test_a_ruleset_made_again_sweeps_every_zone() -> None:
    """Both tables deleted by hand (or the firewall turned on): connections
    opened while nothing filtered are judged when the ruleset is back."""
    after = scene([r for r in WEB_RULES if r.id not in REMOVED])
    kernel = kernel_for(after)
    converge(kernel, desired(after))
    kernel.nft([{"delete": {"table": {"family": f, "name": FW_TABLE}}} for f in ("bridge", "inet")])
    z = compiled(after).zones[NET_A]
    entries = flows(z)
    kernel.conntrack.entries = set(entries.values())
    done = reconcile(kernel, desired(after))
    assert [c.op for c in done.changes if c.obj.__class__.__name__ == "NftRuleset"] == ["create"]
    assert kernel.conntrack.dumped == [z]
    assert {n for n, f in entries.items() if f in done.swept} == GONE | NEVER
