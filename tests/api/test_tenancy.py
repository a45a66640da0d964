"""Issue 7's tenancy holes, each as an attacker tried it: alice and bob are
members of two projects, carol owns a shared network, ops is the admin."""

from __future__ import annotations

import json
from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.model import keys
from overcast.model.types import Host
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump


class Cloud:
    def __init__(self) -> None:
        self.store = MemoryStore()
        api = Api(self.store, auth=Auth({"t-ops": Context("ops", True),
                                         "t-alice": Context("alice", False),
                                         "t-bob": Context("bob", False),
                                         "t-carol": Context("carol", False)}))
        self.ops, self.alice, self.bob, self.carol = (Direct(api, f"t-{n}")
                                                      for n in ("ops", "alice", "bob", "carol"))
        # the operator's external network
        self.public = self.ops.network(name="public", **{"router:external": True})
        self.public_sub = self.ops.subnet(self.public["id"], "203.0.113.0/24")
        # bob's network, subnet and router with a gateway
        self.b_net = self.bob.network(name="b")
        self.b_sub = self.bob.subnet(self.b_net["id"], "10.2.0.0/24")
        self.b_router = self.bob.create("router", "routers", name="br",
                                        external_gateway_info={"network_id": self.public["id"]})
        # alice's network and subnet
        self.a_net = self.alice.network(name="a")
        self.a_sub = self.alice.subnet(self.a_net["id"], "10.1.0.0/24")
        # carol's network, shared by the operator
        self.s_net = self.ops.network(name="s", project_id="carol", shared=True)
        self.s_sub = self.ops.subnet(self.s_net["id"], "172.16.0.0/24", project_id="carol")


@pytest.fixture
def cloud() -> Cloud:
    return Cloud()


def _port(c: Direct, **attrs: Any) -> Any:
    return c.post("/v2.0/ports", {"port": attrs})


# 1 ------------------------------------------------------------------------------
@pytest.mark.parametrize("owner", ["network:router_interface", "network:router_gateway"])
def test_a_port_never_joins_another_projects_router(cloud: Cloud, owner: str) -> None:
    before = dump(cloud.store)
    r = _port(cloud.alice, network_id=cloud.a_net["id"], device_owner=owner,
              device_id=cloud.b_router["id"])
    assert_error(r, 403, cloud.b_router["id"], type="DeviceIDNotOwnedByTenant")
    assert dump(cloud.store) == before
    # nor by an update of a port she has
    mine = cloud.alice.port(cloud.a_net["id"])
    r = cloud.alice.put(f"/v2.0/ports/{mine['id']}", {"port": {
        "device_owner": owner, "device_id": cloud.b_router["id"]}})
    assert_error(r, 403, type="DeviceIDNotOwnedByTenant")
    # a router of her own is fine
    a_router = cloud.alice.create("router", "routers", name="ar")
    assert _port(cloud.alice, network_id=cloud.a_net["id"], device_owner=owner,
                 device_id=a_router["id"]).status == 201
    # and bob still deletes his router: nothing of alice's holds it
    cloud.bob.put(f"/v2.0/routers/{cloud.b_router['id']}",
                  {"router": {"external_gateway_info": None}})
    assert cloud.bob.delete(f"/v2.0/routers/{cloud.b_router['id']}").status == 204


# 2 ------------------------------------------------------------------------------
SHARED_NET_PRIVILEGES = [
    ("device_owner network:dhcp", {"device_owner": "network:dhcp"}),
    ("device_owner network:router_interface", {"device_owner": "network:router_interface"}),
    ("the gateway address", {"fixed_ips": [{"ip_address": "172.16.0.1"}]}),
    ("an address of her choice", {"fixed_ips": [{"ip_address": "172.16.0.50"}]}),
    ("a MAC of her choice", {"mac_address": "fa:16:3e:12:34:56"}),
    ("port security off", {"port_security_enabled": False}),
    ("address pair 0.0.0.0/0", {"allowed_address_pairs": [{"ip_address": "0.0.0.0/0"}]}),
]


@pytest.mark.parametrize("what,attrs", SHARED_NET_PRIVILEGES, ids=[w for w, _ in
                                                                    SHARED_NET_PRIVILEGES])
