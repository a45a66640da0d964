"""Observe after the agent's own batch, on the real kernel: the view of the
firewall's tables follows a batch of ours that was the one transaction
since the last listing (no listing, and what observe returns is what a
listing gives), and lists again after anything else: a change by hand, a
batch of another libnftables context, a batch the kernel refused in part,
a batch outside an apply (``linux/nft_view.py``, docs/firewall.md).

``NetlinkKernel.listings`` counts the JSON listings taken.  Namespaces are
``oc-ks-<run>-<role>`` (``<run>`` as in conftest's mark), made and removed
by this file only."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from overcast.linux.netlink import NetlinkKernel
from overcast.linux.nft import Nftables
from overcast.model.types import SecurityGroupRule
from overcast.plan.diff import diff
from overcast.plan.state import KernelState
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.firewall_apply import STAGE_FROM
from overcast.plan.subsystems.firewall_records import NftElement
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

from .conftest import RUN, namespaces

pytestmark = pytest.mark.root
PREFIX = "oc-ks" + RUN.removeprefix("oc-t")
PORTS = [vm(1, "h1", "10.0.0.1", (DEFAULT, WEB))]
RULES = [*default_rules(DEFAULT)]
SSH = rule(10, WEB, protocol="tcp", port_range_min=22, port_range_max=22,
           remote_ip_prefix="10.0.0.0/8")
HTTP = rule(11, WEB, protocol="tcp", port_range_min=80, port_range_max=80,
            remote_ip_prefix="192.0.2.0/24")


@pytest.fixture
def ks_ns() -> Iterator[Callable[[str], str]]:
    with namespaces(PREFIX) as make:
        yield make


def ruleset(*extra: SecurityGroupRule) -> NftRuleset:
    """The compiled ruleset of one port of DEFAULT and WEB with ``extra`` rules."""
    view = world(PORTS, [group(DEFAULT), group(WEB)], [*RULES, *extra])
    return compiled(view).ruleset


def converged(kernel: NetlinkKernel, want: NftRuleset) -> None:
    """One pass to ``want``, no refusal."""
    errors = kernel.apply(diff(KernelState.of([want]), kernel.observe()))
    assert errors == [], [e.render() for e in errors]


def observed(kernel: NetlinkKernel, fresh: bool = False) -> NftRuleset:
    (found,) = kernel.observe(fresh)[NftRuleset]
    return found


def nft(ns: str, *args: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "nft", *args], check=True)


def in4_port(ns: str, key: str) -> None:
    """An element put into the firewall's in4_port set by hand."""
    nft(ns, "add", "element", "inet", "overcast_fw", "in4_port", f"{{ {key} }}")


def test_after_its_own_batch_observe_knows_the_state_without_listing(
        ks_ns: Callable[[str], str]) -> None:
    ns = ks_ns("own")
    with NetlinkKernel(ns) as kernel:
        converged(kernel, ruleset())  # makes the tables: a transaction of its own before
        assert observed(kernel) == ruleset()  # the batch, so this observe lists
        listed = kernel.listings
        for want in (ruleset(SSH), ruleset(SSH, HTTP), ruleset(HTTP), ruleset()):
            converged(kernel, want)  # its observe: the view our last batch left
            assert observed(kernel) == want
            assert kernel.listings == listed  # not one listing through four batches
        seen = observed(kernel, fresh=True)
        assert seen == want and kernel.listings == listed + 1  # what a listing gives
        assert seen.elements is want.elements  # shared: the next diff compares by identity
        assert observed(kernel) == want and kernel.listings == listed + 1


def test_a_staged_change_of_two_batches_is_followed_without_listing(
        ks_ns: Callable[[str], str]) -> None:
    """A change to a large rule set goes in two batches (its staging, then
    the change: ``firewall_apply``); the view follows both."""
    ns = ks_ns("staged")
    many = [rule(100 + i, WEB, protocol="tcp", port_range_min=20000 + 2 * i,
                 port_range_max=20000 + 2 * i, remote_ip_prefix="10.0.0.0/8")
            for i in range(STAGE_FROM + 10)]
    with NetlinkKernel(ns) as kernel:
        converged(kernel, ruleset(*many))
        assert observed(kernel) == ruleset(*many)
        listed = kernel.listings
        for want in (ruleset(*many, SSH), ruleset(*many[1:], SSH), ruleset(*many)):
            converged(kernel, want)
            assert observed(kernel) == want
            assert kernel.listings == listed
        assert observed(kernel, fresh=True) == want


def test_a_change_by_hand_after_our_batch_is_listed_and_seen(ks_ns: Callable[[str], str]) -> None:
    ns = ks_ns("hand")
    with NetlinkKernel(ns) as kernel:
        converged(kernel, ruleset())
        converged(kernel, ruleset(SSH))
        listed = kernel.listings
        in4_port(ns, "192.0.2.9 . 443 . 6 . 7")  # after our batch, before the next observe
        seen = observed(kernel)
        assert kernel.listings == listed + 1
        stray = seen.elements - ruleset(SSH).elements
        assert [(e.set, e.key) for e in stray] == [
            ("in4_port", '{"concat":["192.0.2.9",443,6,7]}')]
        converged(kernel, ruleset(SSH))  # so the next pass deletes it
        assert observed(kernel, fresh=True) == ruleset(SSH)


