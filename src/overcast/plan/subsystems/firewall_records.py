"""The firewall's records: the owned tables (:class:`NftTable`), their
sets and maps (:class:`NftSet`), their chains with their constant rules
(:class:`NftChain`), the elements of the sets and maps (:class:`NftElement`,
each with the id of the API object that made it as its comment), and the
subsystem's one record, the whole :class:`NftRuleset` of both tables.  See
:mod:`overcast.plan.subsystems.firewall` and ``docs/firewall.md``.  Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from overcast.plan.firewall_expr import canonical
from overcast.plan.names import FW_MARK, FW_RULE_MARK, FW_TABLE

DELTA_IDS = 8  # API object ids named in a change's one-line description
RULE_SET_PREFIXES = ("in4_", "in6_", "eg4_", "eg6_")  # security group rule sets (firewall_chains.sg_set)
# /etc/protocols (netbase): nft lists an inet_proto by the name getprotobynumber gives
PROTOCOLS = {
    "ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
    "egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27,
    "iso-tp4": 29, "dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41,
    "ipv6-route": 43, "ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
    "skip": 57, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81,
    "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94, "etherip": 97, "encap": 98, "pim": 103,
    "ipcomp": 108, "vrrp": 112, "l2tp": 115, "isis": 124, "sctp": 132, "fc": 133,
    "mobility-header": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138, "hip": 139,
    "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143,
}


@dataclass(frozen=True, slots=True, order=True)
class NftTable:
    family: str

    def render(self) -> str:
        return f"nft table {self.family} {FW_TABLE} comment {FW_MARK}"

    def devices(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True, order=True)
class NftSet:
    """A named set (``map == ""``) or map (``map``: its data type).
    ``counter``: every element has its own packet and byte counter (the
    set's ``counter`` statement).  An observed set keeps the elements as
    the kernel listed them in ``listed`` (with their counters; not part of
    its identity: counter values never make observed differ from desired)."""

    family: str
    name: str
    type: tuple[str, ...]
    flags: tuple[str, ...] = ()
    map: str = ""
    counter: bool = False
    listed: Sequence[Any] = field(default=(), compare=False, hash=False, repr=False)

    def render(self) -> str:
        kind = f"map {self.family} {self.name} type {' . '.join(self.type)} : {self.map}" if self.map \
            else f"set {self.family} {self.name} type {' . '.join(self.type)}"
        flags = f" flags {','.join(self.flags)}" if self.flags else ""
        return f"nft {kind}{flags}{' counter' if self.counter else ''}"

    def devices(self) -> frozenset[str]:
        return frozenset()

    def command(self) -> dict[str, Any]:
        body: dict[str, Any] = {"family": self.family, "table": FW_TABLE, "name": self.name,
                                "type": self.type[0] if len(self.type) == 1 else list(self.type)}
        if self.flags:
            body["flags"] = list(self.flags)
        if self.map:
            body["map"] = self.map
        if self.counter:
            body["stmt"] = [{"counter": None}]
        return {"map" if self.map else "set": body}


@dataclass(frozen=True, slots=True, order=True)
class NftChain:
    """A chain and its constant rules.  ``hook`` "" is a regular chain.
    Identity is the header and ``digest`` (of the rules, written into every
    rule's comment); ``rules`` (canonical JSON of each rule's statements)
    are what apply writes."""

    family: str
    name: str
    hook: str = ""
    prio: int = 0
    digest: str = ""
    rules: tuple[str, ...] = field(default=(), compare=False)
    policy: str = "accept"  # base chains: what a packet that no rule decides meets

    def render(self) -> str:
        policy = f" policy {self.policy}" if self.hook and self.policy != "accept" else ""
        head = f" hook {self.hook} prio {self.prio}{policy}" if self.hook else ""
        return f"nft chain {self.family} {self.name}{head} rules {self.digest}"

    def devices(self) -> frozenset[str]:
        return frozenset()

    def header(self) -> dict[str, Any]:
        body: dict[str, Any] = {"family": self.family, "table": FW_TABLE, "name": self.name}
        if self.hook:
            body.update(type="filter", hook=self.hook, prio=self.prio, policy=self.policy)
        return {"chain": body}

    def rule_commands(self) -> list[dict[str, Any]]:
        n = len(self.rules)
        return [{"add": {"rule": {"family": self.family, "table": FW_TABLE, "chain": self.name,
                                  "expr": json.loads(r), "comment": rule_comment(self.digest, i, n)}}}
                for i, r in enumerate(self.rules)]


def rule_comment(digest: str, i: int, n: int) -> str:
    return f"{FW_RULE_MARK}{digest}:{i}/{n}"


class NftElement(NamedTuple):
    """One element of a set or map: ``key`` and ``data`` (maps) are canonical
    JSON in the form ``nft -j list`` gives them; ``comment`` is the id of the
    API object that made it (a port, a network, a security group rule).

    A named tuple, not a dataclass like the other records: a host's ruleset
    holds 10,000s of elements, and every change compares the desired
    elements with the observed ones (equal values, distinct objects); a
    tuple's hash, equality and order run in C (a set difference of 10,000
    elements: 1.9 ms, 5.5 ms as a frozen dataclass).  Fields and order are
    the dataclass's were."""

    family: str
    set: str
    key: str
    data: str = ""
    comment: str = ""

    def render(self) -> str:
        from overcast.plan.firewall_expr import text  # noqa: PLC0415 - render only
        data = f" : {text(json.loads(self.data))}" if self.data else ""
        return f"nft element {self.family} {self.set} {text(json.loads(self.key))}{data} # {self.comment}"

    def devices(self) -> frozenset[str]:
        if self.set.startswith(RULE_SET_PREFIXES):
            return frozenset()  # keyed by addresses and a tag, no device
        key = json.loads(self.key)
        first = key["concat"][0] if isinstance(key, dict) and "concat" in key else key
        return frozenset((first,)) if isinstance(first, str) else frozenset()

    def value(self) -> Any:
        elem = {"elem": {"val": json.loads(self.key), "comment": self.comment}} if self.comment \
            else json.loads(self.key)
        return [elem, json.loads(self.data)] if self.data else elem


