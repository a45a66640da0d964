"""Port status from a plan and what the kernel did with it.  Pure.

A local port is ACTIVE only when its device exists, the port is
administratively up, and nothing it needs (its device, its network's bridge
and VXLAN device — ``HostPlan.port_needs``) was refused by the kernel in this
pass.  It is DOWN when its device is missing, administratively down, or
something it needs failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from overcast.plan import HostPlan
from overcast.plan.state import ApplyError, KernelState

ACTIVE = "ACTIVE"
DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class PortStatus:
    status: str
    reason: str = ""


def failed_devices(errors: Iterable[ApplyError]) -> dict[str, str]:
    """Device name -> the kernel's complaint, for every refused change."""
    out: dict[str, str] = {}
    for err in errors:
        for dev in sorted(err.change.obj.devices()):
            out.setdefault(dev, err.render())
    return out


def port_statuses(plan: HostPlan, observed: KernelState,
                  errors: Iterable[ApplyError]) -> dict[str, PortStatus]:
    """Status of every port this plan places on the host."""
    failed = failed_devices(errors)
    out = {}
    for port_id, dev in plan.port_devices.items():
        if dev not in observed.devices_present:
            out[port_id] = PortStatus(DOWN, f"device {dev} does not exist")
        elif port_id in plan.ports_down:
            out[port_id] = PortStatus(DOWN, "administratively down")
        else:
            needs = plan.port_needs.get(port_id, frozenset((dev,)))
            broken = [failed[d] for d in sorted(needs) if d in failed]
            out[port_id] = PortStatus(DOWN, broken[0]) if broken else PortStatus(ACTIVE)
    return out


def problems_by_port(plan: HostPlan) -> Mapping[str, str]:
    return {p.path.split("/", 1)[1]: p.message for p in plan.problems if p.path.startswith("port/")}
