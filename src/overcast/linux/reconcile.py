"""diff(desired, observed) -> the minimal list of changes.  Pure.

Rules (the review checklist):

* Objects that are already right are untouched; updates happen in place
  (MTU, alias, up, master) and only VXLAN identity changes (VNI, local IP,
  port, learning) recreate a device.
* Only Overcast-owned bridges/VXLANs (owned name AND mark) are ever deleted;
  attachments are only removed from owned bridges; FDB entries only from
  owned VXLAN devices.
* Order: deletes first (fdb, attachments, vxlans, bridges), then creates and
  updates (bridges, vxlans, attachments, fdb).
* Workload devices (taps) are created by others: an attachment whose device
  does not exist yet is left pending (no change) until it appears.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from overcast.linux.records import (
    Attachment,
    Bridge,
    FdbEntry,
    KernelState,
    Record,
    Vxlan,
    is_owned,
    render_record,
)

Op = Literal["create", "update", "delete"]
_KIND_ORDER = {Bridge: 0, Vxlan: 1, Attachment: 2, FdbEntry: 3}


@dataclass(frozen=True, slots=True)
class Change:
    """One kernel operation.  ``obj`` is the desired object (create/update) or
    the observed one (delete); ``old`` is the observed object of an update."""

    op: Op
    obj: Record
    old: Record | None = None

    def render(self) -> str:
        return f"{self.op} {render_record(self.obj)}"


@dataclass
class _Diff:
    desired: KernelState
    observed: KernelState
    deletes: list[Change]
    changes: list[Change]
    gone: set[str]  # devices that will not exist (deleted) or be fresh (recreated)

    def delete(self, obj: Record) -> None:
        self.deletes.append(Change("delete", obj))

    def put(self, obj: Record, old: Record | None) -> None:
        self.changes.append(Change("create" if old is None else "update", obj, old))


def diff(desired: KernelState, observed: KernelState) -> list[Change]:
    """The changes that turn ``observed`` into ``desired`` (see module doc)."""
    d = _Diff(desired, observed, [], [], set())
    _diff_bridges(d)
    _diff_vxlans(d)
    _diff_attachments(d)
    _diff_fdb(d)
    deletes = sorted(d.deletes, key=lambda c: (-_KIND_ORDER[type(c.obj)], c.obj))
    changes = sorted(d.changes, key=lambda c: (_KIND_ORDER[type(c.obj)], c.obj))
    return deletes + changes


def _diff_bridges(d: _Diff) -> None:
    observed = {b.name: b for b in d.observed.bridges}
    wanted = {b.name for b in d.desired.bridges}
    for bridge in d.desired.bridges:
        old = observed.get(bridge.name)
        if old != bridge:
            d.put(bridge, old)
    for old in observed.values():
        if old.name not in wanted and is_owned(old.name, old.alias):
            d.delete(old)
            d.gone.add(old.name)


def _diff_vxlans(d: _Diff) -> None:
    observed = {v.name: v for v in d.observed.vxlans}
    wanted = {v.name for v in d.desired.vxlans}
    for vxlan in d.desired.vxlans:
        old = observed.get(vxlan.name)
        if old is not None and old.identity() != vxlan.identity() and is_owned(old.name, old.alias):
            d.delete(old)
            d.gone.add(old.name)
            old = None
        if old != vxlan:
            d.put(vxlan, old)
    for old in observed.values():
        if old.name not in wanted and is_owned(old.name, old.alias):
            d.delete(old)
            d.gone.add(old.name)


def _diff_attachments(d: _Diff) -> None:
    observed = {a.ifname: a for a in d.observed.attachments}
    created = {v.name for v in d.desired.vxlans} | {b.name for b in d.desired.bridges}
    wanted = {a.ifname for a in d.desired.attachments}
    for att in d.desired.attachments:
        old = None if att.ifname in d.gone else observed.get(att.ifname)
        if old is None and att.ifname not in created:
            continue  # workload device not there (yet): pending
        if old is None or not _attachment_ok(att, old):
            d.put(att, old)
    owned_bridges = {b.name for b in d.observed.bridges if is_owned(b.name, b.alias)}
    for old in observed.values():
        if old.ifname in wanted or old.master not in owned_bridges:
            continue
        if old.ifname not in d.gone and old.master not in d.gone:
            d.delete(old)


def _attachment_ok(want: Attachment, have: Attachment) -> bool:
    mtu_ok = want.mtu is None or want.mtu == have.mtu
    return (mtu_ok and want.master == have.master and want.up == have.up
            and want.ipv6 == have.ipv6)


def _diff_fdb(d: _Diff) -> None:
    owned = {v.name for v in d.observed.vxlans if is_owned(v.name, v.alias)}
    have = {e for e in d.observed.fdb if e.dev not in d.gone}
    want = set(d.desired.fdb)
    for entry in want - have:
        d.put(entry, None)
    for entry in have - want:
        if entry.dev in owned:
            d.delete(entry)
