"""The firewall: port security and security groups in Overcast's own
nftables tables (``table bridge overcast_fw`` and ``table inet overcast_fw``,
each with the comment ``overcast:fw``).  See ``docs/firewall.md``.

Records: the owned tables (:class:`NftTable`), their sets and maps
(:class:`NftSet`), their chains with their constant rules
(:class:`NftChain`) and the elements of the sets and maps
(:class:`NftElement`, each with the id of the API object that made it as its
comment).  The subsystem's one record is the whole :class:`NftRuleset` of
both tables: every change to it is ONE atomic nft batch computed as a diff
at element granularity (element adds and deletes; a chain is flushed and
refilled only when its constant rules change, i.e. with a new version of
Overcast; a table is never flushed or reloaded), so counters and sets
survive.

Observe reads the rows of the two firewall tables only (name AND mark) and
normalizes what the kernel spells its own way (protocol names, a full-length
prefix as an address, a one-value range as the value); a rule is recognized
by its comment (``overcast:fw:<digest>:<i>/<n>``), so a chain whose rules
were changed, removed or added by hand differs from the desired one and is
refilled.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from overcast.plan.firewall_expr import canonical
from overcast.plan.firewall_refusal import PartlyRefused, bisect
from overcast.plan.names import FW_MARK, FW_RULE_MARK, FW_TABLE, VXLAN_PREFIX, is_fw_table
from overcast.plan.raw import KernelIO, KernelRefusal, KernelRows
from overcast.plan.state import Change
from overcast.plan.subsystem import DiffContext, Subsystem

FAMILIES = ("bridge", "inet")
DELTA_IDS = 8  # API object ids named in a change's one-line description
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


@dataclass(frozen=True, slots=True, order=True)
class NftElement:
    """One element of a set or map: ``key`` and ``data`` (maps) are canonical
    JSON in the form ``nft -j list`` gives them; ``comment`` is the id of the
    API object that made it (a port, a network, a security group rule)."""

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
            if e.set.startswith(("in4_", "in6_", "eg4_", "eg6_")):
                devices |= by_tag.get(canonical(json.loads(e.key)["concat"][0]), set())
            for dev in sorted(devices):
                out.setdefault(dev, why)
        return out


# --- observe ---------------------------------------------------------------------
def observe(rows: KernelRows) -> list[NftRuleset]:
    """The firewall's tables as one record (none when neither exists)."""
    items = rows.nft_rows()
    ours = {t["family"] for i in items if (t := i.get("table")) is not None
            and is_fw_table(t["name"], t.get("comment"))}
    if not ours:
        return []
    sets: list[NftSet] = []
    elements: list[NftElement] = []
    chains: dict[tuple[str, str], dict[str, Any]] = {}
    comments: dict[tuple[str, str], list[str]] = {}
    for item in items:
        ((kind, body),) = item.items()
        family = body.get("family")
        if family not in ours or body.get("table", body.get("name")) != FW_TABLE:
            continue
        if kind in ("set", "map"):
            s = _set(kind, body)
            sets.append(s)
            elements += _elements(s, body.get("elem", []))
        elif kind == "chain":
            chains[(family, body["name"])] = body
        elif kind == "rule":
            comments.setdefault((family, body["chain"]), []).append(str(body.get("comment", "")))
    return [NftRuleset(frozenset(NftTable(f) for f in ours), frozenset(sets),
                       frozenset(_chain(c, comments.get(k, [])) for k, c in chains.items()),
                       frozenset(elements))]


def _set(kind: str, body: dict[str, Any]) -> NftSet:
    types = body["type"]
    counter = any(isinstance(st, dict) and "counter" in st for st in body.get("stmt", ()))
    return NftSet(body["family"], body["name"], tuple(types) if isinstance(types, list) else (types,),
                  tuple(body.get("flags", ())), str(body.get("map", "")) if kind == "map" else "",
                  counter, body.get("elem", ()) if counter else ())


def _chain(body: dict[str, Any], comments: list[str]) -> NftChain:
    digests = {c.removeprefix(FW_RULE_MARK).rsplit(":", 1)[0] for c in comments}
    digest = digests.pop() if len(digests) == 1 else ""
    if digest and comments != [rule_comment(digest, i, len(comments)) for i in range(len(comments))]:
        digest = ""
    if not comments:
        digest = "empty"
    hooked = "hook" in body
    return NftChain(body["family"], body["name"], str(body.get("hook", "")),
                    int(body.get("prio", 0)) if hooked else 0, digest or "changed",
                    policy=str(body.get("policy", "accept")) if hooked else "accept")


def _elements(s: NftSet, items: Iterable[Any]) -> list[NftElement]:
    out = []
    for item in items:
        key, data = (item[0], item[1]) if s.map and isinstance(item, list) else (item, None)
        comment = ""
        if isinstance(key, dict) and "elem" in key:
            comment, key = str(key["elem"].get("comment", "")), key["elem"]["val"]
        out.append(NftElement(s.family, s.name, canonical(normalize(key, s.type)),
                              "" if data is None else canonical(data), comment))
    return out


