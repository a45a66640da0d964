"""FakeKernel: the Kernel contract in memory, with the kernel's own side
effects (deleting a device drops its FDB and detaches its ports; a device
that does not exist cannot be attached; names are unique).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from overcast.linux.kernel import ApplyError
from overcast.linux.reconcile import Change
from overcast.linux.records import (
    Attachment,
    Bridge,
    FdbEntry,
    KernelState,
    Vxlan,
    is_owned,
    is_workload,
)


class FakeKernelError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class FakeLink:
    name: str
    kind: str  # bridge | vxlan | tap | other
    mtu: int = 1500
    alias: str = ""
    up: bool = False
    master: str = ""
    vxlan: Vxlan | None = None
    mcast_snooping: bool = True  # the kernel's default for a new bridge
    ipv6: bool = True  # the kernel's default for a new device


class FakeKernel:
    def __init__(self) -> None:
        self.links: dict[str, FakeLink] = {}
        self.fdb: set[FdbEntry] = set()
        self.applied: list[Change] = []

    # --- what the outside world does (QEMU, the lab, an operator) ---------
    def add_device(self, name: str, kind: str = "tap", mtu: int = 1500, alias: str = "") -> None:
        self._absent(name)
        self.links[name] = FakeLink(name, kind, mtu, alias)

    def set_link(self, name: str, **changes: object) -> None:
        self.links[name] = replace(self.links[name], **changes)  # type: ignore[arg-type]

    def remove_device(self, name: str) -> None:
        self._remove(name)

    # --- Kernel contract ----------------------------------------------------
    def observe(self) -> KernelState:
        owned = [ln for ln in self.links.values() if is_owned(ln.name, ln.alias)]
        bridges = [Bridge(ln.name, ln.mtu, ln.alias, ln.up, ln.mcast_snooping, ln.ipv6)
                   for ln in owned if ln.kind == "bridge"]
        vxlans = [_vxlan(ln) for ln in owned if ln.kind == "vxlan"]
        taps = [ln for ln in self.links.values() if is_workload(ln.name)]
        attached = [Attachment(ln.name, ln.master, ln.mtu, ln.up, ln.ipv6)
                    for ln in (*owned, *taps)]
        owned_vx = {v.name for v in vxlans}
        return KernelState.of(
            bridges,
            vxlans,
            [a for a in attached if a.master or is_workload(a.ifname) or a.ifname in owned_vx],
            [e for e in self.fdb if e.dev in owned_vx],
            devices_present=[t.name for t in taps],
            devices_up=[t.name for t in taps if t.up],
        )

    def apply(self, changes: Sequence[Change]) -> list[ApplyError]:
        errors = []
        for change in changes:
            try:
                self._apply_one(change)
                self.applied.append(change)
            except (FakeKernelError, KeyError) as exc:
                errors.append(ApplyError(change, str(exc)))
        return errors

    # --- internals ------------------------------------------------------------
    def _apply_one(self, change: Change) -> None:
        obj = change.obj
        if change.op == "delete":
            self._delete(obj)
        elif isinstance(obj, Bridge):
            self._put_link(change, FakeLink(obj.name, "bridge", obj.mtu, obj.alias, obj.up,
                                            mcast_snooping=obj.mcast_snooping, ipv6=obj.ipv6))
        elif isinstance(obj, Vxlan):
            # IPv6 off from creation on, as NetlinkKernel does; its attachment keeps it so
            link = FakeLink(obj.name, "vxlan", obj.mtu, obj.alias, obj.up, vxlan=obj, ipv6=False)
            self._put_link(change, link)
        elif isinstance(obj, Attachment):
            self._attach(obj)
        else:
            self._link(obj.dev)
            if change.op == "create" and obj in self.fdb:
                raise FakeKernelError(f"fdb entry {obj} exists")
            self.fdb.add(obj)

    def _put_link(self, change: Change, link: FakeLink) -> None:
        if change.op == "create":
            self._absent(link.name)
            if link.vxlan is not None and self._vni_taken(link.vxlan):
                raise FakeKernelError(f"{link.name}: a vxlan with VNI {link.vxlan.vni} exists")
            self.links[link.name] = link
            return
        old = self._link(link.name)
        if old.kind != link.kind:
            raise FakeKernelError(f"{link.name} is a {old.kind}")
        if link.vxlan is not None and old.vxlan is not None:
            if link.vxlan.identity() != old.vxlan.identity():
                raise FakeKernelError(f"{link.name}: vxlan identity cannot change in place")
        # an update leaves a VXLAN device's IPv6 alone (its attachment governs it)
        ipv6 = old.ipv6 if link.kind == "vxlan" else link.ipv6
        self.links[link.name] = replace(link, master=old.master, ipv6=ipv6)

    def _attach(self, att: Attachment) -> None:
        dev = self._link(att.ifname)
        if self._link(att.master).kind != "bridge":
            raise FakeKernelError(f"{att.master} is not a bridge")
        mtu = dev.mtu if att.mtu is None else att.mtu
        self.links[att.ifname] = replace(dev, master=att.master, mtu=mtu, up=att.up, ipv6=att.ipv6)

    def _delete(self, obj: Bridge | Vxlan | Attachment | FdbEntry) -> None:
        if isinstance(obj, FdbEntry):
            if obj not in self.fdb:
                raise FakeKernelError(f"no fdb entry {obj}")
            self.fdb.discard(obj)
        elif isinstance(obj, Attachment):
            self.links[obj.ifname] = replace(self._link(obj.ifname), master="")
        else:
            self._link(obj.name)
            self._remove(obj.name)

    def _remove(self, name: str) -> None:
        self._link(name)
        del self.links[name]
        self.fdb = {e for e in self.fdb if e.dev != name}
        for other in list(self.links.values()):
            if other.master == name:
                self.links[other.name] = replace(other, master="")

    def _vni_taken(self, vx: Vxlan) -> bool:
        return any(
            ln.vxlan is not None and (ln.vxlan.vni, ln.vxlan.port) == (vx.vni, vx.port)
            for ln in self.links.values()
        )

    def _link(self, name: str) -> FakeLink:
        if name not in self.links:
            raise FakeKernelError(f"{name}: no such device")
        return self.links[name]

    def _absent(self, name: str) -> None:
        if name in self.links:
            raise FakeKernelError(f"{name}: file exists")


def _vxlan(link: FakeLink) -> Vxlan:
    assert link.vxlan is not None
    return replace(link.vxlan, mtu=link.mtu, alias=link.alias, up=link.up)
