"""The nftables channel against the real kernel: the toy subsystem of
``tests/plan/test_subsystem_registry.py`` over NetlinkKernel in a fresh
namespace, and the FakeKernel's nftables against the kernel, batch by batch."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from overcast.linux.fake import FakeKernel
from overcast.linux.netlink import NetlinkKernel
from overcast.plan.diff import diff
from overcast.plan.raw import KernelRefusal
from overcast.plan.state import KernelState

from .conftest import MakeNs, sh

pytestmark = pytest.mark.root

_spec = importlib.util.spec_from_file_location(
    "toy_nft_subsystem", Path(__file__).parents[1] / "plan" / "test_subsystem_registry.py")
assert _spec is not None and _spec.loader is not None
toy = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)  # dataclasses need it
_spec.loader.exec_module(toy)
T1, T2, WITH_TOY, NftTable = toy.T1, toy.T2, toy.WITH_TOY, toy.NftTable


def ruleset(ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(sh(ns, "nft", "-j", "-n", "list", "ruleset").stdout)["nftables"]
    return [i for i in items if "metainfo" not in i]


def tables(ns: str) -> set[tuple[str, str]]:
    return {(i["table"]["family"], i["table"]["name"]) for i in ruleset(ns) if "table" in i}


def drops(ns: str, name: str) -> list[str]:
    return [i["rule"]["expr"][0]["match"]["right"] for i in ruleset(ns)
            if "rule" in i and i["rule"]["table"] == name]


def converge(kernel: NetlinkKernel, desired: KernelState) -> None:
    errors = kernel.apply(diff(desired, kernel.observe(), WITH_TOY))
    assert errors == [], [e.render() for e in errors]
    assert kernel.observe()[NftTable] == desired[NftTable]
    assert diff(desired, kernel.observe(), WITH_TOY) == []


def test_toy_subsystem_converges_is_a_no_op_again_and_removes(make_ns: MakeNs) -> None:
    ns = make_ns("nfts")
    sh(ns, "nft", "add table inet overcast_op")  # an operator's: prefix, no mark
    with NetlinkKernel(ns, subsystems=WITH_TOY) as kernel:
        converge(kernel, KernelState.of([T1, T2]))
        assert tables(ns) == {("inet", "overcast_op"), (T1.family, T1.name), (T2.family, T2.name)}
        assert drops(ns, T1.name) == list(T1.body) and drops(ns, T2.name) == list(T2.body)
        text = sh(ns, "nft", "list", "table", T1.family, T1.name).stdout
        assert f'comment "{toy.TOY_MARK}"' in text  # the mark, as the kernel keeps it

        changed = NftTable(T1.family, T1.name, ("tap1", "tap9"))
        changes = diff(KernelState.of([changed, T2]), kernel.observe(), WITH_TOY)
        assert [c.op for c in changes] == ["update"]
        converge(kernel, KernelState.of([changed, T2]))
        assert drops(ns, T1.name) == ["tap1", "tap9"]

        converge(kernel, KernelState.of([T2]))
        assert tables(ns) == {("inet", "overcast_op"), (T2.family, T2.name)}
        converge(kernel, KernelState())
    assert tables(ns) == {("inet", "overcast_op")}  # never ours: never deleted
    with NetlinkKernel(ns, subsystems=WITH_TOY) as restarted:
        assert restarted.observe()[NftTable] == ()


def test_a_refused_batch_leaves_no_table_behind(make_ns: MakeNs) -> None:
    ns = make_ns("nftr")
    bad = [{"create": {"table": {"family": "inet", "name": "overcast_r", "comment": toy.TOY_MARK}}},
           {"add": {"rule": {"family": "inet", "table": "overcast_r", "chain": "absent",
                             "expr": [{"accept": None}]}}}]
    with NetlinkKernel(ns) as kernel:
        with pytest.raises(KernelRefusal, match="No such file or directory"):
            kernel.nft(bad)
        assert kernel.nft_rows() == []
    assert tables(ns) == set()


INET = {"family": "inet", "table": "overcast_x"}
BATCHES: list[list[dict[str, Any]]] = [
    [{"add": {"table": {"family": "inet", "name": "overcast_x", "comment": "overcast:p"}}},
     {"add": {"table": {"family": "bridge", "name": "overcast"}}},  # not ours: no mark
     {"add": {"chain": {**INET, "name": "fw", "type": "filter", "hook": "forward", "prio": 0}}},
     {"add": {"chain": {**INET, "name": "c"}}},
     {"add": {"set": {**INET, "name": "s", "type": "ipv4_addr"}}},
     {"add": {"element": {**INET, "name": "s", "elem": ["10.0.0.1"]}}},
     {"add": {"rule": {**INET, "chain": "c", "expr": [{"accept": None}]}}},
     {"add": {"rule": {**INET, "chain": "fw", "comment": "x", "expr": [{"drop": None}]}}}],
    [{"create": {"table": {"family": "inet", "name": "overcast_x", "comment": "overcast:p"}}}],
    [{"add": {"rule": {**INET, "chain": "absent", "expr": [{"accept": None}]}}}],
    [{"flush": {"table": {"family": "inet", "name": "overcast_x"}}}],
    [{"add": {"rule": {**INET, "chain": "c", "expr": [{"drop": None}]}}}],
    [{"delete": {"rule": {**INET, "chain": "c", "handle": 6}}}],
    [{"add": {"rule": {**INET, "chain": "c", "expr": [{"drop": None}]}}},
     {"delete": {"chain": {**INET, "name": "c"}}}],  # a chain goes with its rules
    [{"flush": {"set": {**INET, "name": "s"}}}, {"delete": {"set": {**INET, "name": "s"}}}],
    [{"delete": {"table": {"family": "inet", "name": "overcast_y"}}}],
    [{"delete": {"table": {"family": "inet", "name": "overcast_x"}}}],
]


def test_the_fake_ruleset_is_the_kernels_batch_by_batch(make_ns: MakeNs) -> None:
    ns = make_ns("nftf")
    fake = FakeKernel()
    seen: list[str] = []
    with NetlinkKernel(ns) as kernel:
        for batch in BATCHES:
            outcomes = []
            for k in (fake, kernel):
                try:
                    k.nft(batch)
                    outcomes.append("ok")
                except KernelRefusal:
                    outcomes.append("refused")
            assert outcomes[0] == outcomes[1], (batch, outcomes)
            seen.append(outcomes[0])
            assert fake.nft_rows() == kernel.nft_rows(), batch
        assert fake.nft_rows() == []
    assert seen == ["ok", "refused", "refused", "ok", "ok", "ok", "ok", "ok", "refused", "ok"]
    assert tables(ns) == {("bridge", "overcast")}


def test_an_unmarked_table_of_our_name_is_never_written_into(make_ns: MakeNs) -> None:
    ns = make_ns("nftf")
    sh(ns, "nft", "add", "table", "inet", "overcast_f")  # an operator's, without our mark
    batch = [{"add": {"table": {"family": "inet", "name": "overcast_f", "comment": toy.TOY_MARK}}},
             {"add": {"chain": {"family": "inet", "table": "overcast_f", "name": "c"}}}]
    with NetlinkKernel(ns) as kernel:
        with pytest.raises(KernelRefusal, match="not ours"):
            kernel.nft(batch)
    assert [i for i in ruleset(ns) if "chain" in i] == []
    assert tables(ns) == {("inet", "overcast_f")}


def test_observe_reuses_its_listing_only_while_the_generation_stays(
        make_ns: MakeNs, monkeypatch: pytest.MonkeyPatch) -> None:
    """Observe lists the tables again after any nftables transaction in the
    namespace but its own batches (a change by hand, also to another table)
    and when asked to (``fresh``); while nothing was committed it reuses the
    last listing, after its own batch it knows what the batch made
    (``tests/linux/test_nft_observe_reuse.py``), and what it returns is still
    the kernel's state."""
    ns = make_ns("nftg")
    with NetlinkKernel(ns, subsystems=WITH_TOY) as kernel:
        converge(kernel, KernelState.of([T1]))  # its last observe listed
        listings: list[int] = []
        real = kernel._list_nft_rows

        def counted() -> list[dict[str, Any]]:
            listings.append(1)
            return real()

        monkeypatch.setattr(kernel, "_list_nft_rows", counted)

        def observed() -> tuple[Any, ...]:
            return tuple(kernel.observe()[NftTable])

        assert observed() == (T1,) and len(listings) == 0  # nothing committed: reused
        assert tuple(kernel.observe(fresh=True)[NftTable]) == (T1,) and len(listings) == 1
        assert observed() == (T1,) and len(listings) == 1
        sh(ns, "nft", "add table inet someone_elses")  # any transaction moves the generation
        assert observed() == (T1,) and len(listings) == 2
        sh(ns, "nft", "flush", "table", T1.family, T1.name)  # our table changed by hand
        (seen,) = observed()
        assert seen != T1 and len(listings) == 3  # seen at once, so repaired at once
        converge(kernel, KernelState.of([T1]))  # our batch: the view follows it, no listing
        assert len(listings) == 3 and observed() == (T1,)
        assert tuple(kernel.observe(fresh=True)[NftTable]) == (T1,) and len(listings) == 4
