"""The qos and dscp subsystems against FakeKernel (the same subsystem code
runs on the driver): made in one pass, a rate change replaces the class
only, a policy removed takes everything away, a tap that does not exist
gets nothing, a foreign root qdisc is never replaced, and what is deleted by
hand comes back."""

from __future__ import annotations

from dataclasses import replace

from overcast.agent.reconciler import reconcile
from overcast.agent.status import port_statuses, qos_short
from overcast.linux import FakeKernel
from overcast.model.types import BandwidthLimitRule, DscpMarkingRule, Port, QosPolicy
from overcast.plan import HostPlan, plan_host
from overcast.plan.diff import diff
from overcast.plan.names import qos_ifb_name, tap_name
from overcast.plan.raw import TC_H_ROOT
from overcast.plan.subsystems.dscp import DscpMarks
from overcast.plan.subsystems.qos import QosIfb, Redirect, Shaper

from .scenarios import NET_A, net, port, view

POL = "90000000-0000-4000-8000-000000000001"


def plan_for(ports: list[Port], egress: int = 50_000, ingress: int = 20_000,
             dscp: int | None = 26) -> HostPlan:
    rules: list[BandwidthLimitRule | DscpMarkingRule] = [
        BandwidthLimitRule(id="r1", policy_id=POL, max_kbps=egress, direction="egress"),
        BandwidthLimitRule(id="r2", policy_id=POL, max_kbps=ingress, direction="ingress")]
    if dscp is not None:
        rules.append(DscpMarkingRule(id="r3", policy_id=POL, dscp_mark=dscp))
    v = replace(view("h1", [net(NET_A, 1001)], ports), firewall=False,
                qos_policies=(QosPolicy(id=POL),), qos_rules=tuple(rules))
    return plan_host(v)


def kernel_for(*ports: Port) -> FakeKernel:
    kernel = FakeKernel()
    for p in ports:
        kernel.add_device(tap_name(p.id))
    return kernel


def converge(kernel: FakeKernel, plan: HostPlan) -> list[str]:
    result = reconcile(kernel, plan.state)
    assert result.errors == ()
    assert diff(plan.state, kernel.observe()) == []
    return [c.render() for c in result.changes]


def qos_changes(changes: list[str]) -> list[str]:
    return [c for c in changes if any(w in c for w in ("ifb", "shape", "redirect", "dscp"))]


def test_made_in_one_pass_then_a_rate_change_only_replaces_the_class() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    kernel = kernel_for(p)
    tap, ifb = tap_name(p.id), qos_ifb_name(p.id)
    made = qos_changes(converge(kernel, plan_for([p])))
    assert made == [
        f"create ifb {ifb} mtu 1450 alias overcast:qos:{p.id}",
        f"create shape {ifb} rate 50000kbit burst 5000000b",
        f"create shape {tap} rate 20000kbit burst 2000000b",
        f"create redirect {tap} ingress to {ifb}",
        f"create dscp {tap}=26"]
    observed = kernel.observe()
    assert {s.dev for s in observed[Shaper]} == {tap, ifb}
    changed = qos_changes(converge(kernel, plan_for([p], egress=30_000)))
    assert changed == [f"update shape {ifb} rate 30000kbit burst 3000000b"]
    assert kernel.qdiscs[(ifb, TC_H_ROOT)].handle == 0x4F430000  # the same qdisc


def test_a_policy_removed_takes_its_records_away() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    kernel = kernel_for(p)
    converge(kernel, plan_for([p]))
    gone = qos_changes(converge(kernel, plan_for([replace(p, qos_policy_id=None)])))
    tap, ifb = tap_name(p.id), qos_ifb_name(p.id)
    assert sorted(gone) == sorted([  # the ifb's shaper goes with the ifb
        f"delete ifb {ifb} mtu 1450 alias overcast:qos:{p.id}",
        f"delete shape {tap} rate 20000kbit burst 2000000b",
        f"delete redirect {tap} ingress to {ifb}", f"delete dscp {tap}=26"])
    observed = kernel.observe()
    for kind in (QosIfb, Shaper, Redirect, DscpMarks):
        assert not observed[kind], kind
    assert ifb not in kernel.links
    assert not [q for (dev, _), q in kernel.qdiscs.items() if dev == tap]


def test_a_tap_that_does_not_exist_gets_nothing_until_it_comes() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    kernel = FakeKernel()
    plan = plan_for([p], dscp=None)
    result = reconcile(kernel, plan.state)
    assert result.errors == ()
    assert not [c for c in result.changes if isinstance(c.obj, (Shaper, Redirect))]
    kernel.add_device(tap_name(p.id))
    assert {type(c.obj) for c in reconcile(kernel, plan.state).changes} >= {Shaper, Redirect}


def test_a_foreign_root_qdisc_is_refused_not_replaced() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    kernel = kernel_for(p)
    tap = tap_name(p.id)
    kernel.tc_qdisc("add", tap, "htb", 0x10000, TC_H_ROOT, default=1)
    result = reconcile(kernel, plan_for([p], dscp=None).state)
    refused = [e for e in result.errors if isinstance(e.change.obj, Shaper)]
    assert [e.change.obj.dev for e in refused] == [tap]
    assert kernel.qdiscs[(tap, TC_H_ROOT)].handle == 0x10000  # still the foreign one


def test_what_is_deleted_by_hand_comes_back() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    kernel = kernel_for(p)
    plan = plan_for([p])
    converge(kernel, plan)
    ifb = qos_ifb_name(p.id)
    kernel.tc_qdisc("del", ifb, "htb", 0x4F430000, TC_H_ROOT)
    assert qos_changes(converge(kernel, plan)) == [
        f"create shape {ifb} rate 50000kbit burst 5000000b"]
    kernel.link_del(ifb)
    back = qos_changes(converge(kernel, plan))
    assert back[0] == f"create ifb {ifb} mtu 1450 alias overcast:qos:{p.id}"
    assert f"create shape {ifb} rate 50000kbit burst 5000000b" in back


def test_a_refused_limit_is_said_on_the_port_which_stays_active() -> None:
    """A foreign root qdisc on the tap: the limit towards the VM cannot be
    made; the VM keeps its network (as in Neutron) and the port says why."""
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    kernel = kernel_for(p)
    tap = tap_name(p.id)
    kernel.tc_qdisc("add", tap, "htb", 0x10000, TC_H_ROOT, default=1)
    plan = plan_for([p], dscp=None)
    done = reconcile(kernel, plan.state)
    statuses = port_statuses(plan, done.observed, done.errors, done.changes)
    assert statuses[p.id].status == "ACTIVE"
    short = qos_short(plan, done.observed, done.changes, done.errors)
    said = plan.qos[p.id].short_of(tap, short.get(tap, ()))
    assert said.ingress is None and said.egress is not None  # the ifb's shaper is in place
    (why,) = said.not_enforced  # the change, then the kernel's refusal
    assert why.startswith(f"create shape {tap} rate 20000kbit burst 2000000b: tc qdisc add htb")
    assert "htb 0x10000 is there" in why
