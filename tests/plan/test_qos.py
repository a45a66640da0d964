"""plan/qos.py: which local port gets which shaper, redirect, ifb device and
DSCP mark, from its own QoS policy or its network's, and what is said when
the kernel cannot."""

from __future__ import annotations

from dataclasses import replace

from overcast.model.types import (
    BandwidthLimitRule,
    DscpMarkingRule,
    MinimumBandwidthRule,
    Network,
    Port,
    QosPolicy,
)
from overcast.plan import HostPlan, plan_host
from overcast.plan.names import QOS_MARK_PREFIX, qos_ifb_name, tap_name
from overcast.plan.qos import Limit
from overcast.plan.subsystems.dscp import DscpMarks
from overcast.plan.subsystems.qos import QosIfb, Redirect, Shaper

from .scenarios import NET_A, NET_B, net, port, view

POL_1 = "90000000-0000-4000-8000-000000000001"
POL_2 = "90000000-0000-4000-8000-000000000002"


def rules() -> list[BandwidthLimitRule | DscpMarkingRule | MinimumBandwidthRule]:
    return [
        BandwidthLimitRule(id="r1", policy_id=POL_1, max_kbps=50_000, direction="egress"),
        BandwidthLimitRule(id="r2", policy_id=POL_1, max_kbps=20_000, max_burst_kbps=2_000,
                           direction="ingress"),
        DscpMarkingRule(id="r3", policy_id=POL_1, dscp_mark=26),
        BandwidthLimitRule(id="r4", policy_id=POL_2, max_kbps=1_000, direction="ingress"),
    ]


def plan(ports: list[Port], networks: list[Network] | None = None,
         features: frozenset[str] | None = None,
         extra: list[BandwidthLimitRule | DscpMarkingRule | MinimumBandwidthRule] | None = None
         ) -> HostPlan:
    v = view("h1", networks or [net(NET_A, 1001), net(NET_B, 1002, mtu=1400)], ports)
    return plan_host(replace(v, qos_policies=(QosPolicy(id=POL_1), QosPolicy(id=POL_2)),
                             qos_rules=tuple(rules() + (extra or [])), qos_features=features))


def test_a_port_policy_shapes_both_directions_and_marks_dscp() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL_1)
    hp = plan([p])
    tap, ifb = tap_name(p.id), qos_ifb_name(p.id)
    assert set(hp.state[QosIfb]) == {QosIfb(ifb, QOS_MARK_PREFIX + p.id, 1450)}
    # kbit/s -> bytes/s; the burst: Neutron's 80% of a second when 0, else as asked
    assert set(hp.state[Shaper]) == {Shaper(ifb, 50_000 * 125, 40_000 * 125),
                                     Shaper(tap, 20_000 * 125, 2_000 * 125)}
    assert set(hp.state[Redirect]) == {Redirect(tap, ifb)}
    assert hp.state[DscpMarks] == (DscpMarks(((tap, 26),), (26,)),)
    enforced = hp.qos[p.id]
    assert enforced.egress == Limit(50_000, 40_000, ifb)
    assert enforced.ingress == Limit(20_000, 2_000, tap)
    assert (enforced.dscp_mark, enforced.not_enforced) == (26, ())
    # every record names the port's tap: the port is ACTIVE only once they are in place
    assert all(tap in r.devices() for r in hp.state.records
               if isinstance(r, (QosIfb, Shaper, Redirect, DscpMarks)))


def test_the_network_policy_applies_to_ports_without_one_and_the_port_policy_wins() -> None:
    networks = [replace(net(NET_A, 1001), qos_policy_id=POL_2), net(NET_B, 1002)]
    plain = port(1, NET_A, "h1")
    own = port(2, NET_A, "h1", qos_policy_id=POL_1)
    service = port(3, NET_A, "h1", device_owner="network:dhcp")
    other_net = port(4, NET_B, "h1")
    hp = plan([plain, own, service, other_net], networks)
    assert set(hp.qos) == {plain.id, own.id}
    assert hp.qos[plain.id].policy_id == POL_2
    assert hp.qos[plain.id].ingress == Limit(1_000, 800, tap_name(plain.id))
    assert hp.qos[own.id].policy_id == POL_1
    shaped = {s.dev for s in hp.state[Shaper]}
    assert tap_name(service.id) not in shaped and tap_name(other_net.id) not in shaped


def test_remote_ports_and_unknown_policies_get_nothing() -> None:
    remote = port(1, NET_A, "h2", qos_policy_id=POL_1)
    unknown = port(2, NET_A, "h1", qos_policy_id="90000000-0000-4000-8000-0000000000ff")
    hp = plan([remote, unknown])
    assert not hp.qos and not hp.state[Shaper] and not hp.state[DscpMarks]


def test_what_the_kernel_lacks_is_left_out_and_said() -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL_1)
    hp = plan([p], features=frozenset({"tc_htb", "tc_ingress"}))  # no ifb, no mirred, no nft
    enforced = hp.qos[p.id]
    assert enforced.egress is None and enforced.dscp_mark is None
    assert enforced.ingress is not None
    assert [w.split(":")[0] for w in enforced.not_enforced] == [
        "bandwidth_limit rule r1 (egress)", "dscp_marking rule r3"]
    assert "ifb, tc_mirred missing" in enforced.not_enforced[0]
    assert not hp.state[QosIfb] and not hp.state[Redirect] and not hp.state[DscpMarks]


def test_minimum_bandwidth_without_an_uplink_is_said_not_enforced_and_zero_limits_nothing(
) -> None:
    p = port(1, NET_A, "h1", qos_policy_id=POL_2)
    hp = plan([p], extra=[MinimumBandwidthRule(id="m1", policy_id=POL_2, min_kbps=10_000),
                          BandwidthLimitRule(id="z1", policy_id=POL_2, max_kbps=0,
                                             direction="egress")])
    assert hp.qos[p.id].egress is None
    assert hp.qos[p.id].not_enforced == (
        "minimum_bandwidth rule m1 (egress, 10000 kbps): not enforced, no uplink capacity "
        "configured (agent option --qos-uplink DEVICE=KBPS)",)
    assert hp.qos[p.id].as_json()["not_enforced"] == list(hp.qos[p.id].not_enforced)


def test_a_tiny_burst_still_passes_a_full_frame() -> None:
    p = port(1, NET_B, "h1", qos_policy_id=POL_2)
    hp = plan([p], extra=[BandwidthLimitRule(id="t1", policy_id=POL_2, max_kbps=100,
                                             max_burst_kbps=1, direction="egress")])
    ifb = qos_ifb_name(p.id)
    (shaper,) = [s for s in hp.state[Shaper] if s.dev == ifb]
    assert shaper.burst == 1400 + 14
