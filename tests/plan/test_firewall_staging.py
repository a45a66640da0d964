"""A small change to a large rule set is in force after a small first batch:
an element that goes has its key put in the set's revoked set, one that
comes is put in its staged set (``firewall_chains.revoked_set``,
``staged_set``); the batch that changes the large set, the one that costs
the kernel tens of milliseconds at 10,000 elements, follows and empties
both again.  Small sets and large changes keep the one batch.  Against the
fake kernel, counting the batches it is sent."""

from __future__ import annotations

import json
from typing import Any

from overcast.linux.fake import FakeKernel, FakeKernelError
from overcast.plan.diff import diff
from overcast.plan.names import FW_TABLE
from overcast.plan.subsystems import firewall_apply
from overcast.plan.subsystems.firewall_records import NftRuleset

from .test_firewall_golden import DB, WEB, converge, desired, group, kernel_for, rule, vm, world
from .test_firewall_invariants import recording

FILLERS = firewall_apply.STAGE_FROM + 10


def fillers(n: int) -> list[Any]:
    """``n`` rules of WEB, each tcp to its own port (spaced: adjacent ranges
    could merge) from its own /24: one element each in ``in4_port``."""
    return [rule(1000 + i, WEB, protocol="tcp", port_range_min=20000 + 2 * i,
                 port_range_max=20000 + 2 * i, remote_ip_prefix=f"10.{100 + i // 256}.{i % 256}.0/24")
            for i in range(n)]


def scene(rules: list[Any]) -> Any:
    return world([vm(1, "h1", "10.0.0.1", (WEB,))], [group(WEB)], rules)


