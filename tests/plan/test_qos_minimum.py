"""Egress minimum bandwidth as guaranteed shares of the host's uplink: what
the planner asks for (a root and a class per port only while some port has
a guarantee, the port's MAC inside VXLAN or at -8 for flat, admission in
port id order, what is not enforced and why), and against FakeKernel: made
in one pass, a change in place, a restarted agent finds nothing to do, the
last guarantee gone takes the root along, nothing foreign touched."""

from __future__ import annotations

from dataclasses import replace

from overcast.agent.reconciler import reconcile
from overcast.linux import FakeKernel
from overcast.model.types import BandwidthLimitRule, MinimumBandwidthRule, Network, Port, QosPolicy
from overcast.plan import HostPlan, plan_host
from overcast.plan.diff import diff
from overcast.plan.names import tap_name
from overcast.plan.raw import TC_H_ROOT, TcFilter
from overcast.plan.subsystems.uplink_qos import (
    PARENT,
    ROOT,
    Guarantee,
    UplinkRoot,
    class_minor,
    flat_keys,
    vxlan_keys,
)

from .scenarios import NET_A, NET_F, NET_L, net, port, view

POL, POL2 = "90000000-0000-4000-8000-000000000001", "90000000-0000-4000-8000-000000000002"
UPLINK, CAP = "eth9", 200_000  # kbit/s


def plan_for(ports: list[Port], mins: dict[str, int] | None = None,
             uplink: tuple[str, int] | None = (UPLINK, CAP), direction: str = "egress",
             networks: list[Network] | None = None,
             features: frozenset[str] | None = None) -> HostPlan:
    """``mins``: policy id -> min_kbps (POL 120000, POL2 50000 unless said)."""
    mins = {POL: 120_000, POL2: 50_000} if mins is None else mins
    rules = tuple(MinimumBandwidthRule(id=f"m{i}", policy_id=pol, min_kbps=kbps,
                                       direction=direction)
                  for i, (pol, kbps) in enumerate(sorted(mins.items())))
    nets = networks or [net(NET_A, 1001)]
    v = replace(view("h1", nets, ports), firewall=False, physical_networks={"phys": UPLINK},
                qos_policies=(QosPolicy(id=POL), QosPolicy(id=POL2)), qos_rules=rules,
                qos_uplink=uplink, qos_features=features)
    return plan_host(v)


def flat() -> Network:
    return replace(net(NET_F, type_="flat"), physical_network="phys")


def test_a_guarantee_is_a_class_under_the_capacity_and_a_filter_on_the_mac() -> None:
    p1, p2 = port(1, NET_A, "h1", qos_policy_id=POL), port(2, NET_A, "h1")
    hp = plan_for([p1, p2])
    (root,) = hp.state[UplinkRoot]
    assert root == UplinkRoot(UPLINK, CAP * 125, (CAP - 120_000) * 125, root.burst)
    (share,) = hp.state[Guarantee]
    assert (share.dev, share.rate, share.ceil, share.port_dev) == (
        UPLINK, 120_000 * 125, CAP * 125, tap_name(p1.id))
    assert share.minor == class_minor(p1.id, set()) and 0x1000 < share.minor <= 0x1FFF
    assert share.keys == vxlan_keys(p1.mac_address, 1001)
    assert hp.qos[p1.id].as_json()["minimum"] == {"min_kbps": 120_000, "device": UPLINK}
    assert hp.qos[p1.id].not_enforced == () and p2.id not in hp.qos


def test_the_vxlan_keys_find_the_inner_source_mac_and_the_flat_ones_at_minus_8() -> None:
    frame = bytes.fromhex("45000000" "00000000" "40110000" "0a000001" "0a000002"  # outer IPv4
                          "c00012b5" "00000000"  # UDP to 4789
                          "08000000" "0003e900"  # VXLAN, VNI 1001
                          "ffffffffffff" "fa163e000001")  # inner dst, src
    for value, mask, off in vxlan_keys("fa:16:3e:00:00:01", 1001):
        assert int.from_bytes(frame[off:off + 4], "big") & mask == value
    eth = bytes.fromhex("ffffffffffff" "fa163e000001" "0800") + frame[:20]
    for value, mask, off in flat_keys("fa:16:3e:00:00:01"):
        assert int.from_bytes(eth[14 + off:14 + off + 4], "big") & mask == value


