"""Documents, body shapes, bulk create, If-Match, defaults (Api.handle, no HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from overcast.api import Api, Auth
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump


def test_versions_document_needs_no_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  t-admin: {project_id: ops, role: admin}\n")
    anonymous = Direct(Api(MemoryStore(), auth=Auth.from_file(tokens)))
    r = anonymous.get("/")
    assert r.status == 200
    (version,) = r["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"][0]["href"].endswith("/v2.0/")
    # ...but everything below /v2.0/ needs one
    assert_error(anonymous.get("/v2.0/networks"), 401, type="NotAuthenticated")


def test_v2_resources_document(client: Direct) -> None:
    r = client.get("/v2.0")
    assert r.status == 200
    collections = {res["collection"] for res in r["resources"]}
    assert {"networks", "subnets", "ports", "routers", "security_groups"} <= collections


def test_extensions_list_and_one(client: Direct) -> None:
    r = client.get("/v2.0/extensions")
    assert r.status == 200
    aliases = [e["alias"] for e in r["extensions"]]
    assert aliases == sorted(aliases)
    for alias in ("router", "security-group", "binding", "binding-extended", "pagination",
                  "sorting", "standard-attr-tag", "revision-if-match", "net-mtu"):
        assert alias in aliases
    one = client.get("/v2.0/extensions/router")
    assert one.status == 200
    assert one["extension"]["alias"] == "router"
    assert set(one["extension"]) >= {"alias", "name", "description", "updated", "links"}


def test_unknown_extension_is_404(client: Direct) -> None:
    assert_error(client.get("/v2.0/extensions/no-such-thing"), 404, "no-such-thing",
                 type="ExtensionNotFound")


def test_unknown_collection_is_404(client: Direct) -> None:
    assert_error(client.get("/v2.0/widgets"), 404, "/v2.0/widgets")


def test_json_suffix_is_accepted(client: Direct, net: dict[str, Any]) -> None:
    r = client.get(f"/v2.0/networks/{net['id']}.json")
    assert r.status == 200 and r["network"]["id"] == net["id"]


def test_body_must_be_wrapped(client: Direct, store: MemoryStore) -> None:
    before = dump(store)
    r = client.post("/v2.0/networks", {"name": "naked"})
    assert_error(r, 400, '"network"')
    r = client.post("/v2.0/networks", {"network": {"name": "x"}, "extra": 1})
    assert_error(r, 400, '"network"')
    r = client.post("/v2.0/networks", {"network": "just a string"})
    assert_error(r, 400, "network")
    assert dump(store) == before


def test_unknown_attribute_is_named(client: Direct) -> None:
    assert_error(client.post("/v2.0/networks", {"network": {"colour": "red"}}), 400, "colour")


def test_read_only_attribute_in_post_is_named(client: Direct) -> None:
    r = client.post("/v2.0/networks", {"network": {"status": "DOWN"}})
    assert_error(r, 400, "status", "POST")


def test_required_attribute_missing_is_named(client: Direct) -> None:
    assert_error(client.post("/v2.0/subnets", {"subnet": {"cidr": "10.0.0.0/24"}}), 400,
                 "network_id")


def test_wrapped_response_bodies(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    assert set(client.get(f"/v2.0/networks/{net['id']}").body) == {"network"}
    listing = client.get("/v2.0/networks").body
    assert set(listing) == {"networks"}
    assert [n["id"] for n in listing["networks"]] == [net["id"]]
    got = client.get(f"/v2.0/networks/{net['id']}")["network"]
    assert got["subnets"] == [subnet["id"]]
    assert got["tenant_id"] == got["project_id"]


def test_numbers_and_booleans_as_strings(client: Direct) -> None:
    n = client.network(mtu="1400", shared="true", admin_state_up="False")
    assert n["mtu"] == 1400 and n["shared"] is True and n["admin_state_up"] is False
    s = client.subnet(n["id"], "10.9.0.0/24", ip_version="4", enable_dhcp="false")
    assert s["ip_version"] == 4 and s["enable_dhcp"] is False


def test_bad_number_is_named(client: Direct) -> None:
    assert_error(client.post("/v2.0/networks", {"network": {"mtu": "big"}}), 400, "mtu", "big")
    assert_error(client.post("/v2.0/networks", {"network": {"mtu": -1}}), 400, "mtu", "-1")


def test_mtu_above_underlay_is_rejected(client: Direct) -> None:
    assert_error(client.post("/v2.0/networks", {"network": {"mtu": 1500}}), 400, "mtu", "1500",
                 "1450")


def test_project_defaults_to_callers_project(client: Direct) -> None:
    n = client.network()
    assert n["project_id"] == "lab" and n["tenant_id"] == "lab"  # no-auth project
    other = client.network(project_id="someone")  # no-auth caller is admin
    assert other["project_id"] == "someone" and other["tenant_id"] == "someone"
    s = client.subnet(other["id"], "10.1.0.0/24", tenant_id="someone")
    assert s["project_id"] == "someone"


def test_defaults_of_a_new_network_and_subnet(client: Direct) -> None:
    n = client.network()
    assert n["provider:network_type"] == "vxlan"
    assert n["mtu"] == 1450 and n["revision_number"] == 1 and n["status"] == "ACTIVE"
    assert isinstance(n["provider:segmentation_id"], int)
    s = client.subnet(n["id"], "192.168.7.0/24")
    assert s["gateway_ip"] == "192.168.7.1"
    assert s["allocation_pools"] == [{"start": "192.168.7.2", "end": "192.168.7.254"}]
    assert s["ip_version"] == 4


# bulk -----------------------------------------------------------------------------
def test_bulk_create_returns_all(client: Direct) -> None:
    r = client.post("/v2.0/networks", {"networks": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
    assert r.status == 201
    assert [n["name"] for n in r["networks"]] == ["a", "b", "c"]
    vnis = [n["provider:segmentation_id"] for n in r["networks"]]
    assert len(set(vnis)) == 3
    assert len(client.get("/v2.0/networks")["networks"]) == 3


def test_bulk_with_invalid_third_item_creates_nothing(client: Direct, store: MemoryStore,
                                                     net: dict[str, Any], subnet: dict[str, Any]) -> None:
    before = dump(store)
    # the third fails parsing
    r = client.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"]}, {"network_id": net["id"]},
        {"network_id": net["id"], "mac_address": 42}]})
    assert_error(r, 400, "mac_address")
    assert dump(store) == before
    # the third fails inside the transaction (after two allocated addresses)
    r = client.post("/v2.0/ports", {"ports": [
        {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]},
        {"network_id": net["id"]},
        {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.50"}]}]})
    assert_error(r, 409, "10.0.0.50", type="IpAddressAlreadyAllocated")
    assert dump(store) == before
    assert client.get("/v2.0/ports")["ports"] == []
    # the third names a network that does not exist
    r = client.post("/v2.0/subnets", {"subnets": [
        {"network_id": net["id"], "cidr": "10.1.0.0/24"},
        {"network_id": net["id"], "cidr": "10.2.0.0/24"},
        {"network_id": "nope", "cidr": "10.3.0.0/24"}]})
    assert_error(r, 404, "nope")
    assert dump(store) == before


def test_bulk_needs_a_list(client: Direct) -> None:
    assert_error(client.post("/v2.0/networks", {"networks": []}), 400, "networks")
    assert_error(client.post("/v2.0/networks", {"networks": {"name": "x"}}), 400, "networks")


# If-Match ---------------------------------------------------------------------------
def test_if_match_revision(client: Direct, net: dict[str, Any]) -> None:
    path = f"/v2.0/networks/{net['id']}"
    assert net["revision_number"] == 1
    r = client.put(path, {"network": {"name": "x"}}, headers={"If-Match": "revision_number=7"})
    err = assert_error(r, 412, "revision_number=7", net["id"], type="PreconditionFailed")
    assert "current revision is 1" in err["message"]
    assert client.get(path)["network"]["name"] == "net"
    r = client.put(path, {"network": {"name": "x"}}, headers={"If-Match": "revision_number=1"})
    assert r.status == 200 and r["network"]["name"] == "x"
    assert r["network"]["revision_number"] == 2
    # the old revision no longer matches
    r = client.put(path, {"network": {"name": "y"}}, headers={"If-Match": "revision_number=1"})
    assert_error(r, 412)
    # delete honours it too
    assert_error(client.delete(path, headers={"If-Match": "revision_number=1"}), 412)
    assert client.delete(path, headers={"If-Match": "revision_number=2"}).status == 204
    assert_error(client.get(path), 404, net["id"])


def test_update_changes_revision_and_timestamp(client: Direct, net: dict[str, Any]) -> None:
    r = client.put(f"/v2.0/networks/{net['id']}", {"network": {"description": "d"}})
    assert r.status == 200
    assert r["network"]["revision_number"] == net["revision_number"] + 1
    assert r["network"]["created_at"] == net["created_at"]


def test_put_of_immutable_attribute_is_rejected(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    r = client.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"cidr": "10.5.0.0/24"}})
    assert_error(r, 400, "cidr", "PUT")


def test_method_not_allowed(client: Direct, net: dict[str, Any]) -> None:
    r = client.post(f"/v2.0/networks/{net['id']}", {"network": {}})
    assert_error(r, 405, "POST")


def test_get_missing_object_is_404(client: Direct) -> None:
    assert_error(client.get("/v2.0/ports/does-not-exist"), 404, "does-not-exist",
                 type="PortNotFound")


def test_default_security_group_and_port_security(client: Direct, net: dict[str, Any],
                                                  subnet: dict[str, Any]) -> None:
    p = client.port(net["id"])
    groups = client.get("/v2.0/security-groups")["security_groups"]
    (default,) = [g for g in groups if g["name"] == "default"]
    assert p["security_groups"] == [default["id"]]
    assert len(default["security_group_rules"]) == 4
    # a second listing does not make a second default group
    again = client.get("/v2.0/security-groups")["security_groups"]
    assert [g["id"] for g in again] == [g["id"] for g in groups]
