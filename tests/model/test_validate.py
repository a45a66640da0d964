"""Model invariants on their own: every problem is returned, each with its path."""

from __future__ import annotations

from overcast.model import ipam, validate
from overcast.model.problems import Problem
from overcast.model.types import AllocationPool, Network, Port, SecurityGroupRule, Subnet


def _subnet(**kw: object) -> Subnet:
    base: dict[str, object] = {"id": "s1", "network_id": "n1", "cidr": "10.0.0.0/24",
                               "gateway_ip": "10.0.0.1"}
    base.update(kw)
    return Subnet(**base)  # type: ignore[arg-type]


def test_every_problem_of_a_subnet_is_reported_with_its_path() -> None:
    subnet = _subnet(allocation_pools=(AllocationPool("10.0.0.1", "10.0.0.9"),
                                       AllocationPool("10.0.0.5", "10.0.0.20"),
                                       AllocationPool("10.0.1.1", "10.0.1.5")),
                     dns_nameservers=("8.8.8.8", "not-an-ip"))
    paths = sorted(p.path for p in validate.check_subnet(subnet, []))
    assert paths == ["subnet.allocation_pools[0]", "subnet.allocation_pools[1]",
                     "subnet.allocation_pools[2]", "subnet.dns_nameservers[1]"]


def test_host_bits_and_malformed_cidrs_name_the_value() -> None:
    (host_bits,) = validate.check_subnet(_subnet(cidr="10.0.0.1/24"), [])
    assert "10.0.0.1/24" in host_bits.message and "10.0.0.0/24" in host_bits.message
    (bad,) = validate.check_subnet(_subnet(cidr="10.0.0.0/33"), [])
    assert bad.path == "subnet.cidr" and "10.0.0.0/33" in bad.message


def test_overlapping_subnets_on_one_network_conflict() -> None:
    other = _subnet(id="s0", cidr="10.0.0.0/16", gateway_ip=None)
    problems = validate.check_subnet(_subnet(), [other])
    assert [(p.path, p.kind) for p in problems] == [("subnet.cidr", "conflict")]


def test_fixed_ip_must_be_a_usable_host_address_of_the_subnet() -> None:
    subnet = _subnet()
    assert validate.check_fixed_ip("10.0.0.5", subnet, "ip") == []
    assert validate.check_fixed_ip("10.0.1.5", subnet, "ip")[0].message.startswith("10.0.1.5")
    assert validate.check_fixed_ip("10.0.0.255", subnet, "ip")  # broadcast
    assert validate.check_fixed_ip("10.0.0.1", subnet, "ip")[0].kind == "conflict"  # gateway
    assert validate.check_fixed_ip("10.0.0.1", subnet, "ip", allow_gateway=True) == []


def test_macs_are_neutron_libs() -> None:
    assert validate.check_mac("fa:16:3e:00:00:01", "m") == []
    assert validate.check_mac("01:00:5e:00:00:01", "m") == []  # multicast: neutron-lib takes it
    assert validate.check_mac("00:00:00:00:00:00", "m")
    assert validate.check_mac("zz:16:3e:00:00:01", "m")
    port = Port(id="p", network_id="n1", mac_address="ff:ff:ff:ff:ff:ff")
    assert [p.path for p in validate.check_port(port, {})] == ["port.mac_address"]


def test_vni_range_and_network_type() -> None:
    net = Network(id="n", network_type="vxlan", segmentation_id=5000)
    assert validate.check_network(net, (1, 4000))[0].path == "network.provider:segmentation_id"
    assert validate.check_network(net.replace(network_type="gre"), (1, 9000))


def test_rules_port_ranges_protocols_ethertypes_and_duplicates() -> None:
    rule = SecurityGroupRule(id="r1", security_group_id="g", protocol="tcp",
                             port_range_min=80, port_range_max=22)
    assert "greater" in validate.check_rule(rule, [])[0].message
    assert validate.check_rule(rule.replace(protocol="bogus", port_range_min=None,
                                            port_range_max=None), [])
    v6 = rule.replace(port_range_min=22, port_range_max=22, remote_ip_prefix="::/0")
    assert "does not match ethertype" in validate.check_rule(v6, [])[0].message
    ok = rule.replace(port_range_min=22, port_range_max=22)
    dup = validate.check_rule(ok.replace(id="r2", protocol="6"), [ok])
    assert dup and dup[0].kind == "conflict"