def test_no_guarantee_no_qdisc_on_the_uplink() -> None:
    """Without a min rule the uplink is not shaped at all (nor its traffic capped)."""
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    assert not plan_for([p], mins={}).state[UplinkRoot]
    assert not plan_for([port(1, NET_A, "h1")]).state[UplinkRoot]


def test_what_cannot_be_guaranteed_is_said() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    name = "minimum_bandwidth rule m0 (egress, 120000 kbps): not enforced, "
    cases = {
        "no uplink capacity configured (agent option --qos-uplink DEVICE=KBPS)":
            plan_for([p], uplink=None),
        "kernel feature tc_htb missing": plan_for([p], features=frozenset({"ifb"})),
    }
    for reason, hp in cases.items():
        assert hp.qos[p.id].not_enforced == (name + reason,) and not hp.state[UplinkRoot]
    ingress = plan_for([p], direction="ingress")
    assert ingress.qos[p.id].not_enforced == (
        "minimum_bandwidth rule m0 (ingress, 120000 kbps): not enforced, what a VM receives "
        "arrives on the uplink from elsewhere: no queue here to guarantee it",)
    local = port(3, NET_L, "h1", qos_policy_id=POL)
    hp = plan_for([local], networks=[net(NET_L, type_="local")])
    assert hp.qos[local.id].not_enforced == (
        name + "a local network's traffic does not leave by the uplink",)


def test_a_flat_network_is_guaranteed_only_when_it_is_bridged_to_the_uplink() -> None:
    p = port(4, NET_F, "h1", qos_policy_id=POL)
    hp = plan_for([p], networks=[flat()])
    (share,) = hp.state[Guarantee]
    assert share.keys == flat_keys(p.mac_address)
    other = plan_for([p], uplink=("eth7", CAP), networks=[flat()])
    assert other.qos[p.id].not_enforced == (
        "minimum_bandwidth rule m0 (egress, 120000 kbps): not enforced, its flat network's "
        "frames leave by eth9, not the uplink eth7",) and not other.state[UplinkRoot]


def test_shares_beyond_the_capacity_are_refused_in_port_id_order() -> None:
    ports = [port(n, NET_A, "h1", qos_policy_id=POL if n < 3 else POL2) for n in (1, 2, 3)]
    hp = plan_for(ports)  # 120000 + 120000 > 198000: port 2 refused; port 3's 50000 fits
    assert {g.port_dev for g in hp.state[Guarantee]} == {tap_name(ports[0].id),
                                                          tap_name(ports[2].id)}
    (root,) = hp.state[UplinkRoot]
    assert root.rest == (CAP - 170_000) * 125
    assert hp.qos[ports[1].id].minimum is None
    assert hp.qos[ports[1].id].not_enforced == (
        "minimum_bandwidth rule m0 (egress, 120000 kbps): not enforced, the guarantees on eth9 "
        "would exceed its capacity of 200000 kbps (120000 kbps already guaranteed to ports "
        "sorted before it, 2000 kbps kept for the rest)",)


def test_class_minors_are_stable_and_distinct() -> None:
    taken: set[int] = set()
    ids = [f"{n:08x}-0000-4000-8000-{n:012x}" for n in range(300)]
    minors = [class_minor(i, taken) for i in ids]
    assert len(set(minors)) == 300
    assert class_minor(ids[7], set()) == class_minor(ids[7], set())


# --- against FakeKernel --------------------------------------------------------
def kernel_for(*ports: Port) -> FakeKernel:
    kernel = FakeKernel()
    kernel.add_device(UPLINK, "veth")
    for p in ports:
        kernel.add_device(tap_name(p.id))
    return kernel


def converge(kernel: FakeKernel, plan: HostPlan) -> list[str]:
    result = reconcile(kernel, plan.state)
    assert result.errors == ()
    assert diff(plan.state, kernel.observe()) == []
    return [c.render() for c in result.changes if "uplink" in c.render()
            or "guarantee" in c.render()]


