"""FDB: static forwarding entries on Overcast's VXLAN devices.

One entry per remote MAC (frames for it go to its host's underlay address)
and one head-end replication entry (``00:00:00:00:00:00``) per interested
remote host.  Nothing is learned from the wire.

Diff rules: entries are created and deleted, never updated; only entries on
owned VXLAN devices are deleted; entries of a device that the links diff
deletes or recreates go with the device (``DiffContext.gone``).
Observe: rows with a destination, of the device itself (``NTF_SELF``), on
owned VXLAN devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from overcast.plan.names import is_owned
from overcast.plan.raw import NTF_SELF, KernelIO, KernelRows
from overcast.plan.state import Change
from overcast.plan.subsystem import DiffContext, Subsystem
from overcast.plan.subsystems.links import Vxlan

BUM_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True, slots=True, order=True)
class FdbEntry:
    """Static FDB entry on a VXLAN device: frames for ``mac`` go to ``dst``.

    ``mac == BUM_MAC`` is head-end replication (broadcast, unknown unicast,
    multicast).
    """

    dev: str
    mac: str
    dst: str

    def render(self) -> str:
        return f"fdb {self.mac} dev {self.dev} dst {self.dst}"

    def devices(self) -> frozenset[str]:
        return frozenset((self.dev,))


def diff(d: DiffContext) -> None:
    owned = {v.name for v in d.observed[Vxlan] if is_owned(v.name, v.alias)}
    have = {e for e in d.observed[FdbEntry] if e.dev not in d.gone}
    want = set(d.desired[FdbEntry])
    for entry in want - have:
        d.put(entry, None)
    for entry in have - want:
        if entry.dev in owned:
            d.delete(entry)


def observe(rows: KernelRows) -> list[FdbEntry]:
    vxlans = {ln.index: ln.name for ln in rows.link_rows()
              if ln.kind == "vxlan" and is_owned(ln.name, ln.alias)}
    return [FdbEntry(vxlans[row.ifindex], row.mac.lower(), row.dst)
            for row in rows.fdb_rows(vxlans)
            if row.ifindex in vxlans and row.dst and row.flags & NTF_SELF]


def apply(io: KernelIO, change: Change) -> None:
    entry: FdbEntry = change.obj
    if change.op == "delete":
        io.fdb_del(entry.dev, entry.mac, entry.dst)
    else:
        io.fdb_add(entry.dev, entry.mac, entry.dst)


SUBSYSTEM = Subsystem("fdb", (FdbEntry,), diff, observe, apply)
