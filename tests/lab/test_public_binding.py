"""The dynamic public binding, end to end: three VMs with public host names
take turns on a pool of two public addresses.  A VM that boots gets an
address from the pool and its name resolves from the internet to it; one
that stops gives it back and its name is withdrawn; the VM that found the
pool empty ran with its private address meanwhile (the port says why) and
gets the freed address; a VM that boots again may get another address and
the same name resolves to it; the metadata tells each VM its public name
and address."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from overcast.lab import fabric, probe, vm
from overcast.lab.topology import EXTERNAL_GW, PUBLIC_ZONE

from .conftest import Lab
from .test_external import external

pytestmark = pytest.mark.root

POOL = ("198.51.100.10", "198.51.100.11")
WAIT = 5.0


def _make_tenant(lab: Lab) -> dict[str, Any]:
    public = lab.tenant("external", external)["network"]
    # only floating IPs take its addresses (Neutron's subnet service types): routers'
    # gateways come from the other subnet
    pool = lab.api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": public["id"], "cidr": "198.51.100.0/24", "ip_version": 4,
        "gateway_ip": None, "allocation_pools": [{"start": POOL[0], "end": POOL[1]}],
        "tags": ["public-pool"], "service_types": ["network:floatingip"]}})["subnet"]
    net, subnet = lab.api.create_network("net-pub", "10.49.0.0/24")
    router = lab.api.call("POST", "/v2.0/routers", {"router": {
        "name": "r-pub", "external_gateway_info": {"network_id": public["id"]}}})["router"]
    lab.api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": subnet["id"]})
    names = {}
    for name, host in (("pa", "host1"), ("pb", "host2"), ("pc", "host3")):
        names[name] = f"{name}.{PUBLIC_ZONE}"
        named: dict[str, Any] = {"overcast:public_hostname": names[name]}
        lab.vms[name] = vm.create(name, host, "net-pub", **named)
        vm.stop(name)  # its release ends the binding its boot made (or tried to)
    return {"network": net, "names": names, "pool": pool}


@pytest.fixture
def tenant(lab: Lab) -> dict[str, Any]:
    return lab.tenant("public-binding", _make_tenant)


def resolve(name: str) -> list[str]:
    out = probe.in_ns(fabric.EXT_NS, ["dig", "+short", "+time=1", "+tries=1",
                                      f"@{EXTERNAL_GW}", name])
    return out.stdout.split()


def binding(lab: Lab, name: str) -> dict[str, Any]:
    port = lab.api.call("GET", f"/v2.0/ports/{lab.vms[name]['port_id']}")["port"]
    return port["overcast:public_binding"] or {}


def until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} not within {timeout:g}s"
        time.sleep(0.05)


def metadata(lab: Lab, name: str, path: str) -> str:
    return probe.in_ns(lab.vms[name]["netns"], ["curl", "-s", "-m", "3",
                                                f"http://169.254.169.254/latest/meta-data/{path}"]).stdout


@pytest.fixture
def pool_given_back(lab: Lab, tenant: dict[str, Any]) -> Any:
    """Afterwards the names are taken away (the binder gives the addresses
    back) and the pool subnet goes: the next tests' floating IPs come from
    the lab's usual external subnet."""
    yield
    for name in ("pa", "pb", "pc"):
        lab.api.call("PUT", f"/v2.0/ports/{lab.vms[name]['port_id']}", {"port": {
            "overcast:public_hostname": ""}})
    until(lambda: not [f for f in lab.api.call("GET", "/v2.0/floatingips")["floatingips"]
                       if f["floating_ip_address"] in POOL], "the pool given back")
    lab.api.call("DELETE", f"/v2.0/subnets/{tenant['pool']['id']}")


def test_more_vms_than_public_addresses_take_turns(lab: Lab, tenant: dict[str, Any],
                                                   pool_given_back: None) -> None:
    names = tenant["names"]
    until(lambda: all(resolve(names[n]) == [] for n in ("pa", "pb", "pc")),
          "the stopped VMs' names withdrawn")
    until(lambda: not [f for f in lab.api.call("GET", "/v2.0/floatingips")["floatingips"]
                       if f["floating_ip_address"] in POOL], "the pool free")
    vm.start("pa")
    vm.start("pb")
    a = until(lambda: resolve(names["pa"]), "pa's name")[0]
    b = until(lambda: resolve(names["pb"]), "pb's name")[0]
    assert {a, b} == set(POOL)
    assert probe.in_ns(fabric.EXT_NS, ["dig", "+short", f"@{EXTERNAL_GW}", "-x", a]).stdout.split() \
        == [f"{names['pa']}."]
    until(lambda: metadata(lab, "pa", "public-ipv4") == a, "pa's public-ipv4 in its metadata")
    assert metadata(lab, "pa", "public-hostname") == names["pa"]
    # the pool is empty: pc runs on its private address, and its port says why
    vm.start("pc")
    assert probe.ping(lab.vms["pc"]["netns"], lab.vms["pa"]["ips"][0], 2).returncode == 0
    why = until(lambda: binding(lab, "pc").get("problem"), "pc's problem")
    assert "public pool empty" in why and binding(lab, "pc")["address"] is None
    assert resolve(names["pc"]) == []
    # pa stops: its address and name go, and pc gets the address
    vm.stop("pa")
    until(lambda: resolve(names["pa"]) == [], "pa's name withdrawn")
    assert until(lambda: resolve(names["pc"]), "pc's name") == [a]
    assert binding(lab, "pc") == {"hostname": names["pc"], "address": a}
    # pa boots again: nothing free until pb stops; then pa has pb's old address, same name
    vm.start("pa")
    until(lambda: binding(lab, "pa").get("problem"), "pa finding the pool empty")
    vm.stop("pb")
    assert until(lambda: resolve(names["pa"]), "pa's name again") == [b]
    assert resolve(names["pb"]) == []
