"""VMs on one network reach each other on the same host and across hosts."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.lab import probe

from .conftest import Lab

pytestmark = pytest.mark.root

PAIRS = [("a1", "a2"), ("a2", "a1"), ("a1", "a3"), ("a3", "a1")]


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_ping(lab: Lab, tenant_a: dict[str, Any], src: str, dst: str) -> None:
    result = probe.ping(lab.vms[src]["netns"], lab.vms[dst]["ips"][0], 3)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0% packet loss" in result.stdout


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_tcp(lab: Lab, tenant_a: dict[str, Any], src: str, dst: str) -> None:
    server = lab.vms[dst]
    echo = probe.tcp_echo(server["netns"], server["ips"][0], lab.vms[src]["netns"])
    assert echo == f"echo:hello-from-{lab.vms[src]['netns']}"


def test_ports_are_active_and_agents_alive(lab: Lab, tenant_a: dict[str, Any]) -> None:
    for name in ("a1", "a2", "a3"):
        port = lab.api.call("GET", f"/v2.0/ports/{lab.vms[name]['port_id']}")["port"]
        assert port["status"] == "ACTIVE"
        assert port["binding:host_id"] == lab.vms[name]["host"]
    agents = lab.api.call("GET", "/v2.0/agents")["agents"]
    assert {a["host"] for a in agents if a["alive"]} >= {"host1", "host2", "host3"}


def test_mtu_1450_network_carries_1422_byte_payload_with_df(lab: Lab, tenant_a: dict[str, Any]) -> None:
    assert tenant_a["network"]["mtu"] == 1450
    src, dst = lab.vms["a1"]["netns"], lab.vms["a3"]["ips"][0]
    fits = probe.ping(src, dst, 3, "-M", "do", "-s", "1422")
    assert fits.returncode == 0 and " 0% packet loss" in fits.stdout, fits.stdout + fits.stderr
    too_big = probe.ping(src, dst, 2, "-M", "do", "-s", "1423")
    assert too_big.returncode != 0
    assert "message too long" in (too_big.stdout + too_big.stderr).lower()
    assert " 0 received" in too_big.stdout
