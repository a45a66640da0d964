"""The dvr extension (``distributed`` shown to admins, set by admins only,
a centralized router routed as any other), tag-creation (POST adds tags), and the
extensions this work advertises, with Neutron's names."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error

TOKENS = {"t-admin": Context("ops", True), "t-alice": Context("alice", False),
          "t-bob": Context("bob", False)}


@pytest.fixture
def api(store: MemoryStore) -> Api:
    return Api(store, auth=Auth(dict(TOKENS)))


@pytest.fixture
def admin(api: Api) -> Direct:
    return Direct(api, "t-admin")


@pytest.fixture
def alice(api: Api) -> Direct:
    return Direct(api, "t-alice")


def test_routers_are_distributed(admin: Direct, alice: Direct, unchanged: Any) -> None:
    made = admin.create("router", "routers", name="r", distributed=True)
    assert made["distributed"] is True
    assert admin.create("router", "routers", name="plain")["distributed"] is True
    assert admin.create("router", "routers", name="null", distributed=None)["distributed"] is True
    mine = alice.create("router", "routers", name="mine")
    assert "distributed" not in mine  # get_router:distributed is the operator's
    path = f"/v2.0/routers/{mine['id']}"
    assert "distributed" not in alice.get(path)["router"]
    assert admin.get(path)["router"]["distributed"] is True
    r = admin.put(path, {"router": {"distributed": True}})
    assert r.status == 200 and r["router"]["distributed"] is True
    unchanged()
    assert_error(alice.put(path, {"router": {"distributed": True}}), 403,
                 "update_router:distributed")


@pytest.mark.parametrize("value", [True, False, None])
def test_a_member_may_not_ask_for_a_router_kind(alice: Direct, value: bool | None,
                                                unchanged: Any) -> None:
    """Neutron has no default for ``distributed`` (ATTR_NOT_SPECIFIED), so any
    value a member gives is refused by the admin-only rule, even the value the
    router would get anyway (tempest's
    test_router_create_tenant_distributed_returns_forbidden sends true)."""
    unchanged()
    assert_error(alice.post("/v2.0/routers", {"router": {"name": "r", "distributed": value}}),
                 403, "create_router:distributed", type="PolicyNotAuthorized")


def test_a_centralized_router_is_kept_as_asked(admin: Direct) -> None:
    """An admin's distributed=false is kept (each host still routes for its own
    ports); as in Neutron it changes only while the router is down."""
    made = admin.create("router", "routers", name="cvr", distributed=False)
    assert made["distributed"] is False
    path = f"/v2.0/routers/{made['id']}"
    assert admin.get(path)["router"]["distributed"] is False
    assert_error(admin.put(path, {"router": {"distributed": True}}), 400,
                 "Bad router request: Cannot change the 'distributed' attribute of active "
                 "routers. Please set router admin_state_up to False prior to upgrade.",
                 type="BadRequest")
    assert admin.get(path)["router"]["distributed"] is False
    # the router must be down before the PUT, not by it (Neutron's _validate_router_migration)
    assert_error(admin.put(path, {"router": {"admin_state_up": False, "distributed": True}}), 400,
                 "Cannot change the 'distributed' attribute of active routers", type="BadRequest")
    assert admin.put(path, {"router": {"admin_state_up": False}}).status == 200
    r = admin.put(path, {"router": {"distributed": True}})
    assert r.status == 200 and r["router"]["distributed"] is True
    r = admin.put(path, {"router": {"distributed": None}})  # not given: unchanged
    assert r.status == 200 and r["router"]["distributed"] is True
    r = admin.put(path, {"router": {"distributed": "false"}})
    assert r.status == 200 and r["router"]["distributed"] is False
    assert_error(admin.post("/v2.0/routers", {"router": {"distributed": "maybe"}}), 400,
                 "Invalid input for distributed")


def test_post_adds_tags(admin: Direct, alice: Direct, api: Api, unchanged: Any) -> None:
    net = alice.network(name="n", tags=["a"])
    path = f"/v2.0/networks/{net['id']}/tags"
    r = alice.post(path, {"tags": ["b", "a", "c"]})
    assert (r.status, r.body) == (201, {"tags": ["b", "a", "c"]})
    assert alice.get(path)["tags"] == ["a", "b", "c"]
    r = alice.post(path, {"tags": ["c", "d"]})  # idempotent for the ones it has
    assert r.status == 201
    assert alice.get(f"/v2.0/networks/{net['id']}")["network"]["tags"] == ["a", "b", "c", "d"]
    port = alice.port(net["id"])
    assert alice.post(f"/v2.0/ports/{port['id']}/tags", {"tags": ["x"]}).status == 201
    assert alice.get(f"/v2.0/ports/{port['id']}")["port"]["tags"] == ["x"]
    unchanged()
    assert_error(alice.post(path, {"tags": "a"}), 400, "tags")
    assert_error(alice.post(path, {"tag": ["a"]}), 400, "tags")
    assert_error(alice.post(path, {"tags": [f"t{i}" for i in range(51)]}), 400, "tags")
    assert_error(Direct(api, "t-bob").post(path, {"tags": ["z"]}), 404, net["id"])


def test_extensions_advertised(admin: Direct) -> None:
    listed = {e["alias"]: e for e in admin.get("/v2.0/extensions")["extensions"]}
    expected = {
        "availability_zone": "Availability Zone",
        "availability_zone_filter": "Availability Zone Filter Extension",
        "network_availability_zone": "Network Availability Zone",
        "router_availability_zone": "Router Availability Zone",
        "dvr": "Distributed Virtual Router",
        "network-segment-range": "Neutron Network Segment Range",
        "security-groups-default-rules": "Default rules for security groups",
        "tag-creation": "Tag creation extension",
    }
    for alias, name in expected.items():
        assert listed[alias]["name"] == name, alias
    # standard-attr-* only for resources served here (no segments, bgpvpn or fwaas)
    assert sorted(a for a in listed if a.startswith("standard-attr-")) == [
        "standard-attr-description", "standard-attr-revisions", "standard-attr-tag",
        "standard-attr-timestamp"]
    one = admin.get("/v2.0/extensions/tag-creation")["extension"]
    assert one["description"] == "Allow to create multiple tags for a resource"
