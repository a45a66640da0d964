"""What ``overcast port ...`` and ``overcast security group [rule] ...`` send."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Run, World
from .fake_neutron import FakeNeutron


@pytest.fixture
def world(fake: FakeNeutron) -> World:
    net = fake.add("networks", name="blue")
    return {
        "net": net,
        "subnet": fake.add("subnets", name="blue-v4", network_id=net["id"]),
        "web": fake.add("security-groups", name="web"),
        "db": fake.add("security-groups", name="db"),
        "gold": fake.add("qos/policies", name="gold"),
    }


def test_port_create_resolves_names(overcast: Run, fake: FakeNeutron, world: World) -> None:
    result = overcast(
        "port", "create", "vm1-eth0", "--network", "blue",
        "--fixed-ip", "subnet=blue-v4,ip-address=10.0.0.5", "--mac-address", "fa:16:3e:00:00:01",
        "--device", "vm1", "--device-owner", "compute:nova", "--host", "hv1",
        "--security-group", "web", "--security-group", world["db"]["id"],
        "--allowed-address", "ip-address=10.0.0.100", "--dns-name", "vm1",
        "--qos-policy", "gold", "-f", "json",
    )
    assert result.code == 0, result.err
    assert fake.writes()[0].body == {"port": {
        "network_id": world["net"]["id"], "name": "vm1-eth0",
        "fixed_ips": [{"subnet_id": world["subnet"]["id"], "ip_address": "10.0.0.5"}],
        "mac_address": "fa:16:3e:00:00:01", "device_id": "vm1", "device_owner": "compute:nova",
        "binding:host_id": "hv1", "security_groups": [world["web"]["id"], world["db"]["id"]],
        "allowed_address_pairs": [{"ip_address": "10.0.0.100"}], "dns_name": "vm1",
        "qos_policy_id": world["gold"]["id"],
    }}


def test_port_create_without_security(overcast: Run, fake: FakeNeutron, world: World) -> None:
    overcast("port", "create", "p", "--network", "blue", "--no-security-group",
             "--disable-port-security")
    body = fake.writes()[0].body["port"]
    assert body["security_groups"] == [] and body["port_security_enabled"] is False


def test_port_list_filters(overcast: Run, fake: FakeNeutron, world: World) -> None:
    fake.add("ports", name="p1", network_id=world["net"]["id"], **{"binding:host_id": "hv1"},
             fixed_ips=[{"subnet_id": "s", "ip_address": "10.0.0.5"}], status="ACTIVE")
    fake.add("ports", name="p2", network_id="other", **{"binding:host_id": "hv2"})
    result = overcast("port", "list", "--network", "blue", "--host", "hv1")
    assert fake.sent[-1].params == {"network_id": world["net"]["id"], "binding:host_id": "hv1"}
    assert "p1" in result.out and "p2" not in result.out
    assert "ip_address='10.0.0.5', subnet_id='s'" in result.out


def test_port_set_adds_and_clears(overcast: Run, fake: FakeNeutron, world: World) -> None:
    port = fake.add("ports", name="p", security_groups=[world["web"]["id"]],
                    fixed_ips=[{"subnet_id": "s", "ip_address": "10.0.0.5"}])
    overcast("port", "set", "p", "--security-group", "db", "--host", "hv2", "--no-fixed-ip",
             "--fixed-ip", "ip-address=10.0.0.9")
    assert fake.writes()[-1].path == f"/v2.0/ports/{port['id']}"
    assert fake.writes()[-1].body == {"port": {
        "binding:host_id": "hv2", "fixed_ips": [{"ip_address": "10.0.0.9"}],
        "security_groups": [world["web"]["id"], world["db"]["id"]],
    }}
    overcast("port", "set", "p", "--no-security-group", "--no-qos-policy")
    assert fake.writes()[-1].body == {"port": {"security_groups": [], "qos_policy_id": None}}


def test_security_group_create_and_set(overcast: Run, fake: FakeNeutron) -> None:
    overcast("security", "group", "create", "web", "--description", "http")
    assert fake.writes()[0].body == {"security_group": {"name": "web", "description": "http"}}
    assert overcast("security", "group", "set", "web", "--name", "www").code == 0
    assert fake.writes()[-1].body == {"security_group": {"name": "www"}}
    assert fake.writes()[-1].path.startswith("/v2.0/security-groups/")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--protocol", "tcp", "--dst-port", "22"],
         {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
          "direction": "ingress", "ethertype": "IPv4", "remote_ip_prefix": "0.0.0.0/0"}),
        (["--protocol", "udp", "--dst-port", "1000:2000", "--egress", "--remote-ip", "fd00::/8"],
         {"protocol": "udp", "port_range_min": 1000, "port_range_max": 2000,
          "direction": "egress", "ethertype": "IPv6", "remote_ip_prefix": "fd00::/8"}),
        (["--protocol", "any", "--ethertype", "IPv6"],
         {"direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "::/0"}),
        (["--protocol", "icmp", "--icmp-type", "8"],
         {"protocol": "icmp", "port_range_min": 8, "direction": "ingress", "ethertype": "IPv4",
          "remote_ip_prefix": "0.0.0.0/0"}),
    ],
)
def test_rule_create(overcast: Run, fake: FakeNeutron, world: World, argv: list[str],
                     expected: dict[str, Any]) -> None:
    result = overcast("security", "group", "rule", "create", "web", *argv)
    assert result.code == 0, result.err
    assert fake.writes()[0].path == "/v2.0/security-group-rules"
    assert fake.writes()[0].body == {
        "security_group_rule": {"security_group_id": world["web"]["id"], **expected}
    }


def test_rule_remote_group_and_list(overcast: Run, fake: FakeNeutron, world: World) -> None:
    overcast("security", "group", "rule", "create", "db", "--protocol", "tcp",
             "--dst-port", "5432", "--remote-group", "web")
    body = fake.writes()[0].body["security_group_rule"]
    assert body["remote_group_id"] == world["web"]["id"] and "remote_ip_prefix" not in body
    result = overcast("security", "group", "rule", "list", "db", "-f", "json")
    assert fake.sent[-1].params == {"security_group_id": world["db"]["id"]}
    (row,) = result.json()
    assert row["Port Range"] == "5432:5432" and row["IP Protocol"] == "tcp"


def test_rule_bad_port_range_is_usage_error(overcast: Run, fake: FakeNeutron) -> None:
    result = overcast("security", "group", "rule", "create", "web", "--dst-port", "ssh")
    assert result.code == 2 and "expected PORT or MIN:MAX" in result.err


def test_security_group_show_lists_rules_one_per_line(overcast: Run, fake: FakeNeutron) -> None:
    fake.add("security-groups", name="web", security_group_rules=[
        {"id": "r1", "direction": "egress", "ethertype": "IPv4", "protocol": None,
         "security_group_id": "g", "created_at": "2026-01-01T00:00:00Z"},
        {"id": "r2", "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"},
    ])
    lines = overcast("security", "group", "show", "web").out.splitlines()
    rules = [line for line in lines if "direction=" in line]
    assert len(rules) == 2
    assert "| direction='egress', ethertype='IPv4', id='r1'" in rules[0]
    assert "port_range_max='22'" in rules[1] and "created_at" not in rules[0]
    raw = overcast("security", "group", "show", "web", "-f", "json").json()
    assert raw["security_group_rules"][0]["created_at"] == "2026-01-01T00:00:00Z"


def test_port_unset_removes_only_what_is_named(overcast: Run, fake: FakeNeutron,
                                                world: World) -> None:
    sid = world["subnet"]["id"]
    port = fake.add("ports", name="p", tags=["a", "b"],
                    security_groups=[world["web"]["id"], world["db"]["id"]],
                    fixed_ips=[{"subnet_id": sid, "ip_address": "10.0.0.5"},
                               {"subnet_id": sid, "ip_address": "10.0.0.6"}],
                    allowed_address_pairs=[{"ip_address": "10.0.0.100", "mac_address": "m"}])
    result = overcast("port", "unset", "p", "--security-group", "web", "--fixed-ip",
                      "ip-address=10.0.0.5", "--allowed-address", "ip-address=10.0.0.100",
                      "--qos-policy", "--host", "--tag", "a")
    assert result.code == 0, result.err
    put, tags = fake.writes()
    assert put.path == f"/v2.0/ports/{port['id']}"
    assert put.body == {"port": {
        "fixed_ips": [{"subnet_id": sid, "ip_address": "10.0.0.6"}],
        "security_groups": [world["db"]["id"]], "allowed_address_pairs": [],
        "qos_policy_id": None, "binding:host_id": "",
    }}
    assert tags.body == {"tags": ["b"]}
