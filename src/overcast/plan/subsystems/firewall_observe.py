"""Observe for the firewall: the rows of the two firewall tables only (name
AND mark) as one :class:`NftRuleset`, with what the kernel spells its own
way normalized to the compiler's form (protocol names, a full-length prefix
as an address, a one-value range as the value).  The elements of a set
with ``flags timeout`` (``closed4``/``closed6``: written by the conntrack
sweep, each expiring on its own) are left out: the desired ruleset has
none, and the diff must never delete them.  A rule is recognized by
its comment (``overcast:fw:<digest>:<i>/<n>``), so a chain whose rules were
changed, removed or added by hand differs from the desired one and is
refilled.  Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from overcast.plan.firewall_expr import canonical
from overcast.plan.names import FW_RULE_MARK, FW_TABLE, is_fw_table
from overcast.plan.raw import KernelRows
from overcast.plan.subsystems.firewall_records import (
    PROTOCOLS,
    NftChain,
    NftElement,
    NftRuleset,
    NftSet,
    NftTable,
    rule_comment,
)


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
            if "timeout" not in s.flags:  # a timeout set's elements are the sweep's, not the diff's
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
