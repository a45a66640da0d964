"""Tokens and tenancy over HTTP: an EmbeddedServer with a token file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from overcast.api import Api, Auth
from overcast.api.embedded import EmbeddedServer
from overcast.store import MemoryStore

from .helpers import assert_error, dump

TOKENS = """\
tokens:
  t-admin: {project_id: ops, role: admin}
  t-alice: {project_id: alice, role: member}
  t-bob:   {project_id: bob}
"""


class Cloud:
    def __init__(self, url: str, store: MemoryStore) -> None:
        self.url = url
        self.store = store
        self.admin = self.client("t-admin")
        self.alice = self.client("t-alice")
        self.bob = self.client("t-bob")

    def client(self, token: str | None) -> httpx.Client:
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def make(c: httpx.Client, collection: str, member: str, **attrs: Any) -> dict[str, Any]:
    r = c.post(f"/v2.0/{collection}", json={member: attrs})
    assert r.status_code == 201, r.text
    return r.json()[member]  # type: ignore[no-any-return]


def ids(r: httpx.Response, collection: str) -> set[str]:
    assert r.status_code == 200, r.text
    return {x["id"] for x in r.json()[collection]}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    path = tmp_path_factory.mktemp("auth") / "tokens.yaml"
    path.write_text(TOKENS)
    store = MemoryStore()
    with EmbeddedServer(Api(store, auth=Auth.from_file(path))) as server:
        yield Cloud(server.url, store)


@pytest.fixture(scope="module")
def world(cloud: Cloud) -> dict[str, dict[str, Any]]:
    """alice's private network, bob's private network, and a shared one of ops."""
    w: dict[str, dict[str, Any]] = {}
    w["a_net"] = make(cloud.alice, "networks", "network", name="alice-net")
    w["a_sub"] = make(cloud.alice, "subnets", "subnet", network_id=w["a_net"]["id"],
                      cidr="10.1.0.0/24")
    w["a_port"] = make(cloud.alice, "ports", "port", network_id=w["a_net"]["id"])
    w["b_net"] = make(cloud.bob, "networks", "network", name="bob-net")
    w["b_sub"] = make(cloud.bob, "subnets", "subnet", network_id=w["b_net"]["id"],
                      cidr="10.1.0.0/24")
    w["b_port"] = make(cloud.bob, "ports", "port", network_id=w["b_net"]["id"])
    w["s_net"] = make(cloud.admin, "networks", "network", name="shared-net", shared=True)
    w["s_sub"] = make(cloud.admin, "subnets", "subnet", network_id=w["s_net"]["id"],
                      cidr="172.16.0.0/24")
    return w


def test_versions_without_token(cloud: Cloud) -> None:
    r = cloud.client(None).get("/")
    assert r.status_code == 200 and r.json()["versions"][0]["id"] == "v2.0"


@pytest.mark.parametrize("token", [None, "", "t-mallory"])
def test_401_without_or_with_bad_token(cloud: Cloud, token: str | None) -> None:
    c = cloud.client(token)
    before = dump(cloud.store)
    for method, path, body in [("GET", "/v2.0/networks", None),
                               ("POST", "/v2.0/networks", {"network": {"name": "x"}}),
                               ("GET", "/v2.0/extensions", None)]:
        r = c.request(method, path, json=body)
        assert_error(r, 401, type="NotAuthenticated")
    assert dump(cloud.store) == before


def test_projects_come_from_tokens(world: dict[str, dict[str, Any]]) -> None:
    assert world["a_net"]["project_id"] == "alice"
    assert world["b_net"]["project_id"] == "bob"
    assert world["s_net"]["project_id"] == "ops"
    assert world["a_port"]["tenant_id"] == "alice"


def test_member_sees_own_and_shared(cloud: Cloud, world: dict[str, dict[str, Any]]) -> None:
    assert ids(cloud.alice.get("/v2.0/networks"), "networks") == {
        world["a_net"]["id"], world["s_net"]["id"]}
    assert ids(cloud.bob.get("/v2.0/networks"), "networks") >= {
        world["b_net"]["id"], world["s_net"]["id"]}
    assert world["b_net"]["id"] not in ids(cloud.alice.get("/v2.0/networks"), "networks")
    alice_ports = ids(cloud.alice.get("/v2.0/ports"), "ports")
    assert world["a_port"]["id"] in alice_ports and world["b_port"]["id"] not in alice_ports
    alice_subnets = ids(cloud.alice.get("/v2.0/subnets"), "subnets")
    assert world["a_sub"]["id"] in alice_subnets and world["b_sub"]["id"] not in alice_subnets
    # a filter cannot reach around the tenancy
    r = cloud.alice.get("/v2.0/networks", params={"id": world["b_net"]["id"]})
    assert ids(r, "networks") == set()
    r = cloud.alice.get("/v2.0/networks", params={"project_id": "bob"})
    assert ids(r, "networks") == set()


def test_member_cannot_get_others_objects(cloud: Cloud,
                                          world: dict[str, dict[str, Any]]) -> None:
    assert_error(cloud.alice.get(f"/v2.0/networks/{world['b_net']['id']}"), 404,
                 world["b_net"]["id"])
    assert_error(cloud.alice.get(f"/v2.0/ports/{world['b_port']['id']}"), 404)
    assert_error(cloud.alice.get(f"/v2.0/subnets/{world['b_sub']['id']}"), 404)
    assert cloud.alice.get(f"/v2.0/networks/{world['s_net']['id']}").status_code == 200


def test_member_sees_subnets_of_shared_networks(cloud: Cloud,
                                                world: dict[str, dict[str, Any]]) -> None:
    r = cloud.alice.get(f"/v2.0/subnets/{world['s_sub']['id']}")
    assert r.status_code == 200, r.text
    assert world["s_sub"]["id"] in ids(cloud.alice.get("/v2.0/subnets"), "subnets")
    shown = cloud.alice.get(f"/v2.0/networks/{world['s_net']['id']}").json()["network"]
    assert shown["subnets"] == [world["s_sub"]["id"]]


def test_member_can_create_port_on_shared_network(cloud: Cloud,
                                                  world: dict[str, dict[str, Any]]) -> None:
    p = make(cloud.alice, "ports", "port", network_id=world["s_net"]["id"])
    assert p["project_id"] == "alice"
    assert p["fixed_ips"][0]["subnet_id"] == world["s_sub"]["id"]
    assert p["fixed_ips"][0]["ip_address"].startswith("172.16.0.")
    assert p["id"] in ids(cloud.alice.get("/v2.0/ports"), "ports")
    assert p["id"] not in ids(cloud.bob.get("/v2.0/ports"), "ports")
    assert p["id"] in ids(cloud.admin.get("/v2.0/ports"), "ports")
    # ...with an explicit address on the shared subnet too
    # ...naming the subnet, but not the address: that is the network owner's choice
    q = make(cloud.alice, "ports", "port", network_id=world["s_net"]["id"],
             fixed_ips=[{"subnet_id": world["s_sub"]["id"]}])
    assert q["fixed_ips"][0]["ip_address"].startswith("172.16.0.")
    assert_error(cloud.alice.post("/v2.0/ports", json={"port": {
        "network_id": world["s_net"]["id"],
        "fixed_ips": [{"subnet_id": world["s_sub"]["id"], "ip_address": "172.16.0.99"}]}}),
        403, "create_port:fixed_ips:ip_address", type="PolicyNotAuthorized")
    # the shared network's owner cannot delete it while alice's ports are on it
    assert_error(cloud.admin.delete(f"/v2.0/networks/{world['s_net']['id']}"), 409,
                 type="NetworkInUse")
    # ...nor take the sharing away from under them
    r = cloud.admin.put(f"/v2.0/networks/{world['s_net']['id']}",
                        json={"network": {"shared": False}})
    assert_error(r, 409, world["s_net"]["id"], type="InvalidSharedSetting")
    assert "alice" not in r.text  # who uses it is not the owner's to know
    shown = cloud.alice.get(f"/v2.0/networks/{world['s_net']['id']}")
    assert shown.status_code == 200 and shown.json()["network"]["shared"] is True
    for port in (p, q):
        assert cloud.alice.delete(f"/v2.0/ports/{port['id']}").status_code == 204


def test_member_cannot_change_others_networks(cloud: Cloud,
                                              world: dict[str, dict[str, Any]]) -> None:
    before = dump(cloud.store)
    b_net, s_net = world["b_net"]["id"], world["s_net"]["id"]
    r = cloud.alice.put(f"/v2.0/networks/{b_net}", json={"network": {"name": "mine"}})
    assert r.status_code in (403, 404)
    assert_error(r, r.status_code)
    r = cloud.alice.delete(f"/v2.0/networks/{b_net}")
    assert r.status_code in (403, 404)
    assert_error(r, r.status_code)
    # the shared network is visible to alice but not hers
    assert_error(cloud.alice.put(f"/v2.0/networks/{s_net}", json={"network": {"name": "x"}}),
                 403, s_net)
    assert_error(cloud.alice.delete(f"/v2.0/networks/{s_net}"), 403, s_net)
    assert_error(cloud.alice.post("/v2.0/subnets", json={"subnet": {
        "network_id": s_net, "cidr": "172.17.0.0/24"}}), 403, s_net)
    assert_error(cloud.alice.put(f"/v2.0/networks/{s_net}/tags/mine"), 403)
    assert_error(cloud.alice.delete(f"/v2.0/ports/{world['b_port']['id']}"), 404)
    assert_error(cloud.alice.put(f"/v2.0/ports/{world['b_port']['id']}",
                                 json={"port": {"name": "x"}}), 404)
    assert dump(cloud.store) == before


def test_member_cannot_create_for_another_project(cloud: Cloud,
                                                  world: dict[str, dict[str, Any]]) -> None:
    before = dump(cloud.store)
    # Neutron's _validate_privileges: a 400, before any policy rule or lookup
    for attr in ("project_id", "tenant_id"):
        r = cloud.alice.post("/v2.0/networks", json={"network": {attr: "bob"}})
        assert_error(r, 400, "Specifying 'project_id' other than the authenticated project in "
                     "request is not allowed for the current user.", type="HTTPBadRequest")
    for net in (world["a_net"], world["b_net"]):  # her network, or one she cannot see
        r = cloud.alice.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                           "project_id": "bob"}})
        assert_error(r, 400, "'project_id' other than the authenticated project")
    # naming its own project is fine to check, but writes: check it last
    assert dump(cloud.store) == before


def test_member_cannot_set_admin_only_attributes(cloud: Cloud) -> None:
    before = dump(cloud.store)
    r = cloud.alice.post("/v2.0/networks", json={"network": {"provider:segmentation_id": 77}})
    assert_error(r, 403, "provider:segmentation_id")
    r = cloud.alice.post("/v2.0/networks", json={"network": {"provider:network_type": "flat"}})
    assert_error(r, 403, "provider:network_type")
    assert dump(cloud.store) == before


def test_member_cannot_use_others_security_group(cloud: Cloud,
                                                 world: dict[str, dict[str, Any]]) -> None:
    bob_sg = make(cloud.bob, "security-groups", "security_group", name="bob-sg")
    assert bob_sg["id"] not in ids(cloud.alice.get("/v2.0/security-groups"), "security_groups")
    r = cloud.alice.post("/v2.0/ports", json={"port": {"network_id": world["a_net"]["id"],
                                                       "security_groups": [bob_sg["id"]]}})
    assert_error(r, 404, bob_sg["id"])
    r = cloud.alice.post("/v2.0/security-group-rules", json={"security_group_rule": {
        "security_group_id": bob_sg["id"], "direction": "ingress"}})
    assert_error(r, 404, bob_sg["id"])


def test_member_cannot_attach_others_subnet_to_router(cloud: Cloud,
                                                      world: dict[str, dict[str, Any]]) -> None:
    router = make(cloud.alice, "routers", "router", name="r")
    r = cloud.alice.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                        json={"subnet_id": world["b_sub"]["id"]})
    assert_error(r, 404, world["b_sub"]["id"])
    r = cloud.bob.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                      json={"subnet_id": world["b_sub"]["id"]})
    assert_error(r, 404, router["id"])
    assert cloud.alice.delete(f"/v2.0/routers/{router['id']}").status_code == 204


def test_admin_sees_all(cloud: Cloud, world: dict[str, dict[str, Any]]) -> None:
    nets = ids(cloud.admin.get("/v2.0/networks"), "networks")
    assert {world["a_net"]["id"], world["b_net"]["id"], world["s_net"]["id"]} <= nets
    ports = ids(cloud.admin.get("/v2.0/ports"), "ports")
    assert {world["a_port"]["id"], world["b_port"]["id"]} <= ports
    r = cloud.admin.get("/v2.0/networks", params={"project_id": "bob"})
    assert world["b_net"]["id"] in ids(r, "networks")
    assert world["a_net"]["id"] not in ids(r, "networks")
    # and may create for another project
    n = make(cloud.admin, "networks", "network", project_id="bob", name="for-bob")
    assert n["project_id"] == "bob"
    assert n["id"] in ids(cloud.bob.get("/v2.0/networks"), "networks")
    assert cloud.admin.delete(f"/v2.0/networks/{n['id']}").status_code == 204


def test_placement_is_the_operators_business(cloud: Cloud,
                                             world: dict[str, dict[str, Any]]) -> None:
    """binding:* and provider:* (where a port runs, which VNI a network has) are set
    and seen by admins only; members get 403 and see the rest of the object."""
    before = dump(cloud.store)
    net_id = world["a_net"]["id"]
    r = cloud.alice.post("/v2.0/ports", json={"port": {"network_id": net_id,
                                                       "binding:host_id": "host1"}})
    assert_error(r, 403, "binding:host_id")
    r = cloud.alice.post("/v2.0/ports", json={"port": {"network_id": net_id,
                                                       "binding:profile": {"x": 1}}})
    assert_error(r, 403, "binding:profile")
    assert dump(cloud.store) == before
    port = make(cloud.alice, "ports", "port", network_id=net_id, name="placed")
    assert not any(k.startswith("binding:") and k != "binding:vnic_type" for k in port)
    placed = cloud.admin.put(f"/v2.0/ports/{port['id']}",
                             json={"port": {"binding:host_id": "host1"}}).json()["port"]
    assert placed["binding:host_id"] == "host1" and placed["binding:vif_type"]
    seen = cloud.alice.get(f"/v2.0/ports/{port['id']}").json()["port"]
    assert seen["name"] == "placed" and "binding:host_id" not in seen
    listed = cloud.alice.get("/v2.0/ports", params={"id": port["id"]}).json()["ports"]
    assert listed and "binding:host_id" not in listed[0]
    net = cloud.alice.get(f"/v2.0/networks/{net_id}").json()["network"]
    assert "provider:segmentation_id" not in net and net["mtu"]
    assert "provider:segmentation_id" in cloud.admin.get(f"/v2.0/networks/{net_id}").json()["network"]
    assert_error(cloud.alice.get(f"/v2.0/ports/{port['id']}/bindings"), 403, port["id"])
    assert_error(cloud.alice.post(f"/v2.0/ports/{port['id']}/bindings",
                                  json={"binding": {"host": "host2"}}), 403)
    assert cloud.admin.get(f"/v2.0/ports/{port['id']}/bindings").status_code == 200
    assert cloud.alice.delete(f"/v2.0/ports/{port['id']}").status_code == 204


def test_a_chosen_id_never_overwrites_an_existing_object(cloud: Cloud,
                                                         world: dict[str, dict[str, Any]]) -> None:
    """Only an admin may name the new object's id (a member's answer would
    tell whether another project's object exists); naming one that exists is
    a 409 and changes nothing."""
    before = dump(cloud.store)
    for coll, member, obj in (("networks", "network", world["a_net"]),
                              ("subnets", "subnet", world["a_sub"]),
                              ("ports", "port", world["a_port"])):
        body: dict[str, Any] = {"id": obj["id"]}
        if member == "subnet":
            body.update(network_id=world["b_net"]["id"], cidr="10.9.0.0/24", ip_version=4)
        if member == "port":
            body.update(network_id=world["b_net"]["id"])
        # bob naming alice's id and bob naming a fresh one: the same answer
        assert_error(cloud.bob.post(f"/v2.0/{coll}", json={member: body}), 403,
                     f"create_{member}:id", type="PolicyNotAuthorized")
        fresh = {**body, "id": "6f0e7a9c-0000-4000-8000-000000000001"}
        assert_error(cloud.bob.post(f"/v2.0/{coll}", json={member: fresh}), 403,
                     f"create_{member}:id", type="PolicyNotAuthorized")
        assert_error(cloud.admin.post(f"/v2.0/{coll}", json={member: body}), 409, obj["id"])
    assert_error(cloud.admin.post("/v2.0/networks", json={"network": {"id": world["a_net"]["id"]}}),
                 409, type="NetworkExists")
    assert dump(cloud.store) == before
    assert cloud.alice.get(f"/v2.0/networks/{world['a_net']['id']}").status_code == 200