def element_ops(commands: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(op, set, how many elements) of a batch's element commands."""
    return [(op, body["element"]["name"], len(body["element"]["elem"]))
            for c in commands for op, body in c.items() if "element" in body]


def first_element(commands: list[dict[str, Any]]) -> Any:
    """The first element a batch adds."""
    return next(c["add"]["element"]["elem"][0] for c in commands if "element" in c.get("add", {}))


def elements_of(kernel: FakeKernel, name: str) -> list[str]:
    (ruleset,) = kernel.observe()[NftRuleset]
    return sorted(e.key for e in ruleset.elements if e.set == name)


def start(rules: list[Any]) -> tuple[FakeKernel, list[list[dict[str, Any]]]]:
    view = scene(rules)
    kernel = kernel_for(view)
    converge(kernel, desired(view))
    return kernel, recording(kernel)


def test_removing_a_rule_from_a_large_set_revokes_it_first_then_deletes_it() -> None:
    rules = fillers(FILLERS)
    kernel, sent = start(rules)
    gone = rules[7]
    before = elements_of(kernel, "in4_port")
    after_view = scene([r for r in rules if r is not gone])
    converge(kernel, desired(after_view))
    first, second = sent
    assert element_ops(first) == [("add", "in4_port_revoked", 1)]
    (key,) = set(before) - set(elements_of(kernel, "in4_port"))
    assert json.loads(key) == first_element(first)["elem"]["val"]
    assert ("delete", "in4_port", 1) in element_ops(second)
    assert ("delete", "in4_port_revoked", 1) in element_ops(second)
    assert elements_of(kernel, "in4_port_revoked") == []
    assert diff(desired(after_view), kernel.observe()) == []


def test_adding_a_rule_to_a_large_set_stages_it_first_then_adds_it() -> None:
    rules = fillers(FILLERS)
    kernel, sent = start(rules)
    extra = rule(9000, WEB, protocol="tcp", port_range_min=7000, port_range_max=7000,
                 remote_ip_prefix="192.0.2.0/24")
    view = scene([*rules, extra])
    converge(kernel, desired(view))
    first, second = sent
    assert element_ops(first) == [("add", "in4_port_staged", 1)]
    assert extra.id in first_element(first)["elem"]["comment"]
    assert ("add", "in4_port", 1) in element_ops(second)
    assert ("delete", "in4_port_staged", 1) in element_ops(second)
    assert elements_of(kernel, "in4_port_staged") == []
    assert diff(desired(view), kernel.observe()) == []


def test_a_replaced_rule_is_revoked_and_its_successor_staged_in_one_first_batch() -> None:
    rules = fillers(FILLERS)
    kernel, sent = start(rules)
    moved = rule(1003, WEB, protocol="tcp", port_range_min=7002, port_range_max=7002,
                 remote_ip_prefix="192.0.2.0/24")
    view = scene([*rules[:3], moved, *rules[4:]])
    converge(kernel, desired(view))
    first, _ = sent
    assert element_ops(first) == [("add", "in4_port_revoked", 1), ("add", "in4_port_staged", 1)]
    assert diff(desired(view), kernel.observe()) == []


def test_a_small_set_and_a_large_change_keep_one_batch() -> None:
    small = fillers(10)
    kernel, sent = start(small)
    converge(kernel, desired(scene(small[1:])))
    assert len(sent) == 1 and not [o for o in element_ops(sent[0]) if "_revoked" in o[1]]

    rules = fillers(FILLERS)
    kernel, sent = start(rules)
    many = firewall_apply.STAGE_AT_MOST + 1
    view = scene(rules[many:])
    converge(kernel, desired(view))
    assert len(sent) == 1 and ("delete", "in4_port", many) in element_ops(sent[0])
    assert diff(desired(view), kernel.observe()) == []


def test_a_refused_delete_takes_the_revoke_back_so_the_rule_stays_in_force() -> None:
    rules = fillers(FILLERS)
    kernel, sent = start(rules)
    gone = rules[3]
    real = kernel.nft

    def refuse_the_delete(commands: list[dict[str, Any]]) -> None:
        if any(op == "delete" and name == "in4_port" for op, name, _ in element_ops(commands)):
            sent.append(commands)
            raise FakeKernelError("Error: Could not process rule: Device or resource busy")
        real(commands)
    kernel.nft = refuse_the_delete  # type: ignore[method-assign]
    after_view = scene([r for r in rules if r is not gone])
    errors = kernel.apply(diff(desired(after_view), kernel.observe()))
    assert errors, "the delete was refused: the change is an error"
    ops = [element_ops(b) for b in sent]
    assert ops[0] == [("add", "in4_port_revoked", 1)]
    assert ops[-1] == [("delete", "in4_port_revoked", 1)]
    assert elements_of(kernel, "in4_port_revoked") == []
    assert len(elements_of(kernel, "in4_port")) == FILLERS  # the rule is still there, in force


def test_a_key_left_in_a_revoked_set_is_cleared_by_the_next_change() -> None:
    """An apply cut short between its batches leaves a key revoked; the
    next diff deletes it, and does not revoke it a second time."""
    rules = fillers(FILLERS)
    kernel, sent = start(rules)
    (ruleset,) = kernel.observe()[NftRuleset]
    left = next(e for e in sorted(ruleset.elements) if e.set == "in4_port"
                and e.comment.endswith(rules[5].id))
    kernel.nftables.batch([{"add": {"element": {
        "family": "inet", "table": FW_TABLE, "name": "in4_port_revoked",
        "elem": [json.loads(left.key)]}}}])
    after_view = scene([r for r in rules if r is not rules[5]])
    converge(kernel, desired(after_view))
    assert [o for b in sent for o in element_ops(b) if o[0] == "add"] == []
    assert elements_of(kernel, "in4_port_revoked") == []
    assert diff(desired(after_view), kernel.observe()) == []


def test_a_change_that_also_touches_another_set_is_one_batch() -> None:
    """Staging only a part of a change would put in force a ruleset that is
    neither the old nor the new: a port that changes groups (its tag
    changes in the bridge's map) and a rule moved from a large set to a
    small one each go in one batch."""
    rules = fillers(FILLERS)
    kernel, sent = start(rules)
    two = world([vm(1, "h1", "10.0.0.1", (WEB, DB))], [group(WEB), group(DB)], rules)
    converge(kernel, desired(two))
    assert len(sent) == 1 and not [o for o in element_ops(sent[0]) if o[1].endswith(("_revoked", "_staged"))]
    assert diff(desired(two), kernel.observe()) == []

    kernel, sent = start(rules)
    anywhere = rule(1002, WEB, protocol="tcp", port_range_min=20004, port_range_max=20004)
    view = scene([*rules[:2], anywhere, *rules[3:]])  # from its /24 to everyone: in4_port_any
    converge(kernel, desired(view))
    assert len(sent) == 1 and not [o for o in element_ops(sent[0]) if o[1].endswith(("_revoked", "_staged"))]
    assert diff(desired(view), kernel.observe()) == []
