"""FakeNft: an nftables ruleset in memory, with the kernel's refusals, for
:class:`overcast.linux.fake.FakeKernel` (see :class:`FakeNft`)."""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from overcast.linux.nft import NftError, marked_tables
from overcast.plan.raw import KernelRefusal


class FakeKernelError(KernelRefusal):
    """What the fake kernel (its links, FDB and nftables) refuses."""


@dataclass
class _NftTable:
    row: dict[str, Any]  # family, name, handle, comment
    objects: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # creation order
    last_handle: int = 0


class FakeNft:
    """An nftables ruleset in memory, with what a table-owning subsystem
    relies on: ``add``/``create`` table (create of an existing one refused),
    ``delete`` table (a missing one refused), ``flush`` table (drops the
    rules; keeps chains, sets and set elements, as the kernel does),
    ``add``/``create`` of chains, sets and maps and ``add`` of rules and
    elements inside an existing table (else refused), ``delete`` of a chain
    (with its rules), a rule (by handle) or a set/map, ``flush``
    of a chain or a set.  A batch is atomic; handles are per table and
    increasing (tables: per ruleset), and appear in the rows, which come in
    ``list ruleset``'s order.  The same refusals as the driver for a table
    deleted and marked again in one batch (:func:`overcast.linux.nft.
    marked_tables`).

    Elements are identified by their key, as in the kernel: ``add`` of a key
    a set holds is a no-op (the first comment stays), of a key a map holds
    with other data refused; ``delete element`` by key (its comment and data
    are not compared), a missing one refused; an interval set refuses an
    element that overlaps one it holds (concatenated keys: its first or last
    key inside a held element, as the kernel's pipapo sets do; one field: any
    overlap).

    A set declared with a ``counter`` statement gives every element its own
    counter, listed in the element (``{"elem": {"val", "comment"?,
    "counter": {"packets", "bytes"}}}``) from 0 when it is added, as the
    kernel lists it; :meth:`count` stands in for packets that hit elements.
    A set or map that a rule uses (``@name`` in its expression) cannot be
    deleted ("Device or resource busy", as the kernel refuses it).

    Not modelled: expressions are stored as given (not checked, not
    normalized: write them as the kernel lists them, and so element values),
    ``insert``/``replace`` of rules and rule positions, named objects
    (counters, quotas ...), flowtables, references of chains (a chain
    jumped to can be deleted), hooks and priorities (never checked),
    a refused batch's handles (the kernel does not give them back; here they
    are)."""

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], _NftTable] = {}
        self._last_table = 0

    def rows(self) -> list[dict[str, Any]]:
        """The whole ruleset, as ``list ruleset`` (JSON, with handles)."""
        return copy.deepcopy(list(self._rows()))

    def _rows(self) -> Iterator[dict[str, Any]]:
        for t in sorted(self.tables.values(), key=lambda t: int(t.row["handle"])):
            yield {"table": t.row}
            yield from ({k: o} for k, o in t.objects if k in ("set", "map"))
            chains = [o["name"] for k, o in t.objects if k == "chain"]
            yield from ({"chain": o} for k, o in t.objects if k == "chain")
            for chain in chains:
                yield from ({k: o} for k, o in t.objects if k == "rule" and o["chain"] == chain)

    def count(self, family: str, table: str, set_name: str, comment: str, packets: int,
              bytes_: int) -> int:
        """Packets that hit the elements of a counter set whose comment is
        ``comment``: added to their counters.  How many elements it found
        (none: KeyError, so a test cannot count nothing by mistake)."""
        set_ = self._named(self._table((family, table)), ("set", "map"), set_name)
        found = 0
        for item in set_.get("elem", []):
            elem = (item[0] if isinstance(item, list) else item).get("elem", {}) \
                if isinstance(item, dict | list) else {}
            if isinstance(elem, dict) and "counter" in elem and elem.get("comment") == comment:
                elem["counter"]["packets"] += packets
                elem["counter"]["bytes"] += bytes_
                found += 1
        if not found:
            raise KeyError(f"no counted element {comment!r} in {family} {table} {set_name}")
        return found

    def batch(self, commands: list[dict[str, Any]]) -> None:
        saved = copy.deepcopy((self.tables, self._last_table))
        try:
            marked_tables(commands)
            for command in commands:
                ((op, objs),) = command.items()
                ((kind, body),) = objs.items()
                self._do(op, kind, dict(body))
        except (NftError, KeyError, ValueError) as exc:
            self.tables, self._last_table = saved
            raise FakeKernelError(f"Error: Could not process rule: {exc}") from None

    def _do(self, op: str, kind: str, body: dict[str, Any]) -> None:
        if kind == "table":
            self._table_op(op, (body["family"], body["name"]), body)
            return
        t = self._table((body["family"], body["table"]))
        if op in ("add", "create") and kind in ("chain", "set", "map"):
            found = [o for k, o in t.objects if k == kind and o["name"] == body["name"]]
            if found and op == "create":
                raise NftError("File exists")
            if not found:
                t.last_handle += 1
                if "hook" in body:
                    body.setdefault("policy", "accept")
                t.objects.append((kind, {**body, "handle": t.last_handle}))
            elif kind == "chain" and "hook" in found[0] and "policy" in body:
                found[0]["policy"] = body["policy"]  # the kernel updates a base chain's policy
        elif op == "add" and kind == "rule":
            self._named(t, "chain", body["chain"])
            t.last_handle += 1
            t.objects.append(("rule", {**body, "handle": t.last_handle}))
        elif op == "add" and kind == "element":
            _add_elements(self._named(t, ("set", "map"), body["name"]), body["elem"])
        elif op == "delete" and kind == "element":
            _delete_elements(self._named(t, ("set", "map"), body["name"]), body["elem"])
        elif op == "delete":
            self._delete(t, kind, body)
        elif op == "flush" and kind == "chain":
            self._named(t, "chain", body["name"])
            t.objects = [(k, o) for k, o in t.objects if k != "rule" or o["chain"] != body["name"]]
        elif op == "flush" and kind in ("set", "map"):
            self._named(t, kind, body["name"]).pop("elem", None)
        else:
            raise NftError(f"{op} {kind}: not modelled by the fake")

    def _table_op(self, op: str, key: tuple[str, str], body: dict[str, Any]) -> None:
        existing = self.tables.get(key)
        if (op == "add" and existing is not None and body.get("comment")
                and existing.row.get("comment") != body["comment"]):
            raise NftError(f"table {key[0]} {key[1]} exists and is not ours (no mark "
                           f"{body['comment']!r})")
        if op in ("add", "create") and key not in self.tables:
            self._last_table += 1
            self.tables[key] = _NftTable({**body, "handle": self._last_table})
        elif op == "create":
            raise NftError("File exists")
        elif op == "delete":
            self._table(key)
            del self.tables[key]
        elif op == "flush":
            t = self._table(key)
            t.objects = [(k, o) for k, o in t.objects if k != "rule"]
        elif op != "add":
            raise NftError(f"{op} table: not modelled by the fake")

    def _delete(self, t: _NftTable, kind: str, body: dict[str, Any]) -> None:
        if kind == "rule":
            rule = [(k, o) for k, o in t.objects if k == "rule" and o["handle"] == body["handle"]
                    and o["chain"] == body["chain"]]
            if not rule:
                raise NftError("No such file or directory")
            t.objects.remove(rule[0])
        elif kind in ("chain", "set", "map"):
            obj = self._named(t, kind, body["name"])
            ref = f'"@{obj["name"]}"'
            if kind != "chain" and any(k == "rule" and ref in json.dumps(o.get("expr"))
                                       for k, o in t.objects):
                raise NftError("Device or resource busy")
            t.objects.remove((kind, obj))
            if kind == "chain":  # its rules go with it (as with nft 1.0.6 on Linux 6)
                t.objects = [(k, o) for k, o in t.objects if k != "rule" or o["chain"] != obj["name"]]
        else:
            raise NftError(f"delete {kind}: not modelled by the fake")

    def _table(self, key: tuple[str, str]) -> _NftTable:
        if key not in self.tables:
            raise NftError("No such file or directory")
        return self.tables[key]

    @staticmethod
    def _named(t: _NftTable, kinds: str | tuple[str, ...], name: str) -> dict[str, Any]:
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        for k, o in t.objects:
            if k in kinds and o.get("name") == name:
                return o
        raise NftError("No such file or directory")


