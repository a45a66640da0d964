"""The security group elements of one group set, kept from one plan to the
next so that a one-rule change costs one rule, not all of them.

``firewall_rules.sg_elements`` turns a group set's rules into elements.  Its
result is a union of independent parts: rules of different (direction,
family, shape, protocol) never meet, and within one of those *buckets* the
prefixes form trees whose elements are independent
(:mod:`overcast.plan.firewall_forest`).  A :class:`GroupSet` keeps a forest
per bucket; a change of rules re-plans only the trees whose prefixes it
touches.  What it holds is a function of its inputs, nothing else: the
rules (compared by identity, then by value), the addresses of the remote
groups and address groups they name, and the tag.  :func:`elements_of`
keeps one per (host, group set) of the last plan of each recent host (a
bounded cache), so a plan stays a pure function of its view.  Pure, no I/O.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from overcast.model.problems import Problem
from overcast.model.types import SecurityGroupRule
from overcast.plan.firewall_chains import KINDS
from overcast.plan.firewall_forest import Forest
from overcast.plan.firewall_rules import RuleShape, remote_of, rule_shape
from overcast.plan.firewall_space import Network
from overcast.plan.subsystems.firewall_records import NftElement

HOSTS = 8  # hosts whose last plan's group sets are kept (the agent plans one; tests and the lab more)
Bucket = tuple[str, int, str, int]  # direction, version, kind, protocol: what sg_elements groups by


@dataclass(slots=True)
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
    inputs: dict[str, Mapping[str, SecurityGroupRule]] = field(default_factory=dict)  # the last rules
    forests: dict[Bucket, Forest] = field(default_factory=dict)
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
        if self._same(rules, members):
            return
        self.inputs = dict(rules)
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

    def _same(self, rules: Mapping[str, Mapping[str, SecurityGroupRule]],
              members: Mapping[str, tuple[Network, ...]]) -> bool:
        """Whether these are the very inputs of the last update: the same
        groups' rule maps (never changed once made: ``elements_of``) and the
        same addresses of every remote."""
        return (len(rules) == len(self.inputs)
                and all(self.inputs.get(g) is by_id for g, by_id in rules.items())
                and all(members.get(r, ()) == a for r, a in self.snapshots.items()))

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
        self._move(f"security_group_rule/{rid}", old.shape if old else None,
                   new.shape if new else None)

    def _move(self, source: str, old: RuleShape | None, new: RuleShape | None) -> None:
        """Take the rule ``source`` from the prefixes of ``old`` to those of
        ``new``: a prefix whose part of the rule stays is not touched (a
        remote group's member that comes or goes is one prefix)."""
        before = set(old.remotes) if old else set()
        after = set(new.remotes) if new else set()
        same = old is not None and new is not None and _box(old) == _box(new)
        kept = before & after if same else set()
        now = _bucket(new) if new else None
        if old is not None:
            was = _bucket(old)
            for net in before - kept:
                if not (was == now and net in after):  # else: overwritten below
                    self.forests[was].remove(net, source)
        if new is None or now is None:
            return
        forest = self.forests.get(now)
        if forest is None:
            forest = self.forests[now] = Forest(apart=f"{now[2]}_any" in KINDS)
        for net in after - kept:
            forest.add(net, source, replace(new, remotes=(net,)))

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


def _box(shape: RuleShape) -> RuleShape:
    """The shape without its remotes: what it admits from each of them."""
    return replace(shape, remotes=())


@dataclass
class _Host:
    """What is kept of a host's last plan: its view's rules (the objects, in
    their order), grouped, and its group sets."""

    rules: tuple[SecurityGroupRule, ...] = ()
    grouped: dict[str, dict[str, SecurityGroupRule]] = field(default_factory=dict)
    sets: dict[tuple[str, ...], GroupSet] = field(default_factory=dict)


class _Cache:
    """Host -> what is kept of its last plan, for the ``HOSTS`` hosts
    planned last.  A plan takes its host's entry out while it works on it,
    so two plans at once never share one."""

    def __init__(self) -> None:
        self._hosts: OrderedDict[str, _Host] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, host: str) -> _Host:
        with self._lock:
            return self._hosts.pop(host, None) or _Host()

    def keep(self, host: str, kept: _Host) -> None:
        with self._lock:
            self._hosts[host] = kept
            while len(self._hosts) > HOSTS:
                self._hosts.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._hosts.clear()

    def size(self) -> int:
        """How many group sets are kept, over all hosts."""
        with self._lock:
            return sum(len(h.sets) for h in self._hosts.values())


CACHE = _Cache()
_NO_RULES: Mapping[str, SecurityGroupRule] = MappingProxyType({})


def group_rules(rules: Iterable[SecurityGroupRule]) -> dict[str, dict[str, SecurityGroupRule]]:
    """Security group id -> rule id -> rule."""
    out: dict[str, dict[str, SecurityGroupRule]] = {}
    for rule in rules:  # every plan, every rule: as lean as it can be
        by_id = out.get(rule.security_group_id)
        if by_id is None:
            by_id = out[rule.security_group_id] = {}
        by_id[rule.id] = rule
    return out


def elements_of(host: str, tags: Mapping[tuple[str, ...], int], rules: Sequence[SecurityGroupRule],
                members: Mapping[str, tuple[Network, ...]]) -> list[GroupSet]:
    """The :class:`GroupSet` of every group set in ``tags`` (group set ->
    tag), sorted by tag, from the view's ``rules`` and the remotes'
    ``members`` (remote group or address group id -> its addresses); each
    kept for the next plan of ``host``."""
    held = CACHE.take(host)
    # the very rule objects of the last plan, in the same order, are the same rules (they are
    # frozen): the grouping is kept, and so are the group maps each group set compares first
    same = rules is held.rules or (len(rules) == len(held.rules)
                                   and all(map(operator.is_, rules, held.rules)))
    if same:
        now = _Host(held.rules, held.grouped)
    else:
        now = _Host(tuple(rules), group_rules(rules))
    grouped = now.grouped
    for groupset, tag in sorted(tags.items(), key=lambda kv: kv[1]):
        entry = held.sets.get(groupset)
        if entry is None or entry.tag != tag:
            entry = GroupSet(tag)
        entry.update({g: grouped.get(g, _NO_RULES) for g in groupset}, members)
        now.sets[groupset] = entry
    CACHE.keep(host, now)
    return [now.sets[g] for g in sorted(now.sets, key=lambda g: now.sets[g].tag)]
