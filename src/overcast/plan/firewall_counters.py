"""Per-rule packet and byte counters from the firewall's sets as observed
(``docs/firewall.md``, "Counters").  Pure.

Every security group rule set (``in4_port``, ``eg6_any`` ...) is declared
with a counter per element, so the kernel counts the packets that an
element admitted.  An element's sources (``FirewallPlan.sources``) are the
rules whose box covers the element entirely (``firewall_space``: a
prefix's ranges are split where its rules begin and end), so its hits are
counted for **every** rule in its sources: each of those rules admitted
every one of its packets.  A rule's counter is therefore never more than
the packets its own box admitted, and exact unless a rule of a wider
remote covers part of its box (that part is the wider rule's element, and
its packets are not told apart); the rules' counters of one group may add
up to more than the packets that passed.  A port rule open to the whole
family is an element of the ``*_any`` sets, which the chains look up after
the addressed ones: a packet that a narrower rule admits too counts for the
narrower rule alone.

Counters are those of the elements in the kernel now: an element that is
deleted and made again (its rule's remote addresses change, a port's
groups change so its tag does, a rule added before it takes over its
comment) starts again from 0, and so does the rule's counter on that host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from overcast.plan.firewall_expr import canonical
from overcast.plan.subsystems.firewall_observe import normalize
from overcast.plan.subsystems.firewall_records import NftElement, NftRuleset, NftSet

RULE = "security_group_rule/"  # the source prefix of a rule's elements
Counter = tuple[int, int]  # packets, bytes


def element_counters(ruleset: NftRuleset, hit_only: bool = False) -> dict[NftElement, Counter]:
    """Element -> (packets, bytes), for the elements of the observed
    ``ruleset``'s counter sets (as the kernel listed them); ``hit_only``:
    only those with a packet (the others are not normalized at all: most
    elements of a large ruleset are idle)."""
    out: dict[NftElement, Counter] = {}
    for s in ruleset.sets:
        if s.counter:
            for element, counter in _listed(s, hit_only):
                out[element] = counter
    return out


def _listed(s: NftSet, hit_only: bool) -> Iterable[tuple[NftElement, Counter]]:
    for item in s.listed:
        key, data = (item[0], item[1]) if s.map and isinstance(item, list) else (item, None)
        elem: Any = key.get("elem") if isinstance(key, dict) else None
        counter = elem.get("counter") if isinstance(elem, dict) else None
        if not isinstance(counter, dict) or (hit_only and not counter.get("packets")):
            continue
        element = NftElement(s.family, s.name, canonical(normalize(elem["val"], s.type)),
                             "" if data is None else canonical(data), str(elem.get("comment", "")))
        yield element, (int(counter.get("packets", 0)), int(counter.get("bytes", 0)))


def rule_counters(counted: Mapping[NftElement, Counter],
                  sources: Mapping[NftElement, tuple[str, ...]]) -> dict[str, Counter]:
    """Security group rule id -> (packets, bytes) summed over the elements
    that stand for it (``sources``: element -> every API object that asked
    for it).  Every rule that has an element in the kernel is in the result
    (with 0 when nothing hit it); an element not in the kernel yet counts
    for nothing, one in the kernel that the plan no longer has is left out
    (it is on its way out)."""
    out: dict[str, list[int]] = {}
    for element, ids in sources.items():
        counter = counted.get(element)
        if counter is None:
            continue
        for source in ids:
            if source.startswith(RULE):
                acc = out.setdefault(source[len(RULE):], [0, 0])
                acc[0] += counter[0]
                acc[1] += counter[1]
    return {rule: (p, b) for rule, (p, b) in sorted(out.items())}


def hits(ruleset: NftRuleset | None, sources: Mapping[NftElement, tuple[str, ...]]) -> dict[str, Counter]:
    """The rules that were hit (non-zero counters) in an observed ruleset."""
    if ruleset is None:
        return {}
    counted = element_counters(ruleset, hit_only=True)
    return {r: c for r, c in rule_counters(counted, sources).items() if c != (0, 0)} if counted else {}
