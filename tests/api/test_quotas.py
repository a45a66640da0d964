"""Neutron's quotas and quota_details: who reads and sets them, what bad
limits are told, what a project uses, and that a create past the limit is
refused (one item, bulk, an admin's for another project, racing servers)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from overcast.api import Api
from overcast.model import keys
from overcast.store import MemoryStore, SqliteStore

from .helpers import CountingStore, Direct, Projects, assert_error, dump
from .test_concurrency import parallel, server_process

# Neutron's defaults (neutron/conf/quota.py), written out by hand
NEUTRON_DEFAULTS = {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
                    "security_group": 10, "security_group_rule": 100, "rbac_policy": 10,
                    "subnetpool": -1}


class Cloud(Projects):
    """ops is the admin; alice and bob are members of their own projects."""

    def set(self, project: str, **limits: Any) -> dict[str, Any]:
        r = self.ops.put(f"/v2.0/quotas/{project}", {"quota": limits})
        assert r.status == 200, r.body
        return r.body["quota"]  # type: ignore[no-any-return]

    def used(self, project: str) -> dict[str, int]:
        r = self.ops.get(f"/v2.0/quotas/{project}/details")
        assert r.status == 200, r.body
        return {k: v["used"] for k, v in r.body["quota"].items()}


@pytest.fixture
def cloud() -> Cloud:
    return Cloud()


def _over(r: Any, resource: str) -> None:
    assert_error(r, 409, type="OverQuota")
    assert r.body["NeutronError"]["message"] == f"Quota exceeded for resources: ['{resource}']."


# reading and setting --------------------------------------------------------------
def test_defaults_are_neutrons(cloud: Cloud) -> None:
    assert cloud.alice.get("/v2.0/quotas/alice").body == {"quota": NEUTRON_DEFAULTS}
    assert cloud.alice.get("/v2.0/quotas/alice/default").body == {"quota": NEUTRON_DEFAULTS}
    assert cloud.ops.get("/v2.0/quotas").body == {"quotas": []}
    details = cloud.alice.get("/v2.0/quotas/alice/details").body["quota"]
    assert details == {k: {"limit": v, "used": 0, "reserved": 0}
                       for k, v in NEUTRON_DEFAULTS.items()}
    assert cloud.alice.get("/v2.0/quotas/project").body == {"project": {"project_id": "alice"}}


def test_set_list_and_reset(cloud: Cloud) -> None:
    got = cloud.set("alice", network=5, port="7", subnetpool=3)
    assert got == {**NEUTRON_DEFAULTS, "network": 5, "port": 7, "subnetpool": 3}
    assert cloud.set("alice", router=-1)["router"] == -1  # earlier limits stay
    assert cloud.alice.get("/v2.0/quotas/alice").body["quota"] == {
        **NEUTRON_DEFAULTS, "network": 5, "port": 7, "subnetpool": 3, "router": -1}
    assert cloud.alice.get("/v2.0/quotas/alice/default").body["quota"] == NEUTRON_DEFAULTS
    cloud.set("bob", floatingip=0)
    listed = cloud.ops.get("/v2.0/quotas").body["quotas"]
    assert {q["project_id"]: q for q in listed} == {
        "alice": {**NEUTRON_DEFAULTS, "network": 5, "port": 7, "subnetpool": 3, "router": -1,
                  "project_id": "alice", "tenant_id": "alice"},
        "bob": {**NEUTRON_DEFAULTS, "floatingip": 0, "project_id": "bob", "tenant_id": "bob"}}
    assert cloud.ops.delete("/v2.0/quotas/alice").status == 204
    assert cloud.alice.get("/v2.0/quotas/alice").body["quota"] == NEUTRON_DEFAULTS
    assert [q["project_id"] for q in cloud.ops.get("/v2.0/quotas").body["quotas"]] == ["bob"]
    assert_error(cloud.ops.delete("/v2.0/quotas/alice"), 404, "alice",
                 type="TenantQuotaNotFound")


@pytest.mark.parametrize(("body", "words"), [
    ({"quota": {"network": -2}}, ["network", "'-2' is too small - must be at least '-1'"]),
    ({"quota": {"port": 2**31}}, ["port", "must be no larger than '2147483647'"]),
    ({"quota": {"subnet": "ten"}}, ["subnet", "'ten' is not an integer"]),
    ({"quota": {"router": 1.5}}, ["router", "'1.5' is not an integer"]),
    ({"quota": {"router": True}}, ["router", "not an integer"]),
    ({"quota": {"router": None}}, ["router", "not an integer"]),
    ({"quota": {"network": 5, "widgets": 3}}, ["Unrecognized attribute(s) 'widgets'"]),
    # Neutron's quota resources are spelled with underscores only: no dashed alias stored
    ({"quota": {"security-group": 5}}, ["Unrecognized attribute(s) 'security-group'"]),
    ({"quota": {"security_group": 5, "security-group-rule": 9}},
     ["Unrecognized attribute(s) 'security-group-rule'"]),
    ({"quota": {"force": "maybe"}}, ["force", "not a valid boolean"]),
    ({"quota": [1]}, ["quota"]),
    ({"network": 5}, ["quota"]),
    ([], ["quota"]),
])
def test_bad_limits_are_400_and_write_nothing(cloud: Cloud, body: Any, words: list[str]) -> None:
    cloud.set("alice", network=3)
    before = dump(cloud.store)
    assert_error(cloud.ops.put("/v2.0/quotas/alice", body), 400, *words)
    assert dump(cloud.store) == before


def test_a_limit_below_the_usage_needs_force(cloud: Cloud) -> None:
    for i in range(3):
        cloud.alice.network(name=f"n{i}")
    before = dump(cloud.store)
    assert_error(cloud.ops.put("/v2.0/quotas/alice", {"quota": {"network": 2, "port": 1}}), 400,
                 "Quota limit 2 for network must be greater than or equal to already used 3")
    assert dump(cloud.store) == before
    assert cloud.set("alice", network=3, check_limit=True)["network"] == 3
    assert cloud.set("alice", network=1, force=True)["network"] == 1  # as Neutron's force
    _over(cloud.alice.post("/v2.0/networks", {"network": {"name": "n"}}), "network")
    assert cloud.set("alice", network=-1)["network"] == -1


# who may -------------------------------------------------------------------------
def test_a_member_reads_only_their_own(cloud: Cloud) -> None:
    cloud.set("bob", network=4)
    before = dump(cloud.store)
    a = cloud.alice
    for path in ("/v2.0/quotas/bob", "/v2.0/quotas/bob/default", "/v2.0/quotas"):
        assert_error(a.get(path), 403, "get_quota", type="PolicyNotAuthorized")
    assert_error(a.get("/v2.0/quotas/bob/details"), 403, "Only admin is authorized",
                 type="AdminRequired")
    assert_error(a.put("/v2.0/quotas/alice", {"quota": {"network": 500}}), 403, "update_quota")
    assert_error(a.put("/v2.0/quotas/bob", {"quota": {"network": 500}}), 403, "update_quota")
    assert_error(a.delete("/v2.0/quotas/bob"), 403, "delete_quota")
    assert dump(cloud.store) == before
    assert cloud.bob.get("/v2.0/quotas/bob").body["quota"]["network"] == 4
    assert cloud.bob.get("/v2.0/quotas/bob/details").body["quota"]["network"]["limit"] == 4
    # the admin reads and changes anyone's
    assert cloud.ops.get("/v2.0/quotas/bob").body["quota"]["network"] == 4
    assert cloud.ops.get("/v2.0/quotas/alice/details").status == 200
    assert cloud.ops.delete("/v2.0/quotas/bob").status == 204


def test_the_routes_are_advertised(cloud: Cloud) -> None:
    ext = {e["alias"]: e for e in cloud.alice.get("/v2.0/extensions").body["extensions"]}
    assert ext["quotas"]["name"] == "Quota management support"
    assert ext["quota_details"]["name"] == "Quota details management support"
    assert "quota-check-limit" in ext
    assert cloud.alice.post("/v2.0/quotas", {"quota": {}}).status == 405


# what counts ---------------------------------------------------------------------
def _listed(c: Direct, collection: str, project: str) -> int:
    r = c.get(f"/v2.0/{collection}", params={"project_id": project})
    assert r.status == 200, r.body
    return len(r.body[collection.replace("-", "_")])


def test_details_count_what_the_project_has(cloud: Cloud) -> None:
    public = cloud.ops.network(name="public", **{"router:external": True})
    cloud.ops.subnet(public["id"], "203.0.113.0/24")
    a = cloud.alice
    net = a.network(name="a")
    sub = a.subnet(net["id"], "10.1.0.0/24")
    a.port(net["id"])
    a.create("security_group", "security-groups", name="web")
    router = a.create("router", "routers", name="r",
                      external_gateway_info={"network_id": public["id"]})
    ports = cloud.used("alice")["port"]
    # a router interface's port is the router's project's (Neutron counts it); the
    # gateway's and a floating IP's belong to no project
    r = a.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status == 200, r.body
    assert cloud.used("alice")["port"] == ports + 1
    a.create("floatingip", "floatingips", floating_network_id=public["id"])
    used = cloud.used("alice")
    assert used["port"] == ports + 1
    for resource, collection in (("network", "networks"), ("subnet", "subnets"),
                                 ("port", "ports"), ("router", "routers"),
                                 ("floatingip", "floatingips"),
                                 ("security_group", "security-groups"),
                                 ("security_group_rule", "security-group-rules")):
        assert used[resource] == _listed(cloud.ops, collection, "alice"), resource
    assert (used["network"], used["subnet"], used["router"], used["floatingip"]) == (1, 1, 1, 1)
    assert used["security_group"] == 2  # hers and her default group
    assert (used["rbac_policy"], used["subnetpool"]) == (0, 0)
    assert cloud.used("ops")["network"] == 1  # the operator's public network
    # deletes give back
    assert a.delete(f"/v2.0/ports/{_first(a, 'ports', device_owner='')}").status == 204
    assert cloud.used("alice")["port"] == ports


def _first(c: Direct, collection: str, **filters: str) -> str:
    found = c.get(f"/v2.0/{collection}", params=filters).body[collection]
    return str(found[0]["id"])


def test_the_counters_survive_a_store_without_them(cloud: Cloud) -> None:
    """A store written before the counters (or with them lost) gets them at start."""
    net = cloud.alice.network(name="a")
    cloud.alice.subnet(net["id"], "10.1.0.0/24")
    cloud.alice.port(net["id"])
    cloud.ops.network(name="mine")
    before = {p: cloud.used(p) for p in ("alice", "ops")}
    assert before["alice"]["port"] == 1
    for kv in cloud.store.range(keys.USAGE).kvs:
        cloud.store.delete(kv.key)
    cloud.store.delete(keys.INDEX_META)
    fresh = Cloud.__new__(Cloud)
    fresh.store = cloud.store
    fresh.ops = Direct(Api(cloud.store), None)  # no-auth: the admin
    assert {p: fresh.used(p) for p in ("alice", "ops")} == before


# enforcement ---------------------------------------------------------------------
def test_a_create_past_the_limit_is_409_and_writes_nothing(cloud: Cloud) -> None:
    cloud.set("alice", network=2)
    cloud.alice.network(name="a")
    cloud.alice.network(name="b")
    before = dump(cloud.store)
    _over(cloud.alice.post("/v2.0/networks", {"network": {"name": "c"}}), "network")
    assert dump(cloud.store) == before
    # another project is not held by alice's limit; a delete makes room
    cloud.bob.network(name="b")
    nets = cloud.alice.get("/v2.0/networks").body["networks"]
    assert cloud.alice.delete(f"/v2.0/networks/{nets[0]['id']}").status == 204
    cloud.alice.network(name="c")
    # zero: none at all; unlimited: no limit
    cloud.set("bob", router=0)
    _over(cloud.bob.post("/v2.0/routers", {"router": {"name": "r"}}), "router")
    cloud.set("bob", router=-1, security_group=-1)
    for i in range(12):  # past Neutron's default of 10
        cloud.bob.create("security_group", "security-groups", name=f"g{i}")


def test_a_bulk_create_counts_every_item(cloud: Cloud) -> None:
    net = cloud.alice.network(name="a")
    cloud.alice.subnet(net["id"], "10.1.0.0/24")
    cloud.alice.port(net["id"])
    cloud.set("alice", port=3)
    before = dump(cloud.store)
    body = {"ports": [{"network_id": net["id"], "name": f"p{i}"} for i in range(3)]}
    _over(cloud.alice.post("/v2.0/ports", body), "port")
    assert dump(cloud.store) == before
    body["ports"].pop()
    r = cloud.alice.post("/v2.0/ports", body)
    assert r.status == 201 and len(r.body["ports"]) == 2, r.body
    _over(cloud.alice.post("/v2.0/ports", {"port": {"network_id": net["id"]}}), "port")


def test_an_admins_create_counts_against_the_project_it_is_for(cloud: Cloud) -> None:
    cloud.set("alice", network=1)
    cloud.set("ops", network=0)
    made = cloud.ops.network(name="for-alice", project_id="alice")
    assert made["project_id"] == "alice"
    assert cloud.used("alice")["network"] == 1 and cloud.used("ops")["network"] == 0
    _over(cloud.ops.post("/v2.0/networks", {"network": {"project_id": "alice"}}), "network")
    _over(cloud.ops.post("/v2.0/networks", {"network": {"name": "own"}}), "network")
    # a bulk create for two projects: each item against its own project
    cloud.set("bob", network=1)
    before = dump(cloud.store)
    _over(cloud.ops.post("/v2.0/networks", {"networks": [
        {"project_id": "bob"}, {"project_id": "bob"}]}), "network")
    assert dump(cloud.store) == before
    cloud.set("alice", network=2)
    r = cloud.ops.post("/v2.0/networks", {"networks": [{"project_id": "bob"},
                                                       {"project_id": "alice"}]})
    assert r.status == 201, r.body


def test_a_refusal_of_another_kind_comes_first(cloud: Cloud) -> None:
    """A create the caller may not make is told so (404, 403), not OverQuota."""
    cloud.set("alice", port=0, network=0)
    bob_net = cloud.bob.network(name="b")
    assert_error(cloud.alice.post("/v2.0/ports", {"port": {"network_id": bob_net["id"]}}), 404)
    assert_error(cloud.alice.post("/v2.0/networks", {"network": {"shared": True}}), 403)


def test_create_cost_stays_flat_with_the_projects_objects() -> None:
    """The quota check reads a counter, not the project's objects: a create
    reads as much from the store with 5 ports and routers in the project as
    with 60.  (Not security groups: a port's create looks through the
    project's groups for its default one, as it did before quotas.)"""
    reads = [_reads_of_creates(n) for n in (5, 60)]
    assert reads[0] == reads[1], reads


def _reads_of_creates(existing: int) -> dict[str, int]:
    store = CountingStore()
    c = Direct(Api(store))
    c.put("/v2.0/quotas/lab", {"quota": {"port": 1000, "router": 1000,
                                         "security_group": 1000}})
    busy = c.network(name="busy")
    c.subnet(busy["id"], "10.0.0.0/16")
    quiet = c.network(name="quiet")
    c.subnet(quiet["id"], "10.9.0.0/24")
    for i in range(existing):
        c.port(busy["id"])
        c.create("router", "routers", name=f"r{i}")
    out = {}
    makes: list[tuple[str, Callable[[], Any]]] = [
        ("port", lambda: c.port(quiet["id"])),
        ("router", lambda: c.create("router", "routers", name="x")),
        ("security_group", lambda: c.create("security_group", "security-groups", name="x"))]
    for what, make in makes:
        store.reads = 0
        make()
        out[what] = store.reads
    return out


# racing servers ------------------------------------------------------------------
@pytest.mark.slow
def test_racing_creates_on_two_servers_never_exceed_the_limit(tmp_path: Path) -> None:
    """Two server processes on one SQLite file, 32 clients at once: the limit
    holds exactly, and every refusal is OverQuota."""
    db = tmp_path / "shared.db"
    SqliteStore(str(db)).close()
    with server_process(db, tmp_path / "a.log") as a, server_process(db, tmp_path / "b.log") as b:
        urls = [a, b]
        r = httpx.put(f"{a}/v2.0/quotas/lab", json={"quota": {"network": 12, "port": 20}})
        assert r.status_code == 200, r.text
        nets = parallel(urls, 60, lambda c, i: c.post("/v2.0/networks",
                                                      json={"network": {"name": f"n{i}"}}))
        _exactly(nets, 12)
        net_id = next(body["network"]["id"] for status, body in nets if status == 201)
        assert httpx.post(f"{b}/v2.0/subnets", json={"subnet": {
            "network_id": net_id, "cidr": "10.0.0.0/24", "ip_version": 4}}).status_code == 201
        ports = parallel(urls, 80, lambda c, i: c.post("/v2.0/ports", json={"ports": [
            {"network_id": net_id}, {"network_id": net_id}]}))  # bulk: two at a time
        _exactly(ports, 10)
        listed = httpx.get(f"{b}/v2.0/ports", params={"network_id": net_id}).json()["ports"]
        assert len(listed) == 20
        details = httpx.get(f"{a}/v2.0/quotas/lab/details").json()["quota"]
        assert (details["network"]["used"], details["port"]["used"]) == (12, 20)


def _exactly(outcomes: list[tuple[int, dict[str, Any]]], ok: int) -> None:
    statuses = Counter(status for status, _ in outcomes)
    assert statuses == {201: ok, 409: len(outcomes) - ok}, statuses
    assert all(body["NeutronError"]["type"] == "OverQuota"
               for status, body in outcomes if status == 409)


def test_a_keystone_project_id_is_kept_as_keystone_spells_it() -> None:
    """Keystone's project ids are 32 hex digits, a UUID's spelling without dashes: the
    path's project is the one the token and the objects name, not a UUID made of it."""
    from overcast.api import Auth
    from overcast.api.auth import Context

    project = "dca73823cf964746810cd05a17f55e99"
    api = Api(MemoryStore(), auth=Auth({"t-ops": Context("ops", True),
                                        "t-p": Context(project, False)}))
    ops, member = Direct(api, "t-ops"), Direct(api, "t-p")
    ops.network(name="for-p", project_id=project)
    assert_error(ops.put(f"/v2.0/quotas/{project}", {"quota": {"network": 0}}), 400,
                 "Quota limit 0 for network must be greater than or equal to already used 1")
    r = ops.put(f"/v2.0/quotas/{project}", {"quota": {"network": 1, "port": 0}})
    assert r.status == 200 and r.body["quota"]["network"] == 1, r.body
    assert [q["project_id"] for q in ops.get("/v2.0/quotas").body["quotas"]] == [project]
    assert ops.get(f"/v2.0/quotas/{project}/details").body["quota"]["network"] == {
        "limit": 1, "used": 1, "reserved": 0}
    assert member.get(f"/v2.0/quotas/{project}").body["quota"]["network"] == 1
    _over(member.post("/v2.0/networks", {"network": {"name": "n"}}), "network")
    assert ops.delete(f"/v2.0/quotas/{project}").status == 204
    assert ops.get("/v2.0/quotas").body == {"quotas": []}
    assert ops.get(f"/identity/v3/projects/{project}").body["project"]["id"] == project


def test_a_project_reads_its_own_quotas_by_its_keystone_id() -> None:
    """Neutron's get_quota: admin or the project's reader (neutron-tempest-plugin's
    test_rbac_policy_quota reads its own limits first); another project's stays
    the admin's, whoever asks."""
    from overcast.api import Auth
    from overcast.api.auth import Context

    mine, theirs = "571e42ddda864975a6de1c1a5c8f9987", "0b9d1a6e3c4f4e2d8a7b6c5d4e3f2a1b"
    api = Api(MemoryStore(), auth=Auth({"t-m": Context(mine, False),
                                        "t-r": Context(mine, False, read_only=True)}))
    for token in ("t-m", "t-r"):
        c = Direct(api, token)
        assert c.get(f"/v2.0/quotas/{mine}").body == {"quota": NEUTRON_DEFAULTS}
        assert c.get(f"/v2.0/quotas/{mine}/default").body == {"quota": NEUTRON_DEFAULTS}
        details = c.get(f"/v2.0/quotas/{mine}/details").body["quota"]
        assert details["rbac_policy"] == {"limit": 10, "used": 0, "reserved": 0}
        for path in (f"/v2.0/quotas/{theirs}", f"/v2.0/quotas/{theirs}/default"):
            assert_error(c.get(path), 403, "rule:get_quota is disallowed by policy",
                         type="PolicyNotAuthorized")
        assert_error(c.get(f"/v2.0/quotas/{theirs}/details"), 403,
                     "Only admin is authorized to access quotas for another project.",
                     type="AdminRequired")


# the identity stand-in the openstack CLI looks projects up in ----------------------
def test_identity_names_projects_as_keystone_would(cloud: Cloud) -> None:
    assert cloud.alice.get("/identity").body["versions"]["values"][0]["id"].startswith("v3")
    assert cloud.alice.get("/identity/v3").body["version"]["status"] == "stable"
    cloud.alice.network(name="a")
    cloud.set("carol", router=3)
    # the admin: projects with objects or quotas, and its own; any id is a project
    listed = cloud.ops.get("/identity/v3/projects").body["projects"]
    assert [p["id"] for p in listed] == ["alice", "carol", "ops"]
    assert cloud.ops.get("/identity/v3/projects", params={"name": "carol"}).body[
        "projects"][0]["name"] == "carol"
    assert cloud.ops.get("/identity/v3/projects/dave").body["project"]["name"] == "dave"
    # a member: only their own
    assert [p["id"] for p in cloud.alice.get("/identity/v3/projects").body["projects"]] == [
        "alice"]
    assert cloud.alice.get("/identity/v3/projects/alice").status == 200
    assert_error(cloud.alice.get("/identity/v3/projects/carol"), 404, "carol")


def test_subnet_pools_are_counted_and_limited(cloud: Cloud) -> None:
    cloud.set("alice", subnetpool=1)
    body = {"subnetpool": {"name": "p1", "prefixes": ["10.8.0.0/16"]}}
    assert cloud.alice.post("/v2.0/subnetpools", body).status == 201
    assert cloud.used("alice")["subnetpool"] == 1
    _over(cloud.alice.post("/v2.0/subnetpools", {"subnetpool": {
        "name": "p2", "prefixes": ["10.9.0.0/16"]}}), "subnetpool")


def test_rbac_policies_are_counted_and_limited(cloud: Cloud) -> None:
    cloud.set("alice", rbac_policy=2)
    net = cloud.alice.network(name="n")

    def grant(target: str) -> Any:
        return cloud.alice.post("/v2.0/rbac-policies", {"rbac_policy": {
            "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
            "target_tenant": target}})
    assert grant("t1").status == 201 and grant("t2").status == 201
    assert cloud.used("alice")["rbac_policy"] == 2
    _over(grant("t3"), "rbac_policy")


def test_a_new_groups_rules_count_against_the_rule_quota(cloud: Cloud) -> None:
    """neutron-tempest-plugin's test_sg_creation_with_insufficient_sg_rules_quota:
    a new group's default egress rules are rules of its project, so with a rule
    quota of 0 the group is not made (409 OverQuota, nothing written)."""
    cloud.set("alice", security_group_rule=0)
    before = dump(cloud.store)
    _over(cloud.alice.post("/v2.0/security-groups", {"security_group": {"name": "web"}}),
          "security_group_rule")
    assert dump(cloud.store) == before
    cloud.set("alice", security_group_rule=2)  # the two default egress rules fit
    assert cloud.alice.post("/v2.0/security-groups",
                            {"security_group": {"name": "web"}}).status == 201
