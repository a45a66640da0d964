"""The firewall compiler's output for small cases, as normalized text: the
elements only (the constant chains have their own golden, at the end), tags
shown as the group set they stand for.  Also the helpers the other firewall
tests use (a world of ports, groups and rules; converging the fake kernel
with the firewall subsystem registered only here)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from overcast.linux.fake import FakeKernel
from overcast.model.types import (
    AddressPair,
    FixedIP,
    Network,
    Port,
    SecurityGroup,
    SecurityGroupRule,
)
from overcast.plan import HostView, plan_host
from overcast.plan.diff import diff
from overcast.plan.firewall import FirewallPlan, compile_firewall
from overcast.plan.firewall_chains import STATELESS
from overcast.plan.firewall_expr import rule_text
from overcast.plan.state import Change, KernelState
from overcast.plan.subsystems import SUBSYSTEMS
from overcast.plan.subsystems import firewall as fw

from .scenarios import HOSTS, NET_A, NET_B, net, port

WITH_FW = SUBSYSTEMS  # registered since slice 3; kept for the tests that name it
DEFAULT = "de000000-0000-4000-8000-000000000001"
WEB = "3e000000-0000-4000-8000-000000000002"
DB = "db000000-0000-4000-8000-000000000003"
LOOSE = "1005e000-0000-4000-8000-000000000004"  # stateless


def group(id_: str, stateful: bool = True) -> SecurityGroup:
    return SecurityGroup(id=id_, stateful=stateful)


def rule(n: int, group_id: str, direction: str = "ingress", ethertype: str = "IPv4",
         **kw: object) -> SecurityGroupRule:
    return SecurityGroupRule(id=f"{n:08x}-5e5e-4000-8000-{n:012x}", security_group_id=group_id,
                             direction=direction, ethertype=ethertype, **kw)  # type: ignore[arg-type]


def default_rules(group_id: str, first: int = 1) -> list[SecurityGroupRule]:
    """Neutron's default group: ingress from its members, all egress, both families."""
    return [rule(first, group_id, remote_group_id=group_id),
            rule(first + 1, group_id, ethertype="IPv6", remote_group_id=group_id),
            rule(first + 2, group_id, "egress"), rule(first + 3, group_id, "egress", "IPv6")]


def vm(n: int, host: str, ip: str, groups: Sequence[str] = (DEFAULT,), network: str = NET_A,
       **kw: object) -> Port:
    fixed = tuple(FixedIP(f"subnet-{a.count(':')}", a) for a in ip.split(","))
    return port(n, network, host, fixed_ips=fixed, security_groups=tuple(groups), **kw)


def world(ports: Sequence[Port], groups: Sequence[SecurityGroup],
          rules: Sequence[SecurityGroupRule], host: str = "h1",
          networks: Sequence[Network] = ()) -> HostView:
    nets = list(networks) or [net(NET_A, 1001), net(NET_B, 1002)]
    return HostView(host, HOSTS[host], dict(HOSTS), nets, list(ports), list(groups), list(rules))


def compiled(view: HostView) -> FirewallPlan:
    return compile_firewall(view, plan_host(view).port_devices)


def desired(view: HostView) -> KernelState:
    plan = plan_host(view)
    return KernelState.of(plan.state.records, [compile_firewall(view, plan.port_devices).ruleset])


def kernel_for(view: HostView) -> FakeKernel:
    kernel = FakeKernel(subsystems=WITH_FW)
    for pid in plan_host(view).port_devices.values():
        kernel.add_device(pid)
    return kernel


def converge(kernel: FakeKernel, state: KernelState) -> list[Change]:
    """One pass, and a second when the first made the firewall's chains
    (taps join their bridges only once those exist)."""
    changes: list[Change] = []
    for _ in range(2):
        more = diff(state, kernel.observe(), WITH_FW)
        errors = kernel.apply(more)
        assert errors == [], [e.render() for e in errors]
        changes += more
        if not more:
            break
    return changes


def elements(plan: FirewallPlan) -> str:
    """The elements, one per line, tags replaced by the group sets they stand for."""
    labels = {tag: "+".join(g[:2] for g in groupset) or "none" for groupset, tag in plan.tags.items()}
    lines = []
    for e in sorted(plan.ruleset.elements):
        line = e.render().removeprefix("nft element ")
        # a rule set's tag is its key's last field
        line = re.sub(r"^(inet (?:in|eg)[46]_\w+ .* \. )(\d+)( #)",
                      lambda m: m[1] + f"<{labels.get(int(m[2]), m[2])}>" + m[3], line)
        line = re.sub(r" : (\d+) #", lambda m: f" : <{labels.get(int(m[1]), m[1])}> #"
                      if int(m[1]) else " : 0 #", line)
        lines.append(line)
    return "\n".join(lines) + "\n"


def check(view: HostView, golden: str) -> FirewallPlan:
    plan = compiled(view)
    assert elements(plan) == golden.lstrip("\n"), elements(plan)
    return plan


P1, P2 = "00000001-0000-4000-8000-000000000001", "00000002-0000-4000-8000-000000000002"
TAP1 = "tap00000001-00"


