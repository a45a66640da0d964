"""Port status from a plan and what the kernel did with it.  Pure.

A local port is ACTIVE only when its device exists, is attached (up) to its
network's bridge, and nothing its network needs (bridge, VXLAN device, FDB,
the port's own attachment) was refused by the kernel in this pass.  It is
DOWN when its device is missing, administratively down, or something failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from overcast.linux import ApplyError, Attachment, FdbEntry, KernelState
from overcast.plan import HostPlan

ACTIVE = "ACTIVE"
DOWN = "DOWN"


@dataclass(frozen=True, slots=True)
class PortStatus:
    status: str
    reason: str = ""


def _devices_of(record: object) -> set[str]:
    if isinstance(record, Attachment):
        return {record.ifname, record.master}
    if isinstance(record, FdbEntry):
        return {record.dev}
    return {getattr(record, "name", "")}


def failed_devices(errors: Iterable[ApplyError]) -> dict[str, str]:
    """Device name -> the kernel's complaint, for every refused change."""
    out: dict[str, str] = {}
    for err in errors:
        for dev in _devices_of(err.change.obj):
            out.setdefault(dev, err.render())
    return out


def port_statuses(plan: HostPlan, observed: KernelState,
                  errors: Iterable[ApplyError]) -> dict[str, PortStatus]:
    """Status of every port this plan places on the host."""
    failed = failed_devices(errors)
    wanted = {a.ifname: a for a in plan.state.attachments}
    net_devices = _network_devices(plan)
    out = {}
    for port_id, dev in plan.port_devices.items():
        att = wanted.get(dev)
        if dev not in observed.devices_present:
            out[port_id] = PortStatus(DOWN, f"device {dev} does not exist")
        elif att is None or not att.up:
            out[port_id] = PortStatus(DOWN, "administratively down")
        else:
            broken = [failed[d] for d in {dev} | net_devices.get(att.master, set()) if d in failed]
            out[port_id] = PortStatus(DOWN, broken[0]) if broken else PortStatus(ACTIVE)
    return out


def _network_devices(plan: HostPlan) -> dict[str, set[str]]:
    """Bridge name -> the devices its network needs (bridge and its VXLAN)."""
    out: dict[str, set[str]] = {b.name: {b.name} for b in plan.state.bridges}
    vxlans = {v.name for v in plan.state.vxlans}
    for att in plan.state.attachments:
        if att.ifname in vxlans and att.master in out:
            out[att.master].add(att.ifname)
    return out


def problems_by_port(plan: HostPlan) -> Mapping[str, str]:
    return {p.path.split("/", 1)[1]: p.message for p in plan.problems if p.path.startswith("port/")}
