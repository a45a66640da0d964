"""A rule whose remote is an address group (``remote_address_group_id``)
compiles to elements of the group's addresses of the rule's family; an
address added or removed changes exactly its own elements, on a warm plan
(the group set's elements kept from the last plan) as from scratch; the
connections of a removed address are condemned (swept) like any removed
remote; the agent's view carries the groups and their changes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from overcast.agent.view import ModelView
from overcast.model import keys
from overcast.model.types import AddressGroup, SecurityGroupRule
from overcast.plan import HostView
from overcast.plan.firewall import forget
from overcast.plan.firewall_admits import Flow, condemned
from overcast.plan.firewall_groupsets import CACHE
from overcast.plan.host import plan_host
from overcast.plan.subsystems.links import Attachment
from overcast.store.base import Event

from .scenarios import NET_A
from .test_firewall_golden import (
    DEFAULT,
    WEB,
    compiled,
    default_rules,
    elements,
    group,
    rule,
    vm,
    world,
)

AG = "a9000000-0000-4000-8000-0000000000a9"
ADDRESSES = ("10.1.0.0/24", "192.0.2.7/32", "2001:db8::/64")
SSH = rule(30, WEB, protocol="tcp", port_range_min=22, port_range_max=22, remote_address_group_id=AG)
PING6 = rule(31, WEB, ethertype="IPv6", protocol="ipv6-icmp", remote_address_group_id=AG)
SSH_ID, PING6_ID = SSH.id, PING6.id
SERVER = "10.0.0.1,2001:db8:1::1"


def scene(addresses: Sequence[str] = ADDRESSES,
          rules: Sequence[SecurityGroupRule] = (SSH, PING6)) -> HostView:
    view = world([vm(1, "h1", SERVER, (WEB,)), vm(2, "h1", "10.0.0.2")], [group(WEB), group(DEFAULT)],
                 [*default_rules(DEFAULT), *rules])
    return replace(view, address_groups=[AddressGroup(id=AG, addresses=tuple(addresses))])


def group_rules(view: HostView) -> list[str]:
    """The web group's rule elements (the default group's are the same in every scene)."""
    return [e for e in elements(compiled(view)).splitlines()
            if e.startswith(("inet in", "inet eg")) and "<3e>" in e]


def test_the_rule_is_the_groups_addresses_of_its_family() -> None:
    assert sorted(group_rules(scene())) == [
        f"inet in4_port 10.1.0.0/24 . 22 . 6 . <3e> # {SSH_ID}",
        f"inet in4_port 192.0.2.7 . 22 . 6 . <3e> # {SSH_ID}",
        f"inet in6_proto 2001:db8::/64 . 58 . <3e> # {PING6_ID}"]
    assert compiled(scene()).problems == ()


def test_an_empty_group_admits_nobody_and_is_no_problem() -> None:
    plan = compiled(scene(addresses=()))
    assert group_rules(scene(addresses=())) == []
    assert plan.problems == ()
    # a group the view does not hold (deleted meanwhile) admits nobody either
    gone = replace(scene(), address_groups=[])
    assert group_rules(gone) == [] and compiled(gone).problems == ()


def test_an_address_added_or_removed_changes_exactly_its_elements() -> None:
    """A sequence of changes through the warm plan of one host, each compared
    with the previous plan and with a plan from scratch."""
    steps = [ADDRESSES, (*ADDRESSES, "10.2.0.9/32"), ("10.1.0.0/24", "10.2.0.9/32", "2001:db8::/64"),
             ("10.2.0.9/32",), ADDRESSES]
    CACHE.clear()
    before = set(group_rules(scene(steps[0])))
    for addresses in steps[1:]:
        now = set(group_rules(scene(addresses)))  # warm: the group set is kept from the last plan
        CACHE.clear()
        assert now == set(group_rules(scene(addresses))), addresses  # from scratch
        v4 = {a.removesuffix("/32") for a in addresses if ":" not in a}
        assert {e.split()[2] for e in now if "in4_port" in e} == v4
        assert {e.split()[2] for e in now if "in6_proto" in e} == {a for a in addresses if ":" in a}
        changed = {e.split()[2] for e in now ^ before}
        old_v4 = {e.split()[2] for e in before if "in4_port" in e}
        old_v6 = {e.split()[2] for e in before if "in6_proto" in e}
        assert changed == (v4 ^ old_v4) | ({a for a in addresses if ":" in a} ^ old_v6)
        before = now


def test_the_rules_of_other_remotes_do_not_move() -> None:
    """Another rule of the group (a prefix) keeps its element whatever the address group holds."""
    other = rule(32, WEB, protocol="tcp", port_range_min=80, port_range_max=80,
                 remote_ip_prefix="198.51.100.0/24")
    kept = f"inet in4_port 198.51.100.0/24 . 80 . 6 . <3e> # {other.id}"
    for addresses in (ADDRESSES, ("10.3.0.0/16",), ()):
        assert kept in group_rules(scene(addresses, (SSH, PING6, other)))


def test_a_removed_address_condemns_its_connections() -> None:
    before, after = scene(), scene(("10.1.0.0/24", "2001:db8::/64"))
    zone = compiled(before).zones[NET_A]
    stays = Flow(zone, 4, "10.1.0.5", "10.0.0.1", 6, 40000, 22)
    goes = Flow(zone, 4, "192.0.2.7", "10.0.0.1", 6, 40001, 22)
    masters = {a.ifname: a.master for a in plan_host(after).state[Attachment]}
    assert condemned([stays, goes], compiled(before).ruleset, masters) == []
    assert condemned([stays, goes], compiled(after).ruleset, masters) == [goes]


def _put(key: str, obj: object, revision: int) -> Event:
    return Event("put", key, json.dumps(obj).encode(), revision)


def test_the_agents_view_carries_address_groups_and_their_changes() -> None:
    view = ModelView()
    view.load([], 1)
    ag = AddressGroup(id=AG, project_id="p", addresses=("10.1.0.0/24",))
    assert view.apply([_put(keys.obj("address_group", AG), ag.to_stored(), 2)])  # the plan's input
    assert view.host_view("h1", "198.18.0.1").address_groups == [ag]
    changed = ag.replace(addresses=("10.1.0.0/24", "10.2.0.0/24"))
    assert view.apply([_put(keys.obj("address_group", AG), changed.to_stored(), 3)])
    assert view.host_view("h1", "198.18.0.1").address_groups == [changed]
    assert view.apply([Event("delete", keys.obj("address_group", AG), b"", 4)])
    assert view.host_view("h1", "198.18.0.1").address_groups == []


def ingress4(view: HostView) -> list[str]:
    forget()
    return [ln.split(" # ")[0] for ln in elements(compiled(view)).splitlines()
            if ln.startswith("inet in4")]


def test_an_address_group_with_a_security_groups_id_does_not_replace_its_members() -> None:
    """Ids of the two kinds may be equal (an admin may choose them): a rule's
    remote group and remote address group are looked up apart."""
    view = world([vm(1, "h1", "10.0.0.1"), vm(2, "h2", "10.0.0.2")], [group(DEFAULT)],
                 default_rules(DEFAULT))
    members = ["inet in4_any 10.0.0.1 . <de>", "inet in4_any 10.0.0.2 . <de>"]
    assert ingress4(view) == members
    # an address group nobody's rule names, whose id happens to be the default group's
    clash = replace(view, address_groups=[AddressGroup(id=DEFAULT, addresses=("0.0.0.0/0",))])
    assert ingress4(clash) == members  # (was: 0.0.0.0/0, open to all)