@dataclass(frozen=True, slots=True, order=True)
class NftRuleset:
    """Everything of the firewall's tables on one host (see the module doc)."""

    tables: frozenset[NftTable] = frozenset()
    sets: frozenset[NftSet] = frozenset()
    chains: frozenset[NftChain] = frozenset()
    elements: frozenset[NftElement] = frozenset()

    def render(self) -> str:
        """One line per table, set, chain and element (sorted): a ruleset is
        one record so that a change to it is one atomic batch."""
        groups: list[Iterable[Any]] = [self.tables, self.sets, self.chains, self.elements]
        return "\n".join(r.render() for g in groups for r in sorted(g))

    def devices(self) -> frozenset[str]:
        return frozenset(d for e in self.elements for d in e.devices())

    def sharing(self, other: NftRuleset) -> NftRuleset:
        """This ruleset holding ``other``'s set of elements when the two are
        equal (counters stay this one's, in its sets).  Observe gives a
        fresh listing's ruleset so: the held one is the last desired
        ruleset, whose element objects the next plan reuses, and elements
        compared with themselves compare by identity (10,000 elements:
        ~0.1 ms instead of ~2 ms for each comparison of the sets)."""
        if self.elements is other.elements or self.elements != other.elements:
            return self
        return NftRuleset(self.tables, self.sets, self.chains, other.elements)

    def delta(self, old: NftRuleset | None) -> str:
        """One line for logs, refusals and port status reasons (the ruleset
        of a host may have 100,000 elements): what changes from ``old``,
        with the API objects whose elements come or go."""
        old = old or NftRuleset()
        added, gone = self.elements - old.elements, old.elements - self.elements
        chains = sorted(c.name for c in self.chains ^ old.chains)
        ids = sorted({e.comment for e in added | gone if e.comment})
        shown = ", ".join(ids[:DELTA_IDS]) + (f" and {len(ids) - DELTA_IDS} more"
                                              if len(ids) > DELTA_IDS else "")
        parts = [f"firewall ruleset: +{len(added)} -{len(gone)} elements"
                 + (f" of {shown}" if shown else "")]
        if chains:
            parts.append(f"chains {', '.join(dict.fromkeys(chains))}")
        if self.sets != old.sets:
            parts.append(f"sets {len(self.sets ^ old.sets)} changed")
        return "; ".join(parts)

    def refused_devices(self, refused: Mapping[str, str], old: NftRuleset | None = None) -> dict[str, str]:
        """Device -> its reason when the change to this ruleset (from
        ``old``) was refused only in part (``refused``: the refused API
        objects' ids -> their lines, ``ApplyError.refused``).  An object's
        devices: the devices its elements name (a port's tap, a network's
        bridge and VXLAN device) and, for a security group rule, the taps of
        the group set its elements are keyed by."""
        elements = self.elements | (old.elements if old else frozenset())
        by_tag: dict[str, set[str]] = {}
        for e in self.elements:
            if e.family == "bridge" and e.set == "tag" and e.data:
                by_tag.setdefault(e.data, set()).update(e.devices())
        out: dict[str, str] = {}
        for e in sorted(elements):
            why = refused.get(e.comment)
            if why is None:
                continue
            devices = set(e.devices())
            if e.set.startswith(RULE_SET_PREFIXES):  # the tag is the key's last field
                devices |= by_tag.get(canonical(json.loads(e.key)["concat"][-1]), set())
            for dev in sorted(devices):
                out.setdefault(dev, why)
        return out
