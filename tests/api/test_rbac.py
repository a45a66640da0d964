"""RBAC policies as Neutron serves them (rbac-policies, rbac-security-groups,
rbac-address-group): CRUD and who sees a policy; only the object's owner
(or an admin) makes one, only an admin for every project; what a policy
grants its target project (a network to see and put ports on, an external
network for its routers, a QoS policy, security group or address group to
use); ``shared`` as a view of the policies, per caller; and no project loses
access that something of its own depends on (409, nothing written).

Callers: ops (admin), alice (the owner), bob (the target), carol (another member)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.model import keys
from overcast.model.types import Network
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump

PATH = "/v2.0/rbac-policies"
USERS = {"ops": Context("ops", True), "alice": Context("alice", False),
         "bob": Context("bob", False), "carol": Context("carol", False)}
SHARED, EXTERNAL = "access_as_shared", "access_as_external"


class Cloud:
    def __init__(self) -> None:
        self.store = MemoryStore()
        api = Api(self.store, auth=Auth({f"t-{n}": c for n, c in USERS.items()}))
        self.c = {n: Direct(api, f"t-{n}") for n in USERS}

    def __getitem__(self, name: str) -> Direct:
        return self.c[name]

    def grant(self, who: str, obj: dict[str, Any], object_type: str, target: str,
              action: str = SHARED) -> dict[str, Any]:
        return self.c[who].create("rbac_policy", "rbac-policies", object_type=object_type,
                                  object_id=obj["id"], action=action, target_tenant=target)

    def ids(self, who: str, path: str, collection: str, **params: str) -> set[str]:
        r = self.c[who].get(path, params=params)
        assert r.status == 200, r.body
        return {o["id"] for o in r.body[collection]}


@pytest.fixture
def cloud() -> Cloud:
    return Cloud()


@pytest.fixture
def net(cloud: Cloud) -> dict[str, Any]:
    """alice's private network, with a subnet of hers."""
    made = cloud["alice"].network(name="alice-net")
    cloud["alice"].subnet(made["id"], "10.0.0.0/24")
    return made


def body(obj: dict[str, Any], object_type: str = "network", target: str = "bob",
         action: str = SHARED) -> dict[str, Any]:
    return {"rbac_policy": {"object_type": object_type, "object_id": obj["id"],
                            "action": action, "target_tenant": target}}


# the collection --------------------------------------------------------------------
def test_create_show_list_update_delete(cloud: Cloud, net: dict[str, Any]) -> None:
    r = cloud["alice"].post(PATH, body(net))
    assert r.status == 201, r.body
    pol = r["rbac_policy"]
    assert pol == {"id": pol["id"], "project_id": "alice", "tenant_id": "alice",
                   "object_type": "network", "object_id": net["id"],
                   "action": SHARED, "target_tenant": "bob"}
    assert cloud["alice"].get(f"{PATH}/{pol['id']}")["rbac_policy"] == pol
    assert cloud["ops"].get(f"{PATH}/{pol['id']}")["rbac_policy"] == pol
    # the owner and an admin see it; its target and anyone else do not (Neutron's get rule)
    for who in ("bob", "carol"):
        assert_error(cloud[who].get(f"{PATH}/{pol['id']}"), 404, pol["id"],
                     type="RbacPolicyNotFound")
        assert cloud.ids(who, PATH, "rbac_policies") == set()
        assert_error(cloud[who].put(f"{PATH}/{pol['id']}", {"rbac_policy": {
            "target_tenant": "carol"}}), 404, type="RbacPolicyNotFound")
        assert_error(cloud[who].delete(f"{PATH}/{pol['id']}"), 404, type="RbacPolicyNotFound")
    assert cloud.ids("alice", PATH, "rbac_policies") == {pol["id"]}
    # listing filters
    assert cloud.ids("alice", PATH, "rbac_policies", target_tenant="bob") == {pol["id"]}
    assert cloud.ids("alice", PATH, "rbac_policies", target_tenant="carol") == set()
    assert cloud.ids("alice", PATH, "rbac_policies", object_type="qos_policy") == set()
    assert cloud.ids("ops", PATH, "rbac_policies", object_id=net["id"]) == {pol["id"]}
    r = cloud["alice"].put(f"{PATH}/{pol['id']}", {"rbac_policy": {"target_tenant": "carol"}})
    assert r.status == 200, r.body
    assert r["rbac_policy"] == {**pol, "target_tenant": "carol"}
    assert cloud["carol"].get(f"/v2.0/networks/{net['id']}").status == 200
    assert cloud["bob"].get(f"/v2.0/networks/{net['id']}").status == 404
    assert cloud["alice"].delete(f"{PATH}/{pol['id']}").status == 204
    assert_error(cloud["alice"].get(f"{PATH}/{pol['id']}"), 404, type="RbacPolicyNotFound")
    assert cloud["carol"].get(f"/v2.0/networks/{net['id']}").status == 404


