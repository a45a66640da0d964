"""The view of the firewall's tables follows our batch when the generation
moved by exactly one across it, but the kernel does not move the
generation for a batch that changes nothing (measured: ``add table`` of an
existing table, ``add element`` of an existing element: the generation
stays).  When another writer's transaction lands between the generation
read before our batch and the batch, and already holds what our batch
adds, the one step would be the other writer's: our batch therefore ends
with a chain added and deleted again (``netlink._generation_step``), so it
is always a transaction of its own, the generation moves by two and the
next observe lists (review-2 found the view following the other writer's
step and missing the rest of its transaction).

Namespaces are ``oc-r2-<pid>-<role>``, made and removed by this file only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from overcast.linux.netlink import NetlinkKernel
from overcast.linux.nft import Nftables
from overcast.plan.diff import diff
from overcast.plan.state import KernelState
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.firewall_apply import batch
from plan.test_firewall_golden import (  # tests/ is on the path (rootdir of both packages)
    DEFAULT,
    WEB,
    compiled,
    default_rules,
    group,
    rule,
    vm,
    world,
)

from .conftest import namespaces

pytestmark = pytest.mark.root
PREFIX = f"oc-r2-{os.getpid() % 100000}"
SSH = rule(10, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
           remote_ip_prefix="10.0.0.0/8")


def ruleset(*extra: Any) -> NftRuleset:
    view = world([vm(1, "h1", "10.0.0.1", (DEFAULT, WEB))], [group(DEFAULT), group(WEB)],
                 [*default_rules(DEFAULT), *extra])
    return compiled(view).ruleset


STRAY_ADD = [{"add": {"element": {"family": "inet", "table": "overcast_fw", "name": "in4_port",
                                 "elem": [{"concat": ["198.51.100.7", 25, 6, 9]}]}}}]


class _Raced(NetlinkKernel):
    """A kernel whose next batch meets another writer's one transaction just
    before it, after the generation was read (``_mark_tables`` runs in that
    window): the other writer adds what our batch adds, and one element more."""

    other: Nftables | None = None

    def _mark_tables(self, nft: Nftables, marked: list[tuple[str, str, str]],  # type: ignore[override]
                     known: dict[tuple[str, str], str | None] | None = None) -> set[tuple[str, str]]:
        if self.other is not None:
            self.other.json_cmd({"nftables": batch(ruleset(), ruleset(SSH)) + STRAY_ADD})
            self.other = None
        return NetlinkKernel._mark_tables(nft, marked, known)


@pytest.fixture
def namespace() -> Iterator[str]:
    with namespaces(PREFIX) as make:
        yield make("noop")


def test_a_batch_that_finds_its_change_made_by_another_writer_is_not_followed(
        namespace: str) -> None:
    kernel = _Raced(namespace)
    with kernel, Nftables(netns=namespace) as other:
        assert kernel.apply(diff(KernelState.of([ruleset()]), kernel.observe())) == []
        changes = diff(KernelState.of([ruleset(SSH)]), kernel.observe())
        kernel.other = other
        assert kernel.apply(changes) == []  # our batch found nothing to do
        assert kernel.other is None  # the other writer's transaction came first
        (seen,) = kernel.observe()[NftRuleset]
        assert [(e.set, e.key) for e in seen.elements - ruleset(SSH).elements] == [
            ("in4_port", '{"concat":["198.51.100.7",25,6,9]}')]
