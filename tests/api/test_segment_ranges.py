"""Network segment ranges as Neutron serves them: the operator's, the default
range of the configuration (read-only), VXLAN only, no overlaps; new networks
take their VNI from their project's ranges first, then from the shared ones;
``available`` and ``used``; a range in use cannot go nor shrink away from a
network's VNI; nothing written on a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.api.config import ApiConfig
from overcast.store import MemoryStore

from .helpers import Direct, assert_error

PATH = "/v2.0/network_segment_ranges"
TOKENS = {"t-admin": Context("ops", True), "t-alice": Context("alice", False),
          "t-bob": Context("bob", False)}


@pytest.fixture
def api(store: MemoryStore) -> Api:
    return Api(store, ApiConfig(vni_range=(100, 101)), auth=Auth(dict(TOKENS)))


@pytest.fixture
def admin(api: Api) -> Direct:
    return Direct(api, "t-admin")


def make(c: Direct, **attrs: Any) -> dict[str, Any]:
    return c.create("network_segment_range", "network_segment_ranges",
                    **{"network_type": "vxlan", **attrs})


def vni(c: Direct, **attrs: Any) -> int:
    return int(c.network(**attrs)["provider:segmentation_id"])


def test_the_default_range_is_the_configured_one(admin: Direct) -> None:
    ranges = admin.get(PATH)["network_segment_ranges"]
    assert len(ranges) == 1
    default = ranges[0]
    assert {k: default[k] for k in ("default", "shared", "project_id", "network_type",
                                    "physical_network", "minimum", "maximum", "available",
                                    "used", "name")} == {
        "default": True, "shared": True, "project_id": "", "network_type": "vxlan",
        "physical_network": None, "minimum": 100, "maximum": 101, "available": [100, 101],
        "used": {}, "name": ""}
    net = admin.network(name="n", project_id="alice")
    assert net["provider:segmentation_id"] == 100
    shown = admin.get(f"{PATH}/{default['id']}")["network_segment_range"]
    assert (shown["available"], shown["used"]) == ([101], {"100": "alice"})


def test_a_changed_configuration_moves_the_default_range(store: MemoryStore, api: Api) -> None:
    again = Direct(Api(store, ApiConfig(vni_range=(500, 600)), auth=Auth(dict(TOKENS))),
                   "t-admin")
    ranges = again.get(PATH)["network_segment_ranges"]
    assert [(r["minimum"], r["maximum"], r["default"]) for r in ranges] == [(500, 600, True)]


def test_project_ranges_first_then_shared(admin: Direct) -> None:
    own = make(admin, name="alice's", shared=False, project_id="alice", minimum=2000,
               maximum=2001)
    assert (own["shared"], own["project_id"], own["default"]) == (False, "alice", False)
    shared = make(admin, name="more", minimum=1000, maximum=1001)
    assert (shared["shared"], shared["project_id"]) == (True, "")
    # alice: her range, then the shared ones by their first VNI (the default's 100 first)
    assert [vni(admin, project_id="alice") for _ in range(5)] == [2000, 2001, 100, 101, 1000]
    assert vni(admin, project_id="bob") == 1001
    assert_error(admin.post("/v2.0/networks", {"network": {"project_id": "bob"}}), 409,
                 "No tenant network is available", type="NoNetworkAvailable")
    shown = admin.get(f"{PATH}/{own['id']}")["network_segment_range"]
    assert (shown["used"], shown["available"]) == ({"2000": "alice", "2001": "alice"}, [])
    # a network given away returns its VNI to the range
    nets = admin.get("/v2.0/networks", params={"provider:segmentation_id": "2000"})["networks"]
    assert admin.delete(f"/v2.0/networks/{nets[0]['id']}").status == 204
    assert vni(admin, project_id="alice") == 2000


def test_refusals(admin: Direct, unchanged: Any) -> None:
    made = make(admin, name="r", minimum=1000, maximum=1009)
    default = next(r for r in admin.get(PATH)["network_segment_ranges"] if r["default"])
    unchanged()
    for body, status, words, kind in (
            ({"network_type": "vlan", "physical_network": "p", "minimum": 1, "maximum": 9}, 400,
             "Network type vlan does not support network segment ranges.",
             "NetworkSegmentRangeNetTypeNotSupported"),
            ({"network_type": "geneve", "minimum": 1, "maximum": 9}, 400, "geneve",
             "NetworkSegmentRangeNetTypeNotSupported"),
            ({"network_type": "flat", "minimum": 1, "maximum": 9}, 400, "network_type", None),
            ({"network_type": "vxlan", "maximum": 9}, 400, "minimum", None),
            ({"network_type": "vxlan", "minimum": 0, "maximum": 9}, 400, "minimum", None),
            ({"network_type": "vxlan", "minimum": 1, "maximum": 2**24}, 400,
             "16777216 is not a valid vxlan identifier", "NetworkTunnelRangeError"),
            ({"network_type": "vxlan", "minimum": 9, "maximum": 1}, 400,
             "End of tunnel range is less than start", "NetworkTunnelRangeError"),
            ({"network_type": "vxlan", "minimum": 1005, "maximum": 1020}, 409, made["id"],
             "NetworkSegmentRangeOverlaps"),
            ({"network_type": "vxlan", "minimum": 1, "maximum": 2, "default": True}, 400,
             "default", None),
    ):
        assert_error(admin.post(PATH, {"network_segment_range": body}), status, words,
                     type=kind)
    for call in (admin.put(f"{PATH}/{default['id']}", {"network_segment_range": {"minimum": 50}}),
                 admin.delete(f"{PATH}/{default['id']}")):
        assert_error(call, 400, default["id"], "default segment range",
                     type="NetworkSegmentRangeDefaultReadOnly")
    assert_error(admin.put(f"{PATH}/{made['id']}", {"network_segment_range": {"shared": False}}),
                 400, "shared", "PUT")


def test_in_use(admin: Direct) -> None:
    made = make(admin, name="r", shared=False, project_id="alice", minimum=1000, maximum=1009)
    net = admin.network(project_id="alice")
    assert net["provider:segmentation_id"] == 1000
    path = f"{PATH}/{made['id']}"
    assert_error(admin.delete(path), 409, made["id"], "referenced by one or more project networks",
                 type="NetworkSegmentRangeReferencedByProject")
    assert_error(admin.put(path, {"network_segment_range": {"minimum": 1001}}), 409, made["id"],
                 type="NetworkSegmentRangeReferencedByProject")
    # as Neutron: a bound at a VNI in use is refused too, though the VNI stays inside
    for bounds in ({"minimum": 1000}, {"minimum": 990, "maximum": 1000}):
        assert_error(admin.put(path, {"network_segment_range": bounds}), 409, made["id"],
                     type="NetworkSegmentRangeReferencedByProject")
    renamed = admin.put(path, {"network_segment_range": {"name": "renamed"}})
    assert renamed.status == 200 and renamed["network_segment_range"]["name"] == "renamed"
    r = admin.put(path, {"network_segment_range": {"maximum": 1004, "name": "smaller"}})
    assert r.status == 200, r.body
    assert (r["network_segment_range"]["maximum"], r["network_segment_range"]["name"]) == (
        1004, "smaller")
    assert r["network_segment_range"]["available"] == [1001, 1002, 1003, 1004]
    assert admin.delete(f"/v2.0/networks/{net['id']}").status == 204
    assert admin.delete(path).status == 204
    assert_error(admin.get(path), 404, f"Network Segment Range {made['id']} could not be found.",
                 type="NetworkSegmentRangeNotFound")


def test_the_operators_only(api: Api, admin: Direct) -> None:
    made = make(admin, name="r", minimum=1000, maximum=1009)
    alice = Direct(api, "t-alice")
    assert alice.get(PATH)["network_segment_ranges"] == []
    assert_error(alice.get(f"{PATH}/{made['id']}"), 404, made["id"])
    assert_error(alice.post(PATH, {"network_segment_range": {
        "network_type": "vxlan", "minimum": 3000, "maximum": 3009}}), 403,
        "create_network_segment_range")
    assert_error(alice.delete(f"{PATH}/{made['id']}"), 404)
    # her networks still take VNIs from the shared ranges
    assert alice.network(name="mine")["status"] == "ACTIVE"


def test_available_is_cut_for_a_large_range(store: MemoryStore) -> None:
    admin = Direct(Api(store))
    default = admin.get(PATH)["network_segment_ranges"][0]
    assert (default["minimum"], default["maximum"]) == (1, 2**24 - 1)
    assert default["available"] == list(range(1, 4097))


def test_the_collection_at_its_hyphenated_path(admin: Direct) -> None:
    """neutron-tempest-plugin's client spells the collection with hyphens,
    openstacksdk with underscores; Neutron serves both, and so does this."""
    hyphen = "/v2.0/network-segment-ranges"
    r = admin.post(hyphen, {"network_segment_range": {
        "network_type": "vxlan", "physical_network": "", "shared": False,
        "project_id": "alice", "minimum": 1100, "maximum": 1105}})
    assert r.status == 201, r.body
    made = r["network_segment_range"]
    assert (made["default"], made["shared"], made["minimum"]) == (False, False, 1100)
    assert admin.get(f"{hyphen}/{made['id']}")["network_segment_range"] == made
    assert admin.get(f"{PATH}/{made['id']}")["network_segment_range"] == made
    assert admin.get(hyphen, params={"id": "33"})["network_segment_ranges"] == []
    assert [x["id"] for x in admin.get(hyphen, params={"id": made["id"]})[
        "network_segment_ranges"]] == [made["id"]]
    r = admin.put(f"{hyphen}/{made['id']}", {"network_segment_range": {"maximum": 1155}})
    assert r.status == 200 and r["network_segment_range"]["maximum"] == 1155
    assert admin.delete(f"{hyphen}/{made['id']}").status == 204
    assert_error(admin.get(f"{hyphen}/{made['id']}"), 404, made["id"],
                 type="NetworkSegmentRangeNotFound")