def test_default_group_members_across_hosts() -> None:
    ports = [vm(1, "h1", "10.0.0.1"), vm(2, "h2", "10.0.0.2"), vm(3, "h2", "10.0.0.3", (WEB,))]
    plan = check(world(ports, [group(DEFAULT), group(WEB)], default_rules(DEFAULT)), f"""
bridge ip4_host {TAP1} . fa:16:3e:00:00:01 . 10.0.0.1 # {P1}
bridge ip6_host {TAP1} . fa:16:3e:00:00:01 . fe80::f816:3eff:fe00:1 # {P1}
bridge mac_ok {TAP1} . fa:16:3e:00:00:01 # {P1}
bridge router_ip4 ocxaaaaaaaa111 . 169.254.169.254 # {NET_A}
bridge router_mac ocxaaaaaaaa111 . fa:16:3f:00:00:01 # {NET_A}
bridge tag ocxaaaaaaaa111 : 0 # {NET_A}
bridge tag {TAP1} : <de> # {P1}
inet eg4_any 0.0.0.0/0 . <de> # 00000003-5e5e-4000-8000-000000000003
inet eg6_any ::/0 . <de> # 00000004-5e5e-4000-8000-000000000004
inet in4_any 10.0.0.1 . <de> # 00000001-5e5e-4000-8000-000000000001
inet in4_any 10.0.0.2 . <de> # 00000001-5e5e-4000-8000-000000000001
inet zone ocbaaaaaaaa111 : jump zone_59486 # {NET_A}
""")
    assert plan.problems == ()
    assert plan.zones == {NET_A: 59486}


def test_tcp_22_from_a_cidr_only() -> None:
    rules = [rule(1, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
                  remote_ip_prefix="192.0.2.0/24")]
    plan = compiled(world([vm(1, "h1", "10.0.0.1", (WEB,))], [group(WEB)], rules))
    assert [e for e in elements(plan).splitlines() if e.startswith("inet in")] == [
        "inet in4_port 192.0.2.0/24 . 22 . 6 . <3e> # 00000001-5e5e-4000-8000-000000000001"]


def test_remote_group_on_another_host_and_overlapping_rules() -> None:
    """h1's web port admits tcp/80 from the DB group's members (on h2, one with a CIDR pair) and tcp/20-30 from
    10.0.0.0/8; tcp/22 from 10.1.0.0/16 lies inside the latter and adds no
    element (pipapo refuses overlapping elements)."""
    pair = AddressPair("10.9.0.0/30", "")
    ports = [vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h2", "10.0.0.2", (DB,)),
             vm(3, "h2", "10.0.0.3", (DB,), allowed_address_pairs=(pair,)),
             vm(4, "h2", "10.0.0.4", (WEB,))]
    rules = [rule(1, WEB, protocol="tcp", port_range_min=80, port_range_max=80, remote_group_id=DB),
             rule(2, WEB, protocol="tcp", port_range_min=20, port_range_max=30,
                  remote_ip_prefix="10.0.0.0/8"),
             rule(3, WEB, protocol="6", port_range_min=22, port_range_max=22,
                  remote_ip_prefix="10.1.0.0/16")]
    plan = compiled(world(ports, [group(WEB), group(DB)], rules))
    sg = [e for e in elements(plan).splitlines() if e.startswith("inet in")]
    assert sg == [  # sorted by the key's JSON text
        "inet in4_port 10.0.0.2 . 80 . 6 . <3e> # 00000001-5e5e-4000-8000-000000000001",
        "inet in4_port 10.0.0.3 . 80 . 6 . <3e> # 00000001-5e5e-4000-8000-000000000001",
        "inet in4_port 10.0.0.0/8 . 20-30 . 6 . <3e> # 00000002-5e5e-4000-8000-000000000002",
        "inet in4_port 10.9.0.0/30 . 80 . 6 . <3e> # 00000001-5e5e-4000-8000-000000000001"]


