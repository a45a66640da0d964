"""FakeKernel's tc primitives, without root: the kernel's side effects and
refusals that the qos subsystem's non-root tests rely on (the root tests in
test_tc_driver.py check that the kernel agrees)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from overcast.linux.fake import FakeKernel
from overcast.plan.raw import (
    TC_H_INGRESS,
    TC_H_INGRESS_PARENT,
    TC_H_ROOT,
    KernelRefusal,
    TcClass,
    TcFilter,
    TcQdisc,
)

TAP, IFB = "tap1", "ifb1"
HTB = 0x10000


def shaped() -> FakeKernel:
    fake = FakeKernel()
    fake.add_device(TAP)
    fake.link_add(IFB, "ifb", 1500, {})
    for dev in (TAP, IFB):
        fake.tc_qdisc("add", dev, "htb", HTB, TC_H_ROOT, default=0x10)
        fake.tc_class("replace", dev, 0x10010, HTB, 12_500_000, 20_000)
    fake.tc_qdisc("add", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
    fake.tc_redirect("add", TAP, 1, IFB)
    return fake


def test_rows_of_a_shaped_tap() -> None:
    fake = shaped()
    assert fake.tc_rows([TAP, "missing"]) == [
        TcQdisc(TAP, "htb", HTB, TC_H_ROOT, 0x10),
        TcQdisc(TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS),
        TcClass(TAP, 0x10010, HTB, 12_500_000, 12_500_000, 20_000, 20_000),
        TcFilter(TAP, TC_H_INGRESS_PARENT, 1, "u32", True, IFB),
    ]


def test_a_fresh_device_has_no_rows() -> None:
    fake = FakeKernel()
    fake.add_device(TAP)
    assert fake.tc_rows([TAP]) == []


def test_adding_the_same_qdisc_again_is_a_no_op() -> None:
    fake = shaped()
    before = fake.tc_rows([TAP, IFB])
    fake.tc_qdisc("add", TAP, "htb", HTB, TC_H_ROOT, default=0x10)
    fake.tc_qdisc("add", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
    assert fake.tc_rows([TAP, IFB]) == before


def test_a_qdisc_deleted_takes_its_classes_and_filters() -> None:
    fake = shaped()
    fake.tc_qdisc("del", TAP, "ingress", TC_H_INGRESS_PARENT, TC_H_INGRESS)
    assert not [r for r in fake.tc_rows([TAP]) if isinstance(r, TcFilter)]
    fake.tc_qdisc("del", TAP, "htb", HTB, TC_H_ROOT)
    assert fake.tc_rows([TAP]) == []
    assert len(fake.tc_rows([IFB])) == 2  # the other device keeps its own


def test_a_device_deleted_takes_its_rows_and_a_redirect_to_it_loses_its_target() -> None:
    fake = shaped()
    fake.link_del(IFB)
    assert [r for r in fake.tc_rows([TAP]) if isinstance(r, TcFilter)] == [
        TcFilter(TAP, TC_H_INGRESS_PARENT, 1, "u32", True, "")]
    fake.link_add(IFB, "ifb", 1500, {})
    assert fake.tc_rows([IFB]) == []
    fake.remove_device(TAP)
    assert fake.qdiscs == {} and fake.tc_classes == {} and fake.tc_filters == {}


def test_a_class_replace_changes_it_in_place() -> None:
    fake = shaped()
    fake.tc_class("replace", TAP, 0x10020, 0x10010, 1_250, 1_600)
    fake.tc_class("replace", TAP, 0x10020, HTB, 1_250_000_000, 150_000)
    (changed,) = [r for r in fake.tc_rows([TAP]) if isinstance(r, TcClass) and r.handle == 0x10020]
    # htb keeps a class under its parent; the qdisc stays
    assert changed == TcClass(TAP, 0x10020, 0x10010, 1_250_000_000, 1_250_000_000, 150_000, 150_000)
    assert TcQdisc(TAP, "htb", HTB, TC_H_ROOT, 0x10) in fake.tc_rows([TAP])


def test_a_new_class_under_a_missing_class_goes_to_the_top_as_in_htb() -> None:
    fake = shaped()
    fake.tc_class("replace", TAP, 0x10030, 0x10077, 1_250, 1_600)
    fake.tc_class("replace", TAP, 0x10040, TC_H_ROOT, 1_250, 1_600)
    parents = {r.handle: r.parent for r in fake.tc_rows([TAP]) if isinstance(r, TcClass)}
    assert parents[0x10030] == parents[0x10040] == HTB


REFUSED: dict[str, Callable[[FakeKernel], None]] = {
    "a class under a missing qdisc": lambda k: k.tc_class("replace", TAP, 0x20010, 0x20000, 1, 1),
    "a class of another major": lambda k: k.tc_class("replace", TAP, 0x10050, 0x20000, 1, 1),
    "a class without a rate": lambda k: k.tc_class("replace", TAP, 0x10050, HTB, 0, 1),
    "a filter without an ingress qdisc": lambda k: k.tc_redirect("add", IFB, 1, TAP),
    "a redirect to a missing device": lambda k: k.tc_redirect("add", TAP, 2, "missing"),
    "a redirect of that priority again": lambda k: k.tc_redirect("add", TAP, 1, IFB),
    "a qdisc on a missing device": lambda k: k.tc_qdisc("add", "missing", "htb", HTB, TC_H_ROOT),
    "a redirect on a missing device": lambda k: k.tc_redirect("add", "missing", 1, IFB),
    "another kind at the root": lambda k: k.tc_qdisc("add", TAP, "pfifo", HTB, TC_H_ROOT),
    "another htb at the root": lambda k: k.tc_qdisc("add", TAP, "htb", 0x20000, TC_H_ROOT),
    "a missing qdisc deleted": lambda k: k.tc_qdisc("del", IFB, "ingress", TC_H_INGRESS_PARENT,
                                                    TC_H_INGRESS),
    "a missing class deleted": lambda k: k.tc_class("del", TAP, 0x10077, HTB),
    "a missing filter deleted": lambda k: k.tc_redirect("del", TAP, 9, ""),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refusals_say_why_and_change_nothing(case: str) -> None:
    fake = shaped()
    before = fake.tc_rows([TAP, IFB])
    with pytest.raises(KernelRefusal, match=r"\w"):
        REFUSED[case](fake)
    assert fake.tc_rows([TAP, IFB]) == before


def test_a_class_with_children_is_in_use() -> None:
    fake = shaped()
    fake.tc_class("replace", TAP, 0x10020, 0x10010, 1_250, 1_600)
    with pytest.raises(KernelRefusal, match="in use"):
        fake.tc_class("del", TAP, 0x10010, HTB)
    fake.tc_class("del", TAP, 0x10020, 0x10010)
    fake.tc_class("del", TAP, 0x10010, HTB)
