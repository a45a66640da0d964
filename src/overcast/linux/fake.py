"""FakeKernel: the Kernel contract in memory, below the subsystems.

It holds what a kernel holds — links and FDB rows — and implements the same
read (:class:`overcast.plan.raw.KernelRows`) and write
(:class:`overcast.plan.raw.KernelIO`) primitives as the real driver, with the
kernel's own side effects: names are unique, one VXLAN device per VNI and
port, a new device is down with IPv6 and (bridges) multicast snooping on,
deleting a device drops its FDB rows and detaches its ports, a device that
does not exist cannot be attached; an nftables ruleset
(:class:`overcast.linux.fake_nft.FakeNft`); and traffic control as the
qos subsystem uses it (``tc_*``): deleting a qdisc takes its classes and
filters along, deleting a device its qdiscs, and a redirect to it loses its
target.
``observe`` and ``apply`` are the same
subsystem code the driver runs (:mod:`overcast.plan.diff`), so what the
non-root tests check is what runs on a host.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from overcast.linux.fake_conntrack import FakeConntrack
from overcast.linux.fake_netns import FakeNamespaces
from overcast.linux.fake_nft import FakeKernelError, FakeNft
from overcast.plan import diff as steps
from overcast.plan.firewall_admits import Flow
from overcast.plan.raw import (
    EEXIST,
    NTF_SELF,
    TC_H_INGRESS,
    TC_H_INGRESS_PARENT,
    TC_H_ROOT,
    FdbRow,
    KernelRefusal,
    Link,
    LinkExists,
    Netns,
    NsRule,
    TcClass,
    TcFilter,
    TcQdisc,
    owned_nft_rows,
)
from overcast.plan.state import ApplyError, Change, KernelState
from overcast.plan.subsystem import Subsystem
from overcast.plan.subsystems import SUBSYSTEMS

__all__ = ["FakeFdb", "FakeKernel", "FakeKernelError", "FakeLink", "FakeNft"]

@dataclass(frozen=True, slots=True)
class FakeLink:
    name: str
    kind: str  # bridge | vxlan | tap | other
    mtu: int = 1500
    alias: str = ""
    up: bool = False
    master: str = ""  # name of the master device ("" : none)
    index: int = 0
    group: int = 0  # interface group (IFLA_GROUP)
    vni: int = 0  # vxlan only, as are the three below
    local_ip: str = ""
    port: int = 0
    learning: bool = True
    mcast_snooping: bool = True  # the kernel's default for a new bridge
    nf_call_iptables: bool = False  # br_netfilter per bridge: off on a new bridge
    nf_call_ip6tables: bool = False
    ipv6: bool = True  # the kernel's default for a new device


@dataclass(frozen=True, slots=True, order=True)
class FakeFdb:
    dev: str
    mac: str
    dst: str


class FakeKernel:
    def __init__(self, subsystems: Sequence[Subsystem] = SUBSYSTEMS) -> None:
        self.links: dict[str, FakeLink] = {}
        self.fdb: set[FakeFdb] = set()
        self.nftables = FakeNft()
        self.conntrack = FakeConntrack()
        self.namespaces = FakeNamespaces()  # the router namespaces
        self.qdiscs: dict[tuple[str, int], TcQdisc] = {}  # (dev, parent) -> its qdisc
        self.tc_classes: dict[tuple[str, int], TcClass] = {}  # (dev, handle) -> htb class
        self.tc_filters: dict[tuple[str, int], TcFilter] = {}  # (dev, prio): on its ingress
        # (dev, parent, prio, handle) -> a u32 filter with a class id on a root qdisc
        self.tc_classifiers: dict[tuple[str, int, int, int], TcFilter] = {}
        self.subsystems = subsystems
        self._next_index = 1

    # --- what the outside world does (QEMU, the lab, an operator) ---------
    def add_device(self, name: str, kind: str = "tap", mtu: int = 1500, alias: str = "") -> None:
        self._absent(name)
        self.links[name] = FakeLink(name, kind, mtu, alias, index=self._index())

    def set_link(self, name: str, **changes: object) -> None:
        self.links[name] = replace(self.links[name], **changes)  # type: ignore[arg-type]

    def remove_device(self, name: str) -> None:
        self._remove(name)

    # --- Kernel contract ----------------------------------------------------
    def observe(self, fresh: bool = False) -> KernelState:  # noqa: ARG002 - always read
        return steps.observe(self, self.subsystems)

    def apply(self, changes: Sequence[Change]) -> list[ApplyError]:
        return steps.apply(self, changes, (KernelRefusal, KeyError), subsystems=self.subsystems)

    # --- KernelRows -------------------------------------------------------------
    def link_rows(self) -> list[Link]:
        index = {ln.name: ln.index for ln in self.links.values()}
        return [_row(ln, index.get(ln.master, 0)) for ln in self.links.values()]

    def fdb_rows(self, ifindexes: Collection[int]) -> list[FdbRow]:
        index = {ln.name: ln.index for ln in self.links.values()}
        return [FdbRow(index[e.dev], NTF_SELF, e.mac, e.dst) for e in sorted(self.fdb)
                if index.get(e.dev) in ifindexes]

    def nft_rows(self) -> list[dict[str, Any]]:
        return owned_nft_rows(self.nftables.rows())

    def netns_rows(self) -> list[Netns]:
        return [space.row() for _, space in sorted(self.namespaces.spaces.items())]

    def tc_rows(self, devices: Collection[str]) -> list[TcQdisc | TcClass | TcFilter]:
        """As the driver reads them: per device its qdiscs (not the kernel's
        default ones, which have handle 0 and are not modelled), classes, filters."""
        rows: list[TcQdisc | TcClass | TcFilter] = []
        for dev in dict.fromkeys(devices):
            if dev in self.links:
                rows += sorted((q for (d, _), q in self.qdiscs.items() if d == dev),
                               key=lambda q: (q.parent != TC_H_ROOT, q.parent))  # root first
                classes = [c for (d, _), c in sorted(self.tc_classes.items()) if d == dev]
                rows += classes
                rows += [f for (d, _), f in sorted(self.tc_filters.items()) if d == dev]
                rows += self._classifier_rows(dev, classes)
        return rows

    def _classifier_rows(self, dev: str, classes: list[TcClass]) -> list[TcFilter]:
        """As the driver reads them: only on a root htb with a class besides its default."""
        root = self.qdiscs.get((dev, TC_H_ROOT))
        if root is None or root.kind != "htb" or all(
                c.handle == root.handle | root.default for c in classes):
            return []
        return [f for (d, parent, _, _), f in sorted(self.tc_classifiers.items())
                if d == dev and parent == root.handle]

    # --- KernelIO -----------------------------------------------------------------
    def link_add(self, name: str, kind: str, mtu: int, info: dict[str, int | str]) -> None:
        if name in self.links:
            raise LinkExists(f"netlink error {EEXIST}: File exists")
        link = FakeLink(name, kind, mtu, index=self._index())
        if kind == "bridge":
            link = replace(link, mcast_snooping=bool(info.get("mcast_snooping", 1)),
                           nf_call_iptables=bool(info.get("nf_call_iptables", 0)),
                           nf_call_ip6tables=bool(info.get("nf_call_ip6tables", 0)))
        elif kind == "vxlan":
            link = replace(link, vni=int(info["vni"]), local_ip=str(info["local"]),
                           port=int(info["port"]), learning=bool(info.get("learning", 1)))
            if self._vni_taken(link):
                raise FakeKernelError(f"{name}: a vxlan with VNI {link.vni} exists")
        self.links[name] = link

    def link_get(self, name: str) -> Link | None:
        link = self.links.get(name)
        return None if link is None else _row(link, 0)

    def link_set(self, name: str, mtu: int, alias: str, up: bool,
                 mcast_snooping: bool | None = None,
                 nf_call: tuple[bool, bool] | None = None) -> None:
        link = replace(self._link(name), mtu=mtu, alias=alias, up=up)
        if (mcast_snooping is not None or nf_call is not None) and link.kind != "bridge":
            raise FakeKernelError(f"{name} is a {link.kind}, not a bridge")
        if mcast_snooping is not None:
            link = replace(link, mcast_snooping=mcast_snooping)
        if nf_call is not None:
            link = replace(link, nf_call_iptables=nf_call[0], nf_call_ip6tables=nf_call[1])
        self.links[name] = link

    def link_del(self, name: str) -> None:
        self._remove(name)

    def port_set(self, name: str, master: str, mtu: int | None = None,
                 up: bool | None = None, group: int | None = None) -> None:
        dev = self._link(name)
        if master and self._link(master).kind != "bridge":
            raise FakeKernelError(f"{master} is not a bridge")
        self.links[name] = replace(dev, master=master, mtu=dev.mtu if mtu is None else mtu,
                                   up=dev.up if up is None else up,
                                   group=dev.group if group is None else group)

    def fdb_add(self, dev: str, mac: str, dst: str) -> None:
        self._link(dev)
        entry = FakeFdb(dev, mac, dst)
        if entry in self.fdb:
            raise FakeKernelError(f"fdb entry {mac} dev {dev} dst {dst} exists")
        self.fdb.add(entry)

    def fdb_del(self, dev: str, mac: str, dst: str) -> None:
        entry = FakeFdb(dev, mac, dst)
        if entry not in self.fdb:
            raise FakeKernelError(f"no fdb entry {mac} dev {dev} dst {dst}")
        self.fdb.discard(entry)

    def ipv6_off(self, name: str) -> None:
        if name in self.links:  # as /proc/sys: nothing to do for a device that is gone
            self.links[name] = replace(self.links[name], ipv6=False)

    def nft(self, commands: list[dict[str, Any]]) -> None:
        self.nftables.batch(commands)

    def tc_qdisc(self, op: str, dev: str, kind: str, handle: int, parent: int,
                 default: int = 0) -> None:
        self._link(dev)
        held = self.qdiscs.get((dev, parent))
        if op == "del":
            if held is None or (held.kind, held.handle) != (kind, handle):
                raise FakeKernelError(f"tc qdisc del {kind} {handle:#x} dev {dev}: no such qdisc")
            self._tc_drop(held)
            return
        if parent not in (TC_H_ROOT, TC_H_INGRESS) or (kind == "ingress") != (parent == TC_H_INGRESS):
            raise FakeKernelError(f"tc qdisc add {kind} parent {parent:#x} dev {dev}: the fake "
                                  "holds an ingress qdisc at ingress and others at the root only")
        if kind == "ingress":
            handle = TC_H_INGRESS_PARENT  # the kernel's handle of every ingress qdisc
        elif not handle or handle & 0xFFFF:
            raise FakeKernelError(f"tc qdisc add {kind} {handle:#x} dev {dev}: invalid handle")
        if held is not None:
            if (held.kind, held.handle) == (kind, handle):
                return
            raise FakeKernelError(f"tc qdisc add {kind} {handle:#x} dev {dev}: {held.kind} "
                                  f"{held.handle:#x} is there (NLM_F_REPLACE needed to override)")
        if any(q.handle == handle for (d, _), q in self.qdiscs.items() if d == dev):
            raise FakeKernelError(f"tc qdisc add {kind} {handle:#x} dev {dev}: handle in use")
        self.qdiscs[(dev, parent)] = TcQdisc(dev, kind, handle, parent,
                                             default if kind == "htb" else 0)

    def tc_class(self, op: str, dev: str, handle: int, parent: int, rate: int = 0,
                 burst: int = 0, ceil: int = 0) -> None:
        """A replace keeps an existing class's parent (as htb does); a new
        class whose parent class is missing goes to the top of its qdisc."""
        self._link(dev)
        held = self.tc_classes.get((dev, handle))
        if op == "del":
            if held is None:
                raise FakeKernelError(f"tc class del {handle:#x} dev {dev}: no such class")
            if any(c.parent == handle for (d, _), c in self.tc_classes.items() if d == dev) or any(
                    f.classid == handle for (d, *_), f in self.tc_classifiers.items() if d == dev):
                raise FakeKernelError(f"tc class del {handle:#x} dev {dev}: HTB class in use")
            del self.tc_classes[(dev, handle)]
            return
        major = handle & 0xFFFF0000
        if not any(q.handle == major and q.kind == "htb" for (d, _), q in self.qdiscs.items()
                   if d == dev):
            raise FakeKernelError(f"tc class replace {handle:#x} dev {dev}: no htb qdisc "
                                  f"{major:#x}")
        if not handle & 0xFFFF or rate <= 0 or (parent != TC_H_ROOT
                                                and parent & 0xFFFF0000 != major):
            raise FakeKernelError(f"tc class replace {handle:#x} parent {parent:#x} rate {rate} "
                                  f"dev {dev}: invalid argument")
        if ceil and ceil < rate:
            raise FakeKernelError(f"htb class ceil {ceil} below its rate {rate}")
        if held is not None:
            parent = held.parent
        elif (dev, parent) not in self.tc_classes:
            parent = major
        self.tc_classes[(dev, handle)] = TcClass(dev, handle, parent, rate, ceil or rate, burst,
                                                 burst)

    def tc_classify(self, op: str, dev: str, parent: int, prio: int, handle: int,
                    keys: tuple[tuple[int, int, int], ...] = (), classid: int = 0) -> None:
        self._link(dev)
        key = (dev, parent, prio, handle)
        if op == "del":
            if key not in self.tc_classifiers:
                raise FakeKernelError(f"tc filter del dev {dev} prio {prio} handle {handle:#x}: "
                                      "no such filter")
            del self.tc_classifiers[key]
            return
        if not any(q.handle == parent for (d, _), q in self.qdiscs.items() if d == dev):
            raise FakeKernelError(f"tc filter add dev {dev} parent {parent:#x}: no such qdisc")
        if not keys or not handle & 0xFFF:
            raise FakeKernelError(f"tc filter add handle {handle:#x}: 1 to 128 keys and a key node")
        if key in self.tc_classifiers:
            raise FakeKernelError(f"tc filter add dev {dev} handle {handle:#x}: filter exists")
        masked = tuple((value & mask, mask, off) for value, mask, off in keys)
        self.tc_classifiers[key] = TcFilter(dev, parent, prio, "u32", classid=classid,
                                            handle=handle, keys=masked)

    def tc_redirect(self, op: str, dev: str, prio: int, target: str) -> None:
        self._link(dev)
        held = self.tc_filters.get((dev, prio))
        if op == "del":
            if held is None or held.kind != "u32":
                raise FakeKernelError(f"tc filter del dev {dev} prio {prio}: no such filter")
            del self.tc_filters[(dev, prio)]
            return
        if self.qdiscs.get((dev, TC_H_INGRESS)) is None:
            raise FakeKernelError(f"tc filter add dev {dev} parent ffff: : no ingress qdisc")
        self._link(target)
        if held is not None:
            raise FakeKernelError(f"tc filter add dev {dev} prio {prio}: filter exists")
        self.tc_filters[(dev, prio)] = TcFilter(dev, TC_H_INGRESS_PARENT, prio, "u32", True,
                                                target)

    def netns_add(self, name: str, mark: str) -> None:
        self.namespaces.add(name, mark)

    def netns_del(self, name: str) -> None:
        for host_side in self.namespaces.delete(name):
            self._remove(host_side)

    def netns_forwarding(self, name: str) -> None:
        self.namespaces.space(name).forwarding = True

    def veth_add(self, name: str, alias: str, mtu: int, peer: str, netns: str) -> None:
        if name in self.links:
            raise LinkExists(f"netlink error {EEXIST}: File exists")
        self.namespaces.veth(name, netns, peer, mtu)
        self.links[name] = FakeLink(name, "veth", mtu, alias, index=self._index(), ipv6=False)

    def ns_link_set(self, netns: str, dev: str, mac: str, mtu: int, up: bool,
                    ipv6: bool) -> None:
        self.namespaces.link_set(netns, dev, mac, mtu, up, ipv6)

    def ns_addr(self, op: str, netns: str, dev: str, cidr: str) -> None:
        self.namespaces.addr(op, netns, dev, cidr)

    def ns_neigh(self, op: str, netns: str, dev: str, ip: str, mac: str) -> None:
        self.namespaces.neigh(op, netns, dev, ip, mac)

    def ns_route(self, op: str, netns: str, dst: str, gateway: str, table: int = 254,
                 dev: str = "") -> None:
        self.namespaces.route(op, netns, dst, gateway, table, dev)

    def ns_rule(self, op: str, netns: str, rule: NsRule) -> None:
        self.namespaces.rule(op, netns, rule)

    def ns_nft(self, netns: str, commands: list[dict[str, Any]]) -> None:
        self.namespaces.nft_batch(netns, commands)

    def ns_garp(self, netns: str, dev: str, ip: str) -> None:
        self.namespaces.garp(netns, dev, ip)

    def ns_forget(self, netns: str, ip: str, proto: int = 0,
                  ports: tuple[int, int] | None = None) -> None:
        self.namespaces.space(netns).forgotten.append(
            ip if ports is None else f"{ip} {proto} {ports[0]}-{ports[1]}")

    def conntrack_flows(self, zones: Collection[int]) -> list[Flow]:
        return self.conntrack.flows(zones)

    def conntrack_delete(self, flows: Sequence[Flow]) -> int:
        return self.conntrack.delete(flows)

    # --- internals ------------------------------------------------------------
    def _index(self) -> int:
        self._next_index += 1
        return self._next_index

    def _remove(self, name: str) -> None:
        self._link(name)
        del self.links[name]
        self.namespaces.host_side_gone(name)
        self.fdb = {e for e in self.fdb if e.dev != name}
        for (dev, _), qdisc in list(self.qdiscs.items()):
            if dev == name:
                self._tc_drop(qdisc)
        self.tc_filters = {key: f if f.redirect != name else replace(f, redirect="")
                           for key, f in self.tc_filters.items()}
        for other in list(self.links.values()):
            if other.master == name:
                self.links[other.name] = replace(other, master="")

    def _tc_drop(self, qdisc: TcQdisc) -> None:
        """Delete ``qdisc`` with its classes (htb) or filters (ingress)."""
        del self.qdiscs[(qdisc.dev, qdisc.parent)]
        if qdisc.kind == "ingress":
            self.tc_filters = {k: f for k, f in self.tc_filters.items() if f.dev != qdisc.dev}
        self.tc_classifiers = {k: f for k, f in self.tc_classifiers.items()
                               if (f.dev, f.parent) != (qdisc.dev, qdisc.handle)}
        self.tc_classes = {k: c for k, c in self.tc_classes.items()
                           if c.dev != qdisc.dev or c.handle & 0xFFFF0000 != qdisc.handle}

    def _vni_taken(self, vx: FakeLink) -> bool:
        return any(ln.kind == "vxlan" and (ln.vni, ln.port) == (vx.vni, vx.port)
                   for ln in self.links.values())

    def _link(self, name: str) -> FakeLink:
        if name not in self.links:
            raise FakeKernelError(f"{name}: no such device")
        return self.links[name]

    def _absent(self, name: str) -> None:
        if name in self.links:
            raise FakeKernelError(f"{name}: file exists")


def _row(link: FakeLink, master: int) -> Link:
    return Link(index=link.index, name=link.name, alias=link.alias, mtu=link.mtu, up=link.up,
                master=master, group=link.group, kind=link.kind, vxlan_data=link.kind == "vxlan", vni=link.vni,
                local_ip=link.local_ip, port=link.port, learning=link.learning,
                mcast_snooping=link.mcast_snooping, nf_call_iptables=link.nf_call_iptables,
                nf_call_ip6tables=link.nf_call_ip6tables, ipv6=link.ipv6)
