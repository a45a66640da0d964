"""network-ip-availability as Neutron's: pools' sizes and allocations per
subnet, summed per network, for the admin only; its filters and fields."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error

Obj = dict[str, Any]
PATH = "/v2.0/network-ip-availabilities"


@pytest.fixture
def cloud() -> dict[str, Direct]:
    api = Api(MemoryStore(), auth=Auth({"t-admin": Context("ops", True),
                                        "t-alice": Context("alice", False)}))
    return {"admin": Direct(api, "t-admin"), "alice": Direct(api, "t-alice")}


@pytest.fixture
def nets(cloud: dict[str, Direct]) -> dict[str, Obj]:
    alice = cloud["alice"]
    blue = alice.network(name="blue")
    v4 = alice.subnet(blue["id"], "10.0.0.0/24", name="v4",
                      allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.19"},
                                        {"start": "10.0.0.100", "end": "10.0.0.104"}])
    v6 = alice.subnet(blue["id"], "fd00::/120", ip_version=6, name="v6")
    for _ in range(3):
        alice.port(blue["id"])
    alice.port(blue["id"], fixed_ips=[{"subnet_id": v4["id"]}])
    empty = alice.network(name="empty")
    return {"blue": blue, "v4": v4, "v6": v6, "empty": empty}


def test_the_admin_sees_each_networks_pools_and_allocations(cloud: dict[str, Direct],
                                                           nets: dict[str, Obj]) -> None:
    r = cloud["admin"].get(f"{PATH}/{nets['blue']['id']}")
    assert r.status == 200, r.body
    got = r["network_ip_availability"]
    v6_total = 254  # fd00::1 - fd00::ff minus the gateway: the default pool
    assert got == {
        "network_id": nets["blue"]["id"], "network_name": "blue",
        "tenant_id": "alice", "project_id": "alice",
        "total_ips": 15 + v6_total, "used_ips": 4 + 3,
        "subnet_ip_availability": [
            {"subnet_id": nets["v4"]["id"], "subnet_name": "v4", "cidr": "10.0.0.0/24",
             "ip_version": 4, "total_ips": 15, "used_ips": 4},
            {"subnet_id": nets["v6"]["id"], "subnet_name": "v6", "cidr": "fd00::/120",
             "ip_version": 6, "total_ips": v6_total, "used_ips": 3}]}
    listed = cloud["admin"].get(PATH)["network_ip_availabilities"]
    by_id = {n["network_id"]: n for n in listed}
    assert by_id[nets["blue"]["id"]] == got
    assert by_id[nets["empty"]["id"]]["subnet_ip_availability"] == []
    assert (by_id[nets["empty"]["id"]]["total_ips"], by_id[nets["empty"]["id"]]["used_ips"]) \
        == (0, 0)


def test_allocations_come_and_go(cloud: dict[str, Direct], nets: dict[str, Obj]) -> None:
    alice, admin = cloud["alice"], cloud["admin"]
    port = alice.port(nets["blue"]["id"], fixed_ips=[{"subnet_id": nets["v4"]["id"]}])
    used = admin.get(f"{PATH}/{nets['blue']['id']}")["network_ip_availability"]
    assert used["subnet_ip_availability"][0]["used_ips"] == 5
    assert alice.delete(f"/v2.0/ports/{port['id']}").status == 204
    used = admin.get(f"{PATH}/{nets['blue']['id']}")["network_ip_availability"]
    assert used["subnet_ip_availability"][0]["used_ips"] == 4


def test_a_member_sees_none(cloud: dict[str, Direct], nets: dict[str, Obj]) -> None:
    """admin only: the list is empty and one network is not there, answered
    as a network that does not exist (no network id is told to exist)."""
    alice = cloud["alice"]
    assert alice.get(PATH).body == {"network_ip_availabilities": []}
    seen = assert_error(alice.get(f"{PATH}/{nets['blue']['id']}"), 404, type="NetworkNotFound")
    missing = "00000000-0000-4000-8000-00000000dead"
    unseen = assert_error(alice.get(f"{PATH}/{missing}"), 404, type="NetworkNotFound")
    assert seen["message"].replace(nets["blue"]["id"], "ID") == unseen["message"].replace(
        missing, "ID")


def test_filters_and_fields(cloud: dict[str, Direct], nets: dict[str, Obj]) -> None:
    admin = cloud["admin"]
    admin.network(name="ops-net")

    def ids(**params: str) -> set[str]:
        return {n["network_id"] for n in admin.get(PATH, params=params)
                ["network_ip_availabilities"]}
    assert ids(network_name="blue") == {nets["blue"]["id"]}
    assert ids(network_id=nets["empty"]["id"]) == {nets["empty"]["id"]}
    assert ids(project_id="alice") == ids(tenant_id="alice") == {nets["blue"]["id"],
                                                                   nets["empty"]["id"]}
    assert ids(ip_version="4") == {nets["blue"]["id"]}  # networks without subnets drop out
    only_v6 = admin.get(PATH, params={"ip_version": "6"})["network_ip_availabilities"]
    assert [s["ip_version"] for s in only_v6[0]["subnet_ip_availability"]] == [6]
    assert only_v6[0]["total_ips"] == 254
    r = admin.get(PATH, params=[("network_name", "blue"), ("fields", "network_id"),
                                ("fields", "used_ips")])
    assert r["network_ip_availabilities"] == [{"network_id": nets["blue"]["id"], "used_ips": 7}]
    one = admin.get(f"{PATH}/{nets['blue']['id']}", params={"fields": "total_ips"})
    assert one.body == {"network_ip_availability": {"total_ips": 269}}


def test_refusals(cloud: dict[str, Direct], nets: dict[str, Obj]) -> None:
    admin = cloud["admin"]
    assert_error(admin.get(PATH, params={"bogus": "1"}), 400, "bogus")
    assert_error(admin.get(f"{PATH}/00000000-0000-0000-0000-000000000000"), 404,
                 type="NetworkNotFound")
    assert_error(admin.post(PATH, {}), 405)
    assert_error(admin.delete(f"{PATH}/{nets['blue']['id']}"), 405)


def test_it_is_advertised_with_neutrons_name(cloud: dict[str, Direct]) -> None:
    ext = cloud["alice"].get("/v2.0/extensions/network-ip-availability")["extension"]
    assert ext["name"] == "Network IP Availability"
    assert ext["description"] == "Provides IP availability data for each network and subnet."
