"""Review-2: long sequences of changes the incremental tests do not make,
planned warm for two hosts in turn (one cache, as agents in one process),
each plan then compared with the plan from nothing: a rule moving to
another group of the same group set, a group's ``stateful`` flipping, two
group sets whose tags collide (crc32) so that one shifts the other's tag,
a port's MAC, address pairs and port security, every field of a rule that
changes elements, address groups, and views rebuilt equal from values."""

from __future__ import annotations

import threading
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from overcast.model.types import (
    AddressGroup,
    AddressPair,
    FixedIP,
    SecurityGroup,
    SecurityGroupRule,
)
from overcast.plan import HostView, plan_host
from overcast.plan.firewall import forget

from .test_firewall_golden import DEFAULT, WEB, group, rule, vm, world
from .test_plan_incremental import outputs

# two group ids whose one-group sets have the same crc32 tag (firewall._probe): a port of
# the first shifts the second's tag by one
C1 = "0000051c-c011-4000-8000-00000000051c"
C2 = "00000a39-c011-4000-8000-000000000a39"
AG = "a9000000-0000-4000-8000-00000000a9a9"
GROUP_IDS = (DEFAULT, WEB, C1, C2)
PREFIXES = (None, "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "0.0.0.0/0", "fd00::/8")


def base() -> HostView:
    ports = [vm(1, "h1", "10.0.0.1,fd00::1", [DEFAULT, WEB]), vm(2, "h1", "10.0.0.2", [C2]),
             vm(3, "h2", "10.0.0.3", [DEFAULT]), vm(4, "h2", "10.0.0.4", [C1, WEB])]
    rules = [rule(1, DEFAULT, remote_group_id=DEFAULT), rule(2, DEFAULT, "egress"),
             rule(3, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
                  remote_ip_prefix="10.1.0.0/16"),
             rule(4, C2, protocol="udp", remote_group_id=WEB),
             rule(5, C1, protocol="icmp", port_range_min=8, remote_address_group_id=AG)]
    view = world(ports, [group(g) for g in GROUP_IDS], rules)
    return replace(view, address_groups=[AddressGroup(id=AG, addresses=("10.7.0.0/16",))])


@st.composite
def change(draw: st.DrawFn, view: HostView) -> HostView:
    """One change of ``view``."""
    kind = draw(st.sampled_from(["rule", "move", "stateful", "groups", "port", "address_group",
                                 "rebuilt", "add", "drop"]))
    rules, ports = list(view.security_group_rules), list(view.ports)
    if kind in ("rule", "move", "drop") and rules:
        i = draw(st.integers(0, len(rules) - 1))
        r = rules[i]
        if kind == "drop":
            return replace(view, security_group_rules=rules[:i] + rules[i + 1:])
        if kind == "move":
            rules[i] = replace(r, security_group_id=draw(st.sampled_from(GROUP_IDS)))
        else:
            field_ = draw(st.sampled_from(["direction", "ethertype", "protocol", "ports",
                                           "prefix", "remote_group", "address_group"]))
            rules[i] = _rule_field(draw, r, field_)
        return replace(view, security_group_rules=rules)
    if kind == "add":
        # a new id (rule ids are unique in a view: the agent's is keyed by them)
        n = max(int(r.id[:8], 16) for r in [*rules, rule(99, DEFAULT)]) + 1 + draw(st.integers(0, 3))
        new = _rule_field(draw, rule(n, draw(st.sampled_from(GROUP_IDS)), protocol="tcp",
                                     port_range_min=80, port_range_max=80), "prefix")
        return replace(view, security_group_rules=[*rules, new])
    if kind == "stateful":
        g = draw(st.sampled_from(GROUP_IDS))
        return replace(view, security_groups=[replace(s, stateful=not s.stateful) if s.id == g else s
                                              for s in view.security_groups])
    if kind in ("groups", "port"):
        i = draw(st.integers(0, len(ports) - 1))
        p = ports[i]
        if kind == "groups":
            ports[i] = replace(p, security_groups=tuple(draw(st.sets(st.sampled_from(GROUP_IDS)))))
        else:
            what = draw(st.sampled_from(["mac", "pair", "security", "ip"]))
            n = draw(st.integers(1, 9))
            ports[i] = (replace(p, mac_address=f"fa:16:3e:00:00:{n:02x}") if what == "mac" else
                        replace(p, allowed_address_pairs=(AddressPair(f"10.9.{n}.0/24", ""),))
                        if what == "pair" else
                        replace(p, port_security_enabled=not p.port_security_enabled)
                        if what == "security" else
                        replace(p, fixed_ips=(FixedIP("subnet-0", f"10.0.0.{n + 10}"),)))
        return replace(view, ports=ports)
    if kind == "address_group":
        addresses = draw(st.sets(st.sampled_from(["10.7.0.0/16", "10.7.1.0/24", "192.0.2.0/24",
                                                  "fd07::/64"])))
        return replace(view, address_groups=[AddressGroup(id=AG, addresses=tuple(sorted(addresses)))])
    # rebuilt: equal values, new objects (a full resync of the agent's view)
    return replace(view, ports=[replace(p) for p in ports],
                   security_group_rules=[replace(r) for r in rules],
                   security_groups=[SecurityGroup(id=g.id, stateful=g.stateful)
                                    for g in view.security_groups])


def _rule_field(draw: st.DrawFn, r: SecurityGroupRule, field_: str) -> SecurityGroupRule:
    if field_ == "direction":
        return replace(r, direction=draw(st.sampled_from(["ingress", "egress"])))
    if field_ == "ethertype":
        return replace(r, ethertype=draw(st.sampled_from(["IPv4", "IPv6"])))
    if field_ == "protocol":
        return replace(r, protocol=draw(st.sampled_from([None, "tcp", "udp", "icmp", "6"])),
                       port_range_min=None, port_range_max=None)
    if field_ == "ports":
        lo = draw(st.integers(1, 100))
        return replace(r, protocol="tcp", port_range_min=lo, port_range_max=lo + draw(st.integers(0, 5)))
    remote = replace(r, remote_ip_prefix=None, remote_group_id=None, remote_address_group_id=None)
    if field_ == "prefix":
        return replace(remote, remote_ip_prefix=draw(st.sampled_from(PREFIXES)))
    if field_ == "remote_group":
        return replace(remote, remote_group_id=draw(st.sampled_from(GROUP_IDS)))
    return replace(remote, remote_address_group_id=AG)


@st.composite
def sequences(draw: st.DrawFn) -> list[HostView]:
    views = [base()]
    for _ in range(draw(st.integers(1, 12))):
        views.append(draw(change(views[-1])))
    return views


def _for(view: HostView, host: str) -> HostView:
    return replace(view, host=host, underlay_ip=view.hosts[host])


@settings(max_examples=60, deadline=None)
@given(sequences())
def test_two_hosts_planned_in_turn_plan_each_view_as_from_nothing(views: list[HostView]) -> None:
    forget()
    warm = [(h, v, outputs(plan_host(_for(v, h)))) for v in views for h in ("h1", "h2")]
    for step, (host, view, got) in enumerate(warm):
        forget()
        want = outputs(plan_host(_for(view, host)))
        for name, a, b in zip(OUTPUTS, got, want, strict=True):
            assert a == b, f"step {step} ({host}): {name} differs:\n{_difference(a, b)}"


OUTPUTS = ("render", "state", "ruleset", "sources", "tags", "zones", "enforced", "firewall problems",
           "problems")


def _difference(warm: object, cold: object) -> str:
    """What only the warm plan and only the plan from nothing hold."""
    if isinstance(warm, str) and isinstance(cold, str):
        a, b = set(warm.splitlines()), set(cold.splitlines())
    elif isinstance(warm, dict) and isinstance(cold, dict):
        a, b = set(map(repr, warm.items())), set(map(repr, cold.items()))
    else:
        return f"warm {warm!r}\ncold {cold!r}"
    return f"warm only {sorted(a - b)[:6]}\ncold only {sorted(b - a)[:6]}"


def test_the_colliding_group_sets_shift_a_tag() -> None:
    """The premise of the collision changes above: C1's port takes C2's tag."""
    v = base()
    alone = replace(v, ports=[p for p in v.ports if C1 not in p.security_groups])
    forget()
    with_c1 = plan_host(replace(v, host="h1", ports=[*v.ports, vm(5, "h1", "10.0.0.5", [C1])]))
    forget()
    before = plan_host(alone)
    assert before.firewall is not None and with_c1.firewall is not None
    assert with_c1.firewall.tags[(C1,)] == before.firewall.tags[(C2,)]
    assert with_c1.firewall.tags[(C2,)] == before.firewall.tags[(C2,)] + 1


def test_three_hosts_planned_from_threads_at_once_plan_as_from_nothing() -> None:
    """As the bench's three agents in one process: each thread plans its
    host over a sequence of views, all at once."""
    views = [base()]
    views.append(replace(views[-1], security_group_rules=[
        *views[-1].security_group_rules, rule(40, WEB, protocol="tcp", port_range_min=443,
                                              port_range_max=443, remote_group_id=DEFAULT)]))
    views.append(replace(views[-1], ports=[replace(p, fixed_ips=(FixedIP("subnet-0", "10.0.0.33"),))
                                           if i == 2 else p for i, p in enumerate(views[-1].ports)]))
    views.append(replace(views[-1], security_groups=[replace(g, stateful=False) if g.id == C2 else g
                                                     for g in views[-1].security_groups]))
    forget()
    got: dict[tuple[str, int], object] = {}

    def agent(host: str) -> None:
        for _ in range(5):
            for i, v in enumerate(views):
                got[(host, i)] = outputs(plan_host(_for(v, host)))

    threads = [threading.Thread(target=agent, args=(h,)) for h in ("h1", "h2", "h3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (host, i), out in sorted(got.items()):
        forget()
        assert out == outputs(plan_host(_for(views[i], host))), (host, i)
