"""Port status from a plan and what the kernel did with it.  Pure.

A local port is ACTIVE only when its device exists, the port is
administratively up, and everything it needs (its device, its network's
bridge and VXLAN device — ``HostPlan.port_needs``) is in the kernel as
desired after this pass: no record naming one of them was refused, and none
was left out (a record that is neither observed as desired nor applied in
this pass: the firewall's ruleset while its subsystem cannot be read, or an
attachment held back until the firewall's chains exist).  The firewall's
ruleset names every local port's tap (``NftRuleset.devices()``), so a port
is ACTIVE only once its firewall elements are in place; a firewall change
the kernel refused in part makes DOWN only the ports of the refused API
objects (``NftRuleset.refused_devices``).  It is DOWN when its
device is missing, administratively down, or something it needs failed or
is not in place yet.  A router's own port whose status this host reports
(``HostPlan.reported``: an interface, the gateway, the SNAT port, a
floating IP's port) is ACTIVE once the devices it needs here are in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from overcast.plan import HostPlan
from overcast.plan.names import is_workload
from overcast.plan.state import ApplyError, Change, KernelState
from overcast.plan.subsystems.dscp import DscpMarks
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.links import Attachment
from overcast.plan.subsystems.qos import QosIfb, Redirect, Shaper
from overcast.plan.subsystems.uplink_qos import Guarantee, UplinkRoot

ACTIVE = "ACTIVE"
DOWN = "DOWN"
# records whose refusal a port says in what it reports of its QoS (``overcast:qos``), not
# in its status: a limit or mark not in place does not keep the VM off its network (as in
# Neutron, whose QoS drivers only log)
QOS_RECORDS = (QosIfb, Shaper, Redirect, DscpMarks, UplinkRoot, Guarantee)


@dataclass(frozen=True, slots=True)
class PortStatus:
    status: str
    reason: str = ""


def failed_devices(errors: Iterable[ApplyError]) -> dict[str, str]:
    """Device name -> the kernel's complaint, for every refused change."""
    out: dict[str, str] = {}
    for err in errors:
        if isinstance(err.change.obj, QOS_RECORDS):
            continue
        narrowed = _narrowed(err)
        if narrowed is not None:  # a firewall change refused in part: only what it concerns
            for dev, why in sorted(narrowed.items()):
                out.setdefault(dev, why)
            continue
        for dev in sorted(err.change.obj.devices()):
            out.setdefault(dev, err.render())
    return out


def _narrowed(err: ApplyError) -> dict[str, str] | None:
    obj = err.change.obj
    if err.refused and isinstance(obj, NftRuleset) and err.change.op != "delete":
        return obj.refused_devices(dict(err.refused), err.change.old)
    return None


def missing_devices(plan: HostPlan, observed: KernelState, changes: Iterable[Change],
                    errors: Iterable[ApplyError]) -> dict[str, str]:
    """Port device -> why a desired record naming it is not in the kernel
    after this pass although nothing refused it.  Attachments of workload
    devices that do not exist are left out (those ports wait for their
    device)."""
    refused = {e.change for e in errors}
    applied = {c.obj for c in changes if c.op != "delete" and c not in refused}
    # refused in part: the refused objects are failed devices, everything else is in place
    applied |= {e.change.obj for e in errors if _narrowed(e) is not None}
    ports = frozenset(plan.port_devices.values()).union(*plan.reported.values())
    unread = dict(observed.unobserved)
    out: dict[str, str] = {}
    for record in plan.state.records - observed.records - applied:
        if isinstance(record, QOS_RECORDS):
            continue
        if isinstance(record, Attachment):
            if is_workload(record.ifname) and record.ifname not in observed.devices_present:
                continue
            why = f"{record.ifname} is not attached to {record.master} yet (its firewall first)"
        elif isinstance(record, NftRuleset):
            why = "firewall rules not in place" + (f": {unread['firewall']}"
                                                   if "firewall" in unread else "")
        else:
            why = f"not in place: {record.render()}"
        for dev in sorted(record.devices() & ports):
            out.setdefault(dev, why)
    return out


def qos_short(plan: HostPlan, observed: KernelState, changes: Iterable[Change],
              errors: Iterable[ApplyError]) -> dict[str, list[tuple[object, str]]]:
    """Port device -> its QoS records that are not in the kernel after this
    pass, each with why (the kernel's refusal, or not in place)."""
    errors = list(errors)
    refused = {e.change for e in errors}
    applied = {c.obj for c in changes if c.op != "delete" and c not in refused}
    out: dict[str, list[tuple[object, str]]] = {}
    for err in errors:
        if isinstance(err.change.obj, QOS_RECORDS) and err.change.op != "delete":
            for dev in sorted(err.change.obj.devices()):
                out.setdefault(dev, []).append((err.change.obj, err.render()))
    failed = {e.change.obj for e in errors}
    for record in plan.state.records - observed.records - applied - failed:
        if isinstance(record, QOS_RECORDS):
            for dev in sorted(record.devices()):
                out.setdefault(dev, []).append((record, f"not in place: {record.render()}"))
    return out


def port_statuses(plan: HostPlan, observed: KernelState, errors: Iterable[ApplyError],
                  changes: Iterable[Change] = ()) -> dict[str, PortStatus]:
    """Status of every port this plan places on the host."""
    errors = list(errors)
    failed = failed_devices(errors)
    missing = missing_devices(plan, observed, changes, errors)
    out = {}
    for port_id, dev in plan.port_devices.items():
        if dev not in observed.devices_present:
            out[port_id] = PortStatus(DOWN, f"device {dev} does not exist")
        elif port_id in plan.ports_down:
            out[port_id] = PortStatus(DOWN, "administratively down")
        else:
            needs = plan.port_needs.get(port_id, frozenset((dev,)))
            broken = [failed[d] for d in sorted(needs) if d in failed]
            broken += [missing[d] for d in sorted(needs) if d in missing]
            out[port_id] = PortStatus(DOWN, broken[0]) if broken else PortStatus(ACTIVE)
    for port_id, needs in plan.reported.items():  # a router's own: no workload device
        broken = [failed[d] for d in sorted(needs) if d in failed]
        broken += [missing[d] for d in sorted(needs) if d in missing]
        out[port_id] = PortStatus(DOWN, broken[0]) if broken else PortStatus(ACTIVE)
    return out


def problems_by_port(plan: HostPlan) -> Mapping[str, str]:
    return {p.path.split("/", 1)[1]: p.message for p in plan.problems if p.path.startswith("port/")}
