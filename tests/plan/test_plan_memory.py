"""What the planner keeps between plans stays bounded by the current view,
not by its history: an address group's parsed addresses are kept for its
current addresses only (review-2 found the earlier ``lru_cache(1024)`` keyed
by the whole tuple keeping a copy per change: ~0.76 MiB per change of a
10,000-address group)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from dataclasses import replace

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