def test_bad_input_and_duplicates_write_nothing(cloud: Cloud, net: dict[str, Any]) -> None:
    qos = cloud["ops"].create("policy", "qos/policies", name="q", project_id="alice")
    cloud.grant("alice", net, "network", "bob")
    before = dump(cloud.store)
    alice = cloud["alice"]
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        ({"object_type": "router"}, 400, "'router' is not a valid RBAC object type", None),
        ({"action": "access_as_readonly"}, 400, "Invalid action 'access_as_readonly' for "
         "object type 'network'", "InvalidActionForType"),
        ({"object_type": "qos_policy", "object_id": qos["id"], "action": EXTERNAL}, 400,
         "Invalid action 'access_as_external' for object type 'qos_policy'",
         "InvalidActionForType"),
        ({"object_id": "not-a-uuid"}, 400, "object_id", None),
        ({"target_tenant": ""}, 400, "target_tenant", None),
        ({"target_tenant": 7}, 400, "target_tenant", None),
        ({"name": "x"}, 400, "name", None),
        ({"id": "6f0e7a9c-0000-4000-8000-0000000000aa"}, 400, "id", None),
        ({}, 409, "An RBAC policy already exists with those values.", "DuplicateRbacPolicy"),
    ]
    for change, status, words, kind in cases:
        req = {**body(net)["rbac_policy"], **change}
        assert_error(alice.post(PATH, {"rbac_policy": req}), status, words, type=kind)
    for missing in ("object_type", "object_id", "action", "target_tenant"):
        req = {k: v for k, v in body(net)["rbac_policy"].items() if k != missing}
        assert_error(alice.post(PATH, {"rbac_policy": req}), 400, missing)
    # an object of that type that is not there
    assert_error(alice.post(PATH, body({"id": "6f0e7a9c-0000-4000-8000-0000000000bb"})), 404,
                 type="NetworkNotFound")
    pol = cloud.ids("alice", PATH, "rbac_policies").pop()
    for change in ({"object_type": "qos_policy"}, {"action": EXTERNAL}, {"target_tenant": ""}):
        assert cloud["alice"].put(f"{PATH}/{pol}", {"rbac_policy": change}).status == 400
    assert dump(cloud.store) == before


def test_only_the_owner_or_an_admin_makes_policies(cloud: Cloud, net: dict[str, Any]) -> None:
    cloud.grant("alice", net, "network", "bob")
    before = dump(cloud.store)
    # bob sees the network through the policy, but it is not his to share
    assert_error(cloud["bob"].post(PATH, body(net, target="carol")), 400,
                 "Only admins can manipulate policies on networks they do not own")
    assert_error(cloud["carol"].post(PATH, body(net, target="carol")), 404, net["id"],
                 type="NetworkNotFound")
    # every project: the operator's to grant (Neutron's restrict_wildcard)
    assert_error(cloud["alice"].post(PATH, body(net, target="*")), 403,
                 "create_rbac_policy:target_tenant")
    pol = cloud.ids("alice", PATH, "rbac_policies").pop()
    assert_error(cloud["alice"].put(f"{PATH}/{pol}", {"rbac_policy": {"target_tenant": "*"}}),
                 403, "update_rbac_policy:target_tenant")
    # a member makes policies of its own project only (Neutron's 400, before any rule)
    r = cloud["alice"].post(PATH, {"rbac_policy": {**body(net, target="carol")["rbac_policy"],
                                                   "project_id": "bob"}})
    assert_error(r, 400, "'project_id' other than the authenticated project")
    sg = cloud["alice"].create("security_group", "security-groups", name="web")
    cloud.grant("alice", sg, "security_group", "bob")
    before = dump(cloud.store)
    assert_error(cloud["bob"].post(PATH, body(sg, "security_group", "carol")), 400,
                 "Only admins can manipulate policies on objects they do not own",
                 type="InvalidInput")
    # an admin may make a policy owned by another project: its owner sees it and may
    # delete it, but not retarget it (the network is not his)
    assert dump(cloud.store) == before
    theirs = cloud["ops"].create("rbac_policy", "rbac-policies", project_id="bob",
                                 **body(net, target="carol")["rbac_policy"])
    assert theirs["project_id"] == "bob"
    assert cloud["bob"].get(f"{PATH}/{theirs['id']}").status == 200
    assert_error(cloud["bob"].put(f"{PATH}/{theirs['id']}", {"rbac_policy": {
        "target_tenant": "dave"}}), 400, "Only admins can manipulate policies on networks")
    assert cloud["bob"].delete(f"{PATH}/{theirs['id']}").status == 204
    made = cloud.grant("ops", net, "network", "*")
    assert (made["project_id"], made["target_tenant"]) == ("ops", "*")
    assert cloud["carol"].get(f"/v2.0/networks/{net['id']}").status == 200


