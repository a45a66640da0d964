"""Announcements: a gratuitous ARP for every floating IP that arrives on a
host, sent once its device can carry it (``docs/routers.md``).

A floating IP's address is on the router's ``qf-`` device (one with port
forwardings: a ``/32`` on the gateway's ``qg-`` device); the external
network learns where it now lives from a gratuitous ARP (an ARP request
for the address from itself, which a Linux neighbour table accepts even
within its locktime).  Sent from the routers subsystem the moment the
address is added, it would be lost whenever the device is new: its host
side joins the external bridge only in the links subsystem, later in the
same pass.  So an announcement is a record of its own, after links: it is
observed as made when the address is on its device and the device's host
side is attached to a bridge (nothing else of a sent ARP remains to be
seen), so it is made in the pass where one of them was missing, after
both are in place, and never again while they stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from overcast.plan.names import (
    ROUTER_FIP_PREFIX,
    ROUTER_PORT_PREFIX,
    is_floating_address,
    router_of_mark,
)
from overcast.plan.raw import KernelIO, KernelRows
from overcast.plan.state import Change
from overcast.plan.subsystem import DiffContext, Subsystem


@dataclass(frozen=True, slots=True, order=True)
class Announcement:
    netns: str
    dev: str
    ip: str

    def render(self) -> str:
        return f"announce {self.ip} from {self.dev} in {self.netns}"

    def devices(self) -> frozenset[str]:
        return frozenset()


def diff(d: DiffContext) -> None:
    observed = set(d.observed[Announcement])
    for obj in d.desired[Announcement]:
        if obj not in observed:
            d.put(obj, None)  # nothing to delete: an ARP sent is gone


def observe(rows: KernelRows) -> list[Announcement]:
    attached = {ln.name for ln in rows.link_rows() if ln.master}
    out = []
    for ns in rows.netns_rows():
        if router_of_mark(ns.mark) is None:
            continue
        for address in ns.addresses:
            peer = ROUTER_PORT_PREFIX + address.dev[len(ROUTER_FIP_PREFIX):]
            if is_floating_address(address.dev, address.cidr) and peer in attached:
                out.append(Announcement(ns.name, address.dev, address.cidr.split("/")[0]))
    return out


def apply(io: KernelIO, change: Change) -> None:
    obj = change.obj
    if change.op != "delete":
        io.ns_garp(obj.netns, obj.dev, obj.ip)


SUBSYSTEM = Subsystem("announce", (Announcement,), diff, observe, apply)
