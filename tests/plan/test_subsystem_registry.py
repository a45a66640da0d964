"""A new kernel subsystem is one module and one registration: proved with a
toy nftables subsystem defined here (records, diff, observe rule over
``nft_rows()``, apply through ``io.nft``) and registered only by passing
``subsystems=(*SUBSYSTEMS, TOY)`` to the kernel and to the diff.  Also the
FakeKernel's nftables semantics that such a subsystem relies on.

The root twin (``tests/linux/test_nft_subsystem.py``) runs the same toy over
NetlinkKernel in a namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from overcast.linux.fake import FakeKernel
from overcast.plan.diff import diff, observe
from overcast.plan.names import MARK_PREFIX, NFT_TABLE_PREFIX, is_owned_table
from overcast.plan.raw import KernelIO, KernelRefusal, KernelRows
from overcast.plan.state import Change, KernelState
from overcast.plan.subsystem import DiffContext, Subsystem
from overcast.plan.subsystems import SUBSYSTEMS
from overcast.plan.subsystems.fdb import FdbEntry
from overcast.plan.subsystems.links import Attachment, Bridge, Vxlan

# --- the toy subsystem: what plan/subsystems/<name>.py would hold -------------
TOY_MARK = f"{MARK_PREFIX}toy"
CHAIN = "filter"


@dataclass(frozen=True, slots=True, order=True)
class NftTable:
    """An owned table: one forward chain dropping what comes in on ``body``'s
    interfaces (one rule each, in order)."""

    family: str
    name: str
    body: tuple[str, ...] = ()

    def render(self) -> str:
        return f"nft table {self.family} {self.name} drop-iif {','.join(self.body) or '-'}"

    def devices(self) -> frozenset[str]:
        return frozenset()


def toy_diff(d: DiffContext) -> None:
    observed = {(t.family, t.name): t for t in d.observed[NftTable]}
    wanted = {(t.family, t.name) for t in d.desired[NftTable]}
    for table in d.desired[NftTable]:
        old = observed.get((table.family, table.name))
        if old != table:
            d.put(table, old)
    for key, old in observed.items():
        if key not in wanted:  # observe only ever sees our tables
            d.delete(old)


def toy_observe(rows: KernelRows) -> list[NftTable]:
    body: dict[tuple[str, str], list[str]] = {}
    for item in rows.nft_rows():
        if "table" in item:
            body[(item["table"]["family"], item["table"]["name"])] = []
        elif "rule" in item:
            rule = item["rule"]
            body[(rule["family"], rule["table"])].append(_iif(rule))
    return [NftTable(family, name, tuple(lines)) for (family, name), lines in body.items()]


def _iif(rule: dict[str, Any]) -> str:
    """The interface a rule of ours drops; "?" for anything else (so the
    table is replaced)."""
    try:
        match, verdict = rule["expr"]
        return str(match["match"]["right"]) if verdict == {"drop": None} else "?"
    except (KeyError, TypeError, ValueError):
        return "?"


def toy_apply(io: KernelIO, change: Change) -> None:
    t: NftTable = change.obj
    ref = {"family": t.family, "name": t.name}
    if change.op == "delete":
        io.nft([{"delete": {"table": ref}}])
        return
    head: list[dict[str, Any]] = (
        [{"create": {"table": {**ref, "comment": TOY_MARK}}}] if change.op == "create"
        else [{"add": {"table": {**ref, "comment": TOY_MARK}}}, {"flush": {"table": ref}}])
    inside = {"family": t.family, "table": t.name}
    io.nft([*head,
            {"add": {"chain": {**inside, "name": CHAIN, "type": "filter", "hook": "forward",
                               "prio": 0, "policy": "accept"}}},
            *({"add": {"rule": {**inside, "chain": CHAIN, "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": iif}},
                {"drop": None}]}}} for iif in t.body)])


TOY = Subsystem("toy-nft", (NftTable,), toy_diff, toy_observe, toy_apply)
WITH_TOY = (*SUBSYSTEMS, TOY)
# ------------------------------------------------------------------------------

T1 = NftTable("inet", f"{NFT_TABLE_PREFIX}_t1", ("tap1", "tap2"))
T2 = NftTable("bridge", NFT_TABLE_PREFIX, ("tap3",))
LINKS = KernelState.of([Bridge("ocbnet1", 1450, f"{MARK_PREFIX}net:1")],
                       [Vxlan("ocxnet1", 4001, "198.18.0.1", 1450, f"{MARK_PREFIX}net:1")],
                       [Attachment("ocxnet1", "ocbnet1", 1450), Attachment("tap1", "ocbnet1", 1500)],
                       [FdbEntry("ocxnet1", "fa:16:3e:00:00:02", "198.18.0.2")])


def with_tables(*tables: NftTable, base: KernelState = LINKS) -> KernelState:
    return KernelState.of(base.records, tables)


def converge(kernel: FakeKernel, desired: KernelState) -> list[Change]:
    changes = diff(desired, kernel.observe(), WITH_TOY)
    errors = kernel.apply(changes)
    assert errors == [], [e.render() for e in errors]
    return changes


def fresh() -> FakeKernel:
    kernel = FakeKernel(subsystems=WITH_TOY)
    kernel.add_device("tap1")
    return kernel


def test_converges_from_nothing_and_again_is_a_no_op() -> None:
    kernel = fresh()
    desired = with_tables(T1, T2)
    changes = converge(kernel, desired)
    assert [c.render() for c in changes if isinstance(c.obj, NftTable)] == [
        f"create {T2.render()}", f"create {T1.render()}"]
    assert kernel.observe().without_devices() == desired
    assert diff(desired, kernel.observe(), WITH_TOY) == []


def test_a_changed_rule_is_one_change_in_one_batch() -> None:
    kernel = fresh()
    converge(kernel, with_tables(T1, T2))
    changed = NftTable(T1.family, T1.name, ("tap1", "tap9"))
    changes = diff(with_tables(changed, T2), kernel.observe(), WITH_TOY)
    assert changes == [Change("update", changed, T1)]
    batches: list[list[dict[str, Any]]] = []
    nft = kernel.nft

    def recorded(commands: list[dict[str, Any]]) -> None:
        batches.append(commands)
        nft(commands)
    kernel.nft = recorded  # type: ignore[method-assign]
    assert kernel.apply(changes) == []
    assert len(batches) == 1 and [next(iter(c)) for c in batches[0][:2]] == ["add", "flush"]
    assert diff(with_tables(changed, T2), kernel.observe(), WITH_TOY) == []
    rules = [r["rule"] for r in kernel.nft_rows() if "rule" in r and r["rule"]["table"] == T1.name]
    assert [r["handle"] for r in rules] == [4, 5]  # chain 1, rules 2 and 3 flushed; the new ones after


def test_foreign_tables_are_never_seen_nor_deleted() -> None:
    kernel = fresh()
    foreign = [{"add": {"table": {"family": "inet", "name": f"{NFT_TABLE_PREFIX}_op"}}},  # no mark
               {"add": {"table": {"family": "inet", "name": "filter", "comment": TOY_MARK}}},  # no prefix
               {"add": {"table": {"family": "bridge", "name": NFT_TABLE_PREFIX,
                                  "comment": "an operator's"}}}]
    kernel.nft(foreign)
    assert kernel.nft_rows() == [] and kernel.observe()[NftTable] == ()
    # T2's name is taken by a foreign table: create refused, the table untouched
    errors = kernel.apply(diff(with_tables(T1, T2), kernel.observe(), WITH_TOY))
    assert [e.change for e in errors] == [Change("create", T2)]
    assert "File exists" in errors[0].message
    converge(kernel, with_tables())
    names = {(i["table"]["family"], i["table"]["name"]) for i in kernel.nftables.rows() if "table" in i}
    assert names == {("inet", f"{NFT_TABLE_PREFIX}_op"), ("inet", "filter"), ("bridge", NFT_TABLE_PREFIX)}


def test_deleting_the_record_removes_the_table() -> None:
    kernel = fresh()
    converge(kernel, with_tables(T1, T2))
    changes = converge(kernel, with_tables(T2))
    assert [c for c in changes if isinstance(c.obj, NftTable)] == [Change("delete", T1)]
    assert [i["table"]["name"] for i in kernel.nftables.rows() if "table" in i] == [T2.name]
    assert kernel.observe().without_devices() == with_tables(T2)


def test_links_and_fdb_unchanged_alongside() -> None:
    with_toy, without = fresh(), FakeKernel()
    without.add_device("tap1")
    changes = converge(with_toy, with_tables(T1))
    alone = diff(LINKS, without.observe())
    assert [c for c in changes if not isinstance(c.obj, NftTable)] == alone
    assert without.apply(alone) == []
    assert with_toy.links == without.links and with_toy.fdb == without.fdb
    assert with_toy.observe().without_devices() == with_tables(T1)
    # the default registry neither sees the toy's tables nor touches them
    assert observe(with_toy) == without.observe()
    assert diff(LINKS, observe(with_toy)) == []


# --- FakeNft: the kernel semantics the toy relies on ---------------------------
INET = {"family": "inet", "table": "overcast_x"}


def test_fake_batches_are_atomic_and_handles_per_table() -> None:
    kernel = FakeKernel()
    kernel.nft([{"add": {"table": {"family": "inet", "name": "overcast_x", "comment": TOY_MARK}}},
                {"add": {"chain": {**INET, "name": "c"}}},
                {"add": {"set": {**INET, "name": "s", "type": "ipv4_addr"}}},
                {"add": {"element": {**INET, "name": "s", "elem": ["10.0.0.1"]}}},
                {"add": {"rule": {**INET, "chain": "c", "expr": [{"accept": None}]}}}])
    before = kernel.nftables.rows()
    with pytest.raises(KernelRefusal, match="No such file or directory"):
        kernel.nft([{"add": {"rule": {**INET, "chain": "c", "expr": [{"drop": None}]}}},
                    {"add": {"rule": {**INET, "chain": "absent", "expr": [{"drop": None}]}}}])
    with pytest.raises(KernelRefusal, match="File exists"):
        kernel.nft([{"create": {"table": {"family": "inet", "name": "overcast_x"}}}])
    with pytest.raises(KernelRefusal, match="No such file"):
        kernel.nft([{"delete": {"table": {"family": "inet", "name": "overcast_y"}}}])
    assert kernel.nftables.rows() == before
    assert [(next(iter(i)), i[next(iter(i))]["handle"]) for i in before] == [
        ("table", 1), ("set", 2), ("chain", 1), ("rule", 3)]  # list ruleset's order
    kernel.nft([{"flush": {"table": {"family": "inet", "name": "overcast_x"}}}])
    assert [next(iter(i)) for i in kernel.nft_rows()] == ["table", "set", "chain"]
    assert kernel.nft_rows()[1]["set"]["elem"] == ["10.0.0.1"]  # flush table keeps elements
    kernel.nft([{"add": {"rule": {**INET, "chain": "c", "expr": [{"drop": None}]}}}])
    assert kernel.nft_rows()[-1]["rule"]["handle"] == 4
    kernel.nft([{"delete": {"rule": {**INET, "chain": "c", "handle": 4}}}])
    assert [next(iter(i)) for i in kernel.nft_rows()] == ["table", "set", "chain"]
    kernel.nft([{"add": {"rule": {**INET, "chain": "c", "expr": [{"drop": None}]}}},
                {"delete": {"chain": {**INET, "name": "c"}}}])  # with its rules
    assert [next(iter(i)) for i in kernel.nft_rows()] == ["table", "set"]


def test_a_table_deleted_and_marked_again_in_one_batch_is_refused() -> None:
    """As the driver refuses it (libnftables 1.0.6 cannot write the mark in JSON)."""
    kernel = FakeKernel()
    table = {"family": "inet", "name": "overcast_x", "comment": TOY_MARK}
    kernel.nft([{"add": {"table": table}}])
    with pytest.raises(KernelRefusal, match="flush it instead"):
        kernel.nft([{"delete": {"table": table}}, {"add": {"table": table}}])
    assert kernel.nft_rows() == [{"table": {**table, "handle": 1}}]


def test_table_ownership_needs_prefix_and_mark() -> None:
    assert is_owned_table("overcast", f"{MARK_PREFIX}sg")
    assert not is_owned_table("overcast", None)
    assert not is_owned_table("overcast", "sg")
    assert not is_owned_table("filter", f"{MARK_PREFIX}sg")


def test_adding_rules_to_an_unmarked_table_of_our_name_is_refused() -> None:
    """A table with our name but without our mark is not ours: an ``add table``
    with the mark (which the kernel would take as "already there") is refused,
    never a way to write chains and rules into it."""
    kernel = fresh()
    kernel.nft([{"add": {"table": {"family": "inet", "name": T1.name}}}])  # an operator's
    with pytest.raises(KernelRefusal, match="not ours"):
        kernel.nft([{"add": {"table": {"family": "inet", "name": T1.name, "comment": TOY_MARK}}},
                    {"add": {"chain": {"family": "inet", "table": T1.name, "name": "c"}}}])
    assert [i for i in kernel.nftables.rows() if "chain" in i or "rule" in i] == []


@pytest.mark.parametrize("family,name", [("inet", "overcast} ; flush ruleset ;"),
                                         ("inet", "overcast x"), ("bogus", "overcast_t")])
def test_a_marked_table_with_a_name_nft_would_not_take_bare_is_refused(family: str,
                                                                       name: str) -> None:
    kernel = fresh()
    with pytest.raises(KernelRefusal, match="table"):
        kernel.nft([{"add": {"table": {"family": family, "name": name, "comment": TOY_MARK}}}])
    assert kernel.nftables.rows() == []


def test_a_subsystem_that_cannot_be_read_is_left_alone_and_the_others_go_on() -> None:
    def unreadable(rows: KernelRows) -> list[NftTable]:
        raise KernelRefusal("nftables unavailable (libnftables.so.1): not found")

    broken = Subsystem("toy-nft", (NftTable,), toy_diff, unreadable, toy_apply)
    kernel = FakeKernel(subsystems=(*SUBSYSTEMS, broken))
    kernel.add_device("tap1")
    observed = kernel.observe()
    assert observed.unobserved == (("toy-nft", "nftables unavailable (libnftables.so.1): not found"),)
    changes = diff(with_tables(T1), observed, (*SUBSYSTEMS, broken))
    assert changes and not [c for c in changes if isinstance(c.obj, NftTable)]
    assert kernel.apply(changes) == []
    assert kernel.observe().without_devices() == LINKS