# networks ----------------------------------------------------------------------------
def test_a_network_shared_with_a_project(cloud: Cloud, net: dict[str, Any]) -> None:
    sub = cloud.ids("alice", "/v2.0/subnets", "subnets").pop()
    cloud.grant("alice", net, "network", "bob")
    nets = "/v2.0/networks"
    # bob sees it, and for him it is shared; for alice (no wildcard) and an admin it is not
    assert cloud["bob"].get(f"{nets}/{net['id']}")["network"]["shared"] is True
    assert cloud["alice"].get(f"{nets}/{net['id']}")["network"]["shared"] is False
    assert cloud["ops"].get(f"{nets}/{net['id']}")["network"]["shared"] is False
    assert_error(cloud["carol"].get(f"{nets}/{net['id']}"), 404, type="NetworkNotFound")
    assert net["id"] in cloud.ids("bob", nets, "networks")
    assert net["id"] in cloud.ids("bob", nets, "networks", shared="True")
    assert net["id"] not in cloud.ids("bob", nets, "networks", shared="False")
    assert net["id"] not in cloud.ids("alice", nets, "networks", shared="True")
    assert net["id"] in cloud.ids("alice", nets, "networks", shared="False")
    assert net["id"] not in cloud.ids("carol", nets, "networks")
    assert cloud["bob"].get(f"/v2.0/subnets/{sub}").status == 200
    assert cloud["carol"].get(f"/v2.0/subnets/{sub}").status == 404
    assert cloud.ids("bob", "/v2.0/subnets", "subnets", shared="True") == {sub}
    assert cloud.ids("alice", "/v2.0/subnets", "subnets", shared="True") == set()
    assert cloud.ids("alice", "/v2.0/subnets", "subnets", shared="False") == {sub}
    # ports yes, subnets no (Neutron's create_subnet: the network's owner)
    port = cloud["bob"].port(net["id"], name="bob-port")
    assert port["project_id"] == "bob"
    assert_error(cloud["bob"].post("/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.9.0.0/24"}}), 403, "create_subnet")
    assert_error(cloud["carol"].post("/v2.0/ports", {"port": {"network_id": net["id"]}}),
                 404, type="NetworkNotFound")


def test_the_network_owner_sees_and_deletes_the_ports_on_it(cloud: Cloud,
                                                           net: dict[str, Any]) -> None:
    """Neutron's get_port and delete_port admit the network's owner, update_port
    does not (neutron-tempest-plugin's test_project_can_delete_port_on_own_network):
    alice finds bob's port on her network shared with him, in a show and the
    listing, and deletes it; changing it is a 403; carol still finds nothing."""
    cloud.grant("alice", net, "network", "bob")
    port = cloud["bob"].port(net["id"], name="bob-port")
    path = f"/v2.0/ports/{port['id']}"
    shown = cloud["alice"].get(path)
    assert shown.status == 200 and shown["port"]["project_id"] == "bob", shown.body
    assert "binding:host_id" not in shown["port"]  # still a member's view
    assert port["id"] in cloud.ids("alice", "/v2.0/ports", "ports")
    assert cloud.ids("alice", "/v2.0/ports", "ports", project_id="bob") == {port["id"]}
    assert cloud["alice"].get("/v2.0/ports", params={"marker": port["id"]}).status == 200
    router = cloud["alice"].create("router", "routers", name="r")
    before = dump(cloud.store)
    assert_error(cloud["alice"].put(path, {"port": {"name": "mine"}}), 403,
                 f"rule:update_port is disallowed by policy on port {port['id']}",
                 type="PolicyNotAuthorized")
    assert_error(cloud["alice"].get(f"{path}/bindings"), 403, "restricted to administrators")
    # naming it anywhere else still finds nothing
    assert_error(cloud["alice"].put(f"/v2.0/routers/{router['id']}/add_router_interface",
                                    {"port_id": port["id"]}), 404, type="PortNotFound")
    assert_error(cloud["alice"].post("/v2.0/trunks", {"trunk": {"port_id": port["id"]}}),
                 404, type="PortNotFound")
    for verb in (cloud["carol"].get, cloud["carol"].delete):
        assert_error(verb(path), 404, port["id"], type="PortNotFound")
    assert port["id"] not in cloud.ids("carol", "/v2.0/ports", "ports")
    assert dump(cloud.store) == before
    assert cloud["alice"].delete(path).status == 204
    assert_error(cloud["bob"].get(path), 404, type="PortNotFound")


def test_a_policy_others_depend_on_stays(cloud: Cloud, net: dict[str, Any]) -> None:
    mine = cloud.grant("alice", net, "network", "bob")
    port = cloud["bob"].port(net["id"])
    before = dump(cloud.store)
    err = assert_error(cloud["alice"].delete(f"{PATH}/{mine['id']}"), 409,
                       f"RBAC policy on object {net['id']} cannot be removed because other "
                       "objects depend on it.", type="RbacPolicyInUse")
    assert "project_id=bob" in err["message"]
    assert_error(cloud["alice"].put(f"{PATH}/{mine['id']}", {"rbac_policy": {
        "target_tenant": "carol"}}), 409, type="RbacPolicyInUse")
    assert dump(cloud.store) == before
    # another policy granting bob access (a wildcard) lets this one go ...
    wild = cloud.grant("ops", net, "network", "*")
    assert cloud["alice"].delete(f"{PATH}/{mine['id']}").status == 204
    # ... but then the wildcard is what bob's port depends on
    assert_error(cloud["ops"].delete(f"{PATH}/{wild['id']}"), 409, type="RbacPolicyInUse")
    assert_error(cloud["ops"].put(f"/v2.0/networks/{net['id']}", {"network": {"shared": False}}),
                 409, "Unable to reconfigure sharing settings", type="InvalidSharedSetting")
    # moving a target to one that keeps bob covered is fine; so is the owner's own port
    again = cloud.grant("alice", net, "network", "bob")
    assert cloud["ops"].delete(f"{PATH}/{wild['id']}").status == 204
    cloud["alice"].port(net["id"])
    assert cloud["bob"].delete(f"/v2.0/ports/{port['id']}").status == 204
    r = cloud["alice"].put(f"{PATH}/{again['id']}", {"rbac_policy": {"target_tenant": "carol"}})
    assert r.status == 200, r.body
    assert cloud["alice"].delete(f"{PATH}/{again['id']}").status == 204


