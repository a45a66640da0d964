"""NetlinkKernel: the Kernel contract over rtnetlink (pyroute2), in the current
network namespace (the agent runs inside its host's namespace), or in a named
one when ``netns`` is given (tests, tools).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkDumpInterrupted, NetlinkError

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

AF_BRIDGE = 7
IFF_UP = 0x1
NTF_SELF = 0x2
EEXIST = 17
DUMP_ATTEMPTS = 5


class NetlinkKernel:
    def __init__(self, netns: str | None = None) -> None:
        self._ipr = IPRoute(netns=netns, flags=0) if netns else IPRoute()

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> NetlinkKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- observe ------------------------------------------------------------
    def observe(self) -> KernelState:
        """A consistent snapshot: a dump interrupted by a concurrent change
        (NLM_F_DUMP_INTR) is retried."""
        for attempt in range(DUMP_ATTEMPTS):
            try:
                return self._observe()
            except NetlinkDumpInterrupted:
                if attempt == DUMP_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _observe(self) -> KernelState:
        links = [_Link(msg) for msg in self._ipr.get_links()]
        by_index = {ln.index: ln.name for ln in links}
        owned = [ln for ln in links if is_owned(ln.name, ln.alias)]
        bridges = [Bridge(ln.name, ln.mtu, ln.alias, ln.up) for ln in owned if ln.kind == "bridge"]
        vxlans = [ln.vxlan() for ln in owned if ln.kind == "vxlan"]
        taps = [ln for ln in links if is_workload(ln.name)]
        attachments = [
            Attachment(ln.name, by_index.get(ln.master, ""), ln.mtu, ln.up)
            for ln in (*taps, *owned)
            if ln.kind != "bridge"
        ]
        vx_index = {ln.index: ln.name for ln in owned if ln.kind == "vxlan"}
        return KernelState.of(
            bridges,
            vxlans,
            attachments,
            self._fdb(vx_index),
            devices_present=[t.name for t in taps],
            devices_up=[t.name for t in taps if t.up],
        )

    def _fdb(self, vx_index: dict[int, str]) -> list[FdbEntry]:
        entries = []
        for msg in self._ipr.get_neighbours(family=AF_BRIDGE):
            dev, dst = vx_index.get(msg["ifindex"]), msg.get("NDA_DST")
            if dev and dst and msg["flags"] & NTF_SELF:
                entries.append(FdbEntry(dev, str(msg.get("NDA_LLADDR")).lower(), dst))
        return entries

    # --- apply --------------------------------------------------------------
    def apply(self, changes: Sequence[Change]) -> list[ApplyError]:
        errors = []
        for change in changes:
            try:
                self._apply_one(change)
            except (NetlinkError, LookupError, ValueError) as exc:
                errors.append(ApplyError(change, _describe(exc)))
        return errors

    def _apply_one(self, change: Change) -> None:
        obj = change.obj
        if isinstance(obj, FdbEntry):
            cmd = "del" if change.op == "delete" else "append"
            self._ipr.fdb(cmd, ifindex=self._index(obj.dev), lladdr=obj.mac, dst=obj.dst)
        elif isinstance(obj, Attachment):
            self._attach(obj, detach=change.op == "delete")
        elif change.op == "delete":
            self._ipr.link("del", index=self._index(obj.name))
        elif change.op == "create":
            self._create(obj)
        else:
            self._set_link(obj)

    def _create(self, obj: Bridge | Vxlan) -> None:
        try:
            self._ipr.link("add", **_link_args(obj))
        except NetlinkError as exc:
            if exc.code != EEXIST or not self._adoptable(obj):
                raise
        self._set_link(obj)

    def _adoptable(self, obj: Bridge | Vxlan) -> bool:
        """A device with our name and kind but no mark: we crashed between
        creating it and marking it.  Anything else is not ours."""
        (msg,) = self._ipr.get_links(ifname=obj.name)
        link = _Link(msg)
        kind = "bridge" if isinstance(obj, Bridge) else "vxlan"
        if link.kind != kind or link.alias:
            return False
        return not isinstance(obj, Vxlan) or link.vxlan().identity() == obj.identity()

    def _set_link(self, obj: Bridge | Vxlan) -> None:
        state = "up" if obj.up else "down"
        self._ipr.link("set", index=self._index(obj.name), mtu=obj.mtu, ifalias=obj.alias, state=state)

    def _attach(self, att: Attachment, detach: bool) -> None:
        index = self._index(att.ifname)
        if detach:
            self._ipr.link("set", index=index, master=0)
            return
        args: dict[str, Any] = {"master": self._index(att.master)}
        if att.mtu is not None:
            args["mtu"] = att.mtu
        self._ipr.link("set", index=index, state="up" if att.up else "down", **args)

    def _index(self, name: str) -> int:
        found = self._ipr.link_lookup(ifname=name)
        if not found:
            raise LookupError(f"{name}: no such device")
        return int(found[0])


def _link_args(obj: Bridge | Vxlan) -> dict[str, Any]:
    if isinstance(obj, Bridge):
        return {"ifname": obj.name, "kind": "bridge", "mtu": obj.mtu}
    return {
        "ifname": obj.name,
        "kind": "vxlan",
        "mtu": obj.mtu,
        "vxlan_id": obj.vni,
        "vxlan_local": obj.local_ip,
        "vxlan_port": obj.port,
        "vxlan_learning": int(obj.learning),
    }


def _describe(exc: Exception) -> str:
    if isinstance(exc, NetlinkError):
        return f"netlink error {exc.code}: {exc.args[1] if len(exc.args) > 1 else exc}"
    return str(exc)


class _Link:
    """The fields of one RTM_NEWLINK message that the records need."""

    def __init__(self, msg: Any) -> None:
        self.index: int = msg["index"]
        self.name: str = msg.get("IFLA_IFNAME") or ""
        self.alias: str = msg.get("IFLA_IFALIAS") or ""
        self.mtu: int = msg.get("IFLA_MTU") or 0
        self.up: bool = bool(msg["flags"] & IFF_UP)
        self.master: int = msg.get("IFLA_MASTER") or 0
        info = msg.get("IFLA_LINKINFO")
        self.kind: str = (info.get("IFLA_INFO_KIND") if info else None) or ""
        self._data = info.get("IFLA_INFO_DATA") if info else None

    def vxlan(self) -> Vxlan:
        data = self._data
        if data is None:
            raise ValueError(f"{self.name}: no vxlan data")
        return Vxlan(
            name=self.name,
            vni=int(data.get("IFLA_VXLAN_ID") or 0),
            local_ip=data.get("IFLA_VXLAN_LOCAL") or "",
            mtu=self.mtu,
            alias=self.alias,
            port=int(data.get("IFLA_VXLAN_PORT") or 0),
            learning=bool(data.get("IFLA_VXLAN_LEARNING")),
            up=self.up,
        )
