"""Minimum bandwidth: guaranteed shares of the host's uplink (``docs/qos.md``).

What a VM sends leaves the host by its uplink (the underlay NIC carrying
VXLAN, or a flat network's bridged uplink); a guarantee can only be kept
where packets queue for a link of known capacity, so the agent is told
that capacity (``--qos-uplink DEVICE=KBPS``).  On that device, only while
some local port has a guarantee: a root htb ``4f43:`` (default class
``4f43:2``), one class ``4f43:1`` at rate = ceil = the capacity, under it
the default class (rate: what the guarantees leave, ceil: the capacity) and
one class per guaranteed port (rate: its minimum, ceil: the capacity).

Classification uses no skb mark (the firewall owns them): one u32 filter
per port on the root qdisc (priority ``0x4f43``, key node = the port's class
minor - ``0x1000``) matches the port's MAC inside the packet.  Over VXLAN
on IPv4 (offsets from the outer IP header, which has no options): IHL 5,
UDP, port 4789, the network's VNI and the inner source MAC at 42; flat: the
source MAC at -8 (in the Ethernet header, before the network header).

Ownership: a root htb with the major ``4f43`` on a device that is neither
a workload's tap nor an ifb of ours (those are the qos subsystem's); its
filters of priority ``0x4f43``.  A foreign root qdisc on the uplink is never
replaced (the add is refused: the ports say so).

Diff: the root is created whole, its two classes replaced in place when the
capacity or the sum of guarantees change, and deleted (with everything on
it) when no guarantee is left; a port's class is replaced in place when its
minimum changes, its filter deleted and added again when its keys change.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from overcast.plan.names import QOS_FILTER_PRIO, QOS_IFB_PREFIX, QOS_MAJOR, is_workload
from overcast.plan.raw import TC_H_ROOT, KernelIO, KernelRows, TcClass, TcFilter, TcQdisc
from overcast.plan.state import Change
from overcast.plan.subsystem import DiffContext, Subsystem

ROOT = QOS_MAJOR << 16
PARENT = ROOT | 1  # the capacity
DEFAULT_MINOR = 2  # everything not guaranteed
PORT_MINOR_BASE = 0x1000  # a port's class minor: this + its key node (1..0xfff)
NODES = 0xFFF
U32_TABLE = 0x80000000  # the u32 classifier's root hash table 800:
VXLAN_PORT = 4789
Key = tuple[int, int, int]  # (value, mask, offset from the network header)


def uplink_burst(capacity: int) -> int:
    """Bytes each class may send at once: 10 ms at the capacity, at least two
    64 KiB GSO packets (the uplink sees the stack's large ones)."""
    return max(2 * 65536, capacity // 100)


def _same_burst(a: int, b: int) -> bool:
    return abs(a - b) <= max(64, b // 200)


@dataclass(frozen=True, slots=True, order=True)
class UplinkRoot:
    """The root htb on ``dev``: ``capacity`` and ``rest`` (the default
    class's guaranteed rate) in bytes/s, ``burst`` in bytes."""

    dev: str
    capacity: int
    rest: int
    burst: int = field(compare=False)  # read back within rounding: compared by same()

    def render(self) -> str:
        return (f"uplink {self.dev} capacity {self.capacity * 8 // 1000}kbit, others "
                f"{self.rest * 8 // 1000}kbit")

    def devices(self) -> frozenset[str]:
        return frozenset((self.dev,))

    def same(self, other: UplinkRoot) -> bool:
        return (self.dev, self.capacity, self.rest) == (other.dev, other.capacity, other.rest) \
            and _same_burst(other.burst, self.burst)


@dataclass(frozen=True, slots=True, order=True)
class Guarantee:
    """A port's share of ``dev``: class ``minor`` at ``rate`` up to ``ceil``
    (bytes/s), and the filter that puts the port's packets in it (``keys``)."""

    dev: str
    minor: int
    rate: int
    ceil: int
    burst: int = field(compare=False)  # read back within rounding: compared by same_class()
    keys: tuple[Key, ...] = ()
    port_dev: str = field(default="", compare=False)  # the port's tap: its status
    has_class: bool = field(default=True, compare=False)  # observed: the class exists
    has_filter: bool = field(default=True, compare=False)  # observed: the filter exists

    def render(self) -> str:
        return (f"guarantee {self.dev} class {QOS_MAJOR:x}:{self.minor:x} rate "
                f"{self.rate * 8 // 1000}kbit ceil {self.ceil * 8 // 1000}kbit "
                f"for {self.port_dev or '?'}")

    def devices(self) -> frozenset[str]:
        return frozenset((self.dev, self.port_dev)) - {""}

    def same_class(self, other: Guarantee) -> bool:
        return (self.rate, self.ceil) == (other.rate, other.ceil) \
            and _same_burst(other.burst, self.burst)


def _mac(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def vxlan_keys(mac: str, vni: int) -> tuple[Key, ...]:
    """A VM's frames inside VXLAN over IPv4 without options (offsets from
    the outer IP header: UDP at 20, VXLAN at 28, the inner frame at 36)."""
    m = _mac(mac)
    return ((0x05000000, 0x0F000000, 0),  # IHL 5: the offsets below hold
            (17 << 16, 0x00FF0000, 8),  # UDP
            (VXLAN_PORT, 0x0000FFFF, 20),  # destination port
            ((vni & 0xFFFFFF) << 8, 0xFFFFFF00, 32),  # the network's VNI
            (int.from_bytes(m[:2], "big"), 0x0000FFFF, 40),  # inner source MAC, bytes 0-1
            (int.from_bytes(m[2:], "big"), 0xFFFFFFFF, 44))  # and 2-5


def flat_keys(mac: str) -> tuple[Key, ...]:
    """A VM's frames as they are: the source MAC 8 bytes before the network header."""
    m = _mac(mac)
    return ((int.from_bytes(m[:4], "big"), 0xFFFFFFFF, -8),
            (int.from_bytes(m[4:], "big") << 16, 0xFFFF0000, -4))


def class_minor(port_id: str, taken: set[int]) -> int:
    """A stable minor for ``port_id``'s class: from its id (the next free one
    when that is taken by a port sorted earlier)."""
    node = zlib.crc32(port_id.encode()) % NODES
    for step in range(NODES):
        minor = PORT_MINOR_BASE + 1 + (node + step) % NODES
        if minor not in taken:
            taken.add(minor)
            return minor
    raise ValueError("more than 4095 guaranteed ports on one uplink")


def diff(d: DiffContext) -> None:
    gone = _diff_roots(d)
    held = {(g.dev, g.minor): g for g in d.observed[Guarantee] if g.dev not in gone}
    wanted = {(g.dev, g.minor): g for g in d.desired[Guarantee]}
    for key, obj in sorted(wanted.items()):
        old = held.get(key)
        if old is None or not obj.same_class(old) or old.keys != obj.keys:
            d.put(obj, old)
    for key, gone_share in sorted(held.items()):
        if key not in wanted:
            d.delete(gone_share)


def _diff_roots(d: DiffContext) -> set[str]:
    """The roots' changes; the devices whose root goes (with all on it)."""
    have = {r.dev: r for r in d.observed[UplinkRoot]}
    want = {r.dev: r for r in d.desired[UplinkRoot]}
    gone = set()
    for dev, held in sorted(have.items()):
        if dev not in want or held.capacity == 0:  # not ours as made (its default): made again
            d.delete(held)
            gone.add(dev)
    for dev, obj in sorted(want.items()):
        old = None if dev in gone else have.get(dev)
        if old is None or not obj.same(old):
            d.put(obj, old)
    return gone


def observe(rows: KernelRows) -> list[UplinkRoot | Guarantee]:
    # (an ifb's name without our mark is not an uplink either: its htb is the qos subsystem's)
    devices = [ln.name for ln in rows.link_rows()
               if not is_workload(ln.name) and not ln.name.startswith(QOS_IFB_PREFIX)]
    tc = rows.tc_rows(devices) if devices else []
    out: list[UplinkRoot | Guarantee] = []
    roots = [q for q in tc if isinstance(q, TcQdisc) and q.kind == "htb"
             and q.parent == TC_H_ROOT and q.handle == ROOT]
    for root in roots:
        classes = {c.handle: c for c in tc if isinstance(c, TcClass) and c.dev == root.dev}
        top, rest = classes.get(PARENT), classes.get(ROOT | DEFAULT_MINOR)
        ok = root.default == DEFAULT_MINOR and top is not None and top.rate == top.ceil
        out.append(UplinkRoot(root.dev, top.rate if ok and top else 0,
                              rest.rate if rest and top and rest.ceil == top.ceil else 0,
                              top.burst if ok and top else 0))
        filters = {f.handle & NODES: f for f in tc if isinstance(f, TcFilter)
                   and f.dev == root.dev and f.parent == ROOT and f.prio == QOS_FILTER_PRIO
                   and f.handle}
        minors = {h & 0xFFFF for h, c in classes.items() if c.parent == PARENT
                  and h & 0xFFFF > PORT_MINOR_BASE} | {PORT_MINOR_BASE + n for n in filters}
        for minor in sorted(minors):
            cls, flt = classes.get(ROOT | minor), filters.get(minor - PORT_MINOR_BASE)
            keys = flt.keys if flt is not None and flt.classid == ROOT | minor else ()
            out.append(Guarantee(root.dev, minor, cls.rate if cls else 0, cls.ceil if cls else 0,
                                 cls.burst if cls else 0, keys, has_class=cls is not None,
                                 has_filter=flt is not None))
    return out


def apply(io: KernelIO, change: Change) -> None:
    obj = change.obj
    if isinstance(obj, UplinkRoot):
        if change.op == "delete":
            io.tc_qdisc("del", obj.dev, "htb", ROOT, TC_H_ROOT)
            return
        if change.op == "create":
            io.tc_qdisc("add", obj.dev, "htb", ROOT, TC_H_ROOT, default=DEFAULT_MINOR)
        io.tc_class("replace", obj.dev, PARENT, ROOT, obj.capacity, obj.burst)
        io.tc_class("replace", obj.dev, ROOT | DEFAULT_MINOR, PARENT, obj.rest, obj.burst,
                    ceil=obj.capacity)
    elif isinstance(obj, Guarantee):
        _apply_guarantee(io, change, obj)


def _apply_guarantee(io: KernelIO, change: Change, obj: Guarantee) -> None:
    handle, node = ROOT | obj.minor, U32_TABLE | (obj.minor - PORT_MINOR_BASE)
    old = change.old if isinstance(change.old, Guarantee) else None
    if change.op == "delete":
        if obj.has_filter:
            io.tc_classify("del", obj.dev, ROOT, QOS_FILTER_PRIO, node)
        if obj.has_class:
            io.tc_class("del", obj.dev, handle, PARENT)
        return
    if old is None or not obj.same_class(old) or not old.has_class:
        io.tc_class("replace", obj.dev, handle, PARENT, obj.rate, obj.burst, ceil=obj.ceil)
    if old is None or old.keys != obj.keys or not old.has_filter:
        if old is not None and old.has_filter:
            io.tc_classify("del", obj.dev, ROOT, QOS_FILTER_PRIO, node)
        io.tc_classify("add", obj.dev, ROOT, QOS_FILTER_PRIO, node, obj.keys, handle)


SUBSYSTEM = Subsystem("uplink_qos", (UplinkRoot, Guarantee), diff, observe, apply)