def _element_key(item: Any, is_map: bool) -> tuple[Any, Any]:
    """(key value, data) of one element as JSON gives it."""
    key, data = (item[0], item[1]) if is_map and isinstance(item, list) else (item, None)
    if isinstance(key, dict) and "elem" in key:
        key = key["elem"]["val"]
    return key, data


def _add_elements(set_: dict[str, Any], items: list[Any]) -> None:
    is_map = "map" in set_
    elems = set_.setdefault("elem", [])
    interval = "interval" in set_.get("flags", ())
    held = {json.dumps(k, sort_keys=True): d for k, d in (_element_key(e, is_map) for e in elems)}
    # held elements by their last field where it is a point (the tag of a rule set, whose
    # key starts with an address range), the others in wide: an element can only overlap
    # one whose last field covers its own
    points: dict[Any, list[list[tuple[Any, Any]]]] = {}
    wide: list[list[tuple[Any, Any]]] = []

    def index(sp: list[tuple[Any, Any]]) -> None:
        if sp[-1][0] == sp[-1][1] and len(sp) > 1:
            points.setdefault(sp[-1], []).append(sp)
        else:
            wide.append(sp)

    for e in elems if interval else ():
        index(_spans(_element_key(e, is_map)[0]))
    for item in items:
        key, data = _element_key(item, is_map)
        text = json.dumps(key, sort_keys=True)
        if text in held:
            if held[text] != data:
                raise NftError("File exists")
            continue
        if interval:
            sp = _spans(key)
            candidates = [*points.get(sp[-1], []), *wide] if sp[-1][0] == sp[-1][1] \
                else [*(o for group in points.values() for o in group), *wide]
            if _overlaps(sp, candidates):
                raise NftError("File exists")
            index(sp)
        held[text] = data
        elems.append(_counted(item, is_map) if _has_counter(set_) else item)


