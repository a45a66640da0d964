"""QoS in the kernel, through the API, between VMs on two hosts: bandwidth
limits both ways hold within 5% of the set rate, change in place without a
lost ping, go away with the policy; a network's policy applies to its new
ports and a port's own wins; DSCP marks reach the receiver (captured) for
the marked VM only; an agent SIGKILLed and restarted keeps the shaping, and
a qdisc deleted by hand comes back.

Rates: iperf3's TCP goodput (the first second, slow start and the bucket's
burst, omitted) converted to the rate of the frames that carry it: at MTU
1450 a full segment carries 1398 bytes of data (TCP timestamps) in a frame
of 1464 bytes, and the limit counts frames, as the kernel's shapers do."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients.conftest import OSC
from overcast.lab import control, probe
from overcast.lab import vm as vm_
from overcast.plan.names import qos_ifb_name, tap_name

from . import traffic
from .conftest import RESYNC, Lab
from .test_firewall_groups import ping_replies

pytestmark = pytest.mark.root

MTU = 1450
TOLERANCE = 0.05
SECONDS = 4


def _make_tenant_qos(lab: Lab) -> dict[str, Any]:
    net, subnet = lab.api.create_network("net-qos", "10.9.0.0/24")
    lab.vm("q1", "host1", "net-qos", "10.9.0.11")
    lab.vm("q2", "host2", "net-qos", "10.9.0.12")
    return {"network": net, "subnet": subnet}


@pytest.fixture
def qos(lab: Lab) -> Iterator[dict[str, Any]]:
    """q1 (host1) and q2 (host2) on net-qos; what a test attached is taken away after it."""
    tenant = lab.tenant("qos", _make_tenant_qos)
    made: list[str] = []
    tenant["policies"] = made
    try:
        yield tenant
    finally:
        for name in ("q1", "q2"):
            lab.api.call("PUT", f"/v2.0/ports/{lab.vms[name]['port_id']}",
                         {"port": {"qos_policy_id": None}})
        lab.api.call("PUT", f"/v2.0/networks/{tenant['network']['id']}",
                     {"network": {"qos_policy_id": None}})
        for vm in ("q3", "q4"):
            if vm in lab.vms:
                vm_.delete(vm)
                lab.vms.pop(vm)
        for policy in made:
            lab.api.call("DELETE", f"/v2.0/qos/policies/{policy}")


def policy(lab: Lab, tenant: dict[str, Any], name: str,
           **rules: int) -> tuple[str, dict[str, str]]:
    """A policy with ``egress``/``ingress`` limits (kbit/s) and ``dscp``; its id
    and its rules' ids by kind."""
    pol = lab.api.call("POST", "/v2.0/qos/policies", {"policy": {"name": name}})["policy"]
    tenant["policies"].append(pol["id"])
    ids: dict[str, str] = {}
    for direction in ("egress", "ingress"):
        if direction in rules:
            rule = lab.api.call("POST", f"/v2.0/qos/policies/{pol['id']}/bandwidth_limit_rules",
                                {"bandwidth_limit_rule": {"max_kbps": rules[direction],
                                                          "direction": direction}})
            ids[direction] = rule["bandwidth_limit_rule"]["id"]
    if "dscp" in rules:
        rule = lab.api.call("POST", f"/v2.0/qos/policies/{pol['id']}/dscp_marking_rules",
                            {"dscp_marking_rule": {"dscp_mark": rules["dscp"]}})
        ids["dscp"] = rule["dscp_marking_rule"]["id"]
    return pol["id"], ids


def attach(lab: Lab, vm: str, policy_id: str | None) -> dict[str, Any]:
    """Set the port's policy; wait until its host says what it enforces."""
    port_id = lab.vms[vm]["port_id"]
    lab.api.call("PUT", f"/v2.0/ports/{port_id}", {"port": {"qos_policy_id": policy_id}})
    return wait_enforced(lab, vm, policy_id)


def wait_enforced(lab: Lab, vm: str, policy_id: str | None,
                  timeout: float = 10.0) -> dict[str, Any]:
    """The port's ``overcast:qos`` once it names ``policy_id`` (None: no QoS) and ACTIVE."""
    port_id = lab.vms[vm]["port_id"]
    deadline = time.monotonic() + timeout
    while True:
        port = lab.api.call("GET", f"/v2.0/ports/{port_id}")["port"]
        enforced = port.get("overcast:qos") or []
        got = enforced[0].get("policy_id") if enforced else None
        if port["status"] == "ACTIVE" and got == policy_id:
            return enforced[0] if enforced else {}
        assert time.monotonic() < deadline, f"{vm}: QoS {policy_id} not enforced: {port}"
        time.sleep(0.05)