def test_shared_is_the_wildcard_policy(cloud: Cloud, net: dict[str, Any]) -> None:
    nets, ops = f"/v2.0/networks/{net['id']}", cloud["ops"]
    # shared=True makes the wildcard policy, owned by the network's project
    r = ops.put(nets, {"network": {"shared": True}})
    assert r.status == 200 and r["network"]["shared"] is True, r.body
    [wild] = cloud["alice"].get(PATH)["rbac_policies"]
    assert (wild["target_tenant"], wild["action"], wild["project_id"], wild["object_id"]) == (
        "*", SHARED, "alice", net["id"])
    assert cloud["carol"].get(nets)["network"]["shared"] is True
    assert net["id"] in cloud.ids("carol", "/v2.0/networks", "networks", shared="True")
    # shared=True again makes no second one
    assert ops.put(nets, {"network": {"shared": True}}).status == 200
    assert len(cloud["alice"].get(PATH)["rbac_policies"]) == 1
    # the wildcard policy gone: not shared (for anyone), carol sees it no more
    assert ops.delete(f"{PATH}/{wild['id']}").status == 204
    assert ops.get(nets)["network"]["shared"] is False
    assert cloud["carol"].get(nets).status == 404
    # a wildcard policy made through the API: shared
    made = cloud.grant("ops", net, "network", "*")
    assert cloud["alice"].get(nets)["network"]["shared"] is True
    # shared=False takes it away; a network made shared has its policy from the start
    r = ops.put(nets, {"network": {"shared": False}})
    assert r.status == 200 and r["network"]["shared"] is False, r.body
    assert_error(ops.get(f"{PATH}/{made['id']}"), 404)
    other = ops.network(name="public", shared=True)
    assert [(p["target_tenant"], p["action"], p["project_id"])
            for p in ops.get(PATH, params={"object_id": other["id"]})["rbac_policies"]] == [
        ("*", SHARED, "ops")]


def test_a_network_goes_with_its_policies(cloud: Cloud, net: dict[str, Any]) -> None:
    cloud.grant("alice", net, "network", "bob")
    cloud.grant("alice", net, "network", "carol")
    assert cloud["alice"].delete(f"/v2.0/networks/{net['id']}").status == 204
    assert cloud["ops"].get(PATH)["rbac_policies"] == []


def test_access_as_external(cloud: Cloud, net: dict[str, Any]) -> None:
    nets = f"/v2.0/networks/{net['id']}"
    pol = cloud.grant("alice", net, "network", "bob", EXTERNAL)
    # the network becomes external, for bob only
    assert cloud["alice"].get(nets)["network"]["router:external"] is True
    assert cloud["bob"].get(nets)["network"]["router:external"] is True
    assert cloud["bob"].get(nets)["network"]["shared"] is False
    assert cloud["carol"].get(nets).status == 404
    gw = {"external_gateway_info": {"network_id": net["id"]}}
    router = cloud["bob"].create("router", "routers", name="r", **gw)
    assert router["external_gateway_info"]["network_id"] == net["id"]
    assert_error(cloud["carol"].post("/v2.0/routers", {"router": {"name": "r", **gw}}), 404,
                 type="NetworkNotFound")
    fip = cloud["bob"].create("floatingip", "floatingips", floating_network_id=net["id"])
    assert fip["floating_network_id"] == net["id"]
    # bob's router depends on it: it stays
    before = dump(cloud.store)
    assert_error(cloud["alice"].delete(f"{PATH}/{pol['id']}"), 409,
                 "There are routers attached to this network that depend on this policy",
                 type="RbacPolicyInUse")
    assert dump(cloud.store) == before
    assert cloud["bob"].delete(f"/v2.0/floatingips/{fip['id']}").status == 204
    r = cloud["bob"].put(f"/v2.0/routers/{router['id']}", {"router": {
        "external_gateway_info": {}}})
    assert r.status == 200, r.body
    # the last access_as_external policy gone: not external any more
    assert cloud["alice"].delete(f"{PATH}/{pol['id']}").status == 204
    assert cloud["alice"].get(nets)["network"]["router:external"] is False
    assert cloud["bob"].get(nets).status == 404


