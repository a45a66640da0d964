"""Traffic control over raw rtnetlink: the requests of the qos subsystem's
primitives (an htb or ingress qdisc, an htb class, a u32 match-all filter
with a mirred egress redirect, a u32 filter with keys and a class id) and
their rows read back.

The requests go through the batched writer (``overcast.linux.rtnl_write``),
one at a time, so a refusal carries the kernel's extended-ack text.  The
reads are dumps of the raw reader: one RTM_GETQDISC dump for every device,
then an RTM_GETTCLASS dump only for a device with an htb qdisc and an
RTM_GETTFILTER dump only for one with an ingress qdisc, or with a root
htb that has a class besides its default (a one-class shaper classifies
nothing: its device costs no filter dump).

The kernel keeps an htb class's burst as a time (``buffer``, in psched
ticks at the class's rate); it is written and read back through the tick
rate of ``/proc/net/psched``, as iproute2 and pyroute2 compute it, rounded
to the nearest tick both ways (within ``rate / ticks per second / 2``
bytes: 40 bytes at 10 Gbit/s).
"""

from __future__ import annotations

import functools
import socket
import struct
from collections.abc import Collection, Iterator
from dataclasses import replace
from operator import attrgetter

from overcast.linux.rtnl import RtnlReader
from overcast.linux.rtnl_write import Request
from overcast.plan.raw import (
    TC_H_INGRESS_PARENT,
    TC_H_ROOT,
    KernelRefusal,
    Link,
    TcClass,
    TcFilter,
    TcQdisc,
)

TcRow = TcQdisc | TcClass | TcFilter

RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWTCLASS, RTM_DELTCLASS, RTM_GETTCLASS = 40, 41, 42
RTM_NEWTFILTER, RTM_DELTFILTER, RTM_GETTFILTER = 44, 45, 46
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_HTB_PARMS, TCA_HTB_INIT, TCA_HTB_RATE64, TCA_HTB_CEIL64 = 1, 2, 6, 7
TCA_U32_CLASSID, TCA_U32_SEL, TCA_U32_ACT = 1, 5, 7
TCA_ACT_KIND, TCA_ACT_OPTIONS = 1, 2
TCA_MIRRED_PARMS = 2
TCA_EGRESS_REDIR = 1
TC_ACT_STOLEN = 4
TC_U32_TERMINAL = 0x1
TC_LINKLAYER_ETHERNET = 1
ETH_P_ALL = 0x0003
HTB_VERSION, HTB_R2Q = 3, 10
# a class's quantum (bytes it may send per round), set so that the kernel neither
# warns about it nor clamps it: rate / r2q within [an Ethernet frame, 200000]
QUANTUM_MIN, QUANTUM_MAX = 1514, 200_000
# the handle of the one u32 key node a redirect filter holds: node 800 of whatever root
# hash table the kernel gives the filter's priority (a table id is shared by every u32
# filter of the qdisc: a foreign filter may hold 800:), given so that adding it twice is
# refused instead of doubled
U32_REDIRECT_HANDLE = 0x00000800
U32_NODE_MASK = 0xFFF
U32_MAX = (1 << 32) - 1
PSCHED = "/proc/net/psched"
TIME_UNITS_PER_SEC = 1_000_000

TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
HTB_GLOB = struct.Struct("=IIIII")  # version, rate2quantum, defcls, debug, direct_pkts
RATESPEC = struct.Struct("=BBHhHI")  # cell_log, linklayer, overhead, cell_align, mpu, rate
HTB_OPT = struct.Struct("=12s12sIIIII")  # rate, ceil, buffer, cbuffer, quantum, level, prio
U32_SEL = struct.Struct("=BBBxHHhhI")  # flags, offshift, nkeys, offmask, off, offoff, hoff, hmask
U32_KEY = struct.Struct("!IIii")  # mask, value, off, offmask
U32_KEY_MATCH = struct.Struct("!II")  # a key's mask and value (network order), then
U32_KEY_OFF = struct.Struct("=ii")  # its offset and offmask (host order)
MIRRED = struct.Struct("=IIiiiiI")  # index, capab, action, refcnt, bindcnt, eaction, ifindex
RTATTR = struct.Struct("=HH")
U32 = struct.Struct("=I")
U64 = struct.Struct("=Q")
NLA_TYPE_MASK = 0x3FFF


