"""The external network as an operator makes it through the API: flat, on
the physical network every lab host maps to its external NIC. A VM on it
reaches the lab's internet directly from its own host (no overlay), and the
agents list shows the mapping."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.lab import probe
from overcast.lab.topology import EXTERNAL_GW, EXTERNAL_PHYSNET

from .conftest import Lab

pytestmark = pytest.mark.root


def external(lab: Lab) -> dict[str, Any]:
    net, _ = lab.api.create_network(
        "public", "203.0.113.0/24", EXTERNAL_GW, **{
            "provider:network_type": "flat", "provider:physical_network": EXTERNAL_PHYSNET,
            "router:external": True, "shared": True})
    return {"network": net}


def test_a_vm_on_the_flat_external_network_reaches_the_internet(lab: Lab) -> None:
    ext = lab.tenant("external", external)
    assert (ext["network"]["provider:network_type"], ext["network"]["mtu"]) == ("flat", 1500)
    edge = lab.vm("edge1", "host2", "public", "203.0.113.20")
    result = probe.ping(edge["netns"], EXTERNAL_GW, 3)
    assert result.returncode == 0 and " 0% packet loss" in result.stdout, result.stdout + result.stderr
    port = lab.api.call("GET", f"/v2.0/ports/{edge['port_id']}")["port"]
    assert port["status"] == "ACTIVE"
    agents = {a["host"]: a for a in lab.api.call("GET", "/v2.0/agents")["agents"]}
    assert agents["host2"]["configurations"]["bridge_mappings"] == {EXTERNAL_PHYSNET: "oc-ex0"}
