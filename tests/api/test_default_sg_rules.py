"""The security group rule template (Neutron's security-groups-default-rules):
Neutron's four legacy rules at first, the operator's to change, seen by
everyone; the rules a new default group and a new group of a project get
come from it ("PARENT" naming the new group); refusals write nothing."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error

PATH = "/v2.0/default-security-group-rules"
TOKENS = {"t-admin": Context("ops", True), "t-alice": Context("alice", False),
          "t-bob": Context("bob", False), "t-carol": Context("carol", False)}
SHOWN = {"id", "description", "remote_group_id", "remote_address_group_id", "direction",
         "protocol", "port_range_min", "port_range_max", "ethertype", "remote_ip_prefix",
         "used_in_default_sg", "used_in_non_default_sg", "created_at", "updated_at",
         "revision_number"}


@pytest.fixture
def api(store: MemoryStore) -> Api:
    return Api(store, auth=Auth(dict(TOKENS)))


@pytest.fixture
def admin(api: Api) -> Direct:
    return Direct(api, "t-admin")


def template(c: Direct) -> list[dict[str, Any]]:
    r = c.get(PATH)
    assert r.status == 200, r.body
    return r["default_security_group_rules"]  # type: ignore[no-any-return]


def add(c: Direct, **attrs: Any) -> dict[str, Any]:
    return c.create("default_security_group_rule", "default-security-group-rules", **attrs)


def summary(rules: list[dict[str, Any]], group_id: str = "") -> list[tuple[Any, ...]]:
    return sorted(((r["direction"], r["ethertype"], r["protocol"], r["port_range_min"],
                    "self" if group_id and r["remote_group_id"] == group_id
                    else r["remote_group_id"], r["remote_ip_prefix"]) for r in rules),
                  key=repr)


def groups_of(api: Api, token: str) -> dict[str, dict[str, Any]]:
    """The caller's groups by name (listing makes the default one)."""
    return {g["name"]: g for g in Direct(api, token).get("/v2.0/security-groups")["security_groups"]}