@functools.cache
def ticks_per_second() -> float:
    """psched ticks per second, from ``/proc/net/psched`` as iproute2 reads it
    (``t2us / us2t * clock_res / 10**6`` ticks per microsecond)."""
    with open(PSCHED) as f:
        t2us, us2t, clock_res, _hz = (int(word, 16) for word in f.read().split()[:4])
    tick_in_usec = t2us / us2t * clock_res / TIME_UNITS_PER_SEC
    return TIME_UNITS_PER_SEC * tick_in_usec


def burst_ticks(rate: int, burst: int) -> int:
    """The kernel's ``buffer`` of ``burst`` bytes at ``rate`` bytes/s."""
    if rate <= 0:
        raise KernelRefusal(f"htb class rate {rate}: must be positive")
    ticks = round(burst * ticks_per_second() / rate)
    if not 0 < ticks <= U32_MAX:
        raise KernelRefusal(f"htb burst {burst} bytes at {rate} bytes/s: {ticks} psched ticks "
                            "(1 to 2**32 - 1)")
    return ticks


def burst_bytes(rate: int, ticks: int) -> int:
    return round(ticks * rate / ticks_per_second())


# --- requests -------------------------------------------------------------------
def qdisc_request(op: str, ifindex: int, kind: str, handle: int, parent: int,
                  default: int = 0) -> Request:
    """``tc qdisc add|del dev IFINDEX parent PARENT handle HANDLE KIND``: an add
    never replaces what is there (EEXIST); a delete names the kind, so that
    it deletes nothing else."""
    attrs = _attr(TCA_KIND, kind.encode() + b"\0")
    if op == "add":
        if kind == "htb":
            init = HTB_GLOB.pack(HTB_VERSION, HTB_R2Q, default, 0, 0)
            attrs += _attr(TCA_OPTIONS, _attr(TCA_HTB_INIT, init))
        return Request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL,
                       TCMSG.pack(0, ifindex, handle, parent, 0) + attrs)
    if op == "del":
        return Request(RTM_DELQDISC, 0, TCMSG.pack(0, ifindex, handle, parent, 0) + attrs)
    raise KernelRefusal(f"tc qdisc {op}: unknown operation")


