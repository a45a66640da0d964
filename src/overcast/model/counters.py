"""Per-host counters as agents write them (``keys.firewall_counters``,
``keys.metering_counters``: ``{"host", "rules": {rule id: [packets,
bytes]}}``), parsed for the API and for the agent that reads its own back.
Pure."""

from __future__ import annotations

import json
from typing import Any

COUNTER_MAX = 2**64 - 1  # the kernel's counters are 64-bit


def parse_host_counters(raw: bytes) -> dict[str, tuple[int, int]]:
    """One host's counters key (``{"host", "rules": {rule id: [packets,
    bytes]}}``, written by its agent) as rule id -> (packets, bytes).  A value
    that is not that shape counts nothing, and an entry that is not two
    integers in 0..2^64-1 (not a bool, a float, a string) is left out: what
    one key holds never fails a request nor hides the other hosts'."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # also UnicodeDecodeError, too deep
        return {}
    rules = value.get("rules") if isinstance(value, dict) else None
    if not isinstance(rules, dict):
        return {}
    return {rule_id: (c[0], c[1]) for rule_id, c in rules.items()
            if isinstance(c, list) and len(c) == 2 and all(_count(v) for v in c)}


def _count(v: Any) -> bool:
    return type(v) is int and 0 <= v <= COUNTER_MAX


class HostCounters:
    """The hosts' parsed counters keys, shared by every request of the
    process: a key is parsed again only when its mod_revision or value
    changed, so a request costs a range read and one dict per host, not a
    parse of every host's value."""

    def __init__(self, limit: int = 100_000) -> None:
        self._parsed: dict[str, tuple[int, bytes, dict[str, tuple[int, int]]]] = {}
        self._limit = limit
        self.parses = 0  # values parsed so far (tests count them)

    def read(self, kvs: list[Any]) -> list[dict[str, tuple[int, int]]]:
        return [self._host(kv) for kv in kvs]

    def _host(self, kv: Any) -> dict[str, tuple[int, int]]:
        hit = self._parsed.get(kv.key)
        # the value too: two stores of one process may hold one key at one revision
        if hit is not None and hit[0] == kv.mod_revision and hit[1] == kv.value:
            return hit[2]
        counted = parse_host_counters(kv.value)
        self.parses += 1
        if len(self._parsed) >= self._limit:
            self._parsed.clear()
        self._parsed[kv.key] = (kv.mod_revision, kv.value, counted)
        return counted

    def clear(self) -> None:
        self._parsed.clear()


def summed(hosts: list[dict[str, tuple[int, int]]], rule_ids: set[str]) -> tuple[int, int]:
    """The packets and bytes of ``rule_ids`` over every host's counters."""
    packets = bytes_ = 0
    for counted in hosts:
        for rule_id in rule_ids & counted.keys():
            packets, bytes_ = packets + counted[rule_id][0], bytes_ + counted[rule_id][1]
    return packets, bytes_