def _has_counter(set_: dict[str, Any]) -> bool:
    return any(isinstance(st, dict) and "counter" in st for st in set_.get("stmt", ()))


def _counted(item: Any, is_map: bool) -> Any:
    """An element of a counter set as the kernel lists it: with its counter, from 0."""
    key, data = (item[0], item[1]) if is_map and isinstance(item, list) else (item, None)
    elem = dict(key["elem"]) if isinstance(key, dict) and "elem" in key else {"val": key}
    elem["counter"] = {"packets": 0, "bytes": 0}
    return [{"elem": elem}, data] if is_map and isinstance(item, list) else {"elem": elem}


def _delete_elements(set_: dict[str, Any], items: list[Any]) -> None:
    """By key; in an interval set by the interval each field covers (an
    address and its one-address range are the same element)."""
    is_map = "map" in set_
    elems = set_.get("elem", [])
    same = _covers if "interval" in set_.get("flags", ()) else (lambda a, b: a == b)
    for item in items:
        key, _ = _element_key(item, is_map)
        found = [e for e in elems if same(_element_key(e, is_map)[0], key)]
        if not found:
            raise NftError("No such file or directory")
        elems.remove(found[0])


def _covers(a: Any, b: Any) -> bool:
    return [_span(v) for v in _fields(a)] == [_span(v) for v in _fields(b)]


def _fields(key: Any) -> list[Any]:
    return list(key["concat"]) if isinstance(key, dict) and "concat" in key else [key]


def _span(value: Any) -> tuple[Any, Any]:
    """One field of an interval element as (first, last) comparable keys."""
    if isinstance(value, dict) and "range" in value:
        return _span(value["range"][0])[0], _span(value["range"][1])[1]
    if isinstance(value, dict) and "prefix" in value:
        net = ipaddress.ip_network(f"{value['prefix']['addr']}/{value['prefix']['len']}", strict=False)
        return (0, int(net.network_address)), (0, int(net.broadcast_address))
    if isinstance(value, str):
        try:
            return (0, int(ipaddress.ip_address(value))), (0, int(ipaddress.ip_address(value)))
        except ValueError:
            return (1, value), (1, value)
    return (0, value), (0, value)


def _spans(key: Any) -> list[tuple[Any, Any]]:
    return [_span(f) for f in (key["concat"] if isinstance(key, dict) and "concat" in key else [key])]


def _overlaps(spans: list[tuple[Any, Any]], held: list[list[tuple[Any, Any]]]) -> bool:
    first, last = [lo for lo, _ in spans], [hi for _, hi in spans]
    for o in held:
        if len(o) != len(spans):
            continue
        if len(spans) == 1:
            if spans[0][0] <= o[0][1] and o[0][0] <= spans[0][1]:
                return True
        elif any(all(lo <= p <= hi for p, (lo, hi) in zip(point, o, strict=True))
                 for point in (first, last)):
            return True
    return False
