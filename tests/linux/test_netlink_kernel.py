"""NetlinkKernel against the real kernel, each test in fresh namespaces."""

from __future__ import annotations

import subprocess

import pytest

from overcast.agent.reconciler import reconcile
from overcast.linux.netlink import NetlinkKernel
from overcast.model.types import Network, Port
from overcast.plan import HostPlan, HostView, plan_host
from overcast.plan.diff import diff
from overcast.plan.names import bridge_name, network_mark, tap_name, vxlan_name
from overcast.plan.state import KernelState
from overcast.plan.subsystems.fdb import FdbEntry
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.links import Attachment, Bridge, Vxlan

from .conftest import MakeNs, ip_json, link

pytestmark = pytest.mark.root

HOSTS = {"h1": "198.18.0.1", "h2": "198.18.0.2", "h3": "198.18.0.3"}
NET_A = "aaaaaaaa-1111-4111-8111-000000000001"
NET_L = "cccccccc-3333-4333-8333-000000000003"
P1 = Port(id="11111111-0000-4000-8000-000000000001", network_id=NET_A, mac_address="fa:16:3e:00:00:01", binding_host_id="h1")
P2 = Port(id="22222222-0000-4000-8000-000000000002", network_id=NET_A, mac_address="fa:16:3e:00:00:02", binding_host_id="h2")
P3 = Port(id="33333333-0000-4000-8000-000000000003", network_id=NET_A, mac_address="fa:16:3e:00:00:03", binding_host_id="h3")
P4 = Port(id="44444444-0000-4000-8000-000000000004", network_id=NET_L, mac_address="fa:16:3e:00:00:04", binding_host_id="h1")


def networks(mtu: int = 1450, vni: int = 4001) -> list[Network]:
    return [
        Network(id=NET_A, segmentation_id=vni, mtu=mtu),
        Network(id=NET_L, network_type="local", mtu=mtu),
    ]


def plan(nets: list[Network] | None = None, ports: tuple[Port, ...] = (P1, P2, P3, P4)) -> HostPlan:
    return plan_host(HostView("h1", HOSTS["h1"], HOSTS, nets or networks(), list(ports)))


def add_taps(ns: str, *ports: Port) -> None:
    for p in ports:
        subprocess.run(["ip", "-n", ns, "link", "add", tap_name(p.id), "type", "veth", "peer", "name", f"vm{p.id[:4]}"], check=True)


def owned(state: KernelState) -> KernelState:
    ours = {b.name for b in state[Bridge]}
    return KernelState.of(state[Bridge], state[Vxlan], [a for a in state[Attachment] if a.master in ours], state[FdbEntry])


def converge(kernel: NetlinkKernel, desired: KernelState) -> None:
    """As the agent: on a fresh namespace the first pass makes the
    firewall's chains (the taps wait), the second attaches the taps."""
    for _ in range(2):
        result = reconcile(kernel, desired)
        assert result.errors == (), [e.render() for e in result.errors]
    observed = kernel.observe()
    assert owned(observed) == owned(desired)
    assert observed[NftRuleset] == desired[NftRuleset]
    assert diff(desired, kernel.observe()) == []


def test_apply_observe_equals_desired_and_kernel_agrees(make_ns: MakeNs) -> None:
    ns = make_ns("k1")
    add_taps(ns, P1, P4)
    desired = plan().state
    with NetlinkKernel(ns) as kernel:
        converge(kernel, desired)
    vx = link(ns, vxlan_name(NET_A))
    data = vx["linkinfo"]["info_data"]
    assert (data["id"], data["local"], data["port"], data["learning"]) == (4001, "198.18.0.1", 4789, False)
    assert vx["mtu"] == 1450 and vx["master"] == bridge_name(NET_A) and vx["ifalias"] == network_mark(NET_A)
    assert link(ns, tap_name(P4.id))["master"] == bridge_name(NET_L)
    fdb = {(e["mac"], e["dst"]) for e in ip_json(ns, "fdb", "show", "dev", vxlan_name(NET_A), tool="bridge") if "dst" in e}
    assert fdb == {("00:00:00:00:00:00", "198.18.0.2"), ("00:00:00:00:00:00", "198.18.0.3"),
                   ("fa:16:3e:00:00:02", "198.18.0.2"), ("fa:16:3e:00:00:03", "198.18.0.3")}
    with NetlinkKernel(ns) as restarted:  # an agent restarted with no memory
        assert diff(desired, restarted.observe()) == []