def test_an_external_network_is_a_wildcard_external_policy(cloud: Cloud) -> None:
    ops = cloud["ops"]
    ext = ops.network(name="ext", **{"router:external": True})
    ops.subnet(ext["id"], "203.0.113.0/24", enable_dhcp=False)
    [wild] = ops.get(PATH, params={"object_id": ext["id"]})["rbac_policies"]
    assert (wild["target_tenant"], wild["action"]) == ("*", EXTERNAL)
    assert cloud["carol"].get(f"/v2.0/networks/{ext['id']}").status == 200
    cloud["bob"].create("router", "routers", external_gateway_info={"network_id": ext["id"]})
    # bob's router needs the wildcard (he has no policy of his own) ...
    assert_error(ops.delete(f"{PATH}/{wild['id']}"), 409, type="RbacPolicyInUse")
    # ... until he has one; then the wildcard goes, and carol sees the network no more
    cloud.grant("ops", ext, "network", "bob", EXTERNAL)
    assert ops.delete(f"{PATH}/{wild['id']}").status == 204
    assert cloud["carol"].get(f"/v2.0/networks/{ext['id']}").status == 404
    assert cloud["bob"].get(f"/v2.0/networks/{ext['id']}")["network"]["router:external"] is True
    # router:external=False is refused while a gateway is on it (Neutron's ExternalNetworkInUse)
    assert_error(ops.put(f"/v2.0/networks/{ext['id']}", {"network": {"router:external": False}}),
                 409, type="ExternalNetworkInUse")


def test_a_wildcard_external_policy_narrowed_to_the_one_project_using_it(cloud: Cloud) -> None:
    """neutron-tempest-plugin's ExternalNetworksRBACTestJSON: bob's router on an
    external network without subnet (its gateway has no address), then the
    wildcard becomes bob's own policy: nobody else depends on it."""
    ops = cloud["ops"]
    ext = ops.network(name="ext", **{"router:external": True})
    [wild] = ops.get(PATH, params={"object_id": ext["id"]})["rbac_policies"]
    router = cloud["bob"].create("router", "routers",
                                 external_gateway_info={"network_id": ext["id"]})
    assert router["external_gateway_info"]["external_fixed_ips"] == []
    r = ops.put(f"{PATH}/{wild['id']}", {"rbac_policy": {"target_tenant": "bob"}})
    assert r.status == 200 and r.body["rbac_policy"]["target_tenant"] == "bob", r.body
    assert cloud["carol"].get(f"/v2.0/networks/{ext['id']}").status == 404
    assert ops.delete(f"/v2.0/routers/{router['id']}").status == 204


def test_the_default_external_network_is_everyones(cloud: Cloud) -> None:
    ops = cloud["ops"]
    ext = ops.network(name="ext", is_default=True, **{"router:external": True})
    [wild] = ops.get(PATH, params={"object_id": ext["id"]})["rbac_policies"]
    assert_error(ops.delete(f"{PATH}/{wild['id']}"), 409,
                 "Default external networks must be shared to everyone.",
                 type="RbacPolicyInUse")


# what else policies share ------------------------------------------------------------
def test_a_qos_policy_shared_with_a_project(cloud: Cloud) -> None:
    qos = cloud["ops"].create("policy", "qos/policies", name="gold", project_id="alice")
    path = f"/v2.0/qos/policies/{qos['id']}"
    rule = cloud["ops"].post(f"{path}/bandwidth_limit_rules", {"bandwidth_limit_rule": {
        "max_kbps": 1000}})["bandwidth_limit_rule"]
    pol = cloud.grant("alice", qos, "qos_policy", "bob")
    # bob sees the policy and its rules
    assert cloud["bob"].get(path)["policy"]["rules"][0]["id"] == rule["id"]
    assert cloud.ids("bob", f"{path}/bandwidth_limit_rules", "bandwidth_limit_rules") == {
        rule["id"]}
    assert cloud["bob"].get(f"{path}/bandwidth_limit_rules/{rule['id']}").status == 200
    assert cloud["carol"].get(f"{path}/bandwidth_limit_rules").status == 404
    assert cloud["bob"].get(path)["policy"]["shared"] is True
    assert cloud["alice"].get(path)["policy"]["shared"] is False
    assert cloud["carol"].get(path).status == 404
    assert qos["id"] in cloud.ids("bob", "/v2.0/qos/policies", "policies", shared="True")
    bobs = cloud["bob"].network(name="bob-net")
    port = cloud["bob"].port(bobs["id"], qos_policy_id=qos["id"])
    assert port["qos_policy_id"] == qos["id"]
    carols = cloud["carol"].network(name="carol-net")
    assert_error(cloud["carol"].post("/v2.0/ports", {"port": {
        "network_id": carols["id"], "qos_policy_id": qos["id"]}}), 404, qos["id"])
    assert_error(cloud["alice"].delete(f"{PATH}/{pol['id']}"), 409, type="RbacPolicyInUse")
    # shared=True is the wildcard; false again while bob is covered by his own policy
    r = cloud["ops"].put(path, {"policy": {"shared": True}})
    assert r.status == 200 and r["policy"]["shared"] is True, r.body
    assert cloud["carol"].get(path)["policy"]["shared"] is True
    assert {p["target_tenant"] for p in cloud["alice"].get(PATH)["rbac_policies"]} == {"bob", "*"}
    assert cloud["ops"].put(path, {"policy": {"shared": False}}).status == 200
    assert cloud["carol"].get(path).status == 404
    # without bob's policy, the wildcard is what his port depends on
    cloud["ops"].put(path, {"policy": {"shared": True}})
    assert cloud["alice"].delete(f"{PATH}/{pol['id']}").status == 204
    assert_error(cloud["ops"].put(path, {"policy": {"shared": False}}), 409,
                 type="RbacPolicyInUse")
    assert cloud["bob"].delete(f"/v2.0/ports/{port['id']}").status == 204
    assert cloud["ops"].put(path, {"policy": {"shared": False}}).status == 200
    assert cloud["ops"].delete(path).status == 204
    assert cloud["ops"].get(PATH)["rbac_policies"] == []


