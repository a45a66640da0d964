"""Packet logs as Neutron serves them: the operator's (members get 403),
resource_type security_group only, resource_id a group and target_id a port
that exist (the port in the group when both are named), events ALL, ACCEPT
or DROP, enabled; loggable-resources; nothing written on a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump

TOKENS = {"t-admin": Context("ops", True), "t-alice": Context("alice", False)}
PATH = "/v2.0/log/logs"
UUID = "6f0e7a9c-0000-4000-8000-0000000000aa"


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        api = Api(self.store, auth=Auth(dict(TOKENS)))
        self.admin, self.alice = (Direct(api, t) for t in TOKENS)
        self.sg = self.alice.create("security_group", "security-groups", name="web")
        self.other_sg = self.alice.create("security_group", "security-groups", name="db")
        net = self.alice.network(name="n")
        self.alice.subnet(net["id"], "10.0.0.0/24")
        self.port = self.alice.port(net["id"], security_groups=[self.sg["id"]])

    def log(self, **attrs: Any) -> Any:
        return self.admin.post(PATH, {"log": {"resource_type": "security_group", **attrs}})


@pytest.fixture
def w() -> World:
    return World()


def test_create_show_list_update_delete(w: World) -> None:
    r = w.log(name="web", resource_id=w.sg["id"], target_id=w.port["id"], event="DROP",
              project_id="alice")
    assert r.status == 201, r.body
    made = r["log"]
    assert {k: made[k] for k in ("name", "resource_type", "resource_id", "target_id", "event",
                                 "enabled", "project_id", "description")} == {
        "name": "web", "resource_type": "security_group", "resource_id": w.sg["id"],
        "target_id": w.port["id"], "event": "DROP", "enabled": True, "project_id": "alice",
        "description": ""}
    defaults = w.log()["log"]
    assert (defaults["event"], defaults["resource_id"], defaults["target_id"],
            defaults["enabled"]) == ("ALL", None, None, True)
    assert w.admin.get(f"{PATH}/{made['id']}")["log"] == made
    assert [x["id"] for x in w.admin.get(PATH, params={"event": "DROP"})["logs"]] == [made["id"]]
    r = w.admin.put(f"{PATH}/{made['id']}", {"log": {"enabled": False, "name": "off"}})
    assert r.status == 200 and (r["log"]["enabled"], r["log"]["name"]) == (False, "off")
    assert_error(w.admin.put(f"{PATH}/{made['id']}", {"log": {"event": "ALL"}}), 400, "event")
    assert w.admin.delete(f"{PATH}/{made['id']}").status == 204
    assert_error(w.admin.get(f"{PATH}/{made['id']}"), 404, made["id"])


def test_the_operators(w: World) -> None:
    made = w.log()["log"]
    before = dump(w.store)
    assert_error(w.alice.post(PATH, {"log": {"resource_type": "security_group"}}), 403,
                 "create_log", type="PolicyNotAuthorized")
    assert_error(w.alice.get(f"{PATH}/{made['id']}"), 404)
    assert w.alice.get(PATH)["logs"] == []
    assert_error(w.alice.put(f"{PATH}/{made['id']}", {"log": {"enabled": False}}), 404)
    assert_error(w.alice.delete(f"{PATH}/{made['id']}"), 404)
    assert_error(w.alice.get("/v2.0/log/loggable-resources"), 403, "get_loggable_resource")
    assert dump(w.store) == before
    assert w.admin.get("/v2.0/log/loggable-resources").body == {
        "loggable_resources": [{"type": "security_group"}]}


def test_references_are_checked(w: World) -> None:
    before = dump(w.store)
    assert_error(w.log(resource_type="firewall_group"), 400, "firewall_group",
                 type="InvalidLogResourceType")
    assert_error(w.log(resource_id=UUID), 404, UUID, type="ResourceNotFound")
    assert_error(w.log(target_id=UUID), 404, UUID, type="TargetResourceNotFound")
    assert_error(w.log(resource_id=w.other_sg["id"], target_id=w.port["id"]), 400,
                 w.other_sg["id"], w.port["id"], type="InvalidResourceConstraint")
    assert_error(w.log(event="SOME"), 400, "event", "SOME")
    assert_error(w.log(enabled="perhaps"), 400, "enabled")
    assert_error(w.log(resource_id="a/b"), 400, "resource_id")
    assert_error(w.admin.post(PATH, {"log": {"name": "x"}}), 400, "resource_type")
    assert dump(w.store) == before
    assert w.log(target_id=w.port["id"]).status == 201  # a port alone: all its groups


def test_extension(w: World) -> None:
    r = w.alice.get("/v2.0/extensions/logging")
    assert r.status == 200 and r["extension"]["name"] == "Logging API Extension"


def test_a_groups_logs_go_with_it(w: World) -> None:
    """Neutron's logging plugin deletes the logs of a security group when the
    group is deleted (neutron-tempest-plugin's
    test_log_deleted_with_corresponding_security_group); others stay."""
    lone = w.alice.create("security_group", "security-groups", name="lone")
    gone = [w.log(resource_id=lone["id"], enabled=enabled)["log"]["id"]
            for enabled in (True, False)]
    kept = [w.log(resource_id=w.other_sg["id"])["log"]["id"], w.log()["log"]["id"],
            w.log(target_id=w.port["id"])["log"]["id"]]
    assert w.alice.delete(f"/v2.0/security-groups/{lone['id']}").status == 204
    for log_id in gone:
        assert_error(w.admin.get(f"{PATH}/{log_id}"), 404, log_id, type="LogResourceNotFound")
    assert sorted(x["id"] for x in w.admin.get(PATH)["logs"]) == sorted(kept)