def test_foreign_devices_survive_a_full_sweep(make_ns: MakeNs) -> None:
    ns = make_ns("k2")
    add_taps(ns, P1)
    for cmd in (
        ["link", "add", "br-foreign", "type", "bridge"],
        ["link", "add", bridge_name(NET_L), "type", "vxlan", "id", "9", "dstport", "4789"],  # our name, wrong kind, no mark
        ["link", "add", "ocbsomeoneelse", "type", "bridge"],
        ["link", "set", "ocbsomeoneelse", "alias", "not-overcast"],
        ["link", "add", "tapforeign", "type", "veth", "peer", "name", "vmforeign"],
        ["link", "set", "tapforeign", "master", "br-foreign"],
    ):
        subprocess.run(["ip", "-n", ns, *cmd], check=True)
    with NetlinkKernel(ns) as kernel:
        converge(kernel, plan(ports=(P1, P2)).state)
        converge(kernel, KernelState())
    names = {ln["ifname"] for ln in ip_json(ns, "link", "show")}
    assert {"br-foreign", bridge_name(NET_L), "ocbsomeoneelse", "tapforeign", tap_name(P1.id)} <= names
    assert not {bridge_name(NET_A), vxlan_name(NET_A)} & names
    assert link(ns, "tapforeign")["master"] == "br-foreign"


def test_drift_is_repaired_in_place(make_ns: MakeNs) -> None:
    ns = make_ns("k3")
    add_taps(ns, P1)
    desired = plan(ports=(P1, P2)).state
    with NetlinkKernel(ns) as kernel:
        converge(kernel, desired)
        index = link(ns, bridge_name(NET_A))["ifindex"]
        vx = vxlan_name(NET_A)
        for cmd in (
            ["bridge", "fdb", "del", "fa:16:3e:00:00:02", "dev", vx, "dst", "198.18.0.2"],
            ["ip", "link", "set", tap_name(P1.id), "nomaster"],
            ["ip", "link", "set", bridge_name(NET_A), "mtu", "1300"],
            ["ip", "link", "set", vx, "down"],
        ):
            subprocess.run([cmd[0], "-n", ns, *cmd[1:]], check=True)
        changes = diff(desired, kernel.observe())
        assert sorted((c.op, type(c.obj).__name__) for c in changes) == [
            ("create", "FdbEntry"), ("update", "Attachment"), ("update", "Attachment"),
            ("update", "Bridge"), ("update", "Vxlan"),
        ]
        converge(kernel, desired)
    assert link(ns, bridge_name(NET_A))["ifindex"] == index  # never recreated


def test_mtu_change_updates_and_vni_change_recreates(make_ns: MakeNs) -> None:
    ns = make_ns("k4")
    add_taps(ns, P1)
    with NetlinkKernel(ns) as kernel:
        converge(kernel, plan(ports=(P1, P2)).state)
        before = {n: link(ns, n)["ifindex"] for n in (bridge_name(NET_A), vxlan_name(NET_A))}
        result = reconcile(kernel, plan(networks(mtu=1400), (P1, P2)).state)
        assert {c.op for c in result.changes} == {"update"}
        converge(kernel, plan(networks(mtu=1400), (P1, P2)).state)
        assert link(ns, tap_name(P1.id))["mtu"] == 1400
        assert {n: link(ns, n)["ifindex"] for n in before} == before
        converge(kernel, plan(networks(mtu=1400, vni=4002), (P1, P2)).state)
        assert link(ns, vxlan_name(NET_A))["linkinfo"]["info_data"]["id"] == 4002
        assert link(ns, bridge_name(NET_A))["ifindex"] == before[bridge_name(NET_A)]


def test_unmarked_device_left_by_a_crash_is_adopted(make_ns: MakeNs) -> None:
    ns = make_ns("k5")
    add_taps(ns, P1)
    subprocess.run(["ip", "-n", ns, "link", "add", bridge_name(NET_A), "type", "bridge"], check=True)
    with NetlinkKernel(ns) as kernel:
        converge(kernel, plan(ports=(P1, P2)).state)
    assert link(ns, bridge_name(NET_A))["ifalias"] == network_mark(NET_A)


def test_refused_changes_are_reported_not_raised(make_ns: MakeNs) -> None:
    ns = make_ns("k6")
    subprocess.run(["ip", "-n", ns, "link", "add", bridge_name(NET_A), "type", "dummy"], check=False)
    subprocess.run(["ip", "-n", ns, "link", "add", bridge_name(NET_A), "type", "veth", "peer", "name", "x0"], check=False)
    with NetlinkKernel(ns) as kernel:
        result = reconcile(kernel, plan(ports=(P1, P2)).state)
    failed = {e.change.render().split(" mtu")[0] for e in result.errors}
    assert f"create bridge {bridge_name(NET_A)}" in failed
    assert all(e.message for e in result.errors)
