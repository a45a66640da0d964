"""The agent's metering totals (``agent.reconciler.Metering``): what the
kernel's rule counters counted, summed into totals that survive the
kernel's counters starting again from 0 and the agent's own restart."""

from __future__ import annotations

import json

from overcast.agent.reconciler import Metering
from overcast.model import keys
from overcast.plan.subsystems.routers import RouterMeter
from overcast.store import MemoryStore

RULE, OTHER = "4e1e0000-0000-4000-8000-000000000001", "4e1e0000-0000-4000-8000-000000000002"


def meters(*counted: tuple[str, str, str, int, int]) -> list[RouterMeter]:
    """(namespace, digest, rule id, packets, bytes) as observed."""
    return [RouterMeter(ns, digest, 1, counters=((rule, p, b),)) for ns, digest, rule, p, b in counted]


def written(store: MemoryStore) -> dict[str, list[int]]:
    kv = store.get(keys.metering_counters("h1"))
    return json.loads(kv.value)["rules"] if kv is not None else {}


def test_totals_add_up_namespaces_and_go_on_when_a_table_is_made_again() -> None:
    store = MemoryStore()
    m = Metering(store, "h1")
    rules = {RULE, OTHER}
    m.report(meters(("ns1", "d1", RULE, 0, 0)), rules)  # first read: the baseline
    assert written(store) == {}
    m.report(meters(("ns1", "d1", RULE, 5, 500), ("ns2", "d9", RULE, 2, 200)), rules)
    assert written(store) == {RULE: [7, 700]}
    # ns1's table made again (a label changed: another digest) counts from 0
    m.report(meters(("ns1", "d2", RULE, 1, 100), ("ns2", "d9", RULE, 2, 200)), rules)
    assert written(store) == {RULE: [8, 800]}
    # a counter below its last value (the same digest, made again by hand): from 0 too
    m.report(meters(("ns1", "d2", RULE, 0, 0), ("ns2", "d9", RULE, 3, 300)), rules)
    assert written(store) == {RULE: [9, 900]}
    # a rule deleted leaves the totals; none left: no key
    m.report(meters(("ns2", "d9", RULE, 3, 300)), {OTHER})
    assert store.get(keys.metering_counters("h1")) is None


def test_a_restarted_agent_goes_on_from_its_written_totals_without_counting_twice() -> None:
    store = MemoryStore()
    m = Metering(store, "h1")
    m.report(meters(("ns1", "d1", RULE, 0, 0)), {RULE})
    m.report(meters(("ns1", "d1", RULE, 4, 400)), {RULE})
    assert written(store) == {RULE: [4, 400]}
    again = Metering(store, "h1")  # the kernel's counters stayed: read as already written
    again.report(meters(("ns1", "d1", RULE, 6, 600)), {RULE})
    assert written(store) == {RULE: [4, 400]}
    again.report(meters(("ns1", "d1", RULE, 9, 900)), {RULE})
    assert written(store) == {RULE: [7, 700]}


def test_a_pass_that_could_not_read_the_routers_changes_nothing() -> None:
    store = MemoryStore()
    m = Metering(store, "h1")
    m.report(meters(("ns1", "d1", RULE, 0, 0)), {RULE})
    m.report(meters(("ns1", "d1", RULE, 1000, 1000)), {RULE})
    m.report([], {RULE}, readable=False)  # its empty reading is no reading
    m.report(meters(("ns1", "d1", RULE, 1001, 1001)), {RULE})
    assert written(store) == {RULE: [1001, 1001]}
    again = Metering(store, "h1")  # a restart whose first pass cannot read them
    again.report([], {RULE}, readable=False)
    again.report(meters(("ns1", "d1", RULE, 1005, 1005)), {RULE})  # the baseline, not news
    again.report(meters(("ns1", "d1", RULE, 1006, 1006)), {RULE})
    assert written(store) == {RULE: [1002, 1002]}
