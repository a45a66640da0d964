"""Security groups, rules and address pairs refused and stored as Neutron does:
the status, Neutron's error type and a message naming the field (what the
`openstack` CLI shows its user, tests/clients/test_openstack_security.py)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Direct, assert_error, dump


@pytest.fixture
def sg(client: Direct) -> dict[str, Any]:
    return client.create("security_group", "security-groups", name="web")


def rule(client: Direct, sg: dict[str, Any], **attrs: Any) -> Any:
    return client.post("/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", **attrs}})


def test_the_name_default_is_reserved(client: Direct, sg: dict[str, Any]) -> None:
    client.get("/v2.0/security-groups")  # makes the project's default group
    before = dump(client.api.store)
    for name in ("default", "Default"):
        r = client.post("/v2.0/security-groups", {"security_group": {"name": name}})
        assert_error(r, 409, "Default security group already exists", f"name '{name}'",
                     type="SecurityGroupDefaultAlreadyExists")
        r = client.put(f"/v2.0/security-groups/{sg['id']}", {"security_group": {"name": name}})
        assert_error(r, 409, f"name '{name}'", type="SecurityGroupDefaultAlreadyExists")
    assert dump(client.api.store) == before
    groups = client.get("/v2.0/security-groups", params={"name": "default"})["security_groups"]
    assert len(groups) == 1
    # the default group itself keeps its name and can be described
    r = client.put(f"/v2.0/security-groups/{groups[0]['id']}",
                   {"security_group": {"name": "default", "description": "mine"}})
    assert r.status == 200 and r["security_group"]["description"] == "mine"


RANGE = "For TCP/UDP protocols, port_range_min must be <= port_range_max"  # Neutron's words


@pytest.mark.parametrize(("attrs", "words", "type_"), [
    ({"protocol": "47", "port_range_min": 22, "port_range_max": 22},
     ("port_range_min", "47"), "SecurityGroupInvalidProtocolForPort"),
    ({"port_range_min": 22, "port_range_max": 22},
     ("port_range_min", "protocol"), "SecurityGroupProtocolRequiredWithPorts"),
    ({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
     ("port_range_min", RANGE), "SecurityGroupInvalidPortRange"),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 0},
     ("port_range_min", "Invalid value for port 0."), "SecurityGroupInvalidPortValue"),
    ({"protocol": "tcp", "port_range_min": 22},
     ("port_range_max", RANGE), "SecurityGroupInvalidPortRange"),
    ({"protocol": "udp", "port_range_max": 53},
     ("port_range_min", RANGE), "SecurityGroupInvalidPortRange"),
    ({"protocol": "icmp", "port_range_max": 3},
     ("port_range_min", "ICMP code (port-range-max) 3 is provided but ICMP type "
      "(port-range-min) is missing."), "SecurityGroupMissingIcmpType"),
    ({"protocol": "icmp", "port_range_min": 300},
     ("port_range_min", "Invalid value for ICMP type (port_range_min) 300. It must be 0 to 255."),
     "SecurityGroupInvalidIcmpValue"),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"},
     ("remote_ip_prefix", "Conflicting value ethertype IPv6 for CIDR 10.0.0.0/8"),
     "SecurityGroupRuleParameterConflict"),
    ({"ethertype": "IPv4", "protocol": "ipv6-icmp"},
     ("ethertype", "IPv4", "ipv6-icmp"), "SecurityGroupEthertypeConflictWithProtocol"),
    ({"ethertype": "IPv4", "protocol": "58"},
     ("ethertype", "IPv4", "58"), "SecurityGroupEthertypeConflictWithProtocol"),
    ({"protocol": "bogus"}, ("protocol", "bogus"), "SecurityGroupRuleInvalidProtocol"),
])
def test_rule_refusals_have_neutrons_type(client: Direct, sg: dict[str, Any],
                                          attrs: dict[str, Any], words: tuple[str, ...],
                                          type_: str) -> None:
    before = dump(client.api.store)
    assert_error(rule(client, sg, **attrs), 400, *words, type=type_)
    assert dump(client.api.store) == before


@pytest.mark.parametrize(("protocol", "lo", "hi", "words", "type_"), [
    ("tcp", -16, 80, ("port_range_min", "Invalid value for port -16."),
     "SecurityGroupInvalidPortValue"),
    ("tcp", 80, 79, (RANGE,), "SecurityGroupInvalidPortRange"),
    ("tcp", 80, 65536, ("port_range_max", "Invalid value for port 65536."),
     "SecurityGroupInvalidPortValue"),
    ("tcp", None, 6, (RANGE,), "SecurityGroupInvalidPortRange"),
    ("tcp", -16, 65536, ("Invalid value for port -16.",), "SecurityGroupInvalidPortValue"),
    ("icmp", 1, 256, ("port_range_max", "Invalid value for ICMP code (port_range_max) 256."),
     "SecurityGroupInvalidIcmpValue"),
    ("icmp", -1, 25, ("Invalid value for port -1.",), "SecurityGroupInvalidPortValue"),
    ("icmp", None, 6, ("ICMP type (port-range-min) is missing",), "SecurityGroupMissingIcmpType"),
    ("icmp", 300, 1, ("Invalid value for ICMP type (port_range_min) 300.",),
     "SecurityGroupInvalidIcmpValue"),
    (None, 70000, None, ("Invalid value for port 70000.",), "SecurityGroupInvalidPortValue"),
])
def test_port_refusals_in_neutrons_words(client: Direct, sg: dict[str, Any], protocol: str | None,
                                         lo: int | None, hi: int | None, words: tuple[str, ...],
                                         type_: str) -> None:
    """tempest's test_create_security_group_rule_with_invalid_ports matches
    these texts; a value outside 0-65535 is Neutron's port converter's refusal
    whatever the protocol (-1 for ICMP too)."""
    r = rule(client, sg, protocol=protocol, port_range_min=lo, port_range_max=hi)
    assert_error(r, 400, *words, type=type_)


@pytest.mark.parametrize(("ethertype", "prefix"), [("IPv6", "10.100.0.0/16"),
                                                   ("IPv4", "2001:db8::/48")])
def test_prefix_of_the_other_family(client: Direct, sg: dict[str, Any], ethertype: str,
                                    prefix: str) -> None:
    r = rule(client, sg, protocol="tcp", ethertype=ethertype, remote_ip_prefix=prefix)
    assert_error(r, 400, f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                 type="SecurityGroupRuleParameterConflict")


EXTENSION_HEADERS = ("hopopt", "ipv6-route", "ipv6-frag", "ipv6-nonxt", "ipv6-opts", "ipv6-encap")


@pytest.mark.parametrize(("name", "number"),
                         list(zip(EXTENSION_HEADERS, ("0", "43", "44", "59", "60", "41"), strict=True)))
def test_ipv6_extension_header_protocols_are_rules_of_ipv6(client: Direct, sg: dict[str, Any],
                                                           name: str, number: str) -> None:
    """The names the openstack CLI offers, stored as given, and their numbers;
    each spelling a duplicate of the other; with ethertype IPv4 refused as
    Neutron does (except hopopt, 0: Neutron's 'any')."""
    made = rule(client, sg, ethertype="IPv6", protocol=name)
    assert made.status == 201, made.body
    assert made["security_group_rule"]["protocol"] == name
    assert_error(rule(client, sg, ethertype="IPv6", protocol=number), 409,
                 made["security_group_rule"]["id"], type="SecurityGroupRuleExists")
    v4 = rule(client, sg, ethertype="IPv4", protocol=name)
    if name == "hopopt":
        assert v4.status == 201, v4.body
    else:
        assert_error(v4, 400, "ethertype", "IPv4", name,
                     type="SecurityGroupEthertypeConflictWithProtocol")


def test_remote_group_with_remote_prefix(client: Direct, sg: dict[str, Any]) -> None:
    r = rule(client, sg, remote_group_id=sg["id"], remote_ip_prefix="10.0.0.0/8")
    assert_error(r, 400, "remote_group_id", "remote_ip_prefix",
                 type="SecurityGroupRemoteGroupAndRemoteIpPrefix")


def test_icmp_type_without_code_is_a_rule(client: Direct, sg: dict[str, Any]) -> None:
    r = rule(client, sg, protocol="icmp", port_range_min=8)
    assert r.status == 201
    assert (r["security_group_rule"]["port_range_min"],
            r["security_group_rule"]["port_range_max"]) == (8, None)


def test_ipv6_icmp_spelled_the_legacy_ways(client: Direct, sg: dict[str, Any]) -> None:
    """With ethertype IPv6, Neutron stores 'icmp' and 'icmpv6' as 'ipv6-icmp' and 1 as
    58; each legacy spelling is then a duplicate of the canonical rule."""
    made = rule(client, sg, ethertype="IPv6", protocol="icmp", port_range_min=128)
    assert made.status == 201, made.body
    assert made["security_group_rule"]["protocol"] == "ipv6-icmp"
    rid = made["security_group_rule"]["id"]
    for proto in ("icmpv6", "ipv6-icmp", "58", "1"):
        r = rule(client, sg, ethertype="IPv6", protocol=proto, port_range_min=128)
        assert_error(r, 409, rid, type="SecurityGroupRuleExists")
    r = rule(client, sg, ethertype="IPv6", protocol="1")
    assert r.status == 201 and r["security_group_rule"]["protocol"] == "58"
    # IPv4 ICMP stays icmp
    r = rule(client, sg, ethertype="IPv4", protocol="icmp")
    assert r.status == 201 and r["security_group_rule"]["protocol"] == "icmp"


def test_address_pair_without_mac_has_the_ports(client: Direct, net: dict[str, Any],
                                                subnet: dict[str, Any]) -> None:
    port = client.port(net["id"], allowed_address_pairs=[
        {"ip_address": "10.0.0.50"},
        {"ip_address": "10.0.0.0/28", "mac_address": "fa:16:3e:00:00:01"}])
    mac = port["mac_address"]
    assert port["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.50", "mac_address": mac},
        {"ip_address": "10.0.0.0/28", "mac_address": "fa:16:3e:00:00:01"}]
    shown = client.get(f"/v2.0/ports/{port['id']}")["port"]
    assert shown["allowed_address_pairs"] == port["allowed_address_pairs"]
    # what `openstack port set --allowed-address` sends: the pairs it read, plus one
    pairs = [*shown["allowed_address_pairs"], {"ip_address": "2001:db8::5"}]
    r = client.put(f"/v2.0/ports/{port['id']}", {"port": {"allowed_address_pairs": pairs}})
    assert r.status == 200, r.body
    assert r["port"]["allowed_address_pairs"][-1] == {"ip_address": "2001:db8::5",
                                                       "mac_address": mac}


def test_duplicate_address_pair(client: Direct, net: dict[str, Any],
                                subnet: dict[str, Any]) -> None:
    before = dump(client.api.store)
    r = client.post("/v2.0/ports", {"port": {"network_id": net["id"], "allowed_address_pairs": [
        {"ip_address": "10.0.0.60"}, {"ip_address": "10.0.0.60"}]}})
    assert_error(r, 400, "allowed_address_pairs", "duplicate", "10.0.0.60",
                 type="DuplicateAddressPairInRequest")
    assert dump(client.api.store) == before
    port = client.port(net["id"], allowed_address_pairs=[{"ip_address": "10.0.0.60"}])
    # the same pair spelled with the port's own MAC is the same pair
    r = client.put(f"/v2.0/ports/{port['id']}", {"port": {"allowed_address_pairs": [
        {"ip_address": "10.0.0.60"},
        {"ip_address": "10.0.0.60", "mac_address": port["mac_address"].upper()}]}})
    assert_error(r, 400, "duplicate", type="DuplicateAddressPairInRequest")