def rate(lab: Lab, sender: str, receiver: str, seconds: int = SECONDS) -> float:
    """The rate (kbit/s) of the frames carrying a TCP stream sender -> receiver."""
    return probe.tcp_rate(lab.vms[receiver]["netns"], lab.vms[receiver]["ips"][0],
                          lab.vms[sender]["netns"], seconds, MTU)


def assert_near(measured: float, limit: int) -> None:
    assert abs(measured - limit) <= TOLERANCE * limit, f"{measured:.0f} kbit/s, limit {limit}"


def test_egress_and_ingress_limits_hold_and_go_with_the_policy(
        lab: Lab, qos: dict[str, Any]) -> None:
    line = rate(lab, "q1", "q2", 2)
    pol, _ = policy(lab, qos, "qos-both", egress=50_000, ingress=20_000)
    enforced = attach(lab, "q1", pol)
    q1_port = lab.vms["q1"]["port_id"]
    assert enforced["egress"] == {"max_kbps": 50_000, "max_burst_kbps": 40_000,
                                  "device": qos_ifb_name(q1_port)}
    assert enforced["ingress"]["device"] == tap_name(q1_port)
    assert enforced["host"] == "host1"
    assert_near(rate(lab, "q1", "q2"), 50_000)  # what q1 sends
    assert_near(rate(lab, "q2", "q1"), 20_000)  # what q1 receives
    attach(lab, "q1", None)
    restored = rate(lab, "q1", "q2", 2)
    assert restored > 4 * 50_000 and restored > 0.5 * line, (restored, line)


