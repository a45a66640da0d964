"""The agent's view hands the planner the same tuple of rules until a rule
changes (so a pass whose rules did not change does not group them again),
and the plans of its views after rule events are the plans from nothing."""

from __future__ import annotations

import json

from overcast.agent.view import ModelView
from overcast.model import keys
from overcast.model.types import Resource
from overcast.plan import plan_host
from overcast.plan.firewall import forget
from overcast.store.base import Event, KeyValue

from .scenarios import HOSTS, NET_A, net
from .test_firewall_golden import DEFAULT, WEB, group, rule, vm
from .test_plan_incremental import outputs, rule_elements

HOST = "h1"


def put(obj: Resource, revision: int) -> Event:
    return Event("put", keys.obj(obj.KIND, obj.id), json.dumps(obj.to_stored()).encode(), revision)


def loaded() -> ModelView:
    objects: list[Resource] = [net(NET_A, 1001), vm(1, HOST, "10.0.0.1", [DEFAULT, WEB]),
                               vm(2, "h2", "10.0.0.2", [DEFAULT]), group(DEFAULT), group(WEB),
                               rule(1, DEFAULT, remote_group_id=DEFAULT), rule(2, DEFAULT, "egress"),
                               rule(3, WEB, protocol="tcp", port_range_min=22, port_range_max=22)]
    view = ModelView()
    view.load([KeyValue(keys.obj(o.KIND, o.id), json.dumps(o.to_stored()).encode(), 1, 1, 1)
               for o in objects], 1)
    view.apply([Event("put", keys.HOST + "h2", json.dumps({"underlay_ip": HOSTS["h2"]}).encode(), 2)])
    return view


def test_the_same_rules_are_the_same_tuple_until_a_rule_changes() -> None:
    view = loaded()
    first = view.host_view(HOST, HOSTS[HOST]).security_group_rules
    view.apply([put(vm(3, "h2", "10.0.0.3", [DEFAULT]), 3)])  # a port: the rules stay
    assert view.host_view(HOST, HOSTS[HOST]).security_group_rules is first
    view.apply([put(rule(4, WEB, protocol="udp"), 4)])
    after = view.host_view(HOST, HOSTS[HOST]).security_group_rules
    assert after is not first and len(after) == len(first) + 1
    view.apply([Event("delete", keys.obj("security_group_rule", rule(4, WEB).id), b"", 5)])
    assert sorted(r.id for r in view.host_view(HOST, HOSTS[HOST]).security_group_rules) == sorted(
        r.id for r in first)


def test_plans_after_rule_and_member_events_are_the_plans_from_nothing() -> None:
    view = loaded()
    events = [put(rule(4, WEB, protocol="udp", port_range_min=53, port_range_max=53), 3),
              put(vm(2, "h2", "10.0.0.9", [DEFAULT]), 4),  # a remote member's address
              put(rule(3, WEB, protocol="tcp", port_range_min=80, port_range_max=80), 5),
              Event("delete", keys.obj("security_group_rule", rule(4, WEB).id), b"", 6),
              Event("delete", keys.obj("port", vm(2, "h2", "10.0.0.2").id), b"", 7)]
    plan_host(view.host_view(HOST, HOSTS[HOST]))
    for event in events:
        view.apply([event])
        warm = plan_host(view.host_view(HOST, HOSTS[HOST]))
        assert warm.firewall is not None and rule_elements(warm.firewall)
        assert outputs(plan_host(view.host_view(HOST, HOSTS[HOST]))) == outputs(warm)
        forget()
        assert outputs(plan_host(view.host_view(HOST, HOSTS[HOST]))) == outputs(warm), event
