"""Disjoint elements for interval sets.

The kernel's interval sets with concatenated keys (pipapo) refuse an
element that overlaps one they hold (its first or last key inside an
existing element), so the compiler never writes two elements of one set
that intersect.  Security group rules do intersect (tcp/20-30 from
10.0.0.0/8 and tcp/22 from 10.1.0.0/16), so their union is written as
disjoint boxes: addresses are prefixes, and two prefixes are either nested
or disjoint, so the prefixes form a tree; a prefix's own port intervals,
minus what its ancestors already cover, are its boxes, split where one of
its rules begins or ends (so each box is covered entirely by the rules it
lists, and per-rule counters count only packets of the rule's own box).
The result covers exactly the union of the rules; its size is the number
of rules where they do not overlap, at most twice that on one prefix where
they do.  Pure, no I/O.
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
    """The prefixes not inside another one, each with the ids of that very
    prefix (sorted by address): the ids whose prefix covers it entirely.  A
    prefix inside another has no element of its own and is not listed."""
    out: list[tuple[Network, list[str]]] = []
    for net, id_ in sorted(set(nets), key=lambda n: (n[0].version, n[0].network_address, n[0].prefixlen, n[1])):
        if out and _within(net, out[-1][0]):
            if net == out[-1][0]:
                out[-1][1].append(id_)
        else:
            out.append((net, [id_]))
    return [(net, tuple(sorted(set(ids)))) for net, ids in out]


# a prefix's rules are split where one of them begins or ends while that
# costs at most this many (box, id) pairs per rule; beyond (thousands of
# nested ranges on one prefix) its merged ranges are kept whole, each
# listing the rules that cover it whole, or if none does every rule in it
SPLIT_BUDGET = 8


def disjoint_boxes(boxes: Iterable[tuple[Network, int, int, str]]) -> list[Box]:
    """Disjoint boxes covering exactly the union of ``boxes`` (see the
    module doc), sorted by address then value; each box's ``ids`` are the
    inputs whose box covers it entirely (so a box's packets were admitted
    by each of them).  A prefix's ranges are split where one of its rules
    begins or ends, so a rule inside or overlapping another of the same
    prefix has boxes of its own; a rule inside a wider prefix's box has none
    there (it is not listed: the kernel cannot tell its packets apart)."""
    own: dict[Network, list[tuple[int, int, str]]] = {}
    for net, lo, hi, id_ in boxes:
        own.setdefault(net, []).append((lo, hi, id_))
    out: list[Box] = []
    stack: list[tuple[Network, list[Interval]]] = []  # ancestors, what they and theirs cover
    for net in sorted(own, key=lambda n: (n.version, n.network_address, n.prefixlen)):
        while stack and not _within(net, stack[-1][0]):
            stack.pop()
        covered = stack[-1][1] if stack else []
        mine = merge([(lo, hi) for lo, hi, _ in own[net]])
        free = subtract(mine, covered)
        out.extend(Box(net, lo, hi, ids) for lo, hi, ids in _clip(_pieces(own[net], mine), free))
        if net.prefixlen < net.max_prefixlen:  # a host address has no descendants
            stack.append((net, merge(covered + mine)))
    return out


def _pieces(rules: Sequence[tuple[int, int, str]],
            mine: Sequence[Interval]) -> list[tuple[int, int, tuple[str, ...]]]:
    """One prefix's ranges as disjoint pieces, sorted, each with the rules
    covering it entirely: split at every rule's ends, or (past the budget)
    ``mine``, the merged ranges, with the rules that cover each whole."""
    points = sorted({lo for lo, _, _ in rules} | {hi + 1 for _, hi, _ in rules})
    begin: dict[int, list[str]] = {}
    end: dict[int, list[str]] = {}
    for lo, hi, id_ in rules:
        begin.setdefault(lo, []).append(id_)
        end.setdefault(hi + 1, []).append(id_)
    cost, depth = 0, 0
    for p in points:
        depth += len(begin.get(p, ())) - len(end.get(p, ()))
        cost += depth
    if cost > SPLIT_BUDGET * len(rules):
        starts = [lo for lo, _ in mine]
        whole: list[set[str]] = [set() for _ in mine]
        met: list[set[str]] = [set() for _ in mine]
        for lo, hi, id_ in rules:
            i = bisect.bisect_right(starts, lo) - 1
            met[i].add(id_)
            if (lo, hi) == mine[i]:
                whole[i].add(id_)
        # a merged range no rule covers whole counts for all of its rules
        return [(lo, hi, tuple(sorted(w or m))) for (lo, hi), w, m in zip(mine, whole, met,
                                                                            strict=True)]
    out: list[tuple[int, int, tuple[str, ...]]] = []
    active: dict[str, int] = {}
    for here, after in zip(points, points[1:], strict=False):
        for id_ in end.get(here, ()):
            active[id_] -= 1
            if not active[id_]:
                del active[id_]
        for id_ in begin.get(here, ()):
            active[id_] = active.get(id_, 0) + 1
        if active:
            out.append((here, after - 1, tuple(sorted(active))))
    return out


def _clip(pieces: Sequence[tuple[int, int, tuple[str, ...]]],
          free: Sequence[Interval]) -> list[tuple[int, int, tuple[str, ...]]]:
    """``pieces`` cut to ``free`` (both sorted and disjoint)."""
    out: list[tuple[int, int, tuple[str, ...]]] = []
    j = 0
    for lo, hi, ids in pieces:
        while j < len(free) and free[j][1] < lo:
            j += 1
        k = j
        while k < len(free) and free[k][0] <= hi:
            a, b = max(lo, free[k][0]), min(hi, free[k][1])
            if a <= b:
                out.append((a, b, ids))
            k += 1
    return out


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
