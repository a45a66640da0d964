"""Address groups through the whole pipeline without root: a rule made with
``remote_address_group_id`` through the API becomes elements of the group's
addresses on the host (the agent's loop on a fake kernel), and each
add_addresses / remove_addresses is one more turn of the loop that changes
exactly those elements; the port stays ACTIVE throughout."""

from __future__ import annotations

import json

from overcast.api import Api
from overcast.linux.fake import FakeKernel
from overcast.plan.names import tap_name
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.store import MemoryStore

from .test_pipeline import HOST, Agent, Neutron, store

__all__ = ["store"]  # the fixture, used by name


def test_an_address_groups_changes_reach_the_hosts_elements(store: MemoryStore) -> None:
    neutron = Neutron(Api(store))
    kernel = FakeKernel()
    agent = Agent(store, kernel)
    net = neutron.create("network", "networks", name="blue")
    neutron.create("subnet", "subnets", network_id=net["id"], cidr="10.3.0.0/24", ip_version=4)
    ssh = neutron.create("security_group", "security-groups", name="ssh")
    office = neutron.create("address_group", "address-groups", name="office",
                            addresses=["198.51.100.0/24", "2001:db8::/64"])
    v4 = neutron.create("security_group_rule", "security-group-rules", security_group_id=ssh["id"],
                        direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22,
                        remote_address_group_id=office["id"])
    v6 = neutron.create("security_group_rule", "security-group-rules", security_group_id=ssh["id"],
                        direction="ingress", ethertype="IPv6", protocol="tcp", port_range_min=22,
                        port_range_max=22, remote_address_group_id=office["id"])
    port = neutron.create("port", "ports", network_id=net["id"], security_groups=[ssh["id"]],
                          **{"binding:host_id": HOST})
    kernel.add_device(tap_name(port["id"]))
    agent.step()  # the chains first; the tap waits
    agent.step()

    def remotes() -> dict[str, set[str]]:
        """Rule id -> the remote address of each of its elements."""
        (ruleset,) = kernel.observe()[NftRuleset]
        out: dict[str, set[str]] = {}
        for e in ruleset.elements:
            if e.comment in (v4["id"], v6["id"]):
                out.setdefault(e.comment, set()).add(json.dumps(json.loads(e.key)["concat"][0]))
        return out

    first = remotes()
    assert len(first[v4["id"]]) == 1 and len(first[v6["id"]]) == 1
    assert any("198.51.100.0" in k for k in first[v4["id"]])
    assert any("2001:db8::" in k for k in first[v6["id"]])

    status, body = neutron.call("PUT", f"/v2.0/address-groups/{office['id']}/add_addresses",
                                {"addresses": ["203.0.113.9"]})
    assert status == 200, body
    agent.step()
    added = remotes()
    assert added[v6["id"]] == first[v6["id"]]
    (new,) = added[v4["id"]] - first[v4["id"]]
    assert "203.0.113.9" in new and first[v4["id"]] < added[v4["id"]]

    status, body = neutron.call("PUT", f"/v2.0/address-groups/{office['id']}/remove_addresses",
                                {"addresses": ["198.51.100.0/24", "2001:db8::/64"]})
    assert status == 200, body
    agent.step()
    assert remotes() == {v4["id"]: {new}}
    assert neutron.show("port", "ports", port["id"])["status"] == "ACTIVE"