def test_a_qos_policy_networks_depend_on_stays_shared(cloud: Cloud) -> None:
    """Neutron's rbac_db check (tempest's RbacSharedQosPoliciesTest): a network
    of the target project keeps the policy that shares the QoS policy with it;
    a wildcard covers it, but moving the wildcard to that very project does
    not (checked as a deletion); 409 RbacPolicyInUse, nothing written."""
    qos = cloud["ops"].create("policy", "qos/policies", name="gold")
    mine = cloud.grant("ops", qos, "qos_policy", "bob")
    cloud["bob"].network(name="bob-net", qos_policy_id=qos["id"])
    before = dump(cloud.store)
    assert_error(cloud["ops"].delete(f"{PATH}/{mine['id']}"), 409, "project_id=bob",
                 type="RbacPolicyInUse")
    assert dump(cloud.store) == before
    wild = cloud.grant("ops", qos, "qos_policy", "*")
    assert cloud["ops"].delete(f"{PATH}/{mine['id']}").status == 204
    before = dump(cloud.store)
    assert_error(cloud["ops"].delete(f"{PATH}/{wild['id']}"), 409, type="RbacPolicyInUse")
    assert_error(cloud["ops"].put(f"{PATH}/{wild['id']}", {"rbac_policy": {
        "target_tenant": "bob"}}), 409, "project_id=*", type="RbacPolicyInUse")
    assert dump(cloud.store) == before


def test_the_owners_network_keeps_its_qos_policy_shared(cloud: Cloud) -> None:
    """Unlike a network's (whose owner needs no policy), a QoS policy's users
    include its owner's networks (Neutron's get_bound_project_ids): no
    unsharing under them."""
    qos = cloud["ops"].create("policy", "qos/policies", name="gold", shared=True)
    path = f"/v2.0/qos/policies/{qos['id']}"
    net = cloud["ops"].network(name="ops-net", qos_policy_id=qos["id"])
    before = dump(cloud.store)
    assert_error(cloud["ops"].put(path, {"policy": {"shared": False}}), 409,
                 f"RBAC policy on object {qos['id']} cannot be removed", type="RbacPolicyInUse")
    assert dump(cloud.store) == before
    assert cloud["ops"].delete(f"/v2.0/networks/{net['id']}").status == 204
    r = cloud["ops"].put(path, {"policy": {"shared": False}})
    assert r.status == 200 and r["policy"]["shared"] is False, r.body
    assert cloud["ops"].delete(path).status == 204  # nothing uses it: it goes


def test_moving_a_network_wildcard_to_a_project_is_a_deletion(cloud: Cloud,
                                                              net: dict[str, Any]) -> None:
    """Neutron's ensure_no_project_ports_on_network checks the old target
    only: bob's port depends on the wildcard even when it moves to bob."""
    wild = cloud.grant("ops", net, "network", "*")
    cloud["bob"].port(net["id"])
    cloud["alice"].port(net["id"])  # the owner's needs no policy
    before = dump(cloud.store)
    assert_error(cloud["ops"].put(f"{PATH}/{wild['id']}", {"rbac_policy": {
        "target_tenant": "bob"}}), 409, type="RbacPolicyInUse")
    assert dump(cloud.store) == before
    cloud.grant("alice", net, "network", "bob")
    r = cloud["ops"].put(f"{PATH}/{wild['id']}", {"rbac_policy": {"target_tenant": "carol"}})
    assert r.status == 200, r.body