def test_a_rate_change_applies_in_place_without_a_lost_ping(
        lab: Lab, qos: dict[str, Any]) -> None:
    pol, rules = policy(lab, qos, "qos-change", egress=50_000)
    attach(lab, "q1", pol)
    q2_ip = lab.vms["q2"]["ips"][0]
    with traffic.Running(lab.vms["q1"]["netns"],
                         ["ping", "-n", "-D", "-i", "0.01", "-W", "1", q2_ip]) as pinger:
        pinger.wait_for(lambda lines: bool(ping_replies(lines)), 5.0, "a ping reply")
        lab.api.call("PUT", f"/v2.0/qos/policies/{pol}/bandwidth_limit_rules/{rules['egress']}",
                     {"bandwidth_limit_rule": {"max_kbps": 30_000}})
        deadline = time.monotonic() + 5.0
        while wait_enforced(lab, "q1", pol)["egress"]["max_kbps"] != 30_000:
            assert time.monotonic() < deadline, "the new rate is not enforced"
            time.sleep(0.05)
        after = time.monotonic()
        pinger.wait_for(lambda lines: time.monotonic() > after + 1.0, 5.0,
                        "pings after the change")
        lines = pinger.interrupt()
    seqs = [seq for _, seq in ping_replies(lines)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a ping was lost"
    assert len(seqs) > 50
    assert_near(rate(lab, "q1", "q2"), 30_000)


def test_the_network_policy_applies_to_new_ports_and_a_port_policy_wins(
        lab: Lab, qos: dict[str, Any]) -> None:
    net_pol, _ = policy(lab, qos, "qos-net", egress=20_000)
    own_pol, _ = policy(lab, qos, "qos-own", egress=40_000)
    lab.api.call("PUT", f"/v2.0/networks/{qos['network']['id']}",
                 {"network": {"qos_policy_id": net_pol}})
    lab.vm("q3", "host1", "net-qos", "10.9.0.13")
    port = lab.api.call("GET", f"/v2.0/ports/{lab.vms['q3']['port_id']}")["port"]
    assert (port["qos_policy_id"], port["qos_network_policy_id"]) == (None, net_pol)
    wait_enforced(lab, "q3", net_pol)
    assert_near(rate(lab, "q3", "q2"), 20_000)
    attach(lab, "q3", own_pol)
    assert_near(rate(lab, "q3", "q2"), 40_000)


def tos_seen(lab: Lab, receiver: str, sender: str) -> set[int]:
    """The IPv4 TOS bytes of the pings from ``sender`` that ``receiver`` captured."""
    src = lab.vms[sender]["ips"][0]
    with traffic.Running(lab.vms[receiver]["netns"],
                         ["tcpdump", "-l", "-n", "-v", "-c", "5", "-i", "eth0",
                          f"icmp and src {src}"]) as dump:
        dump.wait_for(lambda lines: any("listening on" in ln for ln in lines), 5.0, "tcpdump")
        p = probe.in_ns(lab.vms[sender]["netns"],
                        ["ping", "-n", "-c", "5", "-i", "0.05", lab.vms[receiver]["ips"][0]])
        assert p.returncode == 0, p.stdout
        lines = dump.finish()
    seen = {int(ln.split("tos ")[1].split(",")[0], 16) for ln in lines if "tos " in ln}
    assert seen, "\n".join(lines)
    return seen


def test_dscp_marks_reach_the_receiver_for_the_marked_vm_only(
        lab: Lab, qos: dict[str, Any]) -> None:
    pol, _ = policy(lab, qos, "qos-dscp", dscp=26)
    attach(lab, "q1", pol)
    lab.vm("q4", "host1", "net-qos", "10.9.0.14")  # beside q1, no policy
    assert tos_seen(lab, "q2", "q1") == {26 << 2}
    assert tos_seen(lab, "q2", "q4") == {0}


def test_an_agent_sigkilled_and_restarted_keeps_the_shaping_and_a_deleted_qdisc_returns(
        lab: Lab, qos: dict[str, Any]) -> None:
    pol, _ = policy(lab, qos, "qos-restart", egress=50_000)
    attach(lab, "q1", pol)
    host_ns = lab.topo.host("host1").netns
    ifb = qos_ifb_name(lab.vms["q1"]["port_id"])
    before = qdisc(host_ns, ifb)
    q2_ip = lab.vms["q2"]["ips"][0]
    with traffic.Running(lab.vms["q1"]["netns"],
                         ["ping", "-n", "-D", "-i", "0.02", "-W", "1", q2_ip]) as pinger:
        pinger.wait_for(lambda lines: bool(ping_replies(lines)), 5.0, "a ping reply")
        log = control.log_path("agent-host1")
        offset = log.stat().st_size
        control.stop_process("agent-host1", sig=signal.SIGKILL)
        control.start_agent(lab.topo, lab.topo.host("host1"))
        control.wait_agents(lab.topo, ["host1"])
        deadline = time.monotonic() + 10.0
        while "first pass:" not in log.read_text()[offset:]:
            assert time.monotonic() < deadline, "the restarted agent made no pass"
            time.sleep(0.05)
        lines = pinger.interrupt()
    seqs = [seq for _, seq in ping_replies(lines)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a ping was lost"
    after = qdisc(host_ns, ifb)
    # the same qdisc, never made again: its counters went on
    assert after["handle"] == before["handle"] == "4f43:"
    assert after["packets"] > before["packets"]
    assert_near(rate(lab, "q1", "q2", 2), 50_000)
    subprocess.run(["ip", "netns", "exec", host_ns, "tc", "qdisc", "del", "dev", ifb, "root"],
                   check=True)
    deadline = time.monotonic() + RESYNC + 5.0
    while qdisc(host_ns, ifb).get("handle") != "4f43:":
        assert time.monotonic() < deadline, "the deleted qdisc did not come back"
        time.sleep(0.05)
    assert_near(rate(lab, "q1", "q2", 2), 50_000)


def test_the_openstack_cli_drives_the_shaping(lab: Lab, qos: dict[str, Any],
                                              tmp_path: Path) -> None:
    """`openstack network qos policy create`, `qos rule create --type
    bandwidth-limit`, `network set --qos-policy` and `port set --qos-policy`,
    unmodified, as a user would type them."""
    osc = OSC(lab.topo.api_url, tmp_path)
    net_pol = osc.json("network qos policy create osc-qos-net")
    qos["policies"].append(net_pol["id"])
    osc.json("network qos rule create --type bandwidth-limit --max-kbps 20000 --egress "
             "osc-qos-net")
    osc.run(f"network set --qos-policy osc-qos-net {qos['network']['id']}")
    wait_enforced(lab, "q1", net_pol["id"])
    assert_near(rate(lab, "q1", "q2", 2), 20_000)
    port_pol = osc.json("network qos policy create osc-qos-port")
    qos["policies"].append(port_pol["id"])
    rule = osc.json("network qos rule create --type bandwidth-limit --max-kbps 40000 --egress "
                    "osc-qos-port")
    osc.run(f"port set --qos-policy osc-qos-port {lab.vms['q1']['port_id']}")
    wait_enforced(lab, "q1", port_pol["id"])
    assert_near(rate(lab, "q1", "q2", 2), 40_000)
    osc.run(f"network qos rule set --max-kbps 30000 osc-qos-port {rule['id']}")
    deadline = time.monotonic() + 5.0
    while wait_enforced(lab, "q1", port_pol["id"])["egress"]["max_kbps"] != 30_000:
        assert time.monotonic() < deadline, "the rule set by the CLI is not enforced"
        time.sleep(0.05)
    osc.run(f"port unset --qos-policy {lab.vms['q1']['port_id']}")
    osc.run(f"network set --no-qos-policy {qos['network']['id']}")
    wait_enforced(lab, "q1", None)


def qdisc(ns: str, dev: str) -> dict[str, Any]:
    """The root qdisc of ``dev`` as ``tc -s -j`` shows it (the test's view, not the product's)."""
    p = subprocess.run(["ip", "netns", "exec", ns, "tc", "-s", "-j", "qdisc", "show", "dev", dev,
                        "root"], capture_output=True, text=True, check=True)
    found: list[dict[str, Any]] = json.loads(p.stdout or "[]")
    return found[0] if found else {}