def test_neutrons_legacy_rules_at_first(api: Api, admin: Direct) -> None:
    rules = template(Direct(api, "t-alice"))  # everyone may read it
    assert all(set(r) == SHOWN for r in rules)
    assert sorted((r["direction"], r["ethertype"], r["remote_group_id"], r["used_in_default_sg"],
                   r["used_in_non_default_sg"], r["description"]) for r in rules) == [
        ("egress", "IPv4", None, True, True, "Legacy default SG rule for egress traffic"),
        ("egress", "IPv6", None, True, True, "Legacy default SG rule for egress traffic"),
        ("ingress", "IPv4", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
        ("ingress", "IPv6", "PARENT", True, False, "Legacy default SG rule for ingress traffic")]
    one = rules[0]
    assert admin.get(f"{PATH}/{one['id']}")["default_security_group_rule"] == one
    # so groups are made as before
    default = groups_of(api, "t-alice")["default"]
    assert summary(default["security_group_rules"], default["id"]) == [
        ("egress", "IPv4", None, None, None, None), ("egress", "IPv6", None, None, None, None),
        ("ingress", "IPv4", None, None, "self", None), ("ingress", "IPv6", None, None, "self", None)]
    web = Direct(api, "t-alice").create("security_group", "security-groups", name="web")
    assert summary(web["security_group_rules"]) == [
        ("egress", "IPv4", None, None, None, None), ("egress", "IPv6", None, None, None, None)]


def test_new_groups_follow_the_template(api: Api, admin: Direct) -> None:
    ssh = add(admin, direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22,
              remote_ip_prefix="0.0.0.0/0", used_in_default_sg=False,
              used_in_non_default_sg=True, description="ssh")
    assert {k: ssh[k] for k in ("protocol", "port_range_min", "remote_ip_prefix", "ethertype",
                                "used_in_default_sg", "used_in_non_default_sg")} == {
        "protocol": "tcp", "port_range_min": 22, "remote_ip_prefix": "0.0.0.0/0",
        "ethertype": "IPv4", "used_in_default_sg": False, "used_in_non_default_sg": True}
    icmp = add(admin, direction="ingress", protocol="icmp", remote_group_id="PARENT",
               used_in_default_sg=True, used_in_non_default_sg=False)
    assert icmp["remote_group_id"] == "PARENT"
    alice = Direct(api, "t-alice")
    web = alice.create("security_group", "security-groups", name="web")
    assert ("ingress", "IPv4", "tcp", 22, None, "0.0.0.0/0") in summary(web["security_group_rules"])
    assert len(web["security_group_rules"]) == 3
    default = groups_of(api, "t-alice")["default"]
    assert ("ingress", "IPv4", "icmp", None, "self", None) in summary(
        default["security_group_rules"], default["id"])
    assert len(default["security_group_rules"]) == 5
    # without any template rule, new groups have none (as Neutron's)
    for rule in template(admin):
        assert admin.delete(f"{PATH}/{rule['id']}").status == 204
    assert template(admin) == []
    assert groups_of(api, "t-bob")["default"]["security_group_rules"] == []
    assert Direct(api, "t-bob").create("security_group", "security-groups",
                                       name="db")["security_group_rules"] == []
    # groups made before keep their rules
    assert len(alice.get(f"/v2.0/security-groups/{web['id']}")["security_group"][
        "security_group_rules"]) == 3


def test_an_admin_listing_a_new_projects_groups_finds_its_default(api: Api,
                                                                 admin: Direct) -> None:
    """Neutron's get_security_groups makes the default group of the project
    the filter names (neutron-tempest-plugin lists a new project's groups
    with project_id and name=default), with the template's rules for default
    groups; a member filtering on another project makes nothing."""
    add(admin, direction="ingress", protocol="tcp", port_range_min=80, port_range_max=80,
        used_in_default_sg=True, used_in_non_default_sg=False)
    expected = summary([r for r in template(admin) if r["used_in_default_sg"]], "PARENT")
    before = len(admin.get("/v2.0/security-groups")["security_groups"])  # the admin's own
    bob = Direct(api, "t-bob")
    assert bob.get("/v2.0/security-groups", params={"project_id": "carol"})[
        "security_groups"] == []
    # bob's own default group, not carol's
    assert len(admin.get("/v2.0/security-groups")["security_groups"]) == before + 1
    for key in ("project_id", "tenant_id"):
        found = admin.get("/v2.0/security-groups", params={key: "carol", "name": "default"})[
            "security_groups"]
        assert [(g["project_id"], g["name"]) for g in found] == [("carol", "default")]
        assert summary(found[0]["security_group_rules"], found[0]["id"]) == expected


def test_refusals(api: Api, admin: Direct, unchanged: Any) -> None:
    ssh = add(admin, direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22,
              used_in_default_sg=False, used_in_non_default_sg=True)
    legacy = next(r for r in template(admin) if r["direction"] == "egress"
                  and r["ethertype"] == "IPv4")
    unchanged()
    both = {"used_in_default_sg": True, "used_in_non_default_sg": True}
    for body, status, words, kind in (
            ({"direction": "ingress", "protocol": "tcp", "port_range_min": 22,
              "port_range_max": 22, **both}, 409, ssh["id"], "DefaultSecurityGroupRuleExists"),
            ({"direction": "egress", **both}, 409,
             f"Default Security group rule already exists. Rule id is {legacy['id']}.",
             "DefaultSecurityGroupRuleExists"),
            ({"direction": "ingress", "used_in_default_sg": True}, 400, "used_in_non_default_sg",
             None),
            ({"used_in_default_sg": True, "used_in_non_default_sg": True}, 400, "direction", None),
            ({"direction": "ingress", "protocol": "tcp", "port_range_min": 30,
              "port_range_max": 20, **both}, 400, "port", "SecurityGroupInvalidPortRange"),
            ({"direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "ethertype": "IPv6",
              **both}, 400, "ethertype", None),
            ({"direction": "ingress", "remote_group_id": "PARENT",
              "remote_ip_prefix": "10.0.0.0/8", **both}, 400, "remote", None),
            ({"direction": "ingress", "remote_group_id": "nobody", **both}, 400,
             "remote_group_id", None),
            ({"direction": "ingress", "project_id": "alice", **both}, 400, "project_id", None),
            ({"direction": "ingress", "name": "x", **both}, 400, "name", None),
    ):
        assert_error(admin.post(PATH, {"default_security_group_rule": body}), status, words,
                     type=kind)
    r = admin.put(f"{PATH}/{ssh['id']}", {"default_security_group_rule": {"description": "x"}})
    assert r.status == 405, r.body
    alice = Direct(api, "t-alice")
    assert_error(alice.post(PATH, {"default_security_group_rule": {
        "direction": "ingress", **both}}), 403, "create_default_security_group_rule")
    assert_error(alice.delete(f"{PATH}/{ssh['id']}"), 403, "delete_default_security_group_rule")
    assert_error(admin.get(f"{PATH}/{'0' * 8}-0000-4000-8000-{'0' * 12}"), 404,
                 type="DefaultSecurityGroupRuleNotFound")