def test_a_batch_of_another_context_between_observe_and_apply_is_seen(
        ks_ns: Callable[[str], str]) -> None:
    """Another context commits between our observe and our batch: our batch
    is then not the one transaction since the listing (the generation
    before it is not the listing's), so the next observe lists, and the
    other context's element is in what it returns."""
    ns = ks_ns("other")
    with NetlinkKernel(ns) as kernel, Nftables(netns=ns) as other:
        converged(kernel, ruleset())
        changes = diff(KernelState.of([ruleset(SSH)]), kernel.observe())
        other.cmd("add element inet overcast_fw in4_port { 198.51.100.7 . 25 . 6 . 9 }")
        assert kernel.apply(changes) == []
        listed = kernel.listings
        seen = observed(kernel)
        assert kernel.listings == listed + 1
        assert [(e.set, e.key) for e in seen.elements - ruleset(SSH).elements] == [
            ("in4_port", '{"concat":["198.51.100.7",25,6,9]}')]


def test_a_table_made_by_hand_moves_the_generation_and_observe_lists(
        ks_ns: Callable[[str], str]) -> None:
    ns = ks_ns("table")
    with NetlinkKernel(ns) as kernel:
        converged(kernel, ruleset())
        converged(kernel, ruleset(SSH))
        listed = kernel.listings
        nft(ns, "add", "table", "inet", "someone_elses")
        assert observed(kernel) == ruleset(SSH) and kernel.listings == listed + 1


def test_a_batch_refused_in_part_makes_the_next_observe_list(ks_ns: Callable[[str], str]) -> None:
    """The desired ruleset has an element the kernel refuses (it overlaps
    the new rule's element in the same interval set): the change is applied
    in trials, all but that element; the next observe lists and shows it."""
    ns = ks_ns("part")
    want = ruleset(SSH)
    (ssh,) = [e for e in want.elements if e.set == "in4_port"]
    bad = NftElement("inet", "in4_port", ssh.key.replace('"addr":"10.0.0.0","len":8',
                                                          '"addr":"10.1.0.0","len":16'),
                     comment="0000bad0-5e5e-4000-8000-000000000bad")
    with NetlinkKernel(ns) as kernel:
        converged(kernel, ruleset())
        errors = kernel.apply(diff(KernelState.of([NftRuleset(
            want.tables, want.sets, want.chains, want.elements | {bad})]), kernel.observe()))
        assert [ids for e in errors for ids, _ in e.refused] == [bad.comment]
        listed = kernel.listings
        assert observed(kernel) == want and kernel.listings == listed + 1


def test_a_batch_outside_an_apply_makes_the_next_observe_list(ks_ns: Callable[[str], str]) -> None:
    """The conntrack sweep's batch (``Kernel.nft`` on its own): the view
    does not know what it wrote, so observe lists."""
    ns = ks_ns("sweep")
    with NetlinkKernel(ns) as kernel:
        converged(kernel, ruleset())
        converged(kernel, ruleset(SSH))
        listed = kernel.listings
        kernel.nft([{"add": {"element": {"family": "inet", "table": "overcast_fw",
                                         "name": "in4_port",
                                         "elem": [{"concat": ["203.0.113.5", 53, 17, 4]}]}}}])
        seen = observed(kernel)
        assert kernel.listings == listed + 1
        assert [(e.set, e.key) for e in seen.elements - ruleset(SSH).elements] == [
            ("in4_port", '{"concat":["203.0.113.5",53,17,4]}')]


def test_the_terse_listing_gives_every_table_with_its_handle_and_comment(
        ks_ns: Callable[[str], str]) -> None:
    """``Nftables.tables`` (observe's table check, apply's mark check): the
    handles are the JSON listing's, a comment only where the table has one
    (not a chain's or set's after it)."""
    ns = ks_ns("tables")
    nft(ns, 'add table inet overcast_fw { comment "overcast:fw" ; }')
    nft(ns, "add set inet overcast_fw s { type ipv4_addr ; elements = { 192.0.2.1 } ; }")
    nft(ns, 'add chain inet overcast_fw c { comment "a chain" ; }')
    nft(ns, "add table bridge other")
    nft(ns, "add chain bridge other c")
    nft(ns, 'add table ip t3 { flags dormant ; comment "x y" ; }')
    with Nftables(netns=ns) as context:
        listed = context.tables()
        tables = context.json_cmd({"nftables": [{"list": {"tables": None}}]})["nftables"]
    handles = {(t["family"], t["name"]): t["handle"] for i in tables if (t := i.get("table"))}
    assert {key: (t.handle, t.comment) for key, t in listed.items()} == {
        ("inet", "overcast_fw"): (handles["inet", "overcast_fw"], "overcast:fw"),
        ("bridge", "other"): (handles["bridge", "other"], None),
        ("ip", "t3"): (handles["ip", "t3"], "x y")}


def test_a_table_of_our_name_made_again_by_hand_is_never_written_into(
        ks_ns: Callable[[str], str]) -> None:
    """Our inet table deleted and made again by hand, without the mark: the
    next observe lists (the generation moved) and its view knows the table
    is not ours, so the batch's check lists the tables and refuses it; the
    table stays empty."""
    ns = ks_ns("remade")
    with NetlinkKernel(ns) as kernel:
        converged(kernel, ruleset())
        converged(kernel, ruleset(SSH))
        nft(ns, "delete", "table", "inet", "overcast_fw")
        nft(ns, "add", "table", "inet", "overcast_fw")
        errors = kernel.apply(diff(KernelState.of([ruleset(SSH)]), kernel.observe()))
        assert [e.message for e in errors] == [
            "table inet overcast_fw exists and is not ours (no mark 'overcast:fw')"]
    listed = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet",
                             "overcast_fw"], check=True, capture_output=True, text=True).stdout
    assert listed.split() == ["table", "inet", "overcast_fw", "{", "}"]