def test_on_a_shared_network_only_its_owner_acts_for_it(cloud: Cloud, what: str,
                                                        attrs: dict[str, Any]) -> None:
    before = dump(cloud.store)
    r = _port(cloud.alice, network_id=cloud.s_net["id"], **attrs)
    assert_error(r, 403, type="PolicyNotAuthorized")
    assert dump(cloud.store) == before
    # an ordinary port there is alice's to make
    assert _port(cloud.alice, network_id=cloud.s_net["id"]).status == 201
    # the owner may (the gateway is a router's to take)
    if what != "the gateway address":
        extra: dict[str, Any] = ({"security_groups": []} if "port_security_enabled" in attrs
                                 else {})
        r = _port(cloud.carol, network_id=cloud.s_net["id"], **attrs, **extra)
        assert r.status == 201, r.body


def test_the_owner_keeps_the_gateway_of_a_shared_subnet(cloud: Cloud) -> None:
    router = cloud.carol.create("router", "routers", name="cr")
    r = cloud.carol.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                        {"subnet_id": cloud.s_sub["id"]})
    assert r.status == 200, r.body


# 3 ------------------------------------------------------------------------------
ADMIN_ONLY = [
    ("POST", "/v2.0/networks", "network", {"router:external": True}, "create_network:router:external"),
    ("POST", "/v2.0/networks", "network", {"shared": True}, "create_network:shared"),
    ("PUT", "{a_net}", "network", {"router:external": True}, "update_network:router:external"),
    ("PUT", "{a_net}", "network", {"shared": True}, "update_network:shared"),
    ("POST", "/v2.0/qos/policies", "policy", {"name": "q"}, "create_policy"),
    ("POST", "/v2.0/qos/policies", "policy", {"shared": True}, "create_policy"),
    ("POST", "/v2.0/qos/policies", "policy", {"is_default": True}, "create_policy"),
    ("PUT", "{a_port}", "port", {"mac_address": "fa:16:3e:00:00:77"}, "update_port:mac_address"),
    ("POST", "/v2.0/routers", "router", {"external_gateway_info": {
        "network_id": "{public}", "external_fixed_ips": [{"ip_address": "203.0.113.77"}]}},
     "create_router:external_gateway_info:external_fixed_ips"),
    ("POST", "/v2.0/routers", "router", {"external_gateway_info": {
        "network_id": "{public}", "enable_snat": False}},
     "create_router:external_gateway_info:enable_snat"),
    ("PUT", "{a_router}", "router", {"external_gateway_info": {
        "network_id": "{public}", "enable_snat": False}},
     "update_router:external_gateway_info:enable_snat"),
    ("POST", "/v2.0/floatingips", "floatingip", {"floating_network_id": "{public}",
                                                 "floating_ip_address": "203.0.113.99"},
     "create_floatingip:floating_ip_address"),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize("method,path,member,attrs,rule", ADMIN_ONLY,
                         ids=[f"{i}:{a[-1]}" for i, a in enumerate(ADMIN_ONLY)])
def test_members_cannot_set_what_is_the_operators(cloud: Cloud, method: str, path: str,
                                                  member: str, attrs: dict[str, Any],
                                                  rule: str) -> None:
    a_port = cloud.alice.port(cloud.a_net["id"])
    a_router = cloud.alice.create("router", "routers", name="ar")
    paths = {"a_net": f"/v2.0/networks/{cloud.a_net['id']}", "a_port": f"/v2.0/ports/{a_port['id']}",
             "a_router": f"/v2.0/routers/{a_router['id']}"}
    url = paths[path[1:-1]] if path.startswith("{") else path
    body = {member: _fill(attrs, {"public": cloud.public["id"]})}
    before = dump(cloud.store)
    r = cloud.alice.call(method, url, body)
    assert_error(r, 403, rule, type="PolicyNotAuthorized")
    assert dump(cloud.store) == before
    r = cloud.ops.call(method, url, body)  # the operator may
    assert r.status in (200, 201), r.body


# 4 ------------------------------------------------------------------------------
def test_another_projects_private_qos_policy_is_not_found(cloud: Cloud) -> None:
    private = cloud.ops.create("policy", "qos/policies", name="bobs", project_id="bob")
    shared = cloud.ops.create("policy", "qos/policies", name="all", shared=True)
    before = dump(cloud.store)
    assert_error(_port(cloud.alice, network_id=cloud.a_net["id"],
                       qos_policy_id=private["id"]), 404, private["id"])
    assert_error(cloud.alice.post("/v2.0/networks", {"network": {
        "qos_policy_id": private["id"]}}), 404, private["id"])
    assert_error(cloud.alice.put(f"/v2.0/networks/{cloud.a_net['id']}", {"network": {
        "qos_policy_id": private["id"]}}), 404, private["id"])
    assert dump(cloud.store) == before
    # a shared one is there for everyone
    port = _port(cloud.alice, network_id=cloud.a_net["id"], qos_policy_id=shared["id"])
    assert port.status == 201, port.body
    # and the operator's delete of a policy in use names only what it may see
    r = cloud.ops.delete(f"/v2.0/qos/policies/{shared['id']}")
    assert_error(r, 409, port.body["port"]["id"], type="QosPolicyInUse")


# 5 ------------------------------------------------------------------------------
def test_members_see_external_networks(cloud: Cloud) -> None:
    r = cloud.alice.get(f"/v2.0/networks/{cloud.public['id']}")
    assert r.status == 200 and r.body["network"]["router:external"] is True
    listed = cloud.alice.get("/v2.0/networks", params={"name": "public"}).body["networks"]
    assert [n["id"] for n in listed] == [cloud.public["id"]]
    fip = cloud.alice.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": cloud.public["id"]}})
    assert fip.status == 201, fip.body
    # seeing it is not owning it
    assert_error(cloud.alice.delete(f"/v2.0/networks/{cloud.public['id']}"), 403,
                 type="PolicyNotAuthorized")
    assert_error(cloud.alice.post("/v2.0/subnets", {"subnet": {
        "network_id": cloud.public["id"], "cidr": "198.51.100.0/24"}}), 403)


def test_a_floating_ip_goes_to_a_port_of_its_project(cloud: Cloud) -> None:
    """Neutron's _internal_fip_assoc_data (neutron-tempest-plugin's
    test_associate_floating_ip_with_port_from_another_project): another
    project's port on the member's own network, which Neutron shows the
    network's owner, is a 400; one on a network the caller does not own stays
    a 404; an admin may associate across projects."""
    cloud.bob.put(f"/v2.0/routers/{cloud.b_router['id']}/add_router_interface",
                  {"subnet_id": cloud.b_sub["id"]})
    daves = cloud.ops.port(cloud.b_net["id"], project_id="dave")
    fip = cloud.bob.create("floatingip", "floatingips", floating_network_id=cloud.public["id"])
    path = f"/v2.0/floatingips/{fip['id']}"
    words = (f"Bad floatingip request: Cannot process floating IP association with Port "
             f"{daves['id']}, since that port is owned by a different tenant.")
    before = dump(cloud.store)
    assert_error(cloud.bob.put(path, {"floatingip": {"port_id": daves["id"]}}), 400, words,
                 type="BadRequest")
    assert_error(cloud.bob.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": cloud.public["id"], "port_id": daves["id"]}}), 400, words,
        type="BadRequest")
    assert dump(cloud.store) == before
    alices = cloud.alice.create("floatingip", "floatingips",
                                floating_network_id=cloud.public["id"])
    before = dump(cloud.store)
    assert_error(cloud.alice.put(f"/v2.0/floatingips/{alices['id']}", {"floatingip": {
        "port_id": daves["id"]}}), 404, daves["id"], type="PortNotFound")
    assert dump(cloud.store) == before
    r = cloud.ops.put(path, {"floatingip": {"port_id": daves["id"]}})
    assert r.status == 200 and r["floatingip"]["port_id"] == daves["id"]


# 6 ------------------------------------------------------------------------------
def test_errors_do_not_tell_what_another_project_has(cloud: Cloud) -> None:
    unknown = "6f0e7a9c-0000-4000-8000-00000000dead"
    fip_on = {net: cloud.alice.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": net}}) for net in (cloud.b_net["id"], unknown)}
    for net, r in fip_on.items():
        assert_error(r, 404, net, type="NetworkNotFound")
    # a chosen id: the same 403 whether bob's network has it or not
    taken = cloud.alice.post("/v2.0/networks", {"network": {"id": cloud.b_net["id"]}})
    fresh = cloud.alice.post("/v2.0/networks", {"network": {"id": unknown}})
    assert taken.status == fresh.status == 403
    assert taken.body == fresh.body
    # un-sharing names nobody
    _port(cloud.alice, network_id=cloud.s_net["id"])
    r = cloud.ops.put(f"/v2.0/networks/{cloud.s_net['id']}", {"network": {"shared": False}})
    assert_error(r, 409, type="InvalidSharedSetting")
    assert "alice" not in str(r.body)
    # carol's subnet in use by alice's port: carol is not told alice's port id
    alices = _port(cloud.alice, network_id=cloud.s_net["id"]).body["port"]
    r = cloud.carol.delete(f"/v2.0/subnets/{cloud.s_sub['id']}")
    assert_error(r, 409, type="SubnetInUse")
    assert alices["id"] not in str(r.body)


# 10 (the router part) -------------------------------------------------------------
def test_a_gateway_without_its_network_is_a_400(cloud: Cloud) -> None:
    before = dump(cloud.store)
    r = cloud.bob.post("/v2.0/routers", {"router": {"external_gateway_info": {
        "enable_snat": True}}})
    assert_error(r, 400, "external_gateway_info", "network_id")
    r = cloud.bob.put(f"/v2.0/routers/{cloud.b_router['id']}", {"router": {
        "external_gateway_info": {"external_fixed_ips": []}}})
    assert_error(r, 400, "external_gateway_info", "network_id")
    assert dump(cloud.store) == before
    # {} clears the gateway, as the openstack CLI sends it
    r = cloud.bob.put(f"/v2.0/routers/{cloud.b_router['id']}", {"router": {
        "external_gateway_info": {}}})
    assert r.status == 200 and r.body["router"]["external_gateway_info"] is None


# 17 -----------------------------------------------------------------------------
def test_an_admin_forgets_an_agent(cloud: Cloud) -> None:
    host = Host(id="h9", host="h9", underlay_ip="198.18.0.9")
    cloud.store.put(keys.host("h9"), json.dumps(host.to_stored()).encode())
    assert cloud.alice.get("/v2.0/agents/h9").status == 404  # members see no agents
    assert_error(cloud.alice.delete("/v2.0/agents/h9"), 404)
    assert cloud.ops.get("/v2.0/agents/h9").status == 200
    assert cloud.ops.delete("/v2.0/agents/h9").status == 204
    assert cloud.ops.get("/v2.0/agents/h9").status == 404
    assert "h9" not in {a["id"] for a in cloud.ops.get("/v2.0/agents").body["agents"]}


# found by review -------------------------------------------------------------------
def test_members_may_ask_for_the_defaults(cloud: Cloud) -> None:
    """`openstack network create --no-share --internal` sends the defaults: nothing
    privileged is asked for, so the admin-only rules do not apply."""
    r = cloud.alice.post("/v2.0/networks", {"network": {"shared": False,
                                                        "router:external": False}})
    assert r.status == 201, r.body
    r = cloud.alice.post("/v2.0/routers", {"router": {"ha": False}})
    assert r.status == 201, r.body


def test_a_router_interface_on_a_shared_network_is_its_owners(cloud: Cloud) -> None:
    a_router = cloud.alice.create("router", "routers", name="ar")
    mine = cloud.alice.port(cloud.s_net["id"])
    before = dump(cloud.store)
    path = f"/v2.0/routers/{a_router['id']}/add_router_interface"
    assert_error(cloud.alice.put(path, {"port_id": mine["id"]}), 403,
                 "update_port:device_owner", type="PolicyNotAuthorized")
    assert_error(cloud.alice.put(path, {"subnet_id": cloud.s_sub["id"]}), 403,
                 "create_port:device_owner", type="PolicyNotAuthorized")
    assert dump(cloud.store) == before
    # on her own network both work
    own = cloud.alice.port(cloud.a_net["id"])
    assert cloud.alice.put(path, {"port_id": own["id"]}).status == 200
    b_path = f"/v2.0/routers/{cloud.b_router['id']}/add_router_interface"
    assert cloud.bob.put(b_path, {"subnet_id": cloud.b_sub["id"]}).status == 200


def test_a_route_needs_one_of_the_routers_own_ports(cloud: Cloud) -> None:
    # alice names bob's router as the device of an ordinary port on her network
    r = _port(cloud.alice, network_id=cloud.a_net["id"], device_owner="compute:nova",
              device_id=cloud.b_router["id"])
    assert r.status == 201
    r = cloud.bob.put(f"/v2.0/routers/{cloud.b_router['id']}", {"router": {
        "routes": [{"destination": "192.0.2.0/24", "nexthop": "10.1.0.50"}]}})
    assert_error(r, 400, "nexthop is not connected")


def test_tags_follow_the_update_rules(cloud: Cloud) -> None:
    q = cloud.ops.create("policy", "qos/policies", name="q", project_id="alice")
    assert_error(cloud.alice.put(f"/v2.0/qos/policies/{q['id']}/tags", {"tags": ["x"]}),
                 403, "update_policy", type="PolicyNotAuthorized")
    assert_error(cloud.alice.put(f"/v2.0/qos/policies/{q['id']}/tags/x"), 403,
                 type="PolicyNotAuthorized")
    # a subnet of carol's network is hers to tag, by either path
    sub = cloud.ops.subnet(cloud.s_net["id"], "172.17.0.0/24", project_id="alice")
    assert cloud.carol.put(f"/v2.0/subnets/{sub['id']}/tags/c").status == 201
    assert_error(cloud.alice.put(f"/v2.0/subnets/{sub['id']}/tags/a"), 403)


def test_a_qos_rule_of_another_policy_is_not_found_alike(cloud: Cloud) -> None:
    shared = cloud.ops.create("policy", "qos/policies", name="all", shared=True)
    private = cloud.ops.create("policy", "qos/policies", name="bobs", project_id="bob")
    rule = cloud.ops.post(f"/v2.0/qos/policies/{private['id']}/bandwidth_limit_rules",
                          {"bandwidth_limit_rule": {"max_kbps": 100}}).body
    base = f"/v2.0/qos/policies/{shared['id']}/bandwidth_limit_rules"
    bobs = cloud.alice.get(f"{base}/{rule['bandwidth_limit_rule']['id']}")
    none = cloud.alice.get(f"{base}/6f0e7a9c-0000-4000-8000-00000000beef")
    assert bobs.status == none.status == 404
    assert bobs.body["NeutronError"]["type"] == none.body["NeutronError"]["type"]


def test_in_use_errors_name_only_what_the_caller_sees(cloud: Cloud) -> None:
    alices = _port(cloud.alice, network_id=cloud.s_net["id"]).body["port"]
    taken = alices["fixed_ips"][0]["ip_address"]
    cloud.carol.put(f"/v2.0/subnets/{cloud.s_sub['id']}", {"subnet": {
        "allocation_pools": [{"start": "172.16.0.200", "end": "172.16.0.250"}]}})
    r = cloud.carol.put(f"/v2.0/subnets/{cloud.s_sub['id']}", {"subnet": {"gateway_ip": taken}})
    assert_error(r, 409, type="GatewayConflictWithAllocationPools")
    assert alices["id"] not in str(r.body)
    group = cloud.bob.create("security_group", "security-groups", name="g")
    cloud.ops.port(cloud.s_net["id"], project_id="alice", security_groups=[group["id"]])
    r = cloud.bob.delete(f"/v2.0/security-groups/{group['id']}")
    assert_error(r, 409, type="SecurityGroupInUse")
    assert "port" not in r.body["NeutronError"]["message"].split("in use")[1]


def test_a_binding_host_is_a_clean_string(cloud: Cloud) -> None:
    port = cloud.ops.port(cloud.a_net["id"])
    before = dump(cloud.store)
    r = cloud.ops.post(f"/v2.0/ports/{port['id']}/bindings", {"binding": {"host": "h\u0000x"}})
    assert_error(r, 400, "host")
    assert dump(cloud.store) == before


def test_an_id_in_a_path_in_any_spelling(cloud: Cloud) -> None:
    upper = cloud.a_net["id"].upper()
    r = cloud.alice.get(f"/v2.0/networks/{upper}")
    assert r.status == 200 and r.body["network"]["id"] == cloud.a_net["id"]
