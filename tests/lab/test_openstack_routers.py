"""The unmodified `openstack` CLI drives real routing in the lab: after
`openstack router add subnet` two subnets ping across hosts, after
`router set --external-gateway` a VM reaches the internet, after
`floating ip create --port` the internet reaches the VM, and after
`router remove subnet` the routed path is gone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from clients.conftest import OSC
from overcast.lab import probe
from overcast.lab.fabric import EXT_NS

from .conftest import Lab
from .test_external import external

pytestmark = pytest.mark.root


def answers(ns: str, dst: str, timeout: float = 10.0) -> bool:
    """True once ``ns`` gets an answer from ``dst`` within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe.ping(ns, dst, 1, "-W", "0.2").returncode == 0:
            return True
    return False


@pytest.fixture
def osc(lab: Lab, tmp_path: Path) -> OSC:
    return OSC(lab.topo.api_url, tmp_path)


def test_openstack_router_commands_route_nat_and_float_for_real(lab: Lab, osc: OSC) -> None:
    public = lab.tenant("external", external)["network"]
    for n in (1, 2):
        osc.json(f"network create osc-net{n}")
        osc.json(f"subnet create --network osc-net{n} --subnet-range 10.3.{n}.0/24 osc-sub{n}")
    one = lab.vm("osc1", "host1", "osc-net1", "10.3.1.11")
    two = lab.vm("osc2", "host2", "osc-net2", "10.3.2.12")
    osc.json("router create osc-router")
    for n in (1, 2):
        osc.run(f"router add subnet osc-router osc-sub{n}")
    assert answers(one["netns"], "10.3.2.12"), "no routed ping after `router add subnet`"

    osc.run(f"router set --external-gateway {public['id']} osc-router")
    shown: Any = osc.json("router show osc-router")
    gateway_ip = shown["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert {i["subnet_id"] for i in shown["interfaces_info"]} == {
        osc.json(f"subnet show osc-sub{n}")["id"] for n in (1, 2)}
    assert answers(one["netns"], "203.0.113.1"), f"no SNAT through {gateway_ip}"

    group = osc.json("security group create osc-from-anywhere")
    osc.run(f"security group rule create --ingress --protocol icmp --remote-ip 0.0.0.0/0 "
            f"{group['id']}")
    osc.run(f"port set --security-group {group['id']} {two['port_id']}")
    fip = osc.json(f"floating ip create --port {two['port_id']} {public['id']}")
    assert answers(EXT_NS, fip["floating_ip_address"]), "the internet cannot reach the FIP"

    osc.run(f"floating ip delete {fip['id']}")
    osc.run("router unset --external-gateway osc-router")
    osc.run("router remove subnet osc-router osc-sub2")
    deadline = time.monotonic() + 10.0
    while probe.ping(one["netns"], "10.3.2.12", 1, "-W", "0.2").returncode == 0:
        assert time.monotonic() < deadline, "still routed after `router remove subnet`"
