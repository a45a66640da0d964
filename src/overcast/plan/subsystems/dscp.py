"""DSCP marking: the VM's IPv4 and IPv6 packets leave its port with the
DSCP of its QoS policy (``docs/qos.md``).

One nftables table, ``bridge overcast_qos`` (marked ``overcast:qos``): a
base chain ``pre`` on the bridge prerouting hook with one rule, ``iifname
vmap @dscp``; the verdict map sends each marked port's frames to the chain
of its mark, ``dscp_<N>``, which sets the DSCP of IPv4 and IPv6 packets.
One lookup per frame whatever the number of ports (nftables 1.0.6 cannot
set the DSCP from a map's value, so the map picks a chain; there are at
most 21 of them, one per valid mark in use).

The whole table is one record, :class:`DscpMarks`.  A change is one atomic
batch: the elements that go and come, the chains of marks that come (made
empty, then their rules) and of marks no longer used.  Observe decodes the
table; a chain whose rules are not exactly the two DSCP settings, or a base
chain not as made, is seen as missing and made again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from overcast.plan.names import QOS_TABLE, QOS_TABLE_MARK
from overcast.plan.raw import KernelIO, KernelRows
from overcast.plan.state import Change
from overcast.plan.subsystem import DiffContext, Subsystem

FAMILY = "bridge"
BASE = "pre"
MAP = "dscp"
PRIORITY = -250  # after the firewall's bridge prerouting chain (-300)
DSCP_NAMES = {"cs0": 0, "cs1": 8, "af11": 10, "af12": 12, "af13": 14, "cs2": 16, "af21": 18,
              "af22": 20, "af23": 22, "cs3": 24, "af31": 26, "af32": 28, "af33": 30,
              "cs4": 32, "af41": 34, "af42": 36, "af43": 38, "cs5": 40, "ef": 46, "cs6": 48,
              "cs7": 56}


def chain_of(mark: int) -> str:
    return f"dscp_{mark}"


@dataclass(frozen=True, slots=True, order=True)
class DscpMarks:
    """The table: ``marks`` (tap, DSCP) sorted; ``chains`` the marks whose
    chain is in place; ``base``: the base chain and its rule are."""

    marks: tuple[tuple[str, int], ...]
    chains: tuple[int, ...]
    base: bool = True
    # observed: a base chain of that name that is not as made (another hook or priority,
    # which the kernel does not change in place): deleted before it is made again
    stale_base: bool = field(default=False, compare=False)

    @staticmethod
    def of(marks: dict[str, int]) -> DscpMarks:
        return DscpMarks(tuple(sorted(marks.items())), tuple(sorted(set(marks.values()))))

    def render(self) -> str:
        return "dscp " + ", ".join(f"{dev}={mark}" for dev, mark in self.marks)

    def devices(self) -> frozenset[str]:
        return frozenset(dev for dev, _ in self.marks)


def diff(d: DiffContext) -> None:
    have = d.observed[DscpMarks]
    old = have[0] if have else None
    want = d.desired[DscpMarks]
    if want and want[0] != old:
        d.put(want[0], old)
    elif not want and old is not None:
        d.delete(old)


def observe(rows: KernelRows) -> list[DscpMarks]:
    items = [item for item in rows.nft_rows() if _in_table(item)]
    if not any("table" in item and item["table"].get("comment") == QOS_TABLE_MARK
               for item in items):
        return []
    rules: dict[str, list[list[dict[str, Any]]]] = {}
    chains: dict[str, dict[str, Any]] = {}
    marks: dict[str, int] = {}
    for item in items:
        if "chain" in item:
            chains[item["chain"]["name"]] = item["chain"]
        elif "rule" in item:
            rules.setdefault(item["rule"]["chain"], []).append(item["rule"].get("expr", []))
        elif "map" in item and item["map"].get("name") == MAP:
            for key, verdict in item["map"].get("elem", []):
                target = verdict.get("goto", {}).get("target", "") if isinstance(verdict, dict) else ""
                if isinstance(key, str) and target.startswith("dscp_") and target[5:].isdigit():
                    marks[key] = int(target[5:])
    good = tuple(sorted(m for m in set(DSCP_NAMES.values())
                        if chain_of(m) in chains and rules.get(chain_of(m)) == _mark_exprs(m)))
    base = chains.get(BASE, {})
    base_ok = (base.get("hook") == "prerouting" and base.get("prio") == PRIORITY
               and base.get("policy", "accept") == "accept"
               and rules.get(BASE) == [_base_expr()])
    return [DscpMarks(tuple(sorted(marks.items())), good, base_ok, BASE in chains and not base_ok)]


def _in_table(item: dict[str, Any]) -> bool:
    body = next(iter(item.values()))
    if not isinstance(body, dict) or body.get("family") != FAMILY:
        return False
    return (body.get("name") if "table" in item else body.get("table")) == QOS_TABLE


def _mark_exprs(mark: int) -> list[list[dict[str, Any]]]:
    """The rules of ``dscp_<mark>`` as the kernel lists them (the DSCP by its name)."""
    name = next(n for n, v in DSCP_NAMES.items() if v == mark)
    return [[{"mangle": {"key": {"payload": {"protocol": proto, "field": "dscp"}},
                         "value": name}}] for proto in ("ip", "ip6")]


def _base_expr() -> list[dict[str, Any]]:
    return [{"vmap": {"key": {"meta": {"key": "iifname"}}, "data": f"@{MAP}"}}]


def _t() -> dict[str, Any]:
    return {"family": FAMILY, "table": QOS_TABLE}


def commands(new: DscpMarks, old: DscpMarks | None) -> list[dict[str, Any]]:
    """The batch that turns ``old`` (None: no table) into ``new``."""
    out: list[dict[str, Any]] = [
        {"add": {"table": {"family": FAMILY, "name": QOS_TABLE, "comment": QOS_TABLE_MARK}}},
        {"add": {"map": {**_t(), "name": MAP, "type": "ifname", "map": "verdict"}}}]
    have = dict(old.marks) if old else {}
    want = dict(new.marks)
    gone = [dev for dev, mark in have.items() if want.get(dev) != mark]
    if gone:
        out.append({"delete": {"element": {**_t(), "name": MAP, "elem": sorted(gone)}}})
    for mark in sorted(set(new.chains) - set(old.chains if old else ())):
        chain = {**_t(), "name": chain_of(mark)}
        out += [{"add": {"chain": chain}}, {"flush": {"chain": chain}}]
        out += [{"add": {"rule": {**_t(), "chain": chain_of(mark), "expr": expr}}}
                for expr in _mark_exprs(mark)]
    if old is None or not old.base:
        chain = {**_t(), "name": BASE, "type": "filter", "hook": "prerouting",
                 "prio": PRIORITY, "policy": "accept"}
        if old is not None and old.stale_base:
            out += [{"flush": {"chain": {**_t(), "name": BASE}}},
                    {"delete": {"chain": {**_t(), "name": BASE}}}]
        out += [{"add": {"chain": chain}}, {"flush": {"chain": {**_t(), "name": BASE}}},
                {"add": {"rule": {**_t(), "chain": BASE, "expr": _base_expr()}}}]
    come = sorted((dev, mark) for dev, mark in want.items() if have.get(dev) != mark)
    if come:
        out.append({"add": {"element": {**_t(), "name": MAP, "elem": [
            [dev, {"goto": {"target": chain_of(mark)}}] for dev, mark in come]}}})
    for mark in sorted(set(old.chains if old else ()) - set(new.chains)):
        chain = {**_t(), "name": chain_of(mark)}
        out += [{"flush": {"chain": chain}}, {"delete": {"chain": chain}}]
    return out


def apply(io: KernelIO, change: Change) -> None:
    if change.op == "delete":
        io.nft([{"delete": {"table": {"family": FAMILY, "name": QOS_TABLE}}}])
    else:
        io.nft(commands(change.obj, change.old))


SUBSYSTEM = Subsystem("dscp", (DscpMarks,), diff, observe, apply)
