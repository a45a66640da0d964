"""QoS shaping: a port's bandwidth limits in tc (``docs/qos.md``).

Towards the VM (Neutron's *ingress*), an htb root qdisc on the port's tap
shapes what the tap sends to the VM.  From the VM (Neutron's *egress*),
the tap's ingress qdisc redirects everything the VM sends (a u32 match-all
filter with a mirred egress redirect action) to the port's ifb device
``ocf<11 of the port id>``, whose htb root qdisc shapes it; the ifb then
hands each packet back to the tap's receive path, where the bridge takes it.
Each shaper is one htb qdisc (handle ``4f43:``) with one class (``4f43:1``,
its default) at rate = ceil = the limit: a rate change replaces the class in
place, so no queued packet is lost and the port is never re-plugged.

Ownership: an ifb device only with its name and its mark
(``overcast:qos:<port id>``); a root qdisc only with the major ``4f43``; a
filter only with priority ``0x4f43`` on the ingress qdisc.  A foreign root
qdisc on a tap is never replaced (the add is refused: the port says so).

Diff rules: an ifb is created, updated (MTU, mark, up) and deleted (its
qdisc goes with it); a shaper is created (qdisc and class), updated (the
class replaced; a burst read back within rounding of the one desired is
the same) and deleted (its qdisc); a redirect is created (the ingress qdisc
if missing, then the filter) and deleted (the filter, and the ingress qdisc
when no other filter hangs on it).  Nothing is made on a tap that does not
exist: the port waits for its device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from overcast.plan.names import (
    QOS_CLASS_MINOR,
    QOS_FILTER_PRIO,
    QOS_MAJOR,
    QOS_MARK_PREFIX,
    is_qos_ifb,
    is_workload,
    tap_name,
)
from overcast.plan.raw import (
    TC_H_INGRESS,
    TC_H_INGRESS_PARENT,
    TC_H_ROOT,
    KernelIO,
    KernelRows,
    LinkExists,
    TcClass,
    TcFilter,
    TcQdisc,
)
from overcast.plan.state import Change
from overcast.plan.subsystem import DiffContext, Subsystem
from overcast.plan.subsystems.links import Attachment

QDISC_HANDLE = QOS_MAJOR << 16
CLASS_HANDLE = QDISC_HANDLE | QOS_CLASS_MINOR
# htb keeps a class's burst as a time in psched ticks (1/15,625,000 s) in 32 bits: a burst
# longer than this at the class's rate is refused by the kernel
MAX_BURST_SECONDS = 274


def htb_burst(rate: int, burst: int) -> int:
    """``burst`` bytes, at most what htb can hold at ``rate`` bytes/s."""
    return max(1, min(burst, rate * MAX_BURST_SECONDS))


@dataclass(frozen=True, slots=True, order=True)
class QosIfb:
    """A port's ifb device (``port_dev``: the port's tap, whose status it is part of)."""

    name: str
    alias: str
    mtu: int
    up: bool = True
    port_dev: str = field(default="", compare=False)

    def render(self) -> str:
        return f"ifb {self.name} mtu {self.mtu} alias {self.alias}"

    def devices(self) -> frozenset[str]:
        return frozenset((self.name, self.port_dev)) - {""}


@dataclass(frozen=True, slots=True, order=True)
class Shaper:
    """An htb root qdisc on ``dev`` with one class: ``rate`` bytes/s, ``burst`` bytes."""

    dev: str
    rate: int
    burst: int = field(compare=False)  # read back within rounding: compared by same()
    port_dev: str = field(default="", compare=False)  # the port's tap ("" = dev)

    def render(self) -> str:
        return f"shape {self.dev} rate {self.rate * 8 // 1000}kbit burst {self.burst}b"

    def devices(self) -> frozenset[str]:
        return frozenset((self.dev, self.port_dev or self.dev))

    def same(self, other: Shaper) -> bool:
        """Equal but for the burst's rounding in the kernel (its buffer time)."""
        return (self.dev == other.dev and self.rate == other.rate
                and abs(self.burst - other.burst) <= max(64, self.burst // 200))


@dataclass(frozen=True, slots=True, order=True)
class Redirect:
    """Everything ``dev`` receives leaves by ``target`` (its ifb)."""

    dev: str
    target: str
    alone: bool = field(default=True, compare=False)  # observed: no foreign filter beside it

    def render(self) -> str:
        return f"redirect {self.dev} ingress to {self.target}"

    def devices(self) -> frozenset[str]:
        return frozenset((self.dev, self.target))


def diff(d: DiffContext) -> None:
    present = {a.ifname for a in d.observed[Attachment]}  # every workload device that exists
    ifbs = {i.name: i for i in d.observed[QosIfb]}
    wanted_ifbs = {i.name: i for i in d.desired[QosIfb]}
    made = set()
    for name, obj in sorted(wanted_ifbs.items()):
        old = ifbs.get(name)
        if old is None and obj.port_dev not in present:
            continue  # made once the port's tap exists (kept while it is gone)
        made.add(name)
        if old is None or (old.alias, old.mtu, old.up) != (obj.alias, obj.mtu, obj.up):
            d.put(obj, old)
    gone = {name for name in ifbs if name not in wanted_ifbs}
    for name in sorted(gone):
        d.delete(ifbs[name])
    exists = present | made
    _diff_shapers(d, exists, gone)
    _diff_redirects(d, exists)


def _diff_shapers(d: DiffContext, exists: set[str], gone: set[str]) -> None:
    have = {s.dev: s for s in d.observed[Shaper] if s.dev not in gone}
    want = {s.dev: s for s in d.desired[Shaper]}
    for dev, obj in sorted(want.items()):
        old = have.get(dev)
        if dev in exists and (old is None or not obj.same(old)):
            d.put(obj, old)
    for dev, old in sorted(have.items()):
        if dev not in want:
            d.delete(old)


def _diff_redirects(d: DiffContext, exists: set[str]) -> None:
    have = {r.dev: r for r in d.observed[Redirect]}
    want = {r.dev: r for r in d.desired[Redirect]}
    for dev, obj in sorted(want.items()):
        old = have.get(dev)
        if dev in exists and obj.target in exists and old != obj:
            d.put(obj, old)
    for dev, old in sorted(have.items()):
        if dev not in want:
            d.delete(old)


def observe(rows: KernelRows) -> list[QosIfb | Shaper | Redirect]:
    links = rows.link_rows()
    ifbs = [ln for ln in links if ln.kind == "ifb" and is_qos_ifb(ln.name, ln.alias)]
    taps = [ln.name for ln in links if is_workload(ln.name)]
    out: list[QosIfb | Shaper | Redirect] = []
    port_of: dict[str, str] = {}
    for ln in ifbs:
        tap = tap_name(ln.alias[len(QOS_MARK_PREFIX):])
        port_of[ln.name] = tap
        out.append(QosIfb(ln.name, ln.alias, ln.mtu, ln.up, tap))
    devices = sorted(taps) + sorted(port_of)
    if not devices:
        return out
    tc = rows.tc_rows(devices)
    roots = {q.dev for q in tc if isinstance(q, TcQdisc) and q.kind == "htb"
             and q.parent == TC_H_ROOT and q.handle == QDISC_HANDLE}
    classes = {c.dev: c for c in tc if isinstance(c, TcClass) and c.dev in roots
               and c.handle == CLASS_HANDLE and c.parent == QDISC_HANDLE}
    for dev in sorted(roots):
        cls = classes.get(dev)
        # a class that is not rate = ceil, burst = cburst is not ours as made: replaced
        ok = cls is not None and cls.rate == cls.ceil and cls.burst == cls.cburst
        out.append(Shaper(dev, cls.rate if cls and ok else 0, cls.burst if cls and ok else 0,
                          port_of.get(dev, "")))
    # (the kernel reports every filter of an ingress qdisc under the parent its last add
    # named: ffff:0 or, from iproute2's "ingress" keyword, ffff:fff2; the major is what counts)
    filters = [f for f in tc if isinstance(f, TcFilter)
               and f.parent & 0xFFFF0000 == TC_H_INGRESS_PARENT]
    for dev in sorted({f.dev for f in filters if f.prio == QOS_FILTER_PRIO}):
        ours = [f for f in filters if f.dev == dev and f.prio == QOS_FILTER_PRIO]
        target = ours[0].redirect if len(ours) == 1 and ours[0].kind == "u32" \
            and ours[0].match_all else ""
        others = any(f.dev == dev and f.prio != QOS_FILTER_PRIO for f in filters)
        out.append(Redirect(dev, target, not others))
    return out


def apply(io: KernelIO, change: Change) -> None:
    obj = change.obj
    if isinstance(obj, QosIfb):
        if change.op == "delete":
            io.link_del(obj.name)
            return
        if change.op == "create":
            try:
                io.link_add(obj.name, "ifb", obj.mtu, {})
            except LinkExists:  # ours if unmarked: we stopped between making and marking it
                found = io.link_get(obj.name)
                if found is None or found.kind != "ifb" or found.alias:
                    raise
            io.ipv6_off(obj.name)
        io.link_set(obj.name, obj.mtu, obj.alias, obj.up)
    elif isinstance(obj, Shaper):
        if change.op == "delete":
            io.tc_qdisc("del", obj.dev, "htb", QDISC_HANDLE, TC_H_ROOT)
            return
        if change.op == "create":
            io.tc_qdisc("add", obj.dev, "htb", QDISC_HANDLE, TC_H_ROOT, default=QOS_CLASS_MINOR)
        io.tc_class("replace", obj.dev, CLASS_HANDLE, QDISC_HANDLE, obj.rate, obj.burst)
    elif isinstance(obj, Redirect):
        if change.op == "delete":
            io.tc_redirect("del", obj.dev, QOS_FILTER_PRIO, obj.target)
            if obj.alone:
                io.tc_qdisc("del", obj.dev, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
            return
        if change.op == "update":  # the filter that is there goes first
            io.tc_redirect("del", change.old.dev, QOS_FILTER_PRIO, change.old.target)
        io.tc_qdisc("add", obj.dev, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
        io.tc_redirect("add", obj.dev, QOS_FILTER_PRIO, obj.target)


SUBSYSTEM = Subsystem("qos", (QosIfb, Shaper, Redirect), diff, observe, apply)
