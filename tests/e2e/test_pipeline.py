"""The whole pipeline without root, in well under a second: the API over a
memory store, the host agent (registered as ``overcast agent`` registers
itself) reconciling a fake kernel, and port status back through the API.

The agent is driven one ``AgentLoop.step()`` at a time: nothing here sleeps
or waits on a clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from overcast.agent import AgentLoop, Liveness, ModelView, Reconciler
from overcast.api import Api, Request
from overcast.linux.fake import FakeKernel
from overcast.plan.names import bridge_name, qos_ifb_name, tap_name, vxlan_name
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.store import MemoryStore

HOST, UNDERLAY = "hv1", "192.0.2.11"


class Neutron:
    """The API called as the HTTP edge calls it (no sockets)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = b"" if body is None else json.dumps(body).encode()
        resp = self.api.handle(Request(method, path, [], {}, data))
        return resp.status, resp.body

    def create(self, member: str, collection: str, **attrs: Any) -> dict[str, Any]:
        status, body = self.call("POST", f"/v2.0/{collection}", {member: attrs})
        assert status == 201, (collection, status, body)
        return dict(body[member])

    def show(self, member: str, collection: str, id_: str) -> dict[str, Any]:
        status, body = self.call("GET", f"/v2.0/{collection}/{id_}")
        assert status == 200, (collection, status, body)
        return dict(body[member])


class Agent:
    """One host's agent over ``kernel``: the same objects ``overcast agent`` builds."""

    def __init__(self, store: MemoryStore, kernel: FakeKernel) -> None:
        self.kernel = kernel
        self.liveness = Liveness(store, HOST, UNDERLAY)
        self.loop = AgentLoop(store, Reconciler(HOST, UNDERLAY, store, kernel, ModelView()))
        self.loop.full_read()
        self.liveness.register()

    def step(self) -> None:
        """One turn of the agent's loop, which must reconcile (and converge)."""
        result = self.loop.step()
        assert result is not None, "the agent saw nothing to do"
        assert not result.errors, [e.render() for e in result.errors]


def link_names(kernel: FakeKernel) -> set[str]:
    """Names of every link in the fake kernel."""
    return set(kernel.links)


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    s = MemoryStore()
    yield s
    s.close()


def test_port_goes_active_when_its_device_appears_and_delete_cleans_up(store: MemoryStore) -> None:
    neutron = Neutron(Api(store))
    kernel = FakeKernel()
    agent = Agent(store, kernel)

    _, agents = neutron.call("GET", "/v2.0/agents")
    assert [(a["host"], a["alive"]) for a in agents["agents"]] == [(HOST, True)]

    net = neutron.create("network", "networks", name="blue")
    neutron.create("subnet", "subnets", network_id=net["id"], cidr="10.0.0.0/24", ip_version=4)
    port = neutron.create("port", "ports", network_id=net["id"], **{"binding:host_id": HOST})
    assert port["status"] == "DOWN"
    bridge, vxlan, tap = bridge_name(net["id"]), vxlan_name(net["id"]), tap_name(port["id"])
    assert tap == "tap" + port["id"][:11]

    agent.step()  # the network's devices are made; the VM's NIC is not there yet
    assert {bridge, vxlan} <= link_names(kernel)
    assert neutron.show("port", "ports", port["id"])["status"] == "DOWN"

    kernel.add_device(tap)  # what QEMU (or the lab) does when the VM starts
    agent.step()
    assert neutron.show("port", "ports", port["id"])["status"] == "ACTIVE"
    assert neutron.show("port", "ports", port["id"])["binding:vif_type"] != "binding_failed"

    status, _ = neutron.call("DELETE", f"/v2.0/ports/{port['id']}")
    assert status == 204
    agent.step()  # the last port of the network on this host is gone: so are its devices
    assert bridge not in link_names(kernel) and vxlan not in link_names(kernel)
    assert tap in link_names(kernel)  # the workload's device is not ours to delete


def test_a_port_bound_elsewhere_is_not_realized_here(store: MemoryStore) -> None:
    neutron = Neutron(Api(store))
    kernel = FakeKernel()
    agent = Agent(store, kernel)
    net = neutron.create("network", "networks", name="red")
    neutron.create("subnet", "subnets", network_id=net["id"], cidr="10.1.0.0/24", ip_version=4)
    port = neutron.create("port", "ports", network_id=net["id"], **{"binding:host_id": "hv2"})
    agent.step()
    assert bridge_name(net["id"]) not in link_names(kernel)
    assert neutron.show("port", "ports", port["id"])["status"] == "DOWN"


