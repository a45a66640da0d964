"""diff() rules of links and FDB, checked against FakeKernel (same contract
as NetlinkKernel).  The firewall is off here (its wiring: ``test_firewall_wiring.py``)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from overcast.agent.reconciler import reconcile
from overcast.linux import FakeKernel
from overcast.model.types import Network, Port
from overcast.plan import HostPlan, plan_host
from overcast.plan.diff import diff
from overcast.plan.names import bridge_name, is_owned, network_mark, tap_name, vxlan_name
from overcast.plan.state import KernelState
from overcast.plan.subsystems.fdb import BUM_MAC, FdbEntry
from overcast.plan.subsystems.links import Attachment, Bridge, Vxlan

from .scenarios import HOSTS, NET_A, NET_B, net, port, two_nets_three_hosts, view

KIND = {Bridge: 0, Vxlan: 1, Attachment: 2, FdbEntry: 3}


def plan_for(host: str, networks: list[Network], ports: list[Port]) -> HostPlan:
    return plan_host(replace(view(host, networks, ports), firewall=False))


def kernel_with_taps(ports: list[Port], host: str) -> FakeKernel:
    kernel = FakeKernel()
    for p in ports:
        if p.binding_host_id == host:
            kernel.add_device(tap_name(p.id))
    return kernel


def test_first_apply_creates_in_dependency_order_and_converges() -> None:
    networks, ports = two_nets_three_hosts()
    plan = plan_for("h2", networks, ports)
    kernel = kernel_with_taps(ports, "h2")
    result = reconcile(kernel, plan.state)
    assert result.errors == ()
    kinds = [KIND[type(c.obj)] for c in result.changes]
    assert kinds == sorted(kinds)
    assert {c.op for c in result.changes} == {"create", "update"}  # taps exist: update
    assert kernel.observe().without_devices() == plan.state
    assert diff(plan.state, kernel.observe()) == []


def test_missing_tap_is_pending_until_it_appears() -> None:
    plan = plan_for("h1", [net(NET_A, 5)], [port(1, NET_A, "h1")])
    kernel = FakeKernel()
    assert reconcile(kernel, plan.state).errors == ()
    assert diff(plan.state, kernel.observe()) == []  # nothing to do while the tap is absent
    kernel.add_device(tap_name(port(1, NET_A, "h1").id))
    changes = diff(plan.state, kernel.observe())
    assert [c.render() for c in changes] == [
        f"update attach {tap_name(port(1, NET_A, 'h1').id)} master {bridge_name(NET_A)} mtu 1450"
        " group 0x6f63"
    ]
    assert kernel.apply(changes) == []
    assert "tap00000001-00" in kernel.observe().devices_up


def test_mtu_change_is_an_update_in_place() -> None:
    ports = [port(1, NET_A, "h1"), port(2, NET_A, "h2")]
    kernel = kernel_with_taps(ports, "h1")
    reconcile(kernel, plan_for("h1", [net(NET_A, 5)], ports).state)
    result = reconcile(kernel, plan_for("h1", [net(NET_A, 5, mtu=1400)], ports).state)
    assert {c.op for c in result.changes} == {"update"}
    assert len(result.changes) == 4  # bridge, vxlan, 2 attachments
    assert {b.mtu for b in kernel.observe()[Bridge]} == {1400}


def test_vni_change_recreates_the_vxlan_with_its_attachment_and_fdb() -> None:
    ports = [port(1, NET_A, "h1"), port(2, NET_A, "h2")]
    kernel = kernel_with_taps(ports, "h1")
    reconcile(kernel, plan_for("h1", [net(NET_A, 5)], ports).state)
    new = plan_for("h1", [net(NET_A, 6)], ports)
    result = reconcile(kernel, new.state)
    assert result.errors == ()
    vx = vxlan_name(NET_A)
    assert [c.render().split(" id ")[0] for c in result.changes if c.op == "delete"] == [f"delete vxlan {vx}"]
    assert len([c for c in result.changes if isinstance(c.obj, FdbEntry)]) == 2
    assert kernel.observe().without_devices() == new.state


def test_remote_port_migration_moves_its_fdb_entry() -> None:
    ports = [port(1, NET_A, "h1"), port(2, NET_A, "h2")]
    kernel = kernel_with_taps(ports, "h1")
    reconcile(kernel, plan_for("h1", [net(NET_A, 5)], ports).state)
    moved = [ports[0], ports[1].replace(binding_host_id="h3")]
    result = reconcile(kernel, plan_for("h1", [net(NET_A, 5)], moved).state)
    vx = vxlan_name(NET_A)
    assert [c.render() for c in result.changes] == [
        f"delete fdb {BUM_MAC} dev {vx} dst {HOSTS['h2']}",
        f"delete fdb fa:16:3e:00:00:02 dev {vx} dst {HOSTS['h2']}",
        f"create fdb {BUM_MAC} dev {vx} dst {HOSTS['h3']}",
        f"create fdb fa:16:3e:00:00:02 dev {vx} dst {HOSTS['h3']}",
    ]


def test_removing_a_network_deletes_only_its_devices_and_frees_the_taps() -> None:
    networks, ports = two_nets_three_hosts()
    kernel = kernel_with_taps(ports, "h2")
    reconcile(kernel, plan_for("h2", networks, ports).state)
    remaining = [p for p in ports if p.network_id != NET_B]
    result = reconcile(kernel, plan_for("h2", networks, remaining).state)
    # the tap leaves Overcast's port group by a detach of its own
    assert [(c.op, type(c.obj).__name__) for c in result.changes] == [
        ("delete", "Attachment"), ("delete", "Vxlan"), ("delete", "Bridge")]
    state = kernel.observe()
    assert Attachment(tap_name(ports[3].id), "", 1400, True) in state[Attachment]  # tap left alone
    assert bridge_name(NET_A) in {b.name for b in state[Bridge]}


def test_foreign_and_unmarked_devices_are_never_deleted() -> None:
    kernel = FakeKernel()
    kernel.add_device("br-foreign", kind="bridge")
    kernel.add_device(bridge_name(NET_B), kind="bridge")  # our name, no mark
    kernel.add_device("ocbzzzzzzzzzzz", kind="bridge", alias="someone:else")
    kernel.add_device("tapforeign", kind="tap")
    kernel.set_link("tapforeign", master="br-foreign")
    ports = [port(1, NET_A, "h1")]
    reconcile(kernel, plan_for("h1", [net(NET_A, 5)], ports).state)
    result = reconcile(kernel, KernelState())
    assert {c.obj.name for c in result.changes if c.op == "delete"} == {bridge_name(NET_A), vxlan_name(NET_A)}
    assert {"br-foreign", bridge_name(NET_B), "ocbzzzzzzzzzzz", "tapforeign"} <= set(kernel.links)
    assert kernel.links["tapforeign"].master == "br-foreign"


def test_diff_never_deletes_unowned_records_even_if_observed() -> None:
    observed = KernelState.of(
        [Bridge("ocbnomark", 1500, ""), Bridge("br0", 1500, network_mark("x"))],
        [Vxlan("ocxnomark", 5, "198.18.0.1", 1450, "")],
        [Attachment("tap1", "br0"), Attachment("tap2", "ocbnomark")],
        [FdbEntry("ocxnomark", BUM_MAC, "198.18.0.2")],
    )
    assert diff(KernelState(), observed) == []


def test_deletes_come_first_in_reverse_dependency_order() -> None:
    ports = [port(1, NET_A, "h1"), port(2, NET_A, "h2"), port(3, NET_B, "h2")]
    kernel = kernel_with_taps(ports, "h1")
    reconcile(kernel, plan_for("h1", [net(NET_A, 5), net(NET_B, 6)], ports).state)
    moved = [ports[0], ports[1].replace(binding_host_id="h3"), ports[2].replace(binding_host_id="h1")]
    kernel.add_device(tap_name(ports[2].id))
    changes = diff(plan_for("h1", [net(NET_A, 5), net(NET_B, 6)], moved).state, kernel.observe())
    ops = [c.op for c in changes]
    first_put = ops.index("create")
    assert set(ops[:first_put]) == {"delete"} and "delete" not in ops[first_put:]
    deletes = [KIND[type(c.obj)] for c in changes[:first_put]]
    assert deletes == sorted(deletes, reverse=True)
    assert kernel.apply(changes) == []


NAMES = st.sampled_from(["ocbaaaa", "ocbbbbb", "ocxaaaa", "ocxbbbb", "br0", "tap1", "tap2", "eth0"])
ALIASES = st.sampled_from(["", "overcast:net:a", "overcast:net:b", "other:thing"])
IPS = st.sampled_from(["198.18.0.2", "198.18.0.3"])


@st.composite
def states(draw: st.DrawFn) -> KernelState:
    return KernelState.of(
        draw(st.lists(st.builds(Bridge, NAMES, st.sampled_from([1400, 1450]), ALIASES, st.booleans()), max_size=4)),
        draw(st.lists(st.builds(Vxlan, NAMES, st.sampled_from([5, 6]), IPS, st.just(1450), ALIASES), max_size=4)),
        draw(st.lists(st.builds(Attachment, NAMES, NAMES | st.just(""), st.just(1450), st.booleans()), max_size=4)),
        draw(st.lists(st.builds(FdbEntry, NAMES, st.sampled_from([BUM_MAC, "fa:16:3e:00:00:01"]), IPS), max_size=4)),
    )


@settings(max_examples=150, deadline=None)
@given(desired=states(), observed=states())
def test_every_delete_targets_something_overcast_owns(desired: KernelState, observed: KernelState) -> None:
    owned_bridges = {b.name for b in observed[Bridge] if is_owned(b.name, b.alias)}
    owned_vxlans = {v.name for v in observed[Vxlan] if is_owned(v.name, v.alias)}
    for change in diff(desired, observed):
        if change.op != "delete":
            continue
        obj = change.obj
        if isinstance(obj, Bridge | Vxlan):
            assert is_owned(obj.name, obj.alias)
        elif isinstance(obj, Attachment):
            assert obj.master in owned_bridges
        else:
            assert obj.dev in owned_vxlans


def test_two_networks_with_one_vni_get_one_device_and_a_problem() -> None:
    ports = [port(1, NET_A, "h1"), port(2, NET_B, "h1")]
    plan = plan_for("h1", [net(NET_A, 5), net(NET_B, 5)], ports)
    assert [v.name for v in plan.state[Vxlan]] == [vxlan_name(NET_A)]
    assert [(p.path, p.message) for p in plan.problems] == [(f"network/{NET_B}", f"vni 5 is already used by network/{NET_A}")]
