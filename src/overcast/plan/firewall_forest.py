"""One bucket of a group set's rules as a forest of remote prefixes, and
each tree's elements (:mod:`overcast.plan.firewall_groupsets` keeps one per
bucket).

Within one (direction, family, shape, protocol) a prefix's elements depend
only on the rules of that prefix and of the prefixes around it
(``firewall_space``: prefixes are nested or disjoint, so they form trees),
so the bucket's elements are the union of ``sg_elements`` of each tree's
rules alone.  A :class:`Forest` keeps the trees as prefixes come and go, and
remakes only the elements of the trees a change touches.  Pure, no I/O.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from overcast.plan.firewall_expr import canonical
from overcast.plan.firewall_rules import RuleShape, sg_elements
from overcast.plan.firewall_space import Network
from overcast.plan.subsystems.firewall_records import NftElement

Sourced = tuple[NftElement, tuple[str, ...]]  # an element and every API object that asks for it


def _first(net: Network) -> int:
    return int(net.network_address)


def _last(net: Network) -> int:
    return int(net.broadcast_address)


@dataclass
class Forest:
    """One bucket's remote prefixes, each with the rules that name it (rule
    source -> the rule's shape with that prefix alone), as trees: a root is
    a prefix inside no other one.  ``dirty``: roots whose elements are to
    be made again; ``gone``: former roots whose elements are to go."""

    own: dict[Network, dict[str, RuleShape]] = field(default_factory=dict)
    root: dict[Network, Network] = field(default_factory=dict)
    trees: dict[Network, set[Network]] = field(default_factory=dict)
    lengths: Counter[int] = field(default_factory=Counter)
    firsts: list[int] = field(default_factory=list)  # the roots' first addresses, sorted
    at: dict[int, Network] = field(default_factory=dict)  # first address -> root
    out: dict[Network, list[Sourced]] = field(default_factory=dict)  # root -> its elements
    dirty: set[Network] = field(default_factory=set)
    gone: set[Network] = field(default_factory=set)
    # the whole family (a /0) is a tree of its own, inside nothing and holding nothing:
    # the bucket's shape has a set of its own for it (firewall_chains.KINDS ``<kind>_any``)
    apart: bool = False

    def _alone(self, net: Network) -> bool:
        return self.apart and not net.prefixlen

    def add(self, net: Network, source: str, shape: RuleShape) -> None:
        held = self.own.get(net)
        if held is not None:
            held[source] = shape
            self.dirty.add(self.root[net])
            return
        self.own[net] = {source: shape}
        if self._alone(net):
            self.root[net], self.trees[net] = net, {net}
            self.dirty.add(net)
            return
        outer = self._container(net)
        self.lengths[net.prefixlen] += 1
        if outer is not None:
            top = self.root[outer]
            self.root[net] = top
            self.trees[top].add(net)
            self.dirty.add(top)
            return
        i, j = bisect.bisect_left(self.firsts, _first(net)), bisect.bisect_right(self.firsts, _last(net))
        tree = {net}
        for first in self.firsts[i:j]:  # roots inside the new prefix join its tree
            inner = self.at.pop(first)
            tree |= self.trees.pop(inner)
            self.gone.add(inner)
        del self.firsts[i:j]
        self._plant(net, tree)

    def remove(self, net: Network, source: str) -> None:
        held = self.own[net]
        del held[source]
        top = self.root[net]
        self.dirty.add(top)
        if held:
            return
        del self.own[net], self.root[net]
        if self._alone(net):
            del self.trees[net]
            self.gone.add(net)
            self.dirty.discard(net)
            return
        self.lengths[net.prefixlen] -= 1
        if not self.lengths[net.prefixlen]:
            del self.lengths[net.prefixlen]
        self.trees[top].discard(net)
        if top != net:
            return
        rest = self.trees.pop(net)  # the root goes: what it held becomes trees of its own
        del self.firsts[bisect.bisect_left(self.firsts, _first(net))], self.at[_first(net)]
        self.gone.add(net)
        self.dirty.discard(net)
        for sub, tree in _trees(rest).items():
            self._plant(sub, tree)

    def _container(self, net: Network) -> Network | None:
        """The widest prefix of the forest that holds ``net``, if any."""
        for length in sorted(self.lengths):
            if length >= net.prefixlen:
                return None
            outer = net.supernet(new_prefix=length)
            if outer in self.own:
                return outer
        return None

    def _plant(self, top: Network, tree: set[Network]) -> None:
        bisect.insort(self.firsts, _first(top))
        self.at[_first(top)] = top
        self.trees[top] = tree
        for n in tree:
            self.root[n] = top
        self.dirty.add(top)

    def flush(self, tag: int) -> tuple[list[Sourced], list[Sourced]]:
        """(elements gone, elements made) since the last flush."""
        gone: list[Sourced] = []
        made: list[Sourced] = []
        for top in self.gone | self.dirty:
            gone += self.out.pop(top, ())
            if top in self.trees:
                made += self.out.setdefault(top, _tree_elements(tag, self, top))
        self.gone, self.dirty = set(), set()
        return gone, made


def _trees(nets: Iterable[Network]) -> dict[Network, set[Network]]:
    """The prefixes of ``nets`` (one family) as trees: root -> its prefixes."""
    out: dict[Network, set[Network]] = {}
    top: Network | None = None
    for net in sorted(nets, key=lambda n: (_first(n), n.prefixlen)):
        if top is None or _last(net) > _last(top):  # nested or disjoint: past the root, disjoint
            top = net
            out[top] = set()
        out[top].add(net)
    return out


def _tree_elements(tag: int, forest: Forest, top: Network) -> list[Sourced]:
    """``sg_elements`` of the rules of one tree, as elements with their
    sources (as ``firewall._Out`` collects them)."""
    compiled = [(shape, source) for net in forest.trees[top] for source, shape in forest.own[net].items()]
    found: dict[tuple[str, str, str], list[str]] = {}
    for family, set_, key, source in sg_elements(tag, compiled):
        found.setdefault((family, set_, canonical(key)), []).append(source)
    out = []
    for (family, set_, key), sources in found.items():
        ids = tuple(sorted(set(sources)))
        out.append((NftElement(family, set_, key, "", ids[0].split("/", 1)[1]), ids))
    return out