def test_security_groups_through_the_api_become_elements_on_the_host(store: MemoryStore) -> None:
    """The agent's view decodes the API's security groups and rules as
    stored: the default group, a new group's rule, and its removal, each an
    element commented with the API object's id, the ports ACTIVE only once
    their elements are there."""
    neutron = Neutron(Api(store))
    kernel = FakeKernel()
    agent = Agent(store, kernel)
    net = neutron.create("network", "networks", name="green")
    neutron.create("subnet", "subnets", network_id=net["id"], cidr="10.2.0.0/24", ip_version=4)
    ports = [neutron.create("port", "ports", network_id=net["id"], **{"binding:host_id": HOST})
             for _ in range(2)]
    for p in ports:
        kernel.add_device(tap_name(p["id"]))
    agent.step()  # the chains first; the taps wait
    agent.step()  # then the taps join their bridge
    assert [neutron.show("port", "ports", p["id"])["status"] for p in ports] == ["ACTIVE"] * 2

    def elements(set_: str) -> dict[str, str]:
        (ruleset,) = kernel.observe()[NftRuleset]
        return {e.key: e.comment for e in ruleset.elements if e.set == set_}

    default = next(g for g in neutron.call("GET", "/v2.0/security-groups")[1]["security_groups"]
                   if g["name"] == "default")
    from_members = next(r["id"] for r in default["security_group_rules"]
                        if r["direction"] == "ingress" and r["ethertype"] == "IPv4")
    ips = sorted(p["fixed_ips"][0]["ip_address"] for p in ports)
    assert sorted(json.loads(k)["concat"][0] for k, c in elements("in4_any").items()
                  if c == from_members) == ips
    ssh = neutron.create("security_group", "security-groups", name="ssh")
    rule = neutron.create("security_group_rule", "security-group-rules", security_group_id=ssh["id"],
                          direction="ingress", protocol="tcp", port_range_min=22,
                          port_range_max=22, remote_ip_prefix="10.9.0.0/24")
    status, _ = neutron.call("PUT", f"/v2.0/ports/{ports[1]['id']}",
                             {"port": {"security_groups": [default["id"], ssh["id"]]}})
    assert status == 200
    agent.step()
    assert rule["id"] in elements("in4_port").values()
    status, _ = neutron.call("DELETE", f"/v2.0/security-group-rules/{rule['id']}")
    assert status == 204
    agent.step()
    assert rule["id"] not in elements("in4_port").values()
    assert neutron.show("port", "ports", ports[1]["id"])["status"] == "ACTIVE"


def test_a_qos_policy_through_the_api_is_shaped_on_the_host_and_said_on_the_port(
        store: MemoryStore) -> None:
    """The agent's view decodes the API's QoS policies and rules as stored: a
    port's policy becomes its shapers, redirect and DSCP mark, the port says
    what its host enforces (``overcast:qos``), a rate change is an update of
    the shaper, and the network's policy applies once the port's goes."""
    neutron = Neutron(Api(store))
    kernel = FakeKernel()
    agent = Agent(store, kernel)
    pol = neutron.create("policy", "qos/policies", name="gold")
    rule = neutron.create("bandwidth_limit_rule", f"qos/policies/{pol['id']}/bandwidth_limit_rules",
                          max_kbps=50_000, direction="egress")
    neutron.create("dscp_marking_rule", f"qos/policies/{pol['id']}/dscp_marking_rules", dscp_mark=26)
    net_pol = neutron.create("policy", "qos/policies", name="bronze")
    neutron.create("bandwidth_limit_rule", f"qos/policies/{net_pol['id']}/bandwidth_limit_rules",
                   max_kbps=10_000, direction="ingress")
    net = neutron.create("network", "networks", name="qos", qos_policy_id=net_pol["id"])
    neutron.create("subnet", "subnets", network_id=net["id"], cidr="10.3.0.0/24", ip_version=4)
    port = neutron.create("port", "ports", network_id=net["id"], qos_policy_id=pol["id"],
                          **{"binding:host_id": HOST})
    kernel.add_device(tap_name(port["id"]))
    agent.step()
    agent.step()
    shown = neutron.show("port", "ports", port["id"])
    assert (shown["status"], shown["qos_network_policy_id"]) == ("ACTIVE", net_pol["id"])
    (enforced,) = shown["overcast:qos"]
    ifb = qos_ifb_name(port["id"])
    assert enforced == {"host": HOST, "policy_id": pol["id"], "dscp_mark": 26,
                        "egress": {"max_kbps": 50_000, "max_burst_kbps": 40_000, "device": ifb}}
    status, _ = neutron.call("PUT", f"/v2.0/qos/policies/{pol['id']}/bandwidth_limit_rules/"
                             f"{rule['id']}", {"bandwidth_limit_rule": {"max_kbps": 30_000}})
    assert status == 200
    result = agent.loop.step()
    assert result is not None
    assert [c.render() for c in result.changes] == [
        f"update shape {ifb} rate 30000kbit burst 3000000b"]
    neutron.call("PUT", f"/v2.0/ports/{port['id']}", {"port": {"qos_policy_id": None}})
    agent.step()
    (enforced,) = neutron.show("port", "ports", port["id"])["overcast:qos"]
    assert enforced["policy_id"] == net_pol["id"] and "egress" not in enforced
    assert enforced["ingress"]["device"] == tap_name(port["id"])
    assert ifb not in link_names(kernel)