def class_request(op: str, ifindex: int, handle: int, parent: int, rate: int = 0,
                  burst: int = 0) -> Request:
    """``tc class replace|del``: htb, rate = ceil, burst = cburst; a replace
    creates or changes in place (NLM_F_CREATE | NLM_F_REPLACE)."""
    head = TCMSG.pack(0, ifindex, handle, parent, 0)
    if op == "del":
        return Request(RTM_DELTCLASS, 0, head)
    if op != "replace":
        raise KernelRefusal(f"tc class {op}: unknown operation")
    ticks = burst_ticks(rate, burst)
    spec = RATESPEC.pack(0, TC_LINKLAYER_ETHERNET, 0, 0, 0, min(rate, U32_MAX))
    quantum = max(QUANTUM_MIN, min(QUANTUM_MAX, rate // HTB_R2Q))
    options = _attr(TCA_HTB_PARMS, HTB_OPT.pack(spec, spec, ticks, ticks, quantum, 0, 0))
    if rate >= 1 << 32:
        options += _attr(TCA_HTB_RATE64, U64.pack(rate)) + _attr(TCA_HTB_CEIL64, U64.pack(rate))
    attrs = _attr(TCA_KIND, b"htb\0") + _attr(TCA_OPTIONS, options)
    return Request(RTM_NEWTCLASS, NLM_F_CREATE | NLM_F_REPLACE, head + attrs)


def class_request_ceil(op: str, ifindex: int, handle: int, parent: int, rate: int,
                       burst: int, ceil: int) -> Request:
    """``tc class replace``: htb with ``ceil`` above ``rate``, burst = cburst."""
    if op != "replace" or ceil in (0, rate):
        return class_request(op, ifindex, handle, parent, rate, burst)
    if ceil < rate:
        raise KernelRefusal(f"htb class ceil {ceil} below its rate {rate}")
    head = TCMSG.pack(0, ifindex, handle, parent, 0)
    ticks, cticks = burst_ticks(rate, burst), burst_ticks(ceil, burst)
    rspec = RATESPEC.pack(0, TC_LINKLAYER_ETHERNET, 0, 0, 0, min(rate, U32_MAX))
    cspec = RATESPEC.pack(0, TC_LINKLAYER_ETHERNET, 0, 0, 0, min(ceil, U32_MAX))
    quantum = max(QUANTUM_MIN, min(QUANTUM_MAX, rate // HTB_R2Q))
    options = _attr(TCA_HTB_PARMS, HTB_OPT.pack(rspec, cspec, ticks, cticks, quantum, 0, 0))
    if rate >= 1 << 32:
        options += _attr(TCA_HTB_RATE64, U64.pack(rate))
    if ceil >= 1 << 32:
        options += _attr(TCA_HTB_CEIL64, U64.pack(ceil))
    attrs = _attr(TCA_KIND, b"htb\0") + _attr(TCA_OPTIONS, options)
    return Request(RTM_NEWTCLASS, NLM_F_CREATE | NLM_F_REPLACE, head + attrs)


def classify_request(op: str, ifindex: int, parent: int, prio: int, handle: int,
                     keys: tuple[tuple[int, int, int], ...] = (), classid: int = 0) -> Request:
    """``tc filter add dev IFINDEX parent PARENT protocol all prio PRIO handle
    800::N u32 match ... classid CLASSID``; ``del``: that key node."""
    kind = _attr(TCA_KIND, b"u32\0")
    head = TCMSG.pack(0, ifindex, handle, parent, prio << 16 | socket.htons(ETH_P_ALL))
    if op == "del":
        return Request(RTM_DELTFILTER, 0, head + kind)
    if op != "add":
        raise KernelRefusal(f"tc filter {op}: unknown operation")
    if not keys or len(keys) > 128 or not handle & U32_NODE_MASK:
        raise KernelRefusal(f"tc filter add handle {handle:#x}: 1 to 128 keys and a key node")
    sel = U32_SEL.pack(TC_U32_TERMINAL, 0, len(keys), 0, 0, 0, 0, 0) + b"".join(
        U32_KEY_MATCH.pack(mask, value & mask) + U32_KEY_OFF.pack(off, 0)
        for value, mask, off in keys)
    options = _attr(TCA_U32_CLASSID, U32.pack(classid)) + _attr(TCA_U32_SEL, sel)
    return Request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, head + kind
                   + _attr(TCA_OPTIONS, options))


def redirect_request(op: str, ifindex: int, prio: int, target: int = 0) -> Request:
    """``tc filter add dev IFINDEX parent ffff: protocol all prio PRIO u32 match
    u32 0 0 action mirred egress redirect dev TARGET``; ``del``: the u32
    filters of that priority on the ingress qdisc."""
    kind = _attr(TCA_KIND, b"u32\0")
    if op == "del":
        return Request(RTM_DELTFILTER, 0,
                       TCMSG.pack(0, ifindex, 0, TC_H_INGRESS_PARENT, prio << 16) + kind)
    if op != "add":
        raise KernelRefusal(f"tc filter {op}: unknown operation")
    sel = U32_SEL.pack(TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0) + U32_KEY.pack(0, 0, 0, 0)
    mirred = MIRRED.pack(0, 0, TC_ACT_STOLEN, 0, 0, TCA_EGRESS_REDIR, target)
    action = _attr(TCA_ACT_KIND, b"mirred\0") + _attr(TCA_ACT_OPTIONS,
                                                      _attr(TCA_MIRRED_PARMS, mirred))
    options = _attr(TCA_U32_SEL, sel) + _attr(TCA_U32_ACT, _attr(1, action))
    info = prio << 16 | socket.htons(ETH_P_ALL)
    return Request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL,
                   TCMSG.pack(0, ifindex, U32_REDIRECT_HANDLE, TC_H_INGRESS_PARENT, info)
                   + kind + _attr(TCA_OPTIONS, options))


def _attr(kind: int, value: bytes) -> bytes:
    length = RTATTR.size + len(value)
    return RTATTR.pack(length, kind) + value + b"\0" * (-length % 4)


# --- reads ------------------------------------------------------------------------
class TcReader(RtnlReader):
    """The raw dump reader with the tc dumps."""

    def tc_rows(self, devices: Collection[str], links: list[Link]) -> list[TcRow]:
        """The qdiscs (handle non-zero: the kernel's default ones are left
        out), htb classes and ingress filters of ``devices`` (those in
        ``links``), ``links`` naming a redirect's target.  Device by device
        in the order asked: its qdiscs as the kernel dumps them (the root's
        first), its classes by handle, its filters by priority."""
        names = {ln.index: ln.name for ln in links}
        index = {ln.name: ln.index for ln in links}
        wanted = {index[dev]: dev for dev in dict.fromkeys(devices) if dev in index}
        if not wanted:
            return []
        qdiscs = self.qdiscs(wanted)
        rows: list[TcRow] = []
        for ifindex, dev in wanted.items():
            held = [q for i, q in qdiscs if i == ifindex]
            rows += held
            classes = sorted(self.classes(ifindex, dev), key=attrgetter("handle")) \
                if any(q.kind == "htb" for q in held) else []
            rows += classes
            if any(q.kind == "ingress" for q in held):
                rows += sorted(self.filters(ifindex, dev, names), key=attrgetter("prio"))
            for root in held:
                if root.kind == "htb" and root.parent == TC_H_ROOT and any(
                        c.handle != root.handle | root.default for c in classes):
                    rows += sorted(self.filters(ifindex, dev, names, root.handle),
                                   key=attrgetter("prio", "handle"))
        return rows

    def qdiscs(self, devices: dict[int, str]) -> list[tuple[int, TcQdisc]]:
        """(ifindex, qdisc) of the qdiscs of ``devices`` (ifindex -> name)
        with a non-zero handle; the other devices' are skipped by their header."""
        out = []
        for buf, start, end in list(self._dump(RTM_GETQDISC, TCMSG.pack(0, 0, 0, 0, 0))):
            _family, ifindex, handle, parent, _info = TCMSG.unpack_from(buf, start)
            if ifindex in devices and handle:
                out.append((ifindex, _qdisc(buf, start + TCMSG.size, end, devices[ifindex],
                                            handle, parent)))
        return out

    def classes(self, ifindex: int, dev: str) -> list[TcClass]:
        out = []
        for buf, start, end in list(self._dump(RTM_GETTCLASS, TCMSG.pack(0, ifindex, 0, 0, 0))):
            _family, index, handle, parent, _info = TCMSG.unpack_from(buf, start)
            found = _class(buf, start + TCMSG.size, end, dev, handle, parent)
            if index == ifindex and found is not None:
                out.append(found)
        return out

    def filters(self, ifindex: int, dev: str, names: dict[int, str],
                parent: int = TC_H_INGRESS_PARENT) -> list[TcFilter]:
        """The filters on ``dev``'s qdisc ``parent`` (its ingress qdisc unless
        said): one row per u32 key node (the hash table and the classifier's
        own entries are left out), one per handle of any other classifier."""
        head = TCMSG.pack(0, ifindex, 0, parent, 0)
        out = []
        for buf, start, end in list(self._dump(RTM_GETTFILTER, head)):
            _family, index, handle, parent, info = TCMSG.unpack_from(buf, start)
            if index != ifindex or not handle:
                continue
            found = _filter(buf, start + TCMSG.size, end, dev, parent, info >> 16, names)
            if found is not None and found.classid:
                found = replace(found, handle=handle)
            if found is not None and (found.kind != "u32" or handle & U32_NODE_MASK):
                out.append(found)
        return out


def _attrs(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of the attributes in buf[start:end]."""
    while start + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(buf, start)
        if length < RTATTR.size:
            return
        yield kind & NLA_TYPE_MASK, start + RTATTR.size, start + length
        start += (length + 3) & ~3


def _find(buf: bytes, start: int, end: int, wanted: int) -> tuple[int, int] | None:
    return next(((s, e) for kind, s, e in _attrs(buf, start, end) if kind == wanted), None)


def _kind(buf: bytes, start: int, end: int) -> str:
    """TCA_KIND of a tc object, TCA_ACT_KIND of an action (both type 1)."""
    found = _find(buf, start, end, TCA_KIND)
    return "" if found is None else buf[found[0]:found[1]].split(b"\0", 1)[0].decode()


def _qdisc(buf: bytes, start: int, end: int, dev: str, handle: int, parent: int) -> TcQdisc:
    kind, default = _kind(buf, start, end), 0
    options = _find(buf, start, end, TCA_OPTIONS)
    if kind == "htb" and options is not None:
        init = _find(buf, *options, TCA_HTB_INIT)
        if init is not None and init[1] - init[0] >= HTB_GLOB.size:
            _version, _r2q, default, _debug, _direct = HTB_GLOB.unpack_from(buf, init[0])
    return TcQdisc(dev, kind, handle, parent, default)


def _class(buf: bytes, start: int, end: int, dev: str, handle: int,
           parent: int) -> TcClass | None:
    """An htb class; the kernel reports a class at the top of its qdisc as
    under TC_H_ROOT: it is reported under the qdisc (as it was made)."""
    options = _find(buf, start, end, TCA_OPTIONS)
    if _kind(buf, start, end) != "htb" or options is None:
        return None
    rate = ceil = buffer = cbuffer = 0
    for kind, vstart, vend in _attrs(buf, *options):
        if kind == TCA_HTB_PARMS and vend - vstart >= HTB_OPT.size:
            rspec, cspec, buffer, cbuffer, *_ = HTB_OPT.unpack_from(buf, vstart)
            rate = rate or RATESPEC.unpack(rspec)[-1]
            ceil = ceil or RATESPEC.unpack(cspec)[-1]
        elif kind == TCA_HTB_RATE64:
            (rate,) = U64.unpack_from(buf, vstart)
        elif kind == TCA_HTB_CEIL64:
            (ceil,) = U64.unpack_from(buf, vstart)
    if parent == TC_H_ROOT:
        parent = handle & 0xFFFF0000
    return TcClass(dev, handle, parent, rate, ceil, burst_bytes(rate, buffer),
                   burst_bytes(ceil, cbuffer))


def _filter(buf: bytes, start: int, end: int, dev: str, parent: int, prio: int,
            names: dict[int, str]) -> TcFilter | None:
    kind = _kind(buf, start, end)
    options = _find(buf, start, end, TCA_OPTIONS)
    if kind != "u32":
        return TcFilter(dev, parent, prio, kind)
    if options is None:
        return None
    match_all, redirect, classid = False, "", 0
    keys: tuple[tuple[int, int, int], ...] = ()
    for attr, vstart, vend in _attrs(buf, *options):
        if attr == TCA_U32_SEL and vend - vstart >= U32_SEL.size:
            nkeys = buf[vstart + 2]
            raw = buf[vstart + U32_SEL.size:vend]
            match_all = nkeys == 1 and len(raw) >= U32_KEY.size \
                and U32_KEY.unpack_from(raw)[:2] == (0, 0)
            keys = tuple(_key(raw, i * U32_KEY.size) for i in range(nkeys)
                         if (i + 1) * U32_KEY.size <= len(raw))
        elif attr == TCA_U32_ACT:
            redirect = _redirect(buf, vstart, vend, names)
        elif attr == TCA_U32_CLASSID and vend - vstart >= U32.size:
            (classid,) = U32.unpack_from(buf, vstart)
    if not classid:
        return TcFilter(dev, parent, prio, kind, match_all, redirect)
    return TcFilter(dev, parent, prio, kind, match_all, redirect, classid, keys=keys)


def _key(raw: bytes, at: int) -> tuple[int, int, int]:
    """(value, mask, offset) of the u32 key at ``raw[at:]``."""
    mask, value = U32_KEY_MATCH.unpack_from(raw, at)
    off, _offmask = U32_KEY_OFF.unpack_from(raw, at + U32_KEY_MATCH.size)
    return value, mask, off


def _redirect(buf: bytes, start: int, end: int, names: dict[int, str]) -> str:
    """The target of the first mirred egress redirect among the actions ("":
    none, or its device is gone)."""
    for _order, astart, aend in _attrs(buf, start, end):
        options = _find(buf, astart, aend, TCA_ACT_OPTIONS)
        if _kind(buf, astart, aend) != "mirred" or options is None:
            continue
        parms = _find(buf, *options, TCA_MIRRED_PARMS)
        if parms is not None and parms[1] - parms[0] >= MIRRED.size:
            *_, eaction, ifindex = MIRRED.unpack_from(buf, parms[0])
            if eaction == TCA_EGRESS_REDIR:
                return names.get(ifindex, "")
    return ""

