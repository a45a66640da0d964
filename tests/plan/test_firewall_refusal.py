"""A firewall change the kernel refuses in part: the fake kernel refuses any
batch with the elements of one security group rule; the subsystem finds
that rule in a logarithmic number of atomic trial batches, applies
everything else, and only the ports that depend on the rule are DOWN,
naming it; the next pass tries it again."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from overcast.agent.reconciler import reconcile
from overcast.agent.status import ACTIVE, DOWN, PortStatus, port_statuses
from overcast.linux.fake import FakeKernel, FakeKernelError
from overcast.plan import HostView, plan_host
from overcast.plan.firewall_refusal import PartlyRefused, bisect, describe
from overcast.plan.subsystems import firewall as fw

from .test_firewall_golden import (
    DB,
    DEFAULT,
    WEB,
    converge,
    default_rules,
    desired,
    group,
    kernel_for,
    rule,
    vm,
    world,
)

WHY = "Error: Could not process rule: Numerical result out of range"


def refusing(kernel: FakeKernel, comment: Callable[[], str]) -> list[list[dict[str, Any]]]:
    """Make ``kernel`` refuse every batch holding an element (added or
    deleted) commented ``comment()``; the batches it was sent."""
    sent: list[list[dict[str, Any]]] = []
    real = kernel.nftables.batch

    def batch(commands: list[dict[str, Any]]) -> None:
        sent.append(commands)
        bad = comment()
        if bad and bad in repr(commands):
            raise FakeKernelError(f"{WHY}\n{len(commands)} commands")
        real(commands)
    kernel.nft = batch  # type: ignore[method-assign]
    return sent


def scene(extra: int) -> HostView:
    """Three ports in three groups; ``extra`` rules for the DB group."""
    ports = [vm(1, "h1", "10.0.0.1", (WEB,)), vm(2, "h1", "10.0.0.2", (DB,)), vm(3, "h1", "10.0.0.3")]
    rules = [*default_rules(DEFAULT), rule(70, WEB, protocol="tcp", port_range_min=22, port_range_max=22)]
    rules += [rule(100 + i, DB, protocol="tcp", port_range_min=1000 + i, port_range_max=1000 + i)
              for i in range(extra)]
    return world(ports, [group(WEB), group(DB), group(DEFAULT)], rules)


def statuses(kernel: FakeKernel, view: HostView) -> tuple[Any, dict[str, PortStatus]]:
    plan = plan_host(view)
    done = reconcile(kernel, plan.state)
    return done, port_statuses(plan, done.observed, done.errors, done.changes)


def test_a_rule_the_kernel_refuses_downs_only_its_ports_and_the_rest_is_applied() -> None:
    empty = replace(scene(0), security_group_rules=default_rules(DEFAULT))
    kernel = kernel_for(empty)
    converge(kernel, desired(empty))
    bad = {"id": scene(0).security_group_rules[-1].id}
    sent = refusing(kernel, lambda: bad["id"])
    view = scene(63)
    done, st = statuses(kernel, view)
    web, db, default = (p.id for p in view.ports)
    assert st[web] == PortStatus(DOWN, f"security group rule {bad['id']}: {WHY}")
    assert st[db] == PortStatus(ACTIVE) and st[default] == PortStatus(ACTIVE)
    (err,) = done.errors
    assert err.refused == ((bad["id"], f"security group rule {bad['id']}: {WHY}"),)
    assert err.message == f"refused: security group rule {bad['id']}: {WHY}"
    # everything but the refused rule's element is in the kernel
    (have,) = kernel.observe()[fw.NftRuleset]
    (want,) = desired(view)[fw.NftRuleset]
    assert want.elements - have.elements == {e for e in want.elements if e.comment == bad["id"]} != set()
    assert have.elements <= want.elements
    # the whole batch, the constant part (nothing here), then halving: 64 groups of adds
    assert len(sent) <= 1 + 2 * math.ceil(math.log2(64)) + 1, len(sent)
    # the next pass tries it again; once the kernel takes it, the port is ACTIVE
    done, st = statuses(kernel, view)
    assert st[web].status == DOWN and len(done.errors) == 1
    bad["id"] = ""
    done, st = statuses(kernel, view)
    assert done.errors == () and {s.status for s in st.values()} == {ACTIVE}


def test_a_refused_constant_part_refuses_the_whole_change_on_every_port() -> None:
    view = scene(2)
    kernel = kernel_for(view)
    refusing(kernel, lambda: "overcast_fw")  # every batch names the tables
    done, st = statuses(kernel, view)
    (err,) = done.errors
    assert err.refused == () and not err.message.startswith("refused: ")
    assert {s.status for s in st.values()} == {DOWN}
    assert all(WHY in s.reason for s in st.values())


def test_bisect_finds_every_refused_group_in_few_trials() -> None:
    bad = {5, 40, 41}
    trials: list[list[int]] = []

    def attempt(parts: list[int]) -> str | None:
        trials.append(parts)
        return "no" if bad & set(parts) else None

    groups = [(f"g{i}", i) for i in range(64)]
    assert bisect(groups, attempt) == {f"g{i}": "no" for i in sorted(bad)}
    assert len(trials) <= 1 + 2 * len(bad) * math.ceil(math.log2(64)), len(trials)
    assert sorted(i for t in trials if not (bad & set(t)) for i in t) == sorted(set(range(64)) - bad)


def test_the_message_names_each_refused_object_on_one_line() -> None:
    text = describe({"r1": ("security group rule", "Error: x\nsecond line | more"),
                     "p1": ("port", "Error: y")})
    assert text == "refused: port p1: Error: y | security group rule r1: Error: x"
    refusal = PartlyRefused({"r1": ("security group rule", "Error: x\nsecond line | more"),
                             "p1": ("port", "Error: y")})
    assert str(refusal) == text
    assert refusal.lines() == (("p1", "port p1: Error: y"), ("r1", "security group rule r1: Error: x"))
    assert describe({"r": ("port", "internal:0:0-0: Error: Could not process rule: File exists")}) == \
        "refused: port r: Error: Could not process rule: File exists"
