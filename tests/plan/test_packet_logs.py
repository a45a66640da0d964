"""Security group packet logs in the plan (``plan/firewall.py``): which
ports a log names, and the tags the kernel logs for each event."""

from __future__ import annotations

from dataclasses import replace

from overcast.model.types import NetworkLog
from overcast.plan.firewall import PortLog, packet_logs

from .test_firewall_golden import DB, DEFAULT, WEB, compiled, group, vm, world

LOG = "10600000-0000-4000-8000-00000000000"


def log(n: int, **kw: object) -> NetworkLog:
    return NetworkLog(id=f"{LOG}{n}", **kw)  # type: ignore[arg-type]


def test_a_log_names_a_port_a_group_or_its_projects_ports_and_all_is_both_events() -> None:
    a, b, c = (vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (DB,)),
               replace(vm(3, "h1", "10.0.0.3"), project_id="other"))
    logs = [log(1, resource_id=WEB, event="ACCEPT"), log(2, target_id=b.id, event="DROP"),
            log(3, event="DROP", project_id="other"), log(4, resource_id=DB, enabled=False),
            log(5, resource_type="other", resource_id=WEB)]
    assert packet_logs(logs, [a, b, c]) == {
        a.id: PortLog(("ACCEPT",), (f"{LOG}1",)),
        b.id: PortLog(("DROP",), (f"{LOG}2",)),
        c.id: PortLog(("DROP",), (f"{LOG}3",), "other")}
    both = packet_logs([log(1, resource_id=WEB), log(2, target_id=a.id, event="DROP")], [a])
    assert both == {a.id: PortLog(("ACCEPT", "DROP"), (f"{LOG}1", f"{LOG}2"))}
    assert packet_logs([], [a, b]) == {}


def test_the_kernel_logs_the_tags_of_the_logged_ports_group_sets_for_their_events() -> None:
    ports = [vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (DB,)),
             vm(3, "h1", "10.0.0.3", (DEFAULT,))]
    view = replace(world(ports, [group(WEB), group(DB), group(DEFAULT)], []),
                   network_logs=(log(1, resource_id=WEB), log(2, resource_id=DB, event="DROP")))
    plan = compiled(view)
    sets: dict[str, set[str]] = {}
    for e in plan.ruleset.elements:
        if e.set.startswith("log_"):
            sets.setdefault(e.set, set()).add(e.key)
    assert sets == {"log_accept": {str(plan.tags[(WEB,)])},
                    "log_drop": {str(plan.tags[(WEB,)]), str(plan.tags[(DB,)])}}
    assert set(plan.logged) == {ports[0].id, ports[1].id}
    # a port with port security off has no tag and is never logged
    off = replace(view, ports=[replace(p, port_security_enabled=False) for p in ports])
    assert compiled(off).logged == {}