def test_made_in_one_pass_changed_in_place_and_gone_with_the_last_guarantee() -> None:
    p1, p2 = port(1, NET_A, "h1", qos_policy_id=POL), port(2, NET_A, "h1", qos_policy_id=POL2)
    kernel = kernel_for(p1, p2)
    made = converge(kernel, plan_for([p1, p2]))
    assert [c.split()[0] for c in made] == ["create", "create", "create"]
    assert kernel.qdiscs[(UPLINK, TC_H_ROOT)].default == 2
    assert len(kernel.tc_classifiers) == 2
    assert converge(kernel, plan_for([p1, p2])) == []  # nothing to do
    # a restarted agent (no memory: only what observe reads) finds nothing to do either
    assert diff(plan_for([p1, p2]).state, kernel.observe(fresh=True)) == []
    qdisc = kernel.qdiscs[(UPLINK, TC_H_ROOT)]
    filters = dict(kernel.tc_classifiers)
    changed = converge(kernel, plan_for([p1, p2], mins={POL: 100_000, POL2: 50_000}))
    assert [c.split()[:2] for c in changed] == [["update", "uplink"], ["update", "guarantee"]]
    assert kernel.qdiscs[(UPLINK, TC_H_ROOT)] is qdisc and kernel.tc_classifiers == filters
    one = converge(kernel, plan_for([p1, p2], mins={POL: 100_000}))
    assert [c.split()[:2] for c in one] == [["delete", "guarantee"], ["update", "uplink"]]
    assert len(kernel.tc_classifiers) == 1
    assert converge(kernel, plan_for([p1, p2], mins={})) == [
        f"delete uplink {UPLINK} capacity {CAP}kbit, others {CAP - 100_000}kbit"]
    assert not kernel.qdiscs and not kernel.tc_classes and not kernel.tc_classifiers


def test_a_mac_change_replaces_the_filter_only_and_drift_is_repaired() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    kernel = kernel_for(p)
    converge(kernel, plan_for([p]))
    moved = replace(p, mac_address="fa:16:3e:00:00:99")
    assert [c.split()[:2] for c in converge(kernel, plan_for([moved]))] == [
        ["update", "guarantee"]]
    (flt,) = kernel.tc_classifiers.values()
    assert isinstance(flt, TcFilter) and flt.keys == vxlan_keys(moved.mac_address, 1001)
    (share,) = plan_for([moved]).state[Guarantee]
    kernel.tc_classify("del", UPLINK, ROOT, flt.prio, flt.handle)  # by hand
    assert converge(kernel, plan_for([moved])) == [f"update {share.render()}"]
    kernel.tc_class("replace", UPLINK, ROOT | 2, PARENT, 1000, 1600, ceil=2000)  # by hand
    assert [c.split()[:2] for c in converge(kernel, plan_for([moved]))] == [["update", "uplink"]]


def test_a_foreign_root_on_the_uplink_is_never_replaced() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    kernel = kernel_for(p)
    kernel.tc_qdisc("add", UPLINK, "htb", 0x10000, TC_H_ROOT, default=1)
    result = reconcile(kernel, plan_for([p]).state)
    assert result.errors and "uplink" in result.errors[0].change.render()
    assert kernel.qdiscs[(UPLINK, TC_H_ROOT)].handle == 0x10000


def test_a_bandwidth_limit_and_a_minimum_together() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    hp = plan_host(replace(view("h1", [net(NET_A, 1001)], [p]), firewall=False,
                           qos_policies=(QosPolicy(id=POL),), qos_uplink=(UPLINK, CAP),
                           qos_rules=(MinimumBandwidthRule(id="m", policy_id=POL,
                                                           min_kbps=10_000),
                                      BandwidthLimitRule(id="b", policy_id=POL,
                                                         max_kbps=50_000))))
    assert hp.qos[p.id].egress is not None and hp.qos[p.id].minimum is not None
    kernel = kernel_for(p)
    converge(kernel, hp)


# --- the agent's option, the API's and the CLI's view of it -------------------
def test_the_agent_option_and_what_the_port_says() -> None:
    from overcast.agent.main import build_parser
    from overcast.api.kinds.port import _qos_enforced
    from overcast.cli.output import qos_enforcement

    base = ["--host", "h1", "--store", "memory://", "--underlay-ip", "10.0.0.1"]
    assert build_parser().parse_args(base).qos_uplink is None
    args = build_parser().parse_args([*base, "--qos-uplink", "eth9=200000"])
    assert args.qos_uplink == ("eth9", 200_000)
    p = port(1, NET_A, "h1", qos_policy_id=POL)
    status = {"status": "ACTIVE", "host": "h1", "qos": plan_for([p]).qos[p.id].as_json()}
    (entry,) = _qos_enforced(status)
    assert entry["minimum"] == {"min_kbps": 120_000, "device": UPLINK}
    assert qos_enforcement([entry]) == (
        f"h1: policy {POL}: egress minimum 120000 kbit/s guaranteed on eth9")
