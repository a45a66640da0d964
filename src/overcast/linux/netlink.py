"""NetlinkKernel: the Kernel contract over rtnetlink, in the current network
namespace (the agent runs inside its host's namespace), or in a named one when
``netns`` is given (tests, tools).

Three sockets, all made in that namespace at the same moment, so they see the
same devices: the raw dump reader (observe), the raw batched writer (FDB
entries and attachments: the many changes) and pyroute2 (bridges and VXLAN
devices: create, set, delete, adopt; the rare changes).  Every change is
acknowledged before apply returns, so each one sees what the previous ones did.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkDumpInterrupted, NetlinkError

from overcast.linux.devices import disable_ipv6, entered_netns
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
from overcast.linux.rtnl import DumpInterrupted, FdbRow, LinkInfo, RtnlReader
from overcast.linux.rtnl_write import Request, RtnlWriter, fdb_request, link_set_request

AF_BRIDGE = 7
IFF_UP = 0x1
NTF_SELF = 0x2
EEXIST = 17
DUMP_ATTEMPTS = 5
T = TypeVar("T")


class NetlinkKernel:
    def __init__(self, netns: str | None = None) -> None:
        self._netns = netns
        # A missing namespace fails here (never created); a failure closes
        # the sockets already made.
        with entered_netns(netns), ExitStack() as made:
            self._rtnl = RtnlReader()
            made.callback(self._rtnl.close)
            self._writer = RtnlWriter()
            made.callback(self._writer.close)
            self._ipr = IPRoute()
            made.pop_all()
        self._indexes: dict[str, int] | None = None  # name -> ifindex during an apply
        self._observed: dict[str, int] | None = None  # name -> ifindex of the last observe

    def close(self) -> None:
        self._rtnl.close()
        self._writer.close()
        self._ipr.close()

    def __enter__(self) -> NetlinkKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- observe ------------------------------------------------------------
    def observe(self) -> KernelState:
        """A consistent snapshot, read with the raw dump reader: a dump
        interrupted by a concurrent change (NLM_F_DUMP_INTR) is retried.
        Its ifindexes serve the apply that follows (its changes are computed
        from this snapshot) instead of a links dump of its own."""

        def read() -> KernelState:
            links = self._rtnl.links()
            state = _state(links, self._rtnl.fdb)
            self._observed = {ln.name: ln.index for ln in links}
            return state

        self._observed = None
        return _retried(read)

    def observe_with_pyroute2(self) -> KernelState:
        """The same snapshot decoded by pyroute2: several times slower, kept
        as the reference the fast reader is tested against."""
        self._observed = None
        return _retried(lambda: _state([_link(m) for m in self._ipr.get_links()], self._fdb_pyroute2))

    def _fdb_pyroute2(self, ifindexes: Collection[int]) -> list[FdbRow]:
        return [
            FdbRow(msg["ifindex"], msg["flags"], str(msg.get("NDA_LLADDR")).lower(), msg.get("NDA_DST"))
            for msg in self._ipr.get_neighbours(family=AF_BRIDGE)
            if msg["ifindex"] in ifindexes
        ]

    # --- apply --------------------------------------------------------------
    def apply(self, changes: Sequence[Change]) -> list[ApplyError]:
        """FDB entries and attachments are queued and sent as one batch; a
        bridge or VXLAN change first flushes the queue (what comes before it
        is done before it), then goes through pyroute2 on its own."""
        # name -> ifindex: the last observe's, when nothing was applied since;
        # else one links dump (on first use)
        self._indexes, self._observed = self._observed, None
        batch = _Batch()
        for change in changes:
            try:
                request = self._request(change)
                if request is not None:
                    batch.add(change, request)
                    continue
                batch.errors += self._flush(batch)
                self._apply_link(change)
            except (NetlinkError, LookupError, ValueError, OSError) as exc:
                # one change's failure (read-only /proc/sys, an address that is
                # not one) is that change's error; the batch goes on
                batch.errors.append(ApplyError(change, _describe(exc)))
        batch.errors += self._flush(batch)
        order = {id(change): i for i, change in enumerate(changes)}
        return sorted(batch.errors, key=lambda err: order[id(err.change)])

    def _request(self, change: Change) -> Request | None:
        """The raw request of an FDB or attachment change; None for the others."""
        obj = change.obj
        if isinstance(obj, FdbEntry):
            op: Literal["append", "del"] = "del" if change.op == "delete" else "append"
            return fdb_request(op, self._index(obj.dev), obj.mac, obj.dst)
        if not isinstance(obj, Attachment):
            return None
        index = self._index(obj.ifname)
        if change.op == "delete":
            return link_set_request(index, master=0)
        master = self._index(obj.master)
        if not obj.ipv6:
            self._quiet(obj.ifname)  # before the request that sets it up is sent
        return link_set_request(index, master=master, mtu=obj.mtu, up=obj.up)

    def _flush(self, batch: _Batch) -> list[ApplyError]:
        """Send the queued requests; an error for each one the kernel refused
        (or for all of them when the batch could not be sent)."""
        changes, requests = batch.changes, batch.requests
        batch.changes, batch.requests = [], []
        if not requests:
            return []
        try:
            answers = self._writer.send(requests)
        except OSError as exc:
            reason = f"netlink batch failed ({exc}): outcome unknown until the next observe"
            return [ApplyError(change, reason) for change in changes]
        return [ApplyError(change, refusal.describe())
                for change, refusal in zip(changes, answers, strict=True) if refusal is not None]

    def _apply_link(self, change: Change) -> None:
        obj = change.obj
        assert isinstance(obj, Bridge | Vxlan)
        if change.op == "delete":
            self._ipr.link("del", index=self._index(obj.name))
            self._forget(obj.name)
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
        self._quiet(obj.name)
        self._set_link(obj)

    def _adoptable(self, obj: Bridge | Vxlan) -> bool:
        """A device with our name and kind but no mark: we crashed between
        creating it and marking it.  Anything else is not ours."""
        (msg,) = self._ipr.get_links(ifname=obj.name)
        link = _link(msg)
        kind = "bridge" if isinstance(obj, Bridge) else "vxlan"
        if link.kind != kind or link.alias:
            return False
        return not isinstance(obj, Vxlan) or _vxlan(link).identity() == obj.identity()

    def _set_link(self, obj: Bridge | Vxlan) -> None:
        state = "up" if obj.up else "down"
        extra: dict[str, Any] = {}
        if isinstance(obj, Bridge):  # repairs snooping switched on by hand, or by an adopter
            extra = {"kind": "bridge", "br_mcast_snooping": int(obj.mcast_snooping)}
            if not obj.ipv6:
                self._quiet(obj.name)
        self._ipr.link("set", index=self._index(obj.name), mtu=obj.mtu, ifalias=obj.alias,
                       state=state, **extra)

    def _quiet(self, dev: str) -> None:
        """No IPv6 on our devices and the taps we attach: no MLD, RS or DAD
        from the host into a tenant network.  Set before the device goes up."""
        with entered_netns(self._netns):
            disable_ipv6(dev)

    def _index(self, name: str) -> int:
        """The ifindex of ``name``: from the observe just before or one links
        dump per apply (a lookup per name cost ~3 ms, 7 ms per attached tap),
        then a lookup on a miss (devices created since).  A device replaced
        since then has a new ifindex (they are not reused at once): its
        requests are refused (ENODEV) and reported, never misdirected."""
        if self._indexes is None:
            self._indexes = {ln.name: ln.index for ln in _retried(self._rtnl.links)}
        found = self._indexes.get(name)
        if found is None:
            looked = self._ipr.link_lookup(ifname=name)
            if not looked:
                raise LookupError(f"{name}: no such device")
            found = self._indexes[name] = int(looked[0])
        return found

    def _forget(self, name: str) -> None:
        if self._indexes is not None:
            self._indexes.pop(name, None)


@dataclass
class _Batch:
    """Raw requests not yet sent, with their changes; errors so far."""

    changes: list[Change] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    errors: list[ApplyError] = field(default_factory=list)

    def add(self, change: Change, request: Request) -> None:
        self.changes.append(change)
        self.requests.append(request)


def _link_args(obj: Bridge | Vxlan) -> dict[str, Any]:
    if isinstance(obj, Bridge):
        # Snooping as the record says (off: flood multicast as the VXLAN
        # head-end replication does) and never a querier: no queries sent.
        return {"ifname": obj.name, "kind": "bridge", "mtu": obj.mtu,
                "br_mcast_snooping": int(obj.mcast_snooping), "br_mcast_querier": 0}
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


def _retried(read: Callable[[], T]) -> T:
    for attempt in range(DUMP_ATTEMPTS):
        try:
            return read()
        except (DumpInterrupted, NetlinkDumpInterrupted):
            if attempt == DUMP_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _state(links: list[LinkInfo], fdb: Callable[[Collection[int]], list[FdbRow]]) -> KernelState:
    by_index = {ln.index: ln.name for ln in links}
    owned = [ln for ln in links if is_owned(ln.name, ln.alias)]
    bridges = [Bridge(ln.name, ln.mtu, ln.alias, ln.up, ln.mcast_snooping, ln.ipv6)
               for ln in owned if ln.kind == "bridge"]
    vxlans = [_vxlan(ln) for ln in owned if ln.kind == "vxlan"]
    taps = [ln for ln in links if is_workload(ln.name)]
    attachments = [
        Attachment(ln.name, by_index.get(ln.master, ""), ln.mtu, ln.up, ln.ipv6)
        for ln in (*taps, *owned)
        if ln.kind != "bridge"
    ]
    vx_index = {ln.index: ln.name for ln in owned if ln.kind == "vxlan"}
    entries = [
        FdbEntry(vx_index[row.ifindex], row.mac.lower(), row.dst)
        for row in fdb(vx_index)
        if row.ifindex in vx_index and row.dst and row.flags & NTF_SELF
    ]
    return KernelState.of(
        bridges,
        vxlans,
        attachments,
        entries,
        devices_present=[t.name for t in taps],
        devices_up=[t.name for t in taps if t.up],
    )


def _vxlan(link: LinkInfo) -> Vxlan:
    if not link.vxlan_data:
        raise ValueError(f"{link.name}: no vxlan data")
    return Vxlan(link.name, link.vni, link.local_ip, link.mtu, link.alias, link.port, link.learning, link.up)


def _link(msg: Any) -> LinkInfo:
    """A LinkInfo from a pyroute2 RTM_NEWLINK message."""
    info = msg.get("IFLA_LINKINFO")
    data = info.get("IFLA_INFO_DATA") if info else None
    link = LinkInfo(
        index=msg["index"],
        name=msg.get("IFLA_IFNAME") or "",
        alias=msg.get("IFLA_IFALIAS") or "",
        mtu=msg.get("IFLA_MTU") or 0,
        up=bool(msg["flags"] & IFF_UP),
        master=msg.get("IFLA_MASTER") or 0,
        kind=(info.get("IFLA_INFO_KIND") if info else None) or "",
    )
    if link.kind == "vxlan" and data is not None:
        link.vxlan_data = True
        link.vni = int(data.get("IFLA_VXLAN_ID") or 0)
        link.local_ip = data.get("IFLA_VXLAN_LOCAL") or ""
        link.port = int(data.get("IFLA_VXLAN_PORT") or 0)
        link.learning = bool(data.get("IFLA_VXLAN_LEARNING"))
    elif link.kind == "bridge" and data is not None:
        link.mcast_snooping = bool(data.get("IFLA_BR_MCAST_SNOOPING"))
    spec = msg.get("IFLA_AF_SPEC")
    inet6 = spec.get("AF_INET6") if spec else None
    conf = inet6.get("IFLA_INET6_CONF") if inet6 else None
    link.ipv6 = conf is not None and not conf.get("disable_ipv6")
    return link