def test_ports_open_to_the_whole_family_are_keyed_port_first_without_an_address() -> None:
    """No remote, an explicit 0.0.0.0/0 and a remote group member's /0 pair
    all go to ``in4_port_any`` / ``in4_icmp_any`` (port . protocol . tag: a
    lookup does not begin with a field all of them share); a narrower
    remote on the same port keeps its element in ``in4_port`` (the chain
    looks up both: the union)."""
    anywhere = AddressPair("0.0.0.0/0", "")
    ports = [vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h2", "10.0.0.2", (DB,), allowed_address_pairs=(anywhere,))]
    rules = [rule(1, WEB, protocol="tcp", port_range_min=80, port_range_max=80),
             rule(2, WEB, protocol="tcp", port_range_min=443, port_range_max=443,
                  remote_ip_prefix="0.0.0.0/0"),
             rule(3, WEB, protocol="tcp", port_range_min=8000, port_range_max=8001, remote_group_id=DB),
             rule(4, WEB, protocol="tcp", port_range_min=80, port_range_max=80,
                  remote_ip_prefix="192.0.2.0/24"),
             rule(5, WEB, protocol="icmp", port_range_min=8, port_range_max=0)]
    plan = compiled(world(ports, [group(WEB), group(DB)], rules))
    assert [e.split(" # ")[0] for e in elements(plan).splitlines() if e.startswith("inet in")] == [
        "inet in4_icmp_any 2048 . 1 . <3e>",  # echo request (8 << 8 | 0)
        "inet in4_port 10.0.0.2 . 8000-8001 . 6 . <3e>",
        "inet in4_port 192.0.2.0/24 . 80 . 6 . <3e>",
        "inet in4_port_any 443 . 6 . <3e>",
        "inet in4_port_any 80 . 6 . <3e>",
        "inet in4_port_any 8000-8001 . 6 . <3e>"]


def test_a_port_with_two_groups_gets_the_union_under_its_own_tag() -> None:
    rules = [rule(1, WEB, protocol="tcp", port_range_min=80, port_range_max=80),
             rule(2, DB, protocol="tcp", port_range_min=5432, port_range_max=5432),
             rule(3, DB, protocol="tcp", port_range_min=70, port_range_max=90)]
    ports = [vm(1, "h1", "10.0.0.1", (WEB, DB)), vm(2, "h1", "10.0.0.2", (WEB,))]
    plan = compiled(world(ports, [group(WEB), group(DB)], rules))
    assert set(plan.tags) == {(WEB, DB), (WEB,)}
    sg = [e for e in elements(plan).splitlines() if e.startswith("inet in")]
    assert sg == [  # tcp/80 of the web group lies inside the db group's 70-90: split there,
        # 80 one element of two rules (each counts exactly its own packets)
        # (no remote: the sets keyed without an address, port first)
        "inet in4_port_any 5432 . 6 . <3e+db> # 00000002-5e5e-4000-8000-000000000002",
        "inet in4_port_any 80 . 6 . <3e> # 00000001-5e5e-4000-8000-000000000001",
        "inet in4_port_any 80 . 6 . <3e+db> # 00000001-5e5e-4000-8000-000000000001",
        "inet in4_port_any 70-79 . 6 . <3e+db> # 00000003-5e5e-4000-8000-000000000003",
        "inet in4_port_any 81-90 . 6 . <3e+db> # 00000003-5e5e-4000-8000-000000000003"]
    (merged,) = [e for e, ids in plan.sources.items() if len(ids) == 2]
    assert plan.sources[merged] == ("security_group_rule/00000001-5e5e-4000-8000-000000000001",
                                    "security_group_rule/00000003-5e5e-4000-8000-000000000003")


def test_a_stateless_group_bypasses_conntrack_unless_its_peer_is_stateful() -> None:
    """The stateless port's tag has ``STATELESS`` set (its rules see every
    packet) and its MAC goes into ``notrack_mac``; the MACs of the stateful ports
    on its bridge go into ``tracked_mac`` (their connections with it stay
    tracked: measured in tests/linux/test_firewall_packets.py)."""
    rules = [rule(1, LOOSE, protocol="udp", port_range_min=53, port_range_max=53)]
    ports = [vm(1, "h1", "10.0.0.1", (LOOSE,)), vm(2, "h1", "10.0.0.2"),
             vm(4, "h1", "10.0.1.4", network=NET_B)]
    plan = compiled(world(ports, [group(LOOSE, stateful=False), group(DEFAULT)], rules))
    lines = [ln for ln in elements(plan).splitlines() if "track" in ln]
    assert lines == [f"inet notrack_mac ocbaaaaaaaa111 . fa:16:3e:00:00:01 # {P1}",
                     f"inet tracked_mac ocbaaaaaaaa111 . fa:16:3e:00:00:02 # {P2}"]
    assert plan.tags[(LOOSE,)] & STATELESS and not plan.tags[(DEFAULT,)] & STATELESS
    assert f"bridge tag {TAP1} : {plan.tags[(LOOSE,)]}" in {e.render().removeprefix("nft element ")
                                                           .split(" #")[0] for e in plan.ruleset.elements}
    mixed = compiled(world([vm(1, "h1", "10.0.0.1", (LOOSE, WEB))],
                           [group(LOOSE, stateful=False), group(WEB)], rules))
    assert not [ln for ln in elements(mixed).splitlines() if "track" in ln]
    assert not any(tag & STATELESS for tag in mixed.tags.values())
    assert [p.path for p in mixed.problems] == [f"port/{P1}"]


def test_port_security_off_means_no_checks_and_no_groups() -> None:
    ports = [vm(1, "h1", "10.0.0.1", (), port_security_enabled=False)]
    check(world(ports, [group(DEFAULT)], default_rules(DEFAULT)), f"""
bridge router_ip4 ocxaaaaaaaa111 . 169.254.169.254 # {NET_A}
bridge router_mac ocxaaaaaaaa111 . fa:16:3f:00:00:01 # {NET_A}
bridge tag ocxaaaaaaaa111 : 0 # {NET_A}
bridge tag {TAP1} : 0 # {P1}
inet zone ocbaaaaaaaa111 : jump zone_59486 # {NET_A}
""")


def test_allowed_address_pairs_with_and_without_their_own_mac() -> None:
    pairs = (AddressPair("10.0.0.0/28", ""), AddressPair("10.0.0.100", "FA:16:3E:AA:BB:CC"),
             AddressPair("10.0.0.5", ""))  # inside the /28: no element of its own
    ports = [vm(1, "h1", "10.0.0.1", (), allowed_address_pairs=pairs)]
    check(world(ports, [], []), f"""
bridge ip4_host {TAP1} . fa:16:3e:aa:bb:cc . 10.0.0.100 # {P1}
bridge ip4_ok {TAP1} . fa:16:3e:00:00:01 . 10.0.0.0/28 # {P1}
bridge ip6_host {TAP1} . fa:16:3e:00:00:01 . fe80::f816:3eff:fe00:1 # {P1}
bridge ip6_host {TAP1} . fa:16:3e:aa:bb:cc . fe80::f816:3eff:feaa:bbcc # {P1}
bridge mac_ok {TAP1} . fa:16:3e:00:00:01 # {P1}
bridge mac_ok {TAP1} . fa:16:3e:aa:bb:cc # {P1}
bridge router_ip4 ocxaaaaaaaa111 . 169.254.169.254 # {NET_A}
bridge router_mac ocxaaaaaaaa111 . fa:16:3f:00:00:01 # {NET_A}
bridge tag ocxaaaaaaaa111 : 0 # {NET_A}
bridge tag {TAP1} : <none> # {P1}
inet zone ocbaaaaaaaa111 : jump zone_59486 # {NET_A}
""")


def test_ipv6_addresses_icmp_types_and_protocol_names() -> None:
    rules = [rule(1, WEB, ethertype="IPv6", protocol="icmp", port_range_min=128),  # echo request
             rule(2, WEB, ethertype="IPv6", protocol="ipv6-icmp", port_range_min=1, port_range_max=4),
             rule(3, WEB, "egress", "IPv6", protocol="udp", port_range_min=53, port_range_max=53,
                  remote_ip_prefix="2001:db8::/32"),
             rule(4, WEB, ethertype="IPv6", protocol="50")]
    plan = compiled(world([vm(1, "h1", "2001:db8::1", (WEB,))], [group(WEB)], rules))
    lines = elements(plan).splitlines()
    assert f"bridge ip6_host {TAP1} . fa:16:3e:00:00:01 . 2001:db8::1 # {P1}" in lines
    assert [ln.split(" # ")[0] for ln in lines if ln.startswith(("inet in6", "inet eg6"))] == [
        "inet eg6_port 2001:db8::/32 . 53 . 17 . <3e>",
        "inet in6_icmp_any 260 . 58 . <3e>",  # type 1, code 4: 1 << 8 | 4
        "inet in6_icmp_any 32768-33023 . 58 . <3e>",  # type 128, any code
        "inet in6_proto ::/0 . 50 . <3e>"]


def test_ipv6_extension_header_protocols() -> None:
    """meta l4proto is the protocol after the extension headers: ipv6-encap
    follows them and is an element; hopopt is 0, Neutron's any; a rule for
    ipv6-route, ipv6-frag or ipv6-opts would match nothing, and one for
    ipv6-nonxt meets packets conntrack calls invalid: each a problem naming
    the rule, left out."""
    realized = [rule(2, WEB, ethertype="IPv6", protocol="ipv6-encap"),
                rule(3, WEB, "egress", "IPv6", protocol="hopopt", remote_ip_prefix="2001:db8::/32")]
    headers = [rule(4, WEB, ethertype="IPv6", protocol="ipv6-route"),
               rule(5, WEB, ethertype="IPv6", protocol="ipv6-frag"),
               rule(6, WEB, ethertype="IPv6", protocol="60")]
    nonxt = rule(7, WEB, ethertype="IPv6", protocol="ipv6-nonxt")
    plan = compiled(world([vm(1, "h1", "2001:db8::1", (WEB,))], [group(WEB)],
                          [*realized, *headers, nonxt]))
    lines = elements(plan).splitlines()
    assert [ln.split(" # ")[0] for ln in lines if ln.startswith(("inet in6", "inet eg6"))] == [
        "inet eg6_any 2001:db8::/32 . <3e>",
        "inet in6_proto ::/0 . 41 . <3e>"]
    assert [(p.path, p.message.split(":")[0]) for p in plan.problems] == [
        *((f"security_group_rule/{r.id}", f"protocol {r.protocol} is the IPv6 extension header {name}")
          for r, name in zip(headers, ("ipv6-route", "ipv6-frag", "ipv6-opts"), strict=True)),
        (f"security_group_rule/{nonxt.id}", "protocol ipv6-nonxt is ipv6-nonxt")]
    # the port's host says what of its groups it does not enforce (its status shows it)
    (port_id,) = plan.enforced
    what = plan.enforced[port_id]
    assert (what.port_security, what.security_groups) == (True, (WEB,))
    assert [m.split(":")[0] for m in what.not_enforced] == [
        f"security group rule {r.id}" for r in (*headers, nonxt)]
    assert what.as_json()["not_enforced"] == list(what.not_enforced)
    # the same numbers under IPv4 are plain protocols
    v4 = compiled(world([vm(1, "h1", "10.0.0.1", (WEB,))], [group(WEB)],
                        [rule(8, WEB, protocol="43"), rule(9, WEB, protocol="59")]))
    assert v4.problems == () and [ln.split(" # ")[0] for ln in elements(v4).splitlines()
                                  if ln.startswith("inet in4")] == [
        "inet in4_proto 0.0.0.0/0 . 43 . <3e>", "inet in4_proto 0.0.0.0/0 . 59 . <3e>"]


def test_rules_neutron_refuses_are_problems_naming_the_rule() -> None:
    bad = [rule(1, WEB, protocol="gre", port_range_min=1, port_range_max=2),
           rule(2, WEB, protocol="icmp", port_range_max=3),
           rule(3, WEB, remote_ip_prefix="2001:db8::/32"),
           rule(4, WEB, protocol="bogus"),
           rule(5, WEB, remote_ip_prefix="10.0.0.0/8", remote_group_id=WEB),
           rule(6, WEB, protocol="tcp", port_range_min=0, port_range_max=10)]
    plan = compiled(world([vm(1, "h1", "10.0.0.1", (WEB,))], [group(WEB)], bad))
    assert [p.path.split("/")[1][:8] for p in plan.problems] == [f"{n:08x}" for n in range(1, 7)]
    assert not [e for e in plan.ruleset.elements if e.set.startswith(("in", "eg"))]


def test_only_realized_local_ports_are_in_the_ruleset() -> None:
    ports = [vm(1, "h1", "10.0.0.1"), vm(2, "h2", "10.0.0.2"), vm(9, "", "10.0.0.9")]
    plan = compiled(world(ports, [group(DEFAULT)], []))
    assert {d for e in plan.ruleset.elements for d in e.devices()} == {
        TAP1, "ocxaaaaaaaa111", "ocbaaaaaaaa111"}


def test_the_constant_chains() -> None:
    """The spec of every packet's path (docs/firewall.md), as nft would list it."""
    plan = compiled(world([], [], []))
    text = []
    for c in sorted(plan.ruleset.chains, key=lambda c: (c.family, c.hook == "", c.name)):
        text.append(c.render().rsplit(" rules ", 1)[0])
        text += [f"  {rule_text(__import__('json').loads(r))}" for r in c.rules]
    assert "\n".join(text) + "\n" == CHAINS, "\n".join(text)


CHAINS = """\
nft chain bridge forward hook forward prio -200 policy drop
  meta mark set 0
  meta oifgroup 28515 meta mark set 4294967295
  meta mark set meta oifname map @tag
  meta oifgroup 28515 meta mark 4294967295 drop
  meta oifgroup 28515 meta mark != 0 jump to_port
  meta iifgroup 28515 meta oifgroup 28515 accept
  jump overlay
  accept
nft chain bridge prerouting hook prerouting prio -300 policy drop
  meta iifgroup 28515 meta mark set 4294967295
  meta mark set meta iifname map @tag
  meta iifgroup 28515 meta mark 4294967295 drop
  meta iifgroup 28515 meta mark != 0 jump from_port
  meta mark 0 ether type ip meta l4proto 17 udp sport 68 udp dport 67 meta iifname @dhcp_local drop
  meta mark 0 ether type ip6 meta l4proto 17 udp sport 546 udp dport 547 meta iifname @dhcp_local drop
  accept
nft chain bridge from_port
  ether type ip meta iifname . ether saddr . ip saddr @ip4_host th sport != 67-68 return
  ether type ip6 meta l4proto != 58 meta iifname . ether saddr . ip6 saddr @ip6_host th sport != 546-547 return
  meta iifname . ether saddr != @mac_ok drop
  ether type arp arp saddr ip 0.0.0.0 meta iifname . arp saddr ether @mac_ok return
  ether type arp meta iifname . arp saddr ether . arp saddr ip @ip4_host return
  ether type arp meta iifname . arp saddr ether . arp saddr ip != @ip4_ok drop
  ether type arp return
  ether type ip meta l4proto 17 udp sport 67 drop
  ether type ip meta l4proto 17 udp sport 68 udp dport 67 meta iifname @dhcp_local drop
  ether type ip ip saddr 0.0.0.0 ip daddr 255.255.255.255 meta l4proto 17 udp sport 68 udp dport 67 return
  ether type ip meta iifname . ether saddr . ip saddr @ip4_host return
  ether type ip meta iifname . ether saddr . ip saddr != @ip4_ok drop
  ether type ip return
  ether type ip6 meta l4proto 17 udp sport 547 drop
  ether type ip6 meta l4proto 17 udp sport 546 udp dport 547 meta iifname @dhcp_local drop
  ether type ip6 meta l4proto 58 icmpv6 type { 134, 137 } drop
  ether type ip6 ip6 saddr :: meta l4proto 58 icmpv6 type { 131, 135, 143 } return
  ether type ip6 meta iifname . ether saddr . ip6 saddr @ip6_host return
  ether type ip6 meta iifname . ether saddr . ip6 saddr != @ip6_ok drop
  ether type ip6 return
  drop
nft chain bridge overlay
  meta oifname . ether daddr @router_mac drop
  meta iifname . ether saddr @router_mac drop
  ether type arp meta oifname . ether saddr @router_mac drop
  ether daddr & 01:00:00:00:00:00 01:00:00:00:00:00 meta oifname . ether saddr @router_mac drop
  meta l4proto 58 icmpv6 type { 133, 134, 135, 136, 137 } meta oifname . ether saddr @router_mac drop
  meta oifname . ether saddr @router_mac ether saddr set meta oifname map @host_mac
  ether type arp meta oifname . arp daddr ip @router_ip4 drop
  ether type arp meta iifname . arp daddr ip @router_ip4 drop
nft chain bridge to_port
  ether daddr & 01:00:00:00:00:00 00:00:00:00:00:00 meta oifname . ether daddr != @mac_ok drop
nft chain inet egress hook prerouting prio -150
  meta mark 0 accept
  meta mark & 16777216 0 ct state established, related accept
  ct state invalid drop
  meta nfproto ipv4 meta l4proto 6 ct state new tcp flags & fin, syn, rst, ack != syn ip saddr . ip daddr . meta l4proto . th sport . th dport @closed4 drop
  meta nfproto ipv4 meta l4proto 6 ct state new tcp flags & fin, syn, rst, ack != syn ip daddr . ip saddr . meta l4proto . th dport . th sport @closed4 drop
  meta nfproto ipv6 meta l4proto 6 ct state new tcp flags & fin, syn, rst, ack != syn ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport @closed6 drop
  meta nfproto ipv6 meta l4proto 6 ct state new tcp flags & fin, syn, rst, ack != syn ip6 daddr . ip6 saddr . meta l4proto . th dport . th sport @closed6 drop
  meta nfproto ipv4 meta l4proto 17 udp sport 68 udp dport 67 accept
  meta nfproto ipv6 meta l4proto 17 udp sport 546 udp dport 547 accept
  meta nfproto ipv6 meta l4proto 58 icmpv6 type { 133, 135, 136, 131, 132, 143 } accept
  ct state new meta mark @log_accept limit rate 100/second burst 25 packets jump egress_logged
  meta nfproto ipv4 ip daddr . meta mark @eg4_any ip daddr . meta mark != @eg4_any_revoked accept
  meta nfproto ipv4 ip daddr . meta mark @eg4_any_staged accept
  meta nfproto ipv4 ip daddr . meta l4proto . meta mark @eg4_proto ip daddr . meta l4proto . meta mark != @eg4_proto_revoked accept
  meta nfproto ipv4 ip daddr . meta l4proto . meta mark @eg4_proto_staged accept
  meta nfproto ipv4 ip daddr . th dport . meta l4proto . meta mark @eg4_port ip daddr . th dport . meta l4proto . meta mark != @eg4_port_revoked accept
  meta nfproto ipv4 ip daddr . th dport . meta l4proto . meta mark @eg4_port_staged accept
  meta nfproto ipv4 th dport . meta l4proto . meta mark @eg4_port_any th dport . meta l4proto . meta mark != @eg4_port_any_revoked accept
  meta nfproto ipv4 th dport . meta l4proto . meta mark @eg4_port_any_staged accept
  meta nfproto ipv4 meta l4proto 1 ip daddr . th sport . meta l4proto . meta mark @eg4_icmp ip daddr . th sport . meta l4proto . meta mark != @eg4_icmp_revoked accept
  meta nfproto ipv4 meta l4proto 1 ip daddr . th sport . meta l4proto . meta mark @eg4_icmp_staged accept
  meta nfproto ipv4 meta l4proto 1 th sport . meta l4proto . meta mark @eg4_icmp_any th sport . meta l4proto . meta mark != @eg4_icmp_any_revoked accept
  meta nfproto ipv4 meta l4proto 1 th sport . meta l4proto . meta mark @eg4_icmp_any_staged accept
  meta nfproto ipv6 ip6 daddr . meta mark @eg6_any ip6 daddr . meta mark != @eg6_any_revoked accept
  meta nfproto ipv6 ip6 daddr . meta mark @eg6_any_staged accept
  meta nfproto ipv6 ip6 daddr . meta l4proto . meta mark @eg6_proto ip6 daddr . meta l4proto . meta mark != @eg6_proto_revoked accept
  meta nfproto ipv6 ip6 daddr . meta l4proto . meta mark @eg6_proto_staged accept
  meta nfproto ipv6 ip6 daddr . th dport . meta l4proto . meta mark @eg6_port ip6 daddr . th dport . meta l4proto . meta mark != @eg6_port_revoked accept
  meta nfproto ipv6 ip6 daddr . th dport . meta l4proto . meta mark @eg6_port_staged accept
  meta nfproto ipv6 th dport . meta l4proto . meta mark @eg6_port_any th dport . meta l4proto . meta mark != @eg6_port_any_revoked accept
  meta nfproto ipv6 th dport . meta l4proto . meta mark @eg6_port_any_staged accept
  meta nfproto ipv6 meta l4proto 58 ip6 daddr . th sport . meta l4proto . meta mark @eg6_icmp ip6 daddr . th sport . meta l4proto . meta mark != @eg6_icmp_revoked accept
  meta nfproto ipv6 meta l4proto 58 ip6 daddr . th sport . meta l4proto . meta mark @eg6_icmp_staged accept
  meta nfproto ipv6 meta l4proto 58 th sport . meta l4proto . meta mark @eg6_icmp_any th sport . meta l4proto . meta mark != @eg6_icmp_any_revoked accept
  meta nfproto ipv6 meta l4proto 58 th sport . meta l4proto . meta mark @eg6_icmp_any_staged accept
  meta mark @log_drop limit rate 100/second burst 25 packets log prefix "overcast egress DROP" group 7
  drop
nft chain inet ingress hook forward prio 0
  meta mark 0 accept
  meta mark & 16777216 0 ct state established, related accept
  ct state invalid drop
  meta nfproto ipv4 meta l4proto 6 ct state new tcp flags & fin, syn, rst, ack != syn ip saddr . ip daddr . meta l4proto . th sport . th dport @closed4 drop
  meta nfproto ipv4 meta l4proto 6 ct state new tcp flags & fin, syn, rst, ack != syn ip daddr . ip saddr . meta l4proto . th dport . th sport @closed4 drop
  meta nfproto ipv6 meta l4proto 6 ct state new tcp flags & fin, syn, rst, ack != syn ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport @closed6 drop
  meta nfproto ipv6 meta l4proto 6 ct state new tcp flags & fin, syn, rst, ack != syn ip6 daddr . ip6 saddr . meta l4proto . th dport . th sport @closed6 drop
  meta nfproto ipv4 meta l4proto 17 udp sport 67 udp dport 68 accept
  meta nfproto ipv6 meta l4proto 17 udp sport 547 udp dport 546 accept
  meta nfproto ipv6 meta l4proto 58 icmpv6 type { 130, 134, 135, 136 } accept
  ct state new meta mark @log_accept limit rate 100/second burst 25 packets jump ingress_logged
  meta nfproto ipv4 ip saddr . meta mark @in4_any ip saddr . meta mark != @in4_any_revoked accept
  meta nfproto ipv4 ip saddr . meta mark @in4_any_staged accept
  meta nfproto ipv4 ip saddr . meta l4proto . meta mark @in4_proto ip saddr . meta l4proto . meta mark != @in4_proto_revoked accept
  meta nfproto ipv4 ip saddr . meta l4proto . meta mark @in4_proto_staged accept
  meta nfproto ipv4 ip saddr . th dport . meta l4proto . meta mark @in4_port ip saddr . th dport . meta l4proto . meta mark != @in4_port_revoked accept
  meta nfproto ipv4 ip saddr . th dport . meta l4proto . meta mark @in4_port_staged accept
  meta nfproto ipv4 th dport . meta l4proto . meta mark @in4_port_any th dport . meta l4proto . meta mark != @in4_port_any_revoked accept
  meta nfproto ipv4 th dport . meta l4proto . meta mark @in4_port_any_staged accept
  meta nfproto ipv4 meta l4proto 1 ip saddr . th sport . meta l4proto . meta mark @in4_icmp ip saddr . th sport . meta l4proto . meta mark != @in4_icmp_revoked accept
  meta nfproto ipv4 meta l4proto 1 ip saddr . th sport . meta l4proto . meta mark @in4_icmp_staged accept
  meta nfproto ipv4 meta l4proto 1 th sport . meta l4proto . meta mark @in4_icmp_any th sport . meta l4proto . meta mark != @in4_icmp_any_revoked accept
  meta nfproto ipv4 meta l4proto 1 th sport . meta l4proto . meta mark @in4_icmp_any_staged accept
  meta nfproto ipv6 ip6 saddr . meta mark @in6_any ip6 saddr . meta mark != @in6_any_revoked accept
  meta nfproto ipv6 ip6 saddr . meta mark @in6_any_staged accept
  meta nfproto ipv6 ip6 saddr . meta l4proto . meta mark @in6_proto ip6 saddr . meta l4proto . meta mark != @in6_proto_revoked accept
  meta nfproto ipv6 ip6 saddr . meta l4proto . meta mark @in6_proto_staged accept
  meta nfproto ipv6 ip6 saddr . th dport . meta l4proto . meta mark @in6_port ip6 saddr . th dport . meta l4proto . meta mark != @in6_port_revoked accept
  meta nfproto ipv6 ip6 saddr . th dport . meta l4proto . meta mark @in6_port_staged accept
  meta nfproto ipv6 th dport . meta l4proto . meta mark @in6_port_any th dport . meta l4proto . meta mark != @in6_port_any_revoked accept
  meta nfproto ipv6 th dport . meta l4proto . meta mark @in6_port_any_staged accept
  meta nfproto ipv6 meta l4proto 58 ip6 saddr . th sport . meta l4proto . meta mark @in6_icmp ip6 saddr . th sport . meta l4proto . meta mark != @in6_icmp_revoked accept
  meta nfproto ipv6 meta l4proto 58 ip6 saddr . th sport . meta l4proto . meta mark @in6_icmp_staged accept
  meta nfproto ipv6 meta l4proto 58 th sport . meta l4proto . meta mark @in6_icmp_any th sport . meta l4proto . meta mark != @in6_icmp_any_revoked accept
  meta nfproto ipv6 meta l4proto 58 th sport . meta l4proto . meta mark @in6_icmp_any_staged accept
  meta mark @log_drop limit rate 100/second burst 25 packets log prefix "overcast ingress DROP" group 7
  drop
nft chain inet raw hook prerouting prio -300
  meta mark & 16777216 16777216 meta iifname . ether daddr != @tracked_mac notrack accept
  meta mark 0 meta iifname . ether daddr @notrack_mac notrack accept
  meta iifname vmap @zone
nft chain inet egress_logged
  meta nfproto ipv4 ip daddr . meta mark @eg4_any ip daddr . meta mark != @eg4_any_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 ip daddr . meta mark @eg4_any_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 ip daddr . meta l4proto . meta mark @eg4_proto ip daddr . meta l4proto . meta mark != @eg4_proto_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 ip daddr . meta l4proto . meta mark @eg4_proto_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 ip daddr . th dport . meta l4proto . meta mark @eg4_port ip daddr . th dport . meta l4proto . meta mark != @eg4_port_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 ip daddr . th dport . meta l4proto . meta mark @eg4_port_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 th dport . meta l4proto . meta mark @eg4_port_any th dport . meta l4proto . meta mark != @eg4_port_any_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 th dport . meta l4proto . meta mark @eg4_port_any_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 meta l4proto 1 ip daddr . th sport . meta l4proto . meta mark @eg4_icmp ip daddr . th sport . meta l4proto . meta mark != @eg4_icmp_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 meta l4proto 1 ip daddr . th sport . meta l4proto . meta mark @eg4_icmp_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 meta l4proto 1 th sport . meta l4proto . meta mark @eg4_icmp_any th sport . meta l4proto . meta mark != @eg4_icmp_any_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv4 meta l4proto 1 th sport . meta l4proto . meta mark @eg4_icmp_any_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 daddr . meta mark @eg6_any ip6 daddr . meta mark != @eg6_any_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 daddr . meta mark @eg6_any_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 daddr . meta l4proto . meta mark @eg6_proto ip6 daddr . meta l4proto . meta mark != @eg6_proto_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 daddr . meta l4proto . meta mark @eg6_proto_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 daddr . th dport . meta l4proto . meta mark @eg6_port ip6 daddr . th dport . meta l4proto . meta mark != @eg6_port_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 daddr . th dport . meta l4proto . meta mark @eg6_port_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 th dport . meta l4proto . meta mark @eg6_port_any th dport . meta l4proto . meta mark != @eg6_port_any_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 th dport . meta l4proto . meta mark @eg6_port_any_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 meta l4proto 58 ip6 daddr . th sport . meta l4proto . meta mark @eg6_icmp ip6 daddr . th sport . meta l4proto . meta mark != @eg6_icmp_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 meta l4proto 58 ip6 daddr . th sport . meta l4proto . meta mark @eg6_icmp_staged log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 meta l4proto 58 th sport . meta l4proto . meta mark @eg6_icmp_any th sport . meta l4proto . meta mark != @eg6_icmp_any_revoked log prefix "overcast egress ACCEPT" group 7 accept
  meta nfproto ipv6 meta l4proto 58 th sport . meta l4proto . meta mark @eg6_icmp_any_staged log prefix "overcast egress ACCEPT" group 7 accept
  return
nft chain inet ingress_logged
  meta nfproto ipv4 ip saddr . meta mark @in4_any ip saddr . meta mark != @in4_any_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 ip saddr . meta mark @in4_any_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 ip saddr . meta l4proto . meta mark @in4_proto ip saddr . meta l4proto . meta mark != @in4_proto_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 ip saddr . meta l4proto . meta mark @in4_proto_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 ip saddr . th dport . meta l4proto . meta mark @in4_port ip saddr . th dport . meta l4proto . meta mark != @in4_port_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 ip saddr . th dport . meta l4proto . meta mark @in4_port_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 th dport . meta l4proto . meta mark @in4_port_any th dport . meta l4proto . meta mark != @in4_port_any_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 th dport . meta l4proto . meta mark @in4_port_any_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 meta l4proto 1 ip saddr . th sport . meta l4proto . meta mark @in4_icmp ip saddr . th sport . meta l4proto . meta mark != @in4_icmp_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 meta l4proto 1 ip saddr . th sport . meta l4proto . meta mark @in4_icmp_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 meta l4proto 1 th sport . meta l4proto . meta mark @in4_icmp_any th sport . meta l4proto . meta mark != @in4_icmp_any_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv4 meta l4proto 1 th sport . meta l4proto . meta mark @in4_icmp_any_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 saddr . meta mark @in6_any ip6 saddr . meta mark != @in6_any_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 saddr . meta mark @in6_any_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 saddr . meta l4proto . meta mark @in6_proto ip6 saddr . meta l4proto . meta mark != @in6_proto_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 saddr . meta l4proto . meta mark @in6_proto_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 saddr . th dport . meta l4proto . meta mark @in6_port ip6 saddr . th dport . meta l4proto . meta mark != @in6_port_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 ip6 saddr . th dport . meta l4proto . meta mark @in6_port_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 th dport . meta l4proto . meta mark @in6_port_any th dport . meta l4proto . meta mark != @in6_port_any_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 th dport . meta l4proto . meta mark @in6_port_any_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 meta l4proto 58 ip6 saddr . th sport . meta l4proto . meta mark @in6_icmp ip6 saddr . th sport . meta l4proto . meta mark != @in6_icmp_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 meta l4proto 58 ip6 saddr . th sport . meta l4proto . meta mark @in6_icmp_staged log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 meta l4proto 58 th sport . meta l4proto . meta mark @in6_icmp_any th sport . meta l4proto . meta mark != @in6_icmp_any_revoked log prefix "overcast ingress ACCEPT" group 7 accept
  meta nfproto ipv6 meta l4proto 58 th sport . meta l4proto . meta mark @in6_icmp_any_staged log prefix "overcast ingress ACCEPT" group 7 accept
  return
"""


def test_plan_host_puts_the_compiled_ruleset_in_the_desired_state() -> None:
    base = world([vm(1, "h1", "10.0.0.1")], [], [])
    full = replace(base, security_groups=[group(DEFAULT)], security_group_rules=default_rules(DEFAULT))
    for view in (base, full):
        plan = plan_host(view)
        assert plan.state[fw.NftRuleset] == (compiled(view).ruleset,)
        assert set(plan.problems) >= set(compiled(view).problems)
    # the links do not depend on groups and rules; the ruleset does
    assert plan_host(base).state.records - plan_host(full).state.records == {compiled(base).ruleset}
    off = plan_host(replace(full, firewall=False))
    assert off.state[fw.NftRuleset] == () and off.port_devices == plan_host(full).port_devices
