"""Minimum bandwidth in the lab: two VMs on host1 send to two VMs on host2
at full speed at the same time through host1's uplink, which each agent is
told carries ``uplink_kbps`` (the lab's topology).  The VM with a minimum
of 60% of it gets at least 95% of its minimum; with equal small minimums
instead they split the uplink about evenly (the guarantee is what made the
difference); with no minimum left the uplink has no qdisc at all.

Rates are those of the frames on the uplink, as htb counts them: iperf3's
TCP goodput (its first second omitted) times a full segment's frame on the
underlay (MTU + 14, plus VXLAN's 50 bytes of outer headers) over its data
(MTU - 52)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from overcast.lab import fabric, probe

from .conftest import Lab
from .test_qos import wait_enforced

pytestmark = pytest.mark.root

MTU = 1450
VXLAN_OVERHEAD = 50
SECONDS = 5
SENDERS, RECEIVERS = ("mb1", "mb2"), ("mb3", "mb4")


def _make_tenant(lab: Lab) -> dict[str, Any]:
    net, subnet = lab.api.create_network("net-qosmin", "10.52.0.0/24")
    for i, (sender, receiver) in enumerate(zip(SENDERS, RECEIVERS, strict=True)):
        lab.vm(sender, "host1", "net-qosmin", f"10.52.0.{11 + i}")
        lab.vm(receiver, "host2", "net-qosmin", f"10.52.0.{21 + i}")
    return {"network": net, "subnet": subnet}


@pytest.fixture
def qosmin(lab: Lab) -> Iterator[dict[str, Any]]:
    tenant = lab.tenant("qosmin", _make_tenant)
    made: list[str] = []
    tenant["policies"] = made
    try:
        yield tenant
    finally:
        for name in SENDERS:
            lab.api.call("PUT", f"/v2.0/ports/{lab.vms[name]['port_id']}",
                         {"port": {"qos_policy_id": None}})
        for pol in made:
            lab.api.call("DELETE", f"/v2.0/qos/policies/{pol}")


def min_policy(lab: Lab, tenant: dict[str, Any], name: str, min_kbps: int) -> str:
    pol = lab.api.call("POST", "/v2.0/qos/policies", {"policy": {"name": name}})["policy"]
    tenant["policies"].append(pol["id"])
    lab.api.call("POST", f"/v2.0/qos/policies/{pol['id']}/minimum_bandwidth_rules",
                 {"minimum_bandwidth_rule": {"min_kbps": min_kbps, "direction": "egress"}})
    return str(pol["id"])


def attach(lab: Lab, vm: str, policy_id: str | None, min_kbps: int | None) -> None:
    """Set the port's policy; wait until its host says it guarantees ``min_kbps``."""
    port_id = lab.vms[vm]["port_id"]
    lab.api.call("PUT", f"/v2.0/ports/{port_id}", {"port": {"qos_policy_id": policy_id}})
    enforced = wait_enforced(lab, vm, policy_id)
    if min_kbps is not None:
        assert enforced.get("minimum") == {"min_kbps": min_kbps,
                                           "device": fabric.HOST_UNDERLAY_IF}, enforced


def uplink_rates(lab: Lab) -> dict[str, float]:
    """Each sender's rate (kbit/s of uplink frames), both streams at once."""
    rates: dict[str, float] = {}

    def run(sender: str, receiver: str) -> None:
        inner = probe.tcp_rate(lab.vms[receiver]["netns"], lab.vms[receiver]["ips"][0],
                               lab.vms[sender]["netns"], SECONDS, MTU)
        rates[sender] = inner * (MTU + 14 + VXLAN_OVERHEAD) / (MTU + 14)

    threads = [threading.Thread(target=run, args=pair)
               for pair in zip(SENDERS, RECEIVERS, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(rates) == set(SENDERS), rates
    print(f"uplink rates (kbit/s): {rates}")
    return rates


def uplink_qdiscs(host: str) -> str:
    return subprocess.run(["tc", "-n", f"oc-{host}", "qdisc", "show", "dev",
                           fabric.HOST_UNDERLAY_IF], capture_output=True, text=True,
                          check=True).stdout


def test_a_guaranteed_share_holds_against_a_full_speed_neighbour(
        lab: Lab, qosmin: dict[str, Any]) -> None:
    capacity = lab.topo.uplink_kbps
    assert "4f43:" not in uplink_qdiscs("host1")  # no minimum: the uplink is not shaped
    guaranteed = int(capacity * 0.6)
    attach(lab, "mb1", min_policy(lab, qosmin, "qosmin-60", guaranteed), guaranteed)
    assert "htb 4f43:" in uplink_qdiscs("host1") and "4f43:" not in uplink_qdiscs("host2")
    rates = uplink_rates(lab)
    assert rates["mb1"] >= 0.95 * guaranteed, rates
    assert sum(rates.values()) <= 1.05 * capacity, rates  # the uplink's htb is what limits

    even = min_policy(lab, qosmin, "qosmin-even", 1_000)
    attach(lab, "mb1", even, 1_000)
    attach(lab, "mb2", even, 1_000)
    rates = uplink_rates(lab)
    total = sum(rates.values())
    assert all(0.35 * total <= r <= 0.65 * total for r in rates.values()), rates
    assert total >= 0.9 * capacity, rates

    attach(lab, "mb1", None, None)
    attach(lab, "mb2", None, None)
    assert "4f43:" not in uplink_qdiscs("host1")
