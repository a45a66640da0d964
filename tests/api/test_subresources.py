"""Tags, router interfaces, port bindings and agents (Api.handle, no HTTP)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from overcast.model import keys
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump


# tags ----------------------------------------------------------------------------
def test_tags_lifecycle(client: Direct, net: dict[str, Any]) -> None:
    base = f"/v2.0/networks/{net['id']}/tags"
    assert client.get(base).body == {"tags": []}
    r = client.put(base, {"tags": ["red", "blue", "red"]})
    assert r.status == 200 and r["tags"] == ["red", "blue"]
    assert client.get(base)["tags"] == ["red", "blue"]
    assert client.put(f"{base}/green").status == 201
    assert client.put(f"{base}/green").status == 201  # idempotent
    assert client.get(base)["tags"] == ["red", "blue", "green"]
    assert client.get(f"{base}/green").status == 204
    assert_error(client.get(f"{base}/black"), 404, "black", type="TagNotFound")
    assert client.delete(f"{base}/red").status == 204
    assert client.get(base)["tags"] == ["blue", "green"]
    assert_error(client.delete(f"{base}/red"), 404, "red", type="TagNotFound")
    shown = client.get(f"/v2.0/networks/{net['id']}")["network"]
    assert shown["tags"] == ["blue", "green"]
    assert client.delete(base).status == 204
    assert client.get(base)["tags"] == []


def test_tags_replace_validates(client: Direct, store: MemoryStore, net: dict[str, Any]) -> None:
    base = f"/v2.0/networks/{net['id']}/tags"
    before = dump(store)
    assert_error(client.put(base, {"tags": ["ok", "a,b"]}), 400, "a,b")
    assert_error(client.put(base, {"tags": "red"}), 400, "red")
    assert_error(client.put(base, {"labels": []}), 400, "tags")
    assert dump(store) == before


def test_tags_on_missing_object(client: Direct) -> None:
    assert_error(client.get("/v2.0/ports/nope/tags"), 404, "nope")
    assert_error(client.put("/v2.0/ports/nope/tags/x"), 404, "nope")


def test_tag_path_with_more_segments_is_not_a_tag(client: Direct, store: MemoryStore,
                                                  net: dict[str, Any]) -> None:
    # a tag "a/b" reaches the API as tags/a/b (the edge decodes %2F): it used to add "a"
    base = f"/v2.0/networks/{net['id']}/tags"
    before = dump(store)
    for method in ("GET", "PUT", "DELETE"):
        assert_error(client.call(method, f"{base}/a/b"), 404, "a/b")
    assert dump(store) == before
    assert client.get(base)["tags"] == []


def test_tag_filters(client: Direct) -> None:
    tagged = {
        "n1": ["a", "b"],
        "n2": ["a"],
        "n3": ["b", "c"],
        "n4": [],
    }
    ids = {}
    for name, tags in tagged.items():
        n = client.network(name=name)
        ids[name] = n["id"]
        if tags:
            assert client.put(f"/v2.0/networks/{n['id']}/tags", {"tags": tags}).status == 200

    def listed(*params: tuple[str, str]) -> list[str]:
        r = client.get("/v2.0/networks", params=list(params))
        assert r.status == 200, r.body
        return sorted(n["name"] for n in r["networks"])

    assert listed(("tags", "a")) == ["n1", "n2"]
    assert listed(("tags", "a,b")) == ["n1"]
    assert listed(("tags-any", "a,c")) == ["n1", "n2", "n3"]
    assert listed(("not-tags", "a,b")) == ["n2", "n3", "n4"]
    assert listed(("not-tags-any", "a,c")) == ["n4"]
    assert listed(("tags", "b"), ("not-tags", "c")) == ["n1"]


def test_tags_at_create(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    p = client.port(net["id"], tags=["vm", "web"])
    assert p["tags"] == ["vm", "web"]
    r = client.get("/v2.0/ports", params=[("tags", "web")])
    assert [x["id"] for x in r["ports"]] == [p["id"]]


# router interfaces ------------------------------------------------------------------
def test_router_interface_by_subnet(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    router = client.create("router", "routers", name="r1")
    action = f"/v2.0/routers/{router['id']}"
    r = client.put(f"{action}/add_router_interface", {"subnet_id": subnet["id"]})
    assert r.status == 200, r.body
    info = r.body
    assert info["id"] == router["id"] and info["subnet_id"] == subnet["id"]
    assert info["subnet_ids"] == [subnet["id"]] and info["network_id"] == net["id"]
    port = client.get(f"/v2.0/ports/{info['port_id']}")["port"]
    assert port["device_owner"] == "network:router_interface"
    assert port["device_id"] == router["id"]
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.0.0.1"}]
    listed = client.get("/v2.0/ports", params=[("device_id", router["id"])])["ports"]
    assert [p["id"] for p in listed] == [info["port_id"]]

    # twice on the same subnet: refused
    assert_error(client.put(f"{action}/add_router_interface", {"subnet_id": subnet["id"]}),
                 400, subnet["id"])
    # the interface port cannot be deleted directly, nor the router, nor the network
    assert_error(client.delete(f"/v2.0/ports/{info['port_id']}"), 409,
                 "network:router_interface")
    assert_error(client.delete(action), 409, router["id"], type="RouterInUse")
    assert_error(client.delete(f"/v2.0/networks/{net['id']}"), 409, net["id"],
                 type="NetworkInUse")

    r = client.put(f"{action}/remove_router_interface", {"subnet_id": subnet["id"]})
    assert r.status == 200 and r.body["port_id"] == info["port_id"]
    assert_error(client.get(f"/v2.0/ports/{info['port_id']}"), 404)
    assert_error(client.put(f"{action}/remove_router_interface", {"subnet_id": subnet["id"]}),
                 404, subnet["id"], type="RouterInterfaceNotFound")
    assert client.delete(action).status == 204


def test_router_interface_by_port(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    router = client.create("router", "routers", name="r1")
    action = f"/v2.0/routers/{router['id']}"
    port = client.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.254"}])
    r = client.put(f"{action}/add_router_interface", {"port_id": port["id"]})
    assert r.status == 200, r.body
    assert r.body["port_id"] == port["id"] and r.body["subnet_id"] == subnet["id"]
    adopted = client.get(f"/v2.0/ports/{port['id']}")["port"]
    assert adopted["device_owner"] == "network:router_interface"
    assert adopted["device_id"] == router["id"]
    assert adopted["fixed_ips"][0]["ip_address"] == "10.0.0.254"
    # another port on the same network cannot be added as well
    other = client.port(net["id"])
    assert_error(client.put(f"{action}/add_router_interface", {"port_id": other["id"]}), 400)

    r = client.put(f"{action}/remove_router_interface", {"port_id": port["id"]})
    assert r.status == 200 and r.body["port_id"] == port["id"]
    assert_error(client.get(f"/v2.0/ports/{port['id']}"), 404)


def test_router_interface_bad_requests(client: Direct, store: MemoryStore, net: dict[str, Any],
                                       subnet: dict[str, Any]) -> None:
    router = client.create("router", "routers", name="r1")
    action = f"/v2.0/routers/{router['id']}/add_router_interface"
    port = client.port(net["id"], device_id="vm-1", device_owner="compute:nova")
    before = dump(store)
    assert_error(client.put(action, {}), 400, "subnet_id", "port_id")
    assert_error(client.put(action, {"subnet_id": subnet["id"], "port_id": port["id"]}), 400)
    assert_error(client.put(action, {"subnet_id": "nope"}), 400, "nope", "not a valid UUID")
    assert_error(client.put(action, {"subnet_id": str(uuid.uuid4())}), 404, type="SubnetNotFound")
    assert_error(client.put(action, {"port_id": port["id"]}), 409, port["id"], type="PortInUse")
    assert_error(client.put("/v2.0/routers/nope/add_router_interface",
                            {"subnet_id": subnet["id"]}), 404, "nope")
    assert dump(store) == before


# port bindings -----------------------------------------------------------------------
def test_port_bindings_migration(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    p = client.port(net["id"], **{"binding:host_id": "host-a"})
    base = f"/v2.0/ports/{p['id']}/bindings"
    r = client.get(base)
    assert r.status == 200
    assert [(b["host"], b["status"]) for b in r["bindings"]] == [("host-a", "ACTIVE")]

    r = client.post(base, {"binding": {"host": "host-b"}})
    assert r.status == 201, r.body
    assert r["binding"]["host"] == "host-b" and r["binding"]["status"] == "INACTIVE"
    assert_error(client.post(base, {"binding": {"host": "host-b"}}), 409, "host-b",
                 type="PortBindingAlreadyExists")
    listed = {b["host"]: b["status"] for b in client.get(base)["bindings"]}
    assert listed == {"host-a": "ACTIVE", "host-b": "INACTIVE"}
    assert client.get(f"/v2.0/ports/{p['id']}")["port"]["binding:host_id"] == "host-a"

    r = client.put(f"{base}/host-b/activate")
    assert r.status == 200, r.body
    assert r["binding"]["host"] == "host-b" and r["binding"]["status"] == "ACTIVE"
    port = client.get(f"/v2.0/ports/{p['id']}")["port"]
    assert port["binding:host_id"] == "host-b"
    listed = {b["host"]: b["status"] for b in client.get(base)["bindings"]}
    assert listed == {"host-a": "INACTIVE", "host-b": "ACTIVE"}
    assert_error(client.put(f"{base}/host-b/activate"), 409, "host-b",
                 type="PortBindingAlreadyActive")
    assert_error(client.put(f"{base}/host-z/activate"), 404, "host-z",
                 type="PortBindingNotFound")

    assert client.delete(f"{base}/host-a").status == 204
    listed = {b["host"]: b["status"] for b in client.get(base)["bindings"]}
    assert listed == {"host-b": "ACTIVE"}
    assert_error(client.delete(f"{base}/host-a"), 404, "host-a", type="PortBindingNotFound")


def test_first_binding_of_unbound_port_is_active(client: Direct, net: dict[str, Any],
                                                subnet: dict[str, Any]) -> None:
    p = client.port(net["id"])
    base = f"/v2.0/ports/{p['id']}/bindings"
    assert client.get(base)["bindings"] == []
    r = client.post(base, {"binding": {"host": "host-a"}})
    assert r.status == 201 and r["binding"]["status"] == "ACTIVE"
    assert client.get(f"/v2.0/ports/{p['id']}")["port"]["binding:host_id"] == "host-a"


def test_binding_bad_requests(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    p = client.port(net["id"])
    base = f"/v2.0/ports/{p['id']}/bindings"
    assert_error(client.post(base, {"binding": {}}), 400, "host")
    assert_error(client.post(base, {"binding": {"host": "h", "colour": 1}}), 400, "colour")
    assert_error(client.post(base, {"binding": {"host": "h", "vnic_type": "warp"}}), 400,
                 "vnic_type", "warp")
    assert client.get(base).body == {"bindings": []}  # nothing was written
    assert_error(client.post("/v2.0/ports/nope/bindings", {"binding": {"host": "h"}}), 404,
                 "nope")


# agents --------------------------------------------------------------------------
def _register(store: MemoryStore, name: str, underlay: str, alive: bool) -> str:
    """Write what a host agent writes when it starts (see overcast.agent.liveness)."""
    import uuid

    host_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"overcast-agent.{name}"))
    record = {"id": host_id, "name": name, "host": name, "underlay_ip": underlay,
              "agent_type": "Overcast agent", "binary": "overcast-agent",
              "admin_state_up": True, "started_at": "2026-01-01T00:00:00Z",
              "heartbeat_timestamp": "2026-01-01T00:00:10Z", "features": {"vxlan": True}}
    store.put(keys.host(name), json.dumps(record).encode())
    if alive:
        lease = store.lease_grant(30)
        store.put(keys.alive(name), json.dumps({"host": name}).encode(), lease=lease)
    return host_id


def test_agents_list_registered_hosts(client: Direct, store: MemoryStore) -> None:
    assert client.get("/v2.0/agents").body == {"agents": []}
    a = _register(store, "hv1", "192.0.2.1", alive=True)
    b = _register(store, "hv2", "192.0.2.2", alive=False)
    r = client.get("/v2.0/agents")
    assert r.status == 200
    agents = {x["host"]: x for x in r["agents"]}
    assert set(agents) == {"hv1", "hv2"}
    assert agents["hv1"]["id"] == a and agents["hv2"]["id"] == b
    assert agents["hv1"]["alive"] is True and agents["hv2"]["alive"] is False
    assert agents["hv1"]["agent_type"] == "Overcast agent"
    assert agents["hv1"]["binary"] == "overcast-agent"
    assert agents["hv1"]["configurations"]["underlay_ip"] == "192.0.2.1"
    r = client.get("/v2.0/agents", params=[("host", "hv2")])
    assert [x["id"] for x in r["agents"]] == [b]
    one = client.get(f"/v2.0/agents/{a}")
    assert one.status == 200 and one["agent"]["host"] == "hv1"


def test_agent_admin_state_and_no_create(client: Direct, store: MemoryStore) -> None:
    a = _register(store, "hv1", "192.0.2.1", alive=True)
    r = client.put(f"/v2.0/agents/{a}", {"agent": {"admin_state_up": False}})
    assert r.status == 200 and r["agent"]["admin_state_up"] is False
    assert client.get(f"/v2.0/agents/{a}")["agent"]["admin_state_up"] is False
    assert_error(client.post("/v2.0/agents", {"agent": {"host": "x"}}), 405)
    assert_error(client.put(f"/v2.0/agents/{a}", {"agent": {"host": "other"}}), 400, "host")


def test_port_bound_to_registered_host_has_tap_vif(client: Direct, store: MemoryStore,
                                                   net: dict[str, Any], subnet: dict[str, Any]) -> None:
    _register(store, "hv1", "192.0.2.1", alive=True)
    bound = client.port(net["id"], **{"binding:host_id": "hv1"})
    assert bound["binding:vif_type"] == "tap"
    unknown = client.port(net["id"], **{"binding:host_id": "nowhere"})
    assert unknown["binding:vif_type"] == "binding_failed"
    assert client.port(net["id"])["binding:vif_type"] == "unbound"


@pytest.mark.parametrize("status", ["ACTIVE", "DOWN"])
def test_port_status_comes_from_agent(client: Direct, store: MemoryStore, net: dict[str, Any],
                                      subnet: dict[str, Any], status: str) -> None:
    _register(store, "hv1", "192.0.2.1", alive=True)
    p = client.port(net["id"], **{"binding:host_id": "hv1"})
    assert p["status"] == "DOWN"
    store.put(keys.port_status(p["id"]),
              json.dumps({"status": status, "host": "hv1", "revision": 1}).encode())
    assert client.get(f"/v2.0/ports/{p['id']}")["port"]["status"] == status


# QoS rules ------------------------------------------------------------------------
def test_qos_policy_rules(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    policy = client.create("policy", "qos/policies", name="gold")
    base = f"/v2.0/qos/policies/{policy['id']}/bandwidth_limit_rules"
    r = client.post(base, {"bandwidth_limit_rule": {"max_kbps": "10000",
                                                    "max_burst_kbps": 800}})
    assert r.status == 201, r.body
    rule = r["bandwidth_limit_rule"]
    assert rule["max_kbps"] == 10000 and rule["direction"] == "egress"
    assert_error(client.post(base, {"bandwidth_limit_rule": {"max_kbps": 5}}), 409,
                 "bandwidth_limit", rule["id"], type="QoSRulesConflict")
    assert client.post(base, {"bandwidth_limit_rule": {"max_kbps": 5,
                                                       "direction": "ingress"}}).status == 201
    assert_error(client.post(base, {"bandwidth_limit_rule": {"max_kbps": -1,
                                                             "direction": "ingress"}}),
                 400, "max_kbps", "-1")
    assert_error(client.post(base, {"bandwidth_limit_rule": {"max_kbps": 1,
                                                             "direction": "up"}}),
                 400, "direction", "up")
    listed = client.get(base)["bandwidth_limit_rules"]
    assert sorted(x["direction"] for x in listed) == ["egress", "ingress"]
    r = client.put(f"{base}/{rule['id']}", {"bandwidth_limit_rule": {"max_kbps": 20000}})
    assert r.status == 200 and r["bandwidth_limit_rule"]["max_kbps"] == 20000
    assert client.get(f"{base}/{rule['id']}")["bandwidth_limit_rule"]["max_kbps"] == 20000

    port = client.port(net["id"], qos_policy_id=policy["id"])
    assert port["qos_policy_id"] == policy["id"]
    assert_error(client.delete(f"/v2.0/qos/policies/{policy['id']}"), 409, port["id"])
    assert client.put(f"/v2.0/ports/{port['id']}", {"port": {"qos_policy_id": None}}).status \
        == 200
    assert client.delete(f"{base}/{rule['id']}").status == 204
    assert_error(client.get(f"{base}/{rule['id']}"), 404, rule["id"])
    assert client.delete(f"/v2.0/qos/policies/{policy['id']}").status == 204


# floating IPs ---------------------------------------------------------------------
def test_floating_ip_association(client: Direct, net: dict[str, Any], subnet: dict[str, Any]) -> None:
    ext = client.network(name="ext", **{"router:external": True})
    client.subnet(ext["id"], "203.0.113.0/24")
    vm = client.port(net["id"])
    fip = client.create("floatingip", "floatingips", floating_network_id=ext["id"])
    path = f"/v2.0/floatingips/{fip['id']}"
    # no router between the port's subnet and the external network yet
    r = client.put(path, {"floatingip": {"port_id": vm["id"]}})
    assert_error(r, 404, subnet["id"], type="ExternalGatewayForFloatingIPNotFound")
    router = client.create("router", "routers",
                           external_gateway_info={"network_id": ext["id"]})
    assert router["external_gateway_info"]["external_fixed_ips"]
    client.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    r = client.put(path, {"floatingip": {"port_id": vm["id"]}})
    assert r.status == 200, r.body
    assert r["floatingip"]["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]
    assert r["floatingip"]["router_id"] == router["id"]
    # the router's interface is needed by the floating IP
    assert_error(client.put(f"/v2.0/routers/{router['id']}/remove_router_interface",
                            {"subnet_id": subnet["id"]}), 409,
                 type="RouterInterfaceInUseByFloatingIP")
    # deleting the port disassociates
    assert client.delete(f"/v2.0/ports/{vm['id']}").status == 204
    shown = client.get(path)["floatingip"]
    assert shown["port_id"] is None and shown["fixed_ip_address"] is None
    assert client.delete(path).status == 204
