"""nftables expressions in libnftables' JSON, and their nft-syntax text.

The builders return the JSON objects the firewall's constant chains are made
of (``match(meta("iifname"), "@secured")``, ...); :func:`text` renders any
of them, and any set element value, the way ``nft list`` would (close
enough to read a golden file as a ruleset).  Pure, no I/O.
"""

from __future__ import annotations

import json
from typing import Any

Expr = Any  # a JSON value: dict, list, str, int or None

ACCEPT: Expr = {"accept": None}
DROP: Expr = {"drop": None}
RETURN: Expr = {"return": None}
NOTRACK: Expr = {"notrack": None}


def meta(key: str) -> Expr:
    return {"meta": {"key": key}}


def payload(protocol: str, field: str) -> Expr:
    return {"payload": {"protocol": protocol, "field": field}}


def raw(base: str, offset: int, length: int) -> Expr:
    """Raw payload bits (``@th,64,128``)."""
    return {"payload": {"base": base, "offset": offset, "len": length}}


def ct(key: str) -> Expr:
    return {"ct": {"key": key}}


def concat(*items: Expr) -> Expr:
    return {"concat": list(items)}


def band(left: Expr, mask: Expr) -> Expr:
    return {"&": [left, mask]}


def match(left: Expr, right: Expr, op: str = "==") -> Expr:
    return {"match": {"op": op, "left": left, "right": right}}


def one_of(*values: Expr) -> Expr:
    """An anonymous set on the right of a match (``{ 134, 137 }``)."""
    return {"set": list(values)}


def set_meta(key: str, value: Expr) -> Expr:
    return {"mangle": {"key": meta(key), "value": value}}


def set_ct(key: str, value: Expr) -> Expr:
    return {"mangle": {"key": ct(key), "value": value}}


def lookup(key: Expr, ref: str) -> Expr:
    """The data of ``key`` in map ``ref`` (``iifname map @tag``)."""
    return {"map": {"key": key, "data": f"@{ref}"}}


def vmap(key: Expr, ref: str) -> Expr:
    return {"vmap": {"key": key, "data": f"@{ref}"}}


def jump(chain: str) -> Expr:
    return {"jump": {"target": chain}}


def canonical(value: Expr) -> str:
    """One JSON text per value: the identity of a rule or element."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def rule_text(exprs: list[Expr]) -> str:
    """A rule's statements in nft syntax, space separated."""
    return " ".join(text(e) for e in exprs)


def text(e: Expr) -> str:  # noqa: PLR0911 - one branch per JSON shape
    if isinstance(e, list):
        return ", ".join(text(x) for x in e)
    if not isinstance(e, dict):
        return json.dumps(e) if isinstance(e, str) and not _bare(e) else str(e)
    ((kind, body),) = e.items()
    if kind in _SIMPLE:
        return str(_SIMPLE[kind](body))
    if kind == "match":
        op = "" if body["op"] in ("==", "in") else f"{body['op']} "
        return f"{text(body['left'])} {op}{text(body['right'])}"
    if kind == "mangle":
        return f"{text(body['key'])} set {text(body['value'])}"
    if kind in ("map", "vmap"):
        return f"{text(body['key'])} {kind} {text(body['data'])}"
    if kind == "&":
        return f"{text(body[0])} & {text(body[1])}"
    if kind == "elem":
        comment = f" comment {json.dumps(body['comment'])}" if "comment" in body else ""
        return text(body["val"]) + comment
    if kind == "limit":
        return f"limit rate {body['rate']}/{body['per']} burst {body['burst']} packets"
    if kind == "log":
        return f"log prefix {json.dumps(body['prefix'])} group {body['group']}"
    return kind if body is None else f"{kind} {json.dumps(body)}"


def _bare(s: str) -> bool:
    return s.startswith("@") or all(c.isalnum() or c in ":.-_/*" for c in s)


def _payload(body: dict[str, Any]) -> str:
    if "base" in body:
        return f"@{body['base']},{body['offset']},{body['len']}"
    return f"{body['protocol']} {body['field']}"


_SIMPLE: dict[str, Any] = {
    "meta": lambda b: f"meta {b['key']}",
    "ct": lambda b: f"ct {b['key']}",
    "payload": _payload,
    "concat": lambda b: " . ".join(text(x) for x in b),
    "set": lambda b: "{ " + ", ".join(text(x) for x in b) + " }",
    "prefix": lambda b: f"{b['addr']}/{b['len']}",
    "range": lambda b: f"{text(b[0])}-{text(b[1])}",
    "jump": lambda b: f"jump {b['target']}",
    "goto": lambda b: f"goto {b['target']}",
    "accept": lambda b: "accept",
    "drop": lambda b: "drop",
    "return": lambda b: "return",
    "notrack": lambda b: "notrack",
}
