"""Availability zones as Neutron serves them: the zones of the registered
hosts (each agent's ``--availability-zone``) for networks and routers, their
state, the hints networks and routers take (zones that exist, else 404) and
the zones they show (where they are realized on live hosts)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from overcast.agent.main import build_parser
from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.model import keys
from overcast.model.types import Host
from overcast.store import MemoryStore

from .helpers import Direct, assert_error

PATH = "/v2.0/availability_zones"


def host(store: MemoryStore, name: str, zone: str, *, alive: bool = True,
         routers: bool = True, up: bool = True) -> None:
    record = Host(id=f"id-{name}", host=name, underlay_ip="198.18.0.1", availability_zone=zone,
                  features={"routers": routers}, admin_state_up=up)
    store.put(keys.host(name), json.dumps(record.to_stored()).encode())
    if alive:
        store.put(keys.alive(name), b"{}")


@pytest.fixture
def zones(store: MemoryStore) -> None:
    host(store, "h1", "az1")
    host(store, "h2", "az2", alive=False)
    host(store, "h3", "az3", routers=False)  # no router namespaces there
    host(store, "h4", "az4", up=False)  # disabled by an admin


def listed(c: Direct, **params: str) -> list[dict[str, str]]:
    r = c.get(PATH, params=params)
    assert r.status == 200, r.body
    return r["availability_zones"]  # type: ignore[no-any-return]


def test_no_hosts_no_zones(client: Direct) -> None:
    assert listed(client) == []


def test_zones_of_the_hosts_and_their_state(client: Direct, zones: None) -> None:
    assert listed(client) == [
        {"name": "az1", "resource": "network", "state": "available"},
        {"name": "az1", "resource": "router", "state": "available"},
        {"name": "az2", "resource": "network", "state": "unavailable"},  # its agent is dead
        {"name": "az2", "resource": "router", "state": "unavailable"},
        {"name": "az3", "resource": "network", "state": "available"},
        {"name": "az4", "resource": "network", "state": "unavailable"},  # disabled
        {"name": "az4", "resource": "router", "state": "unavailable"}]
    assert [z["name"] for z in listed(client, resource="router", state="available")] == ["az1"]
    assert listed(client, name="az3") == [{"name": "az3", "resource": "network",
                                           "state": "available"}]
    assert listed(client, name="az2", fields="state") == [{"state": "unavailable"}] * 2
    assert_error(client.get(PATH, params={"colour": "red"}), 400, "colour")


def test_members_see_the_zones_and_agents_show_theirs(store: MemoryStore, zones: None) -> None:
    api = Api(store, auth=Auth({"t-admin": Context("ops", True),
                                "t-bob": Context("bob", False)}))
    assert len(listed(Direct(api, "t-bob"))) == 7
    agents = Direct(api, "t-admin").get("/v2.0/agents")["agents"]
    assert sorted((a["host"], a["availability_zone"]) for a in agents) == [
        ("h1", "az1"), ("h2", "az2"), ("h3", "az3"), ("h4", "az4")]


def test_hints_name_zones_that_exist(client: Direct, zones: None, unchanged: Any) -> None:
    net = client.network(name="n", availability_zone_hints=["az1", "az2"])
    assert net["availability_zone_hints"] == ["az1", "az2"]
    assert net["availability_zones"] == []  # no host has it yet, as Neutron's without DHCP
    router = client.create("router", "routers", name="r", availability_zone_hints=["az4"])
    assert router["availability_zone_hints"] == ["az4"]
    assert client.network(name="plain")["availability_zone_hints"] == []
    unchanged()
    assert_error(client.post("/v2.0/networks", {"network": {"availability_zone_hints": ["az9"]}}),
                 404, "AvailabilityZone az9 could not be found.", type="AvailabilityZoneNotFound")
    # az3's only host has no routers: no router zone there
    assert_error(client.post("/v2.0/routers", {"router": {"availability_zone_hints": ["az3"]}}),
                 404, "az3", type="AvailabilityZoneNotFound")
    for bad, words in ((["az1", "az1"], "Duplicate"), ("az1", "not a list"),
                       ([7], "not a valid string"), ([str(i) * 40 for i in range(7)], "Too many"),
                       (["a" * 256], "exceeds maximum length")):
        assert_error(client.post("/v2.0/networks", {"network": {"availability_zone_hints": bad}}),
                     400, "availability_zone_hints", words)
    for path, member in ((f"/v2.0/networks/{net['id']}", "network"),
                         (f"/v2.0/routers/{router['id']}", "router")):
        assert_error(client.put(path, {member: {"availability_zone_hints": ["az1"]}}),
                     400, "availability_zone_hints", "not allowed in PUT")


def test_zones_a_network_and_a_router_are_in(client: Direct, zones: None) -> None:
    net = client.network(name="n")
    sub = client.subnet(net["id"], "10.0.0.0/24")
    path = f"/v2.0/networks/{net['id']}"
    client.port(net["id"])  # not bound anywhere
    assert client.get(path)["network"]["availability_zones"] == []
    client.port(net["id"], **{"binding:host_id": "h2"})  # its agent is dead
    assert client.get(path)["network"]["availability_zones"] == []
    client.port(net["id"], **{"binding:host_id": "h3"})
    client.port(net["id"], **{"binding:host_id": "h1"})
    assert client.get(path)["network"]["availability_zones"] == ["az1", "az3"]
    listing = client.get("/v2.0/networks", params={"id": net["id"]})["networks"]
    assert listing[0]["availability_zones"] == ["az1", "az3"]

    router = client.create("router", "routers", name="r")
    rpath = f"/v2.0/routers/{router['id']}"
    assert router["availability_zones"] == []
    r = client.put(rpath + "/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status == 200, r.body
    # the hosts of the ports on its networks that can have routers (not h3)
    assert client.get(rpath)["router"]["availability_zones"] == ["az1"]


def test_agent_option() -> None:
    args = build_parser().parse_args(["--host", "h", "--store", "memory://", "--underlay-ip",
                                      "198.18.0.1"])
    assert args.availability_zone == "nova"
    args = build_parser().parse_args(["--host", "h", "--store", "memory://", "--underlay-ip",
                                      "198.18.0.1", "--availability-zone", "rack-7"])
    assert args.availability_zone == "rack-7"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--host", "h", "--store", "memory://", "--underlay-ip",
                                   "198.18.0.1", "--availability-zone", ""])


def test_liveness_registers_the_zone() -> None:
    from overcast.agent.liveness import Liveness

    store = MemoryStore()
    Liveness(store, "h7", "198.18.0.7", availability_zone="rack-7").register()
    Liveness(store, "h8", "198.18.0.8").register()
    c = Direct(Api(store))
    assert listed(c, resource="network") == [
        {"name": "nova", "resource": "network", "state": "available"},
        {"name": "rack-7", "resource": "network", "state": "available"}]