def test_ipv6_extension_header_names_are_protocols() -> None:
    names = ("hopopt", "ipv6-route", "ipv6-frag", "ipv6-nonxt", "ipv6-opts", "ipv6-encap")
    for name, number in zip(names, ("0", "43", "44", "59", "60", "41"), strict=True):
        rule = SecurityGroupRule(id="r1", security_group_id="g", ethertype="IPv6", protocol=name)
        assert validate.check_rule(rule, []) == []
        dup = validate.check_rule(rule.replace(id="r2", protocol=number), [rule])
        assert [p.kind for p in dup] == ["conflict"], name


def test_default_pools_leave_out_the_gateway() -> None:
    import ipaddress

    pools = ipam.default_pools(ipaddress.ip_network("10.0.0.0/29"), "10.0.0.1")
    assert pools == [AllocationPool("10.0.0.2", "10.0.0.6")]
    assert ipam.first_free(pools, {"10.0.0.2", "10.0.0.3"}, 4) == "10.0.0.4"
    assert ipam.first_free(pools, {f"10.0.0.{i}" for i in range(2, 7)}, 4) is None


# issue 7 ----------------------------------------------------------------------------------
def test_addresses_and_networks_take_no_zone() -> None:
    for text in ("2001:db8::1%eth0", "fe80::1%0"):
        problems: list[Problem] = []
        assert validate.parse_ip(text, "x", problems) is None and problems
    assert validate.normalized_prefix("2001:db8::%eth0/64") is None
    assert str(ipam.parse_address("2001:DB8::0:1")) == "2001:db8::1"


def test_ipv6_defaults_are_ipv6_addresses() -> None:
    net = ipam.parse_network("::/64")
    assert ipam.default_gateway(net) == "::1"
    assert ipam.default_pools(net, "::1") == [AllocationPool("::2", "::ffff:ffff:ffff:ffff")]


def test_a_mac_octet_is_exactly_two_hex_digits() -> None:
    for mac in ("fa:16:3e:00:00:+1", "fa:16:3e:00:00:-1", "fa:16:3e:00:00: 1", "fa:16:3e:0x:00:01"):
        assert [p.path for p in validate.check_mac(mac, "port.mac_address")] == ["port.mac_address"]
    assert validate.check_mac("fa:16:3e:00:00:01", "m") == []


def test_subnet_address_rules() -> None:
    def paths(**kw: object) -> list[str]:
        return [p.path for p in validate.check_subnet(_subnet(**kw), [])]
    assert paths(cidr="0.0.0.0/0", gateway_ip=None) == ["subnet.cidr"]
    assert paths(gateway_ip="10.0.0.0") == ["subnet.gateway_ip"]
    assert paths(gateway_ip="10.0.0.255") == ["subnet.gateway_ip"]
    assert paths(gateway_ip=None, allocation_pools=(AllocationPool("10.0.0.0", "10.0.0.9"),)) \
        == ["subnet.allocation_pools[0]"]
    v6 = {"cidr": "2001:db8::/64", "ip_version": 6, "gateway_ip": "2001:db8::"}
    assert paths(**v6) == []  # the subnet-router anycast may be the gateway
    assert paths(ipv6_ra_mode="slaac") == ["subnet.ipv6_ra_mode"]  # on IPv4
    assert paths(**v6, ipv6_ra_mode="slaac", ipv6_address_mode="dhcpv6-stateful") \
        == ["subnet.ipv6_address_mode"]
    assert paths(**{**v6, "cidr": "2001:db8::/80"}, ipv6_address_mode="slaac") \
        == ["subnet.ipv6_address_mode"]
    assert paths(**v6, ipv6_address_mode="slaac", enable_dhcp=False) \
        == ["subnet.ipv6_address_mode"]
