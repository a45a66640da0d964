"""The security group elements of one group set, kept from one plan to the
next so that a one-rule change costs one rule, not all of them.

``firewall_rules.sg_elements`` turns a group set's rules into elements.  Its
result is a union of independent parts: rules of different (direction,
family, shape, protocol) never meet, and within one of those *buckets* a
prefix's elements depend only on the rules of that prefix and of the
prefixes around it (``firewall_space``: prefixes are nested or disjoint, so
they form trees).  A :class:`GroupSet` keeps, per bucket, that forest of
remote prefixes and the elements of each tree (``sg_elements`` of just that
tree's rules); a change of rules re-plans only the trees whose prefixes it
touches.  What it holds is a function of its inputs, nothing else: the
rules (compared by identity, then by value), the member addresses of the
remote groups they name, and the tag.  :func:`elements_of` keeps one per
(host, group set) of the last plan of each recent host (a bounded cache),
so a plan stays a pure function of its view.  Pure, no I/O.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from overcast.model.problems import Problem
from overcast.model.types import SecurityGroupRule
from overcast.plan.firewall_chains import KINDS
from overcast.plan.firewall_expr import canonical
from overcast.plan.firewall_rules import RuleShape, remote_of, rule_shape, sg_elements
from overcast.plan.firewall_space import Network
from overcast.plan.subsystems.firewall_records import NftElement

HOSTS = 8  # hosts whose last plan's group sets are kept (the agent plans one; tests and the lab more)
Sourced = tuple[NftElement, tuple[str, ...]]  # an element and every API object that asks for it
Bucket = tuple[str, int, str, int]  # direction, version, kind, protocol: what sg_elements groups by


def _first(net: Network) -> int:
    return int(net.network_address)


def _last(net: Network) -> int:
    return int(net.broadcast_address)


@dataclass
class _Forest:
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


def _tree_elements(tag: int, forest: _Forest, top: Network) -> list[Sourced]:
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


@dataclass
class _Rule:
    rule: SecurityGroupRule
    remote: str | None  # the remote group (or address group) whose addresses it was shaped with
    shape: RuleShape | None
    problems: tuple[Problem, ...]


def _bucket(shape: RuleShape) -> Bucket:
    return shape.direction, shape.version, shape.kind, shape.proto


@dataclass
class GroupSet:
    """The rule elements of one group set with tag ``tag`` (module doc)."""

    tag: int
    rules: dict[str, _Rule] = field(default_factory=dict)
    refused: dict[str, tuple[Problem, ...]] = field(default_factory=dict)  # rule id -> why not
    by_remote: dict[str, set[str]] = field(default_factory=dict)  # remote id -> its rules' ids
    snapshots: dict[str, tuple[Network, ...]] = field(default_factory=dict)  # remote id -> addresses
    forests: dict[Bucket, _Forest] = field(default_factory=dict)
    sources: dict[NftElement, tuple[str, ...]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    _elements: frozenset[NftElement] | None = None

    @property
    def elements(self) -> frozenset[NftElement]:
        if self._elements is None:
            self._elements = frozenset(self.sources)
        return self._elements

    def update(self, rules: Mapping[str, Mapping[str, SecurityGroupRule]],
               members: Mapping[str, tuple[Network, ...]]) -> None:
        """Make the elements those of ``rules`` (the group set's groups: group
        id -> rule id -> rule), with ``members`` (a remote group's or address
        group's id -> its addresses)."""
        changed, found = self._changed(rules)
        # every rule kept is found once in its own group (ids are unique there), so fewer
        # found than kept means some are gone
        gone = {rid for rid, was in self.rules.items()
                if rid not in rules.get(was.rule.security_group_id, {})} if found < len(self.rules) else set()
        for remote, addresses in self.snapshots.items():  # a remote's addresses changed
            if members.get(remote, ()) != addresses:
                for rid in self.by_remote[remote] - gone:
                    changed.setdefault(rid, self.rules[rid].rule)
        if changed or gone:
            for rid in gone:
                self._replace(rid, None)
            for rid, rule in changed.items():
                self._replace(rid, _Rule(rule, remote_of(rule), *self._shape(rule, members)))
            self.snapshots = {remote: members.get(remote, ()) for remote in self.by_remote}
            self._flush()

    def _changed(self, rules: Mapping[str, Mapping[str, SecurityGroupRule]]
                 ) -> tuple[dict[str, SecurityGroupRule], int]:
        """The rules new or of another value, and how many kept ones were found."""
        held = self.rules
        changed: dict[str, SecurityGroupRule] = {}
        found = 0
        for by_id in rules.values():
            for rid, rule in by_id.items():  # every plan, every rule: as lean as it can be
                was = held.get(rid)
                if was is not None:
                    if was.rule is rule:
                        found += 1
                        continue
                    if was.rule.security_group_id == rule.security_group_id:
                        found += 1
                    if was.rule == rule:
                        was.rule = rule  # equal: compared by identity from now on
                        continue
                changed[rid] = rule
        return changed, found

    @staticmethod
    def _shape(rule: SecurityGroupRule, members: Mapping[str, Sequence[Network]]
               ) -> tuple[RuleShape | None, tuple[Problem, ...]]:
        problems: list[Problem] = []
        return rule_shape(rule, members, problems), tuple(problems)

    def _replace(self, rid: str, new: _Rule | None) -> None:
        """Put ``new`` in place of the rule ``rid`` (None: it goes), changing
        only the prefixes whose part of the rule changes."""
        old = self.rules.pop(rid, None)
        self.refused.pop(rid, None)
        if old is not None and old.remote:
            self.by_remote[old.remote].discard(rid)
            if not self.by_remote[old.remote]:
                del self.by_remote[old.remote]
        if new is not None:
            self.rules[rid] = new
            if new.problems:
                self.refused[rid] = new.problems
            if new.remote:
                self.by_remote.setdefault(new.remote, set()).add(rid)
        if old is not None and new is not None and old.shape == new.shape:
            return
        source = f"security_group_rule/{rid}"
        before = _parts(old.shape if old else None)
        after = _parts(new.shape if new else None)
        for bucket, net in before.keys() - after.keys():
            self.forests[bucket].remove(net, source)
        for (bucket, net), shape in after.items():
            if before.get((bucket, net)) != shape:
                forest = self.forests.get(bucket)
                if forest is None:
                    forest = self.forests[bucket] = _Forest(apart=f"{bucket[2]}_any" in KINDS)
                forest.add(net, source, shape)

    def _flush(self) -> None:
        for bucket, forest in list(self.forests.items()):
            gone, made = forest.flush(self.tag)
            for element, _ in gone:
                self.sources.pop(element, None)
            self.sources.update(made)
            if not forest.own:
                del self.forests[bucket]
        self._elements = None
        self.problems = tuple(p for problems in self.refused.values() for p in problems)


def _parts(shape: RuleShape | None) -> dict[tuple[Bucket, Network], RuleShape]:
    """(bucket, remote prefix) -> the shape with that prefix alone."""
    if shape is None:
        return {}
    bucket = _bucket(shape)
    return {(bucket, net): replace(shape, remotes=(net,)) for net in shape.remotes}


class _Cache:
    """Host -> its last plan's group sets -> their :class:`GroupSet`, for
    the ``HOSTS`` hosts planned last.  A plan takes its host's entry out
    while it works on it, so two plans at once never share one."""

    def __init__(self) -> None:
        self._hosts: OrderedDict[str, dict[tuple[str, ...], GroupSet]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, host: str) -> dict[tuple[str, ...], GroupSet]:
        with self._lock:
            return self._hosts.pop(host, {})

    def keep(self, host: str, sets: dict[tuple[str, ...], GroupSet]) -> None:
        with self._lock:
            self._hosts[host] = sets
            while len(self._hosts) > HOSTS:
                self._hosts.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._hosts.clear()

    def size(self) -> int:
        """How many group sets are kept, over all hosts."""
        with self._lock:
            return sum(len(s) for s in self._hosts.values())


CACHE = _Cache()


def elements_of(host: str, tags: Mapping[tuple[str, ...], int],
                rules: Mapping[str, Mapping[str, SecurityGroupRule]],
                members: Mapping[str, tuple[Network, ...]]) -> list[GroupSet]:
    """The :class:`GroupSet` of every group set in ``tags`` (group set ->
    tag), sorted by tag, from the group's ``rules`` (group id -> rule id ->
    rule) and the remote groups' ``members``; each kept for the next plan
    of ``host``."""
    held = CACHE.take(host)
    now: dict[tuple[str, ...], GroupSet] = {}
    for groupset, tag in sorted(tags.items(), key=lambda kv: kv[1]):
        entry = held.get(groupset)
        if entry is None or entry.tag != tag:
            entry = GroupSet(tag)
        entry.update({g: rules.get(g, {}) for g in groupset}, members)
        now[groupset] = entry
    CACHE.keep(host, now)
    return [now[g] for g in sorted(now, key=lambda g: now[g].tag)]
