"""Review-2 finding: what the planner keeps between plans must stay bounded
by the current view, not by its history.  ``firewall._group_addresses`` is
an ``lru_cache(1024)`` keyed by an address group's whole tuple of addresses,
so every change of a large address group keeps one more copy of all its
addresses (the key's strings as the agent decoded them, and the parsed
tuple): measured, ~0.76 MiB per change of a 10,000-address group, so ~780
MiB held by an agent after 1,024 changes of one such group, though only
the last one is ever asked for again."""

from __future__ import annotations

import gc
import json
import tracemalloc
from dataclasses import replace

import pytest

from overcast.model.types import AddressGroup
from overcast.plan.firewall import forget
from overcast.plan.host import plan_host

from .test_firewall_golden import DEFAULT, WEB, default_rules, group, rule, vm, world

AG = "a9000000-0000-4000-8000-0000000000r2"
ADDRESSES = 2000
CHANGES = 100


def _addresses(change: int) -> tuple[str, ...]:
    """The group after ``change`` adds, as the agent decodes it from a store
    event (new strings each time)."""
    given = [f"10.{i // 256}.{i % 256}.0/24" for i in range(ADDRESSES)]
    given.append(f"11.0.{change // 256}.{change % 256}/32")
    return tuple(json.loads(json.dumps(given)))


@pytest.mark.xfail(strict=True, reason="review-2: firewall._group_addresses (lru_cache 1024) keeps "
                   "a copy of an address group's addresses per change (~0.76 MiB per change of a "
                   "10,000-address group: ~780 MiB after 1,024 changes), not only the current one")
def test_changes_of_an_address_group_keep_no_copy_of_its_past() -> None:
    ssh = rule(30, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
               remote_address_group_id=AG)
    view = world([vm(1, "h1", "10.0.0.1", (WEB,))], [group(WEB), group(DEFAULT)],
                 [*default_rules(DEFAULT), ssh])
    forget()

    def plan(change: int) -> None:
        plan_host(replace(view, address_groups=[AddressGroup(id=AG, addresses=_addresses(change))]))

    plan(0)
    tracemalloc.start()
    try:
        plan(1)
        gc.collect()
        one = tracemalloc.get_traced_memory()[0]
        for change in range(2, CHANGES):
            plan(change)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - one
    finally:
        tracemalloc.stop()
        forget()
    # the current group is held once; its past changes are not
    assert grown < 4 * 2**20, f"{grown / 2**20:.1f} MiB kept after {CHANGES} changes"