def test_a_security_group_shared_with_a_project(cloud: Cloud) -> None:
    sg = cloud["alice"].create("security_group", "security-groups", name="web")
    pol = cloud.grant("alice", sg, "security_group", "bob")
    path = f"/v2.0/security-groups/{sg['id']}"
    shown = cloud["bob"].get(path)
    assert shown.status == 200 and shown["security_group"]["shared"] is True, shown.body
    assert cloud["alice"].get(path)["security_group"]["shared"] is False
    assert cloud["carol"].get(path).status == 404
    assert sg["id"] in cloud.ids("bob", "/v2.0/security-groups", "security_groups")
    assert sg["id"] not in cloud.ids("carol", "/v2.0/security-groups", "security_groups")
    bobs = cloud["bob"].network(name="bob-net")
    port = cloud["bob"].port(bobs["id"], security_groups=[sg["id"]])
    assert port["security_groups"] == [sg["id"]]
    carols = cloud["carol"].network(name="carol-net")
    assert_error(cloud["carol"].post("/v2.0/ports", {"port": {
        "network_id": carols["id"], "security_groups": [sg["id"]]}}), 404, sg["id"])
    # bob may use it, not change it: its rules are alice's
    assert_error(cloud["bob"].post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress"}}), 403)
    assert_error(cloud["alice"].delete(f"{PATH}/{pol['id']}"), 409, type="RbacPolicyInUse")
    assert cloud["bob"].delete(f"/v2.0/ports/{port['id']}").status == 204
    assert cloud["alice"].delete(path).status == 204  # its policies go with it
    assert cloud["ops"].get(PATH)["rbac_policies"] == []


def test_an_address_group_shared_with_a_project(cloud: Cloud) -> None:
    ag = cloud["alice"].create("address_group", "address-groups", name="office",
                               addresses=["192.0.2.0/24"])
    pol = cloud.grant("alice", ag, "address_group", "bob")
    assert cloud["bob"].get(f"/v2.0/address-groups/{ag['id']}").status == 200
    assert cloud["carol"].get(f"/v2.0/address-groups/{ag['id']}").status == 404
    # bob may use it, not change it: an action is refused (403), an update or a delete
    # finds no such group (Neutron's: its check of a refused write does not see the share)
    for who, status in (("bob", 403), ("carol", 404)):
        assert cloud[who].put(f"/v2.0/address-groups/{ag['id']}/add_addresses", {
            "addresses": ["198.51.100.0/24"]}).status == status
        assert_error(cloud[who].put(f"/v2.0/address-groups/{ag['id']}", {"address_group": {
            "name": "mine"}}), 404, ag["id"], type="AddressGroupNotFound")
        assert_error(cloud[who].delete(f"/v2.0/address-groups/{ag['id']}"), 404, ag["id"],
                     type="AddressGroupNotFound")
    assert cloud["alice"].get(f"/v2.0/address-groups/{ag['id']}")["address_group"]["name"] == (
        "office")
    rule = {"direction": "ingress", "remote_address_group_id": ag["id"]}
    for who in ("bob", "carol"):
        sg = cloud[who].create("security_group", "security-groups", name="sg")
        r = cloud[who].post("/v2.0/security-group-rules", {"security_group_rule": {
            **rule, "security_group_id": sg["id"]}})
        assert r.status == (201 if who == "bob" else 404), r.body
    assert_error(cloud["alice"].delete(f"{PATH}/{pol['id']}"), 409, type="RbacPolicyInUse")


def test_a_subnet_pool_shared_with_a_project(cloud: Cloud) -> None:
    pool = cloud["alice"].create("subnetpool", "subnetpools", name="p",
                                 prefixes=["10.80.0.0/16"], default_prefixlen=24)
    where = f"/v2.0/subnetpools/{pool['id']}"
    assert cloud["bob"].get(where).status == 404
    pol = cloud.grant("alice", pool, "subnetpool", "bob")
    assert cloud["bob"].get(where)["subnetpool"]["shared"] is True
    assert cloud["alice"].get(where)["subnetpool"]["shared"] is False  # not to every project
    assert cloud["carol"].get(where).status == 404
    assert pool["id"] in cloud.ids("bob", "/v2.0/subnetpools", "subnetpools", shared="True")
    # bob takes a subnet from it; carol cannot name it
    for who in ("bob", "carol"):
        mine = cloud[who].network(name="n")
        r = cloud[who].post("/v2.0/subnets", {"subnet": {
            "network_id": mine["id"], "ip_version": 4, "subnetpool_id": pool["id"]}})
        assert r.status == (201 if who == "bob" else 404), r.body
    # while bob's subnet has its CIDR from it, the policy stays
    assert_error(cloud["alice"].delete(f"{PATH}/{pol['id']}"), 409, type="RbacPolicyInUse")
    assert cloud["bob"].put(where, {"subnetpool": {"name": "mine"}}).status == 403
    # seen through the grant, the pool's prefix actions are refused, not hidden
    for who, status in (("bob", 403), ("carol", 404)):
        assert cloud[who].put(f"{where}/add_prefixes", {"prefixes": ["10.90.0.0/16"]}
                              ).status == status


def test_a_pool_is_shared_only_with_projects_that_may_use_its_scope(cloud: Cloud) -> None:
    """Neutron's SubnetPool.validate_rbac_policy_create (a 400, nothing written)."""
    scope = cloud["ops"].create("address_scope", "address-scopes", name="s", ip_version=4)
    cloud.grant("ops", scope, "address_scope", "alice")
    pool = cloud["alice"].create("subnetpool", "subnetpools", name="p",
                                 prefixes=["10.80.0.0/16"], address_scope_id=scope["id"])
    before = dump(cloud.store)
    err = assert_error(cloud["alice"].post(PATH, body(pool, "subnetpool", "bob")), 400,
                       type="InvalidInput")
    assert err["message"] == (f"Invalid input for operation: Failed to create RBAC policy on "
                              f"object {pool['id']} because target project doesn't have access "
                              "to associated address scope.")
    assert_error(cloud["ops"].post(PATH, body(pool, "subnetpool", "*")), 400,
                 "doesn't have access to associated address scope")
    assert dump(cloud.store) == before
    # the scope's owner is no exception; and only the caller's own policies on the
    # scope count for a member (Neutron's query hooks): ops sharing the scope with bob
    # does not let alice share her pool with him, nor tell her whom ops shares it with
    assert_error(cloud["alice"].post(PATH, body(pool, "subnetpool", "ops")), 400,
                 "doesn't have access to associated address scope")
    cloud.grant("ops", scope, "address_scope", "bob")
    assert_error(cloud["alice"].post(PATH, body(pool, "subnetpool", "bob")), 400,
                 "doesn't have access to associated address scope")
    assert cloud["ops"].post(PATH, body(pool, "subnetpool", "bob")).status == 201  # an admin's
    # a pool in no scope, or in one shared with everyone, goes to anyone
    plain = cloud["alice"].create("subnetpool", "subnetpools", name="q",
                                  prefixes=["10.81.0.0/16"])
    assert cloud["alice"].post(PATH, body(plain, "subnetpool", "carol")).status == 201
    cloud["ops"].put(f"/v2.0/address-scopes/{scope['id']}", {"address_scope": {"shared": True}})
    assert cloud["alice"].post(PATH, body(pool, "subnetpool", "carol")).status == 201
    assert cloud["ops"].post(PATH, body(pool, "subnetpool", "*")).status == 201


def test_an_address_scope_shared_with_a_project(cloud: Cloud) -> None:
    scope = cloud["alice"].create("address_scope", "address-scopes", name="s", ip_version=4)
    where = f"/v2.0/address-scopes/{scope['id']}"
    pol = cloud.grant("alice", scope, "address_scope", "bob")
    assert cloud["bob"].get(where)["address_scope"]["shared"] is True
    assert cloud["carol"].get(where).status == 404
    for who in ("bob", "carol"):
        r = cloud[who].post("/v2.0/subnetpools", {"subnetpool": {
            "name": "p", "prefixes": [f"10.{81 + len(who)}.0.0/16"],
            "address_scope_id": scope["id"]}})
        assert r.status == (201 if who == "bob" else 404), r.body
    assert_error(cloud["alice"].delete(f"{PATH}/{pol['id']}"), 409, type="RbacPolicyInUse")
    # shared with everyone by its flag: the wildcard policy, which deleting the scope takes
    open_scope = cloud["ops"].create("address_scope", "address-scopes", name="o",
                                     ip_version=4, shared=True)
    wild = [p for p in cloud["ops"].get(PATH)["rbac_policies"]
            if p["object_id"] == open_scope["id"]]
    assert [p["target_tenant"] for p in wild] == ["*"]
    assert cloud["ops"].delete(f"/v2.0/address-scopes/{open_scope['id']}").status == 204
    assert cloud["ops"].get(f"{PATH}/{wild[0]['id']}").status == 404


def test_the_extensions(cloud: Cloud) -> None:
    for alias, name in (("rbac-policies", "RBAC Policies"),
                        ("rbac-security-groups", "Add security_group type to network RBAC"),
                        ("rbac-address-group", "Add address_group type to RBAC"),
                        ("rbac-subnetpool", "Add subnetpool type to RBAC"),
                        ("rbac-address-scope", "Add address_scope type to RBAC")):
        r = cloud["bob"].get(f"/v2.0/extensions/{alias}")
        assert r.status == 200 and r["extension"]["name"] == name, r.body


def test_projects_are_named_by_id(cloud: Cloud) -> None:
    """No identity service here: a client looking a project up (the openstack
    CLI's --target-project) is refused, and sends the name as the id."""
    for path in ("/v2.0/tenants", "/v2.0/tenants/alice"):
        assert_error(cloud["bob"].get(path), 403, "no identity service", type="HTTPForbidden")


def test_a_network_stored_before_policies_keeps_its_flags(cloud: Cloud) -> None:
    """A shared external network stored without its wildcard policies (as one
    written before RBAC policies existed): a policy made on it first makes
    them, so a project's own grant takes nothing from the others."""
    old = Network(id="6f0e7a9c-0000-4000-8000-0000000000cc", project_id="ops", name="old",
                  shared=True, router_external=True)
    cloud.store.put(keys.obj("network", old.id), json.dumps(old.to_stored()).encode())
    cloud.grant("ops", {"id": old.id}, "network", "bob", EXTERNAL)
    policies = cloud["ops"].get(PATH, params={"object_id": old.id})["rbac_policies"]
    assert sorted((p["action"], p["target_tenant"]) for p in policies) == [
        (EXTERNAL, "*"), (EXTERNAL, "bob"), (SHARED, "*")]
    shown = cloud["carol"].get(f"/v2.0/networks/{old.id}")
    assert shown.status == 200, shown.body
    assert (shown["network"]["shared"], shown["network"]["router:external"]) == (True, True)