def normalize(value: Any, types: tuple[str, ...]) -> Any:
    """A key as the kernel lists it -> the form the compiler writes."""
    if isinstance(value, dict) and "concat" in value:
        return {"concat": [_field(v, t) for v, t in zip(value["concat"], types, strict=False)]}
    return _field(value, types[0])


def _field(value: Any, type_: str) -> Any:
    addresses = type_ in ("ipv4_addr", "ipv6_addr")
    if isinstance(value, dict) and "range" in value:
        lo, hi = (_field(v, type_) for v in value["range"])
        if addresses:
            return address_span(lo, hi)
        return lo if lo == hi else {"range": [lo, hi]}
    if isinstance(value, dict) and "prefix" in value:
        net = ipaddress.ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}", strict=False)
        return address_span(str(net.network_address), str(net.broadcast_address))
    if addresses and isinstance(value, str):
        return str(ipaddress.ip_address(value))
    if type_ == "inet_proto" and isinstance(value, str):
        return PROTOCOLS.get(value, value)
    if type_ == "ether_addr" and isinstance(value, str):
        return value.lower()
    return value


def address_span(lo: str, hi: str) -> Any:
    """An address interval in the kernel's spelling: one address, a prefix,
    or a range."""
    a, b = ipaddress.ip_address(lo), ipaddress.ip_address(hi)
    if a == b:
        return str(a)
    nets = list(ipaddress.summarize_address_range(a, b))
    if len(nets) == 1 and isinstance(nets[0], ipaddress.IPv4Network | ipaddress.IPv6Network):
        return {"prefix": {"addr": str(nets[0].network_address), "len": nets[0].prefixlen}}
    return {"range": [str(a), str(b)]}


# --- diff and apply ----------------------------------------------------------------
def diff(d: DiffContext) -> None:
    want = d.desired[NftRuleset]
    have = d.observed[NftRuleset]
    new = want[0] if want else None
    old = have[0] if have else None
    if new is None and old is not None:
        d.delete(old)
    elif new is not None and new != old:
        d.put(new, old)


def apply(io: KernelIO, change: Change) -> None:
    """One batch; if the kernel refuses it, the same change in trial
    batches narrowed to the API objects that cause the refusal
    (:mod:`overcast.plan.firewall_refusal`): the constant part first (if
    the kernel refuses that too, the whole change is refused), then the
    element deletes, then the adds, grouped by comment.  Raises
    :class:`PartlyRefused` naming them when only some were refused."""
    new: NftRuleset = NftRuleset() if change.op == "delete" else change.obj
    old: NftRuleset = change.obj if change.op == "delete" else (change.old or NftRuleset())
    commands = batch(old, new)
    if not commands:
        return
    try:
        io.nft(commands)
    except KernelRefusal:
        if not new.tables:
            raise
        _narrowed(io, old, new)


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
                io.nft(_elements_op(op, sorted(e for part in parts for e in part)))
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


def batch(old: NftRuleset, new: NftRuleset) -> list[dict[str, Any]]:
    """The one nft batch that turns ``old`` into ``new`` (see the module doc)."""
    gone_tables = {t.family for t in old.tables - new.tables}
    cmds: list[dict[str, Any]] = [{"add": {"table": {"family": t.family, "name": FW_TABLE,
                                                     "comment": FW_MARK}}}
                                  for t in sorted(new.tables)]
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
    cmds += _elements_op("delete", [e for e in sorted(old.elements - new.elements)
                                    if kept(e.family) and (e.family, e.set) not in changed_sets])
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
    added = sorted(e for e in new.elements
                   if e not in old.elements or (e.family, e.set) in changed_sets)
    cmds += _elements_op("add", added)
    cmds += [{"delete": {"table": {"family": f, "name": FW_TABLE}}} for f in sorted(gone_tables)]
    return cmds if old != new else []


def _uses(chain: NftChain, sets: Iterable[tuple[str, str]]) -> bool:
    """Whether a rule of ``chain`` refers to one of ``sets`` ((family, name))."""
    refs = [f'"@{name}"' for family, name in sets if family == chain.family]
    return any(ref in rule for rule in chain.rules for ref in refs)


def _elements_op(op: str, elements: list[NftElement]) -> list[dict[str, Any]]:
    """One command per set for ``elements`` (sorted)."""
    by_set: dict[tuple[str, str], list[Any]] = {}
    for e in elements:
        by_set.setdefault((e.family, e.set), []).append(
            _delete_key(json.loads(e.key)) if op == "delete" else e.value())
    return [{op: {"element": {"family": f, "table": FW_TABLE, "name": name, "elem": elems}}}
            for (f, name), elems in by_set.items()]


def _delete_key(key: Any) -> Any:
    """A key as ``delete element`` finds it (libnftables 1.0.6, Linux 6.18,
    measured): the key only (with the data of a verdict map element the
    delete is refused, ENOENT), and a single address inside a concatenated
    interval key as the range it is (``5 . 10.1.0.2`` is not found,
    ``5 . 10.1.0.2-10.1.0.2`` is)."""
    if not (isinstance(key, dict) and "concat" in key):
        return key
    return {"concat": [_as_range(v) for v in key["concat"]]}


def _as_range(value: Any) -> Any:
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return value
        return {"range": [value, value]}
    return value


SUBSYSTEM = Subsystem("firewall", (NftRuleset,), diff, observe, apply)
