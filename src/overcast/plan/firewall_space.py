"""Disjoint elements for interval sets.

The kernel's interval sets with concatenated keys (pipapo) refuse an
element that overlaps one they hold (its first or last key inside an
existing element), so the compiler never writes two elements of one set
that intersect.  Security group rules do intersect (tcp/20-30 from
10.0.0.0/8 and tcp/22 from 10.1.0.0/16), so their union is written as
disjoint boxes: addresses are prefixes, and two prefixes are either nested
or disjoint, so the prefixes form a tree; a prefix's own port intervals,
minus what its ancestors already cover, are its boxes.  The result covers
exactly the union of the rules, and its size is the number of rules unless
nested prefixes carry overlapping port ranges.  Pure, no I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network

Network = IPv4Network | IPv6Network
Interval = tuple[int, int]  # inclusive


@dataclass(frozen=True, slots=True)
class Box:
    """Addresses ``net`` x values ``lo``..``hi`` (a port or ICMP range),
    admitted by the rules ``ids``."""

    net: Network
    lo: int
    hi: int
    ids: tuple[str, ...]


def prefix_cover(nets: Iterable[tuple[Network, str]]) -> list[tuple[Network, tuple[str, ...]]]:
    """The prefixes not inside another one, each with the ids of all the
    prefixes it covers (sorted by address)."""
    out: list[tuple[Network, list[str]]] = []
    for net, id_ in sorted(set(nets), key=lambda n: (n[0].version, n[0].network_address, n[0].prefixlen, n[1])):
        if out and _within(net, out[-1][0]):
            out[-1][1].append(id_)
        else:
            out.append((net, [id_]))
    return [(net, tuple(sorted(set(ids)))) for net, ids in out]


def disjoint_boxes(boxes: Iterable[tuple[Network, int, int, str]]) -> list[Box]:
    """Disjoint boxes covering exactly the union of ``boxes`` (see the
    module doc), sorted by address then value; each box's ``ids`` are every
    input whose box intersects it: of its own prefix, and of the prefixes
    inside it (a rule entirely inside a wider one has no box of its own,
    and the wider one's box admits its packets)."""
    own: dict[Network, list[tuple[int, int, str]]] = {}
    for net, lo, hi, id_ in boxes:
        own.setdefault(net, []).append((lo, hi, id_))
    out: list[tuple[Network, int, int, set[str]]] = []
    stack: list[_Ancestor] = []  # ancestors with what they and theirs cover, and their boxes
    for net in sorted(own, key=lambda n: (n.version, n.network_address, n.prefixlen)):
        while stack and not _within(net, stack[-1].net):
            stack.pop()
        covered = stack[-1].covered if stack else []
        for lo, hi, id_ in own[net]:  # this prefix's rules inside the ancestors' boxes
            for anc in stack:
                for i in anc.meeting(lo, hi):
                    out[i][3].add(id_)
        mine = merge([(lo, hi) for lo, hi, _ in own[net]])
        starts = [lo for lo, _ in mine]
        members: list[list[tuple[int, int, str]]] = [[] for _ in mine]  # the rules in each
        for r in own[net]:
            members[bisect.bisect_right(starts, r[0]) - 1].append(r)
        first = len(out)
        for lo, hi in subtract(mine, covered):
            group = members[bisect.bisect_right(starts, lo) - 1]
            out.append((net, lo, hi, {i for a, b, i in group if a <= hi and lo <= b}))
        if net.prefixlen < net.max_prefixlen:  # a host address has no descendants
            stack.append(_Ancestor(net, merge(covered + mine), out, first,
                                   [b[1] for b in out[first:]]))
    return [Box(net, lo, hi, tuple(sorted(ids))) for net, lo, hi, ids in out]


@dataclass(slots=True)
class _Ancestor:
    """A prefix on the way down the tree: ``covered``, what it and its
    ancestors cover; its boxes are ``boxes[first:first + len(starts)]``
    (disjoint, by value; ``starts``: their low ends)."""

    net: Network
    covered: list[Interval]
    boxes: list[tuple[Network, int, int, set[str]]]
    first: int
    starts: list[int]

    def meeting(self, lo: int, hi: int) -> range:
        """The indexes of its boxes that intersect ``lo``..``hi``."""
        last = self.first + bisect.bisect_right(self.starts, hi)
        start = last
        while start > self.first and self.boxes[start - 1][2] >= lo:
            start -= 1
        return range(start, last)


def _within(net: Network, outer: Network) -> bool:
    return net.version == outer.version and net.subnet_of(outer)  # type: ignore[arg-type]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, disjoint intervals covering ``intervals`` (adjacent ones are
    kept apart: one element per rule where rules only touch)."""
    out: list[Interval] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def subtract(mine: Sequence[Interval], covered: Sequence[Interval]) -> list[Interval]:
    """``mine`` minus ``covered`` (both as :func:`merge` returns them)."""
    out: list[Interval] = []
    starts = [lo for lo, _ in covered]
    for lo, hi in mine:
        i = max(bisect.bisect_right(starts, lo) - 1, 0)
        cur = lo
        while i < len(covered) and covered[i][0] <= hi:
            c_lo, c_hi = covered[i]
            if c_hi >= cur:
                if c_lo > cur:
                    out.append((cur, c_lo - 1))
                cur = max(cur, c_hi + 1)
            i += 1
        if cur <= hi:
            out.append((cur, hi))
    return out
