"""What ``overcast router|floating ip|network qos|network agent ...`` send."""

from __future__ import annotations

import pytest

from .conftest import Run, World
from .fake_neutron import FakeNeutron


@pytest.fixture
def world(fake: FakeNeutron) -> World:
    ext = fake.add("networks", name="public", **{"router:external": True})
    net = fake.add("networks", name="blue")
    return {
        "ext": ext,
        "net": net,
        "subnet": fake.add("subnets", name="blue-v4", network_id=net["id"]),
        "router": fake.add("routers", name="r1", routes=[]),
        "port": fake.add("ports", name="vm1-eth0", network_id=net["id"]),
    }


def test_router_create_with_gateway(overcast: Run, fake: FakeNeutron, world: World) -> None:
    assert overcast("router", "create", "r2", "--external-gateway", "public",
                    "--disable-snat").code == 0
    assert fake.writes()[0].body == {"router": {
        "name": "r2",
        "external_gateway_info": {"network_id": world["ext"]["id"], "enable_snat": False},
    }}


def test_router_set_gateway_and_routes(overcast: Run, fake: FakeNeutron, world: World) -> None:
    rid = world["router"]["id"]
    overcast("router", "set", "r1", "--external-gateway", "public",
             "--route", "destination=10.9.0.0/16,gateway=10.0.0.254")
    assert fake.writes()[-1].path == f"/v2.0/routers/{rid}"
    assert fake.writes()[-1].body == {"router": {
        "external_gateway_info": {"network_id": world["ext"]["id"]},
        "routes": [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"}],
    }}
    overcast("router", "set", "r1", "--no-route")
    assert fake.writes()[-1].body == {"router": {"routes": []}}
    overcast("router", "unset", "--external-gateway", "r1")
    assert fake.writes()[-1].body == {"router": {"external_gateway_info": {}}}


def test_router_snat_without_gateway_is_an_error(overcast: Run, fake: FakeNeutron,
                                                 world: World) -> None:
    result = overcast("router", "set", "r1", "--enable-snat")
    assert result.code == 1 and "need --external-gateway" in result.err
    assert fake.writes() == []


@pytest.mark.parametrize(
    ("words", "action", "key", "target"),
    [
        (["add", "subnet"], "add_router_interface", "subnet_id", "subnet"),
        (["remove", "subnet"], "remove_router_interface", "subnet_id", "subnet"),
        (["add", "port"], "add_router_interface", "port_id", "port"),
        (["remove", "port"], "remove_router_interface", "port_id", "port"),
    ],
)
def test_router_interfaces(overcast: Run, fake: FakeNeutron, world: World, words: list[str],
                           action: str, key: str, target: str) -> None:
    name = world[target]["name"]
    assert overcast("router", *words, "r1", name).code == 0
    (put,) = fake.writes()
    assert put.method == "PUT"
    assert put.path == f"/v2.0/routers/{world['router']['id']}/{action}"
    assert put.body == {key: world[target]["id"]}


def test_floating_ip_lifecycle(overcast: Run, fake: FakeNeutron, world: World) -> None:
    created = overcast("floating", "ip", "create", "public", "--port", "vm1-eth0",
                       "--floating-ip-address", "203.0.113.10", "-f", "json")
    assert created.code == 0, created.err
    assert fake.writes()[0].path == "/v2.0/floatingips"
    assert fake.writes()[0].body == {"floatingip": {
        "floating_network_id": world["ext"]["id"], "port_id": world["port"]["id"],
        "floating_ip_address": "203.0.113.10",
    }}
    fip_id = created.json()["id"]
    shown = overcast("floating", "ip", "show", "203.0.113.10", "-f", "value", "-c", "id")
    assert shown.out.strip() == fip_id
    overcast("floating", "ip", "unset", "--port", "203.0.113.10")
    assert fake.writes()[-1].body == {"floatingip": {"port_id": None}}
    overcast("floating", "ip", "set", "--port", "vm1-eth0", fip_id)
    assert fake.writes()[-1].body == {"floatingip": {"port_id": world["port"]["id"]}}
    listing = overcast("floating", "ip", "list", "--network", "public")
    assert "203.0.113.10" in listing.out
    assert overcast("floating", "ip", "delete", "203.0.113.10").code == 0
    assert fake.objects["floatingips"] == {}


def test_qos_policy_and_rules(overcast: Run, fake: FakeNeutron) -> None:
    assert overcast("network", "qos", "policy", "create", "gold", "--share").code == 0
    assert fake.writes()[0].path == "/v2.0/qos/policies"
    assert fake.writes()[0].body == {"policy": {"name": "gold", "shared": True}}
    pid = next(iter(fake.objects["qos/policies"]))
    rule = overcast("network", "qos", "rule", "create", "--type", "bandwidth-limit",
                    "--max-kbps", "10000", "--max-burst-kbits", "800", "--ingress", "gold",
                    "-f", "json")
    assert rule.code == 0, rule.err
    assert fake.writes()[-1].path == f"/v2.0/qos/policies/{pid}/bandwidth_limit_rules"
    assert fake.writes()[-1].body == {"bandwidth_limit_rule": {
        "max_kbps": 10000, "max_burst_kbps": 800, "direction": "ingress"}}
    rid = rule.json()["id"]
    listing = overcast("network", "qos", "rule", "list", "gold", "-f", "json").json()
    assert [(r["ID"], r["Max Kbps"], r["Type"]) for r in listing] == [
        (rid, 10000, "bandwidth_limit")]
    assert overcast("network", "qos", "rule", "set", "gold", rid, "--max-kbps", "5000").code == 0
    assert fake.writes()[-1].method == "PUT"
    assert fake.writes()[-1].body == {"bandwidth_limit_rule": {"max_kbps": 5000}}
    assert overcast("network", "qos", "rule", "delete", "gold", rid).code == 0
    assert fake.writes()[-1].path.endswith(f"/bandwidth_limit_rules/{rid}")
    missing = overcast("network", "qos", "rule", "show", "gold", rid)
    assert missing.code == 1 and "No qos rule found" in missing.err


def test_network_agents(overcast: Run, fake: FakeNeutron) -> None:
    agent = fake.add("agents", host="hv1", agent_type="Overcast agent", alive=True,
                     admin_state_up=True, binary="overcast-agent")
    listing = overcast("network", "agent", "list")
    assert fake.sent[-1].path == "/v2.0/agents"
    assert ":-)" in listing.out and "hv1" in listing.out
    shown = overcast("network", "agent", "show", "hv1", "-f", "json")
    assert shown.json()["id"] == agent["id"]


def test_network_agent_set(overcast: Run, fake: FakeNeutron) -> None:
    agent = fake.add("agents", host="hv1", admin_state_up=True)
    assert overcast("network", "agent", "set", "--disable", "hv1").code == 0
    assert fake.writes()[-1].path == f"/v2.0/agents/{agent['id']}"
    assert fake.writes()[-1].body == {"agent": {"admin_state_up": False}}


def test_router_show_lists_interfaces(overcast: Run, fake: FakeNeutron, world: World) -> None:
    rid = world["router"]["id"]
    iface = fake.add("ports", device_id=rid, device_owner="network:router_interface",
                     fixed_ips=[{"subnet_id": "s1", "ip_address": "10.0.0.1"}])
    fake.add("ports", device_id=rid, device_owner="network:router_gateway",
             fixed_ips=[{"subnet_id": "pub", "ip_address": "203.0.113.5"}])
    shown = overcast("router", "show", "r1", "-f", "json").json()
    assert fake.sent[-1].params == {"device_id": rid}
    assert shown["interfaces_info"] == [
        {"port_id": iface["id"], "ip_address": "10.0.0.1", "subnet_id": "s1"}]
