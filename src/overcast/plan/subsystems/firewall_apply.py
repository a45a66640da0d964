"""Apply for the firewall: the one nft batch that turns the observed
ruleset into the desired one (element adds and deletes; a chain flushed and
refilled only when its rules change or a set it uses is made again; a table
never flushed), and, when the kernel refuses that batch, the same change in
atomic trial batches narrowed to the API objects it refuses
(:mod:`overcast.plan.firewall_refusal`)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from overcast.plan.firewall_chains import revoked_set, staged_set
from overcast.plan.firewall_refusal import PartlyRefused, bisect
from overcast.plan.names import FW_MARK, FW_TABLE, VXLAN_PREFIX
from overcast.plan.raw import KernelIO, KernelRefusal
from overcast.plan.state import Change
from overcast.plan.subsystems.firewall_records import (
    RULE_SET_PREFIXES,
    NftChain,
    NftElement,
    NftRuleset,
    NftSet,
)

STAGE_FROM = 512  # elements in a rule set from which a change to it is staged (``_staged``)
STAGE_AT_MOST = 256  # elements a staged change holds at most: a larger one is one batch


class Staged(NamedTuple):
    """A change to large rule sets, put in force before the batch that makes
    it (:func:`_staged`)."""

    revoked: list[NftElement]  # elements that go: their keys in their sets' revoked sets
    staged: list[NftElement]  # elements that come: in their sets' staged sets

    def front(self) -> list[dict[str, Any]]:
        """The small batch that puts the change in force."""
        return [*_elements_op("add", self.revoked, {}, side=revoked_set),
                *_elements_op("add", self.staged, {}, side=staged_set)]

    def back(self) -> list[dict[str, Any]]:
        """Its undoing, at the end of the batch that makes the change."""
        return [*_elements_op("delete", self.revoked, {}, side=revoked_set),
                *_elements_op("delete", self.staged, {}, side=staged_set)]


def apply(io: KernelIO, change: Change) -> None:
    """One batch; if the kernel refuses it, the same change in trial
    batches narrowed to the API objects that cause the refusal
    (:mod:`overcast.plan.firewall_refusal`): the constant part first (if
    the kernel refuses that too, the whole change is refused), then the
    element deletes, then the adds, grouped by comment.  Raises
    :class:`PartlyRefused` naming them when only some were refused.

    A small change to large rule sets is put in force first, in a small
    batch of its own (:func:`_staged`); the batch that makes it follows
    and takes the staging back."""
    new: NftRuleset = NftRuleset() if change.op == "delete" else change.obj
    old: NftRuleset = change.obj if change.op == "delete" else (change.old or NftRuleset())
    gone, added = old.elements - new.elements, new.elements - old.elements
    commands = batch(old, new, gone, added)
    if not commands:
        return
    staged = _staged(old, new, gone, added)
    back: list[dict[str, Any]] = []
    if staged.revoked or staged.staged:
        try:
            io.nft(_head(new) + staged.front())
        except KernelRefusal:
            pass  # the batch below makes the change, only later
        else:
            back = staged.back()
    try:
        io.nft(commands + back)
    except KernelRefusal:
        if not new.tables:
            raise
        try:
            _narrowed(io, old, new)
        finally:
            if back:  # what the trials left is in force, and only that
                try:
                    io.nft(back)
                except KernelRefusal:
                    pass


def _staged(old: NftRuleset, new: NftRuleset, gone: frozenset[NftElement],
            added: frozenset[NftElement]) -> Staged:
    """The change as its staging, when all of it is in rule sets of
    ``STAGE_FROM`` elements or more: ``STAGE_AT_MOST`` elements at most,
    every one of them in such a set, no set or chain changed, and each set
    kept as it is with its revoked and staged sets
    (``firewall_chains.staged_set``).  Only then is what the small batch
    puts in force the new ruleset: the large sets without the revoked keys,
    with the staged elements (the elements of one ruleset never overlap, so
    those that come do not overlap those that stay), and everything else
    as it was and as it stays.  A change that also touches another set (a
    port's tag, a small rule set, an address) is one batch: staging a part
    of it would put a ruleset in force that is neither the old nor the new.
    Keys a revoked or staged set already holds (an apply cut short between
    its batches; the desired state never has them, so they are in
    ``gone``) are left to the batch's diff, which deletes them there."""
    none = Staged([], [])
    if not gone and not added or len(gone) + len(added) > STAGE_AT_MOST:
        return none
    if old.sets != new.sets or old.chains != new.chains or old.tables != new.tables:
        return none
    sides = {side(s.name): s.name for s in old.sets if s.family == "inet"
             and s.name.startswith(RULE_SET_PREFIXES) for side in (revoked_set, staged_set)}
    held = {(e.set, e.key) for e in gone if e.set in sides}
    going = [e for e in gone if e.set not in sides]
    coming = list(added)
    names = {e.set for e in (*going, *coming)}
    if any(e.family != "inet" or not e.set.startswith(RULE_SET_PREFIXES) for e in (*going, *coming)):
        return none
    declared = {s.name for s in old.sets if s.family == "inet"}
    if any(revoked_set(n) not in declared or staged_set(n) not in declared for n in names):
        return none
    if not _all_large(old, names):
        return none
    return Staged(sorted(e for e in going if (revoked_set(e.set), e.key) not in held),
                  sorted(e for e in coming if (staged_set(e.set), e.key) not in held))


def _all_large(ruleset: NftRuleset, names: set[str]) -> bool:
    """Whether each set of ``names`` holds ``STAGE_FROM`` elements or more
    (counted until they all do)."""
    counts = dict.fromkeys(names, 0)
    short = set(names)
    for e in ruleset.elements:
        if e.set in short:
            counts[e.set] += 1
            if counts[e.set] >= STAGE_FROM:
                short.discard(e.set)
                if not short:
                    return True
    return not short


def _narrowed(io: KernelIO, old: NftRuleset, new: NftRuleset) -> None:
    """The change in trials (see :func:`apply`); raises the first trial's
    refusal when the constant part (tables, sets, chains) is refused."""
    new_sets = {(s.family, s.name): s for s in new.sets}
    same = {(s.family, s.name) for s in old.sets if new_sets.get((s.family, s.name)) == s}
    # the structure of new with the elements old keeps in unchanged sets
    middle = NftRuleset(new.tables, new.sets, new.chains,
                        frozenset(e for e in old.elements if (e.family, e.set) in same))
    base = batch(old, middle)
    if base:
        io.nft(base)  # a refusal here refuses the whole change
    refused: dict[str, tuple[str, str]] = {}
    for op, elements in (("delete", middle.elements - new.elements),
                         ("add", new.elements - middle.elements)):
        by_id: dict[str, list[NftElement]] = {}
        for e in sorted(elements):
            by_id.setdefault(e.comment, []).append(e)
        kinds = {i: element_kind(es[0]) for i, es in by_id.items()}

        def attempt(parts: list[list[NftElement]], op: str = op) -> str | None:
            try:
                io.nft(_elements_op(op, sorted(e for part in parts for e in part), new_sets))
            except KernelRefusal as exc:
                return str(exc)
            return None

        for id_, why in bisect(sorted(by_id.items()), attempt).items():
            refused.setdefault(id_, (kinds[id_], why))
    if refused:
        raise PartlyRefused(refused)


def element_kind(e: NftElement) -> str:
    """The kind of API object an element comes from, as a port status names it."""
    if e.set.startswith(("in4_", "in6_", "eg4_", "eg6_")):
        return "security group rule"
    key = json.loads(e.key)
    if e.set == "zone" or (e.set == "tag" and isinstance(key, str) and key.startswith(VXLAN_PREFIX)):
        return "network"
    return "port"


def batch(old: NftRuleset, new: NftRuleset, gone: frozenset[NftElement] | None = None,
          added: frozenset[NftElement] | None = None) -> list[dict[str, Any]]:
    """The one nft batch that turns ``old`` into ``new`` (see the module doc).
    Its cost follows what changes, not the ruleset's size: the elements
    are compared once each way (two set differences in C; ``gone`` and
    ``added``, when the caller has them), and only those that come or go
    are sorted and written.  Empty when they are equal."""
    gone_tables = {t.family for t in old.tables - new.tables}
    head = _head(new)
    cmds = list(head)
    old_chains = {(c.family, c.name): c for c in old.chains}
    new_chains = {(c.family, c.name): c for c in new.chains}
    old_sets = {(s.family, s.name): s for s in old.sets}
    new_sets = {(s.family, s.name): s for s in new.sets}

    def kept(family: str) -> bool:
        return family not in gone_tables

    changed_sets = {k for k, s in old_sets.items() if new_sets.get(k) != s}
    # a set made again must first lose the rules that use it (else EBUSY), then get them back
    refill = {k for k, c in new_chains.items() if _uses(c, changed_sets)}
    for key, c in sorted(old_chains.items()):  # unhook every rule that goes or changes
        if kept(c.family) and (new_chains.get(key) != c or key in refill):
            cmds.append({"flush": c.header()})
    if gone is None or added is None:
        gone, added = old.elements - new.elements, new.elements - old.elements
    cmds += _elements_op("delete", [e for e in sorted(gone)
                                    if kept(e.family) and (e.family, e.set) not in changed_sets],
                         old_sets)
    for key, c in sorted(old_chains.items()):
        n = new_chains.get(key)
        if kept(c.family) and (n is None or (n.hook, n.prio) != (c.hook, c.prio)):
            cmds.append({"delete": c.header()})
    for key in sorted(changed_sets):
        if kept(key[0]):
            cmds.append({"delete": old_sets[key].command()})
    for key, s in sorted(new_sets.items()):
        if old_sets.get(key) != s:
            cmds.append({"add": s.command()})
    fill = [c for key, c in sorted(new_chains.items()) if old_chains.get(key) != c or key in refill]
    cmds += [{"add": c.header()} for c in fill]
    cmds += [r for c in fill for r in c.rule_commands()]
    if changed_sets:  # a set made again gets all its elements back
        added |= {e for e in new.elements if (e.family, e.set) in changed_sets}
    cmds += _elements_op("add", sorted(added), new_sets)
    cmds += [{"delete": {"table": {"family": f, "name": FW_TABLE}}} for f in sorted(gone_tables)]
    return cmds if len(cmds) > len(head) or new.tables - old.tables else []


def _head(new: NftRuleset) -> list[dict[str, Any]]:
    """What every batch starts with: its tables, with Overcast's mark (the
    driver checks the mark, and a batch that marks a table is one the
    driver's view of the kernel can follow: ``linux/nft_view.py``)."""
    return [{"add": {"table": {"family": t.family, "name": FW_TABLE, "comment": FW_MARK}}}
            for t in sorted(new.tables)]


def _uses(chain: NftChain, sets: Iterable[tuple[str, str]]) -> bool:
    """Whether a rule of ``chain`` refers to one of ``sets`` ((family, name))."""
    refs = [f'"@{name}"' for family, name in sets if family == chain.family]
    return any(ref in rule for rule in chain.rules for ref in refs)


def _elements_op(op: str, elements: Iterable[NftElement], sets: Mapping[tuple[str, str], NftSet],
                 side: Callable[[str], str] | None = None) -> list[dict[str, Any]]:
    """One command per set for ``elements`` (sorted); ``sets``: their
    declarations (a delete from an interval set names its key otherwise).
    ``side``: into or out of each element's revoked or staged set instead
    (``firewall_chains.revoked_set``, ``staged_set``: interval sets without
    counters)."""
    by_set: dict[tuple[str, str], list[Any]] = {}
    for e in elements:
        if side is not None:
            value = _delete_key(json.loads(e.key)) if op == "delete" else e.value()
            by_set.setdefault((e.family, side(e.set)), []).append(value)
            continue
        s = sets.get((e.family, e.set))
        interval = s is not None and "interval" in s.flags
        by_set.setdefault((e.family, e.set), []).append(
            (_delete_key(json.loads(e.key)) if interval else json.loads(e.key)) if op == "delete"
            else e.value())
    return [{op: {"element": {"family": f, "table": FW_TABLE, "name": name, "elem": elems}}}
            for (f, name), elems in by_set.items()]


def _delete_key(key: Any) -> Any:
    """A key as ``delete element`` finds it (libnftables 1.0.6, Linux 6.18,
    measured): the key only (with the data of a verdict map element the
    delete is refused, ENOENT), and a single address inside a concatenated
    interval key as the range it is (``5 . 10.1.0.2`` is not found,
    ``5 . 10.1.0.2-10.1.0.2`` is); a key of single values only needs one of
    them as a range too (``5353 . 17 . 5`` is not found, ``5353-5353 . 17 .
    5`` is)."""
    if not (isinstance(key, dict) and "concat" in key):
        return key
    values = [_as_range(v) for v in key["concat"]]
    if not any(isinstance(v, dict) for v in values) and isinstance(values[0], int):
        values[0] = {"range": [values[0], values[0]]}
    return {"concat": values}


def _as_range(value: Any) -> Any:
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return value
        return {"range": [value, value]}
    return value
