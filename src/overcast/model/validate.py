"""Invariants of the logical model, each returning every problem with its path.

These checks see whole objects and their neighbours (the subnets of a network,
the rules of a group).  Field syntax (is this a CIDR at all) is checked here
too, so that the API and any other writer share one definition.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from overcast.model import ipam
from overcast.model.problems import Problem
from overcast.model.types import Network, Port, SecurityGroupRule, Subnet

NETWORK_TYPES = ("vxlan", "local", "flat")
# Neutron's protocol names (neutron-lib's IP_PROTOCOL_MAP)
PROTOCOLS = {
    "tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "sctp": 132,
    "gre": 47, "esp": 50, "ah": 51, "igmp": 2, "ipip": 4, "ospf": 89, "vrrp": 112,
    "dccp": 33, "udplite": 136, "pgm": 113, "rsvp": 46, "egp": 8, "ip": 0,
    "hopopt": 0, "ipv6-encap": 41, "ipv6-route": 43, "ipv6-frag": 44, "ipv6-nonxt": 59,
    "ipv6-opts": 60,
}
# protocols of IPv6 only (names and numbers): Neutron refuses them with ethertype IPv4
IPV6_PROTOCOLS = frozenset({"ipv6-icmp", "icmpv6", "ipv6-encap", "ipv6-route", "ipv6-frag",
                            "ipv6-nonxt", "ipv6-opts", "41", "43", "44", "58", "59", "60"})
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP_PROTOCOLS = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}


def parse_cidr(value: str, path: str, problems: list[Problem]) -> ipam.IPNetwork | None:
    try:
        loose = ipam.parse_network(value, strict=False)
    except (ValueError, TypeError):
        problems.append(Problem(path, f"'{value}' is not a valid IP subnet"))
        return None
    try:
        return ipam.parse_network(value, strict=True)
    except ValueError:
        problems.append(Problem(path, f"'{value}' has host bits set; did you mean '{loose}'?"))
        return None


def normalized_prefix(value: str) -> ipam.IPNetwork | None:
    """A security group rule's remote prefix as Neutron reads it: host bits are
    dropped (10.0.0.5/24 is 10.0.0.0/24) and a bare address is a /32 or /128."""
    try:
        return ipam.parse_network(value, strict=False)
    except (ValueError, TypeError):
        return None


def parse_ip(value: object, path: str, problems: list[Problem]) -> ipam.IPAddress | None:
    try:
        return ipam.parse_address(value)
    except ValueError:
        problems.append(Problem(path, f"'{value}' is not a valid IP address"))
        return None


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def check_mac(mac: str, path: str) -> list[Problem]:
    """A MAC in the canonical form (six octets of exactly two lower-case hex
    digits, colons: ``int("+1", 16)`` is 1, so ``:+1`` must not pass), neither
    all zeros nor all ones: neutron-lib's ``validate_mac_address`` takes a
    multicast MAC, and clients set one."""
    if not _MAC.fullmatch(mac) or mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
        return [Problem(path, f"'{mac}' is not a valid MAC address")]
    return []


def check_network(net: Network, vni_range: tuple[int, int]) -> list[Problem]:
    problems: list[Problem] = []
    if net.network_type not in NETWORK_TYPES:
        problems.append(Problem("network.provider:network_type",
                                f"'{net.network_type}' is not one of {', '.join(NETWORK_TYPES)}"))
    if net.network_type == "vxlan" and net.segmentation_id is not None:
        lo, hi = vni_range
        if not lo <= net.segmentation_id <= hi:
            problems.append(Problem("network.provider:segmentation_id",
                                    f"VNI {net.segmentation_id} is outside the range {lo}-{hi}"))
    if net.network_type == "local" and net.segmentation_id is not None:
        problems.append(Problem("network.provider:segmentation_id",
                                "a local network takes no segmentation id"))
    if net.network_type == "flat":  # as Neutron's type driver: a physical network, no segment
        if not net.physical_network:
            problems.append(Problem("network.provider:physical_network",
                                    "physical_network required for flat provider network"))
        if net.segmentation_id is not None:
            problems.append(Problem("network.provider:segmentation_id",
                                    "segmentation_id specified for flat provider network"))
    elif net.physical_network is not None:
        problems.append(Problem("network.provider:physical_network",
                                f"provider:physical_network specified for {net.network_type} "
                                "network"))
    if not 0 <= net.mtu <= 65535:  # below 68 only without subnets (the API's rule)
        problems.append(Problem("network.mtu", f"MTU {net.mtu} is outside 0-65535"))
    return problems


def check_subnet(subnet: Subnet, siblings: Iterable[Subnet]) -> list[Problem]:
    """A subnet on its own and against the other subnets of its network."""
    problems: list[Problem] = []
    net = parse_cidr(subnet.cidr, "subnet.cidr", problems)
    if net is None:
        return problems
    if net.version != subnet.ip_version:
        problems.append(Problem("subnet.ip_version",
                                f"cidr {subnet.cidr} is not IPv{subnet.ip_version}"))
        return problems
    if net.prefixlen == 0:
        # Neutron's rule too: a /0 is every address (dnsmasq cannot serve it)
        problems.append(Problem("subnet.cidr", f"{net}: 0 is not allowed as CIDR prefix length"))
        return problems
    gateway = None
    if subnet.gateway_ip is not None:
        gateway = parse_ip(subnet.gateway_ip, "subnet.gateway_ip", problems)
        problems += _check_gateway(net, gateway)
    problems += _check_pools(subnet, net, gateway)
    problems += _check_extras(subnet)
    problems += _check_ipv6_modes(subnet, net)
    for other in siblings:
        if other.id == subnet.id:
            continue
        other_net = ipaddress.ip_network(other.cidr)
        if other_net.version == net.version and other_net.overlaps(net):
            problems.append(Problem("subnet.cidr",
                                    f"{net} overlaps with subnet {other.id} ({other.cidr}) "
                                    "on the same network", "conflict"))
    return problems


def _check_gateway(net: ipam.IPNetwork, gateway: ipam.IPAddress | None) -> list[Problem]:
    """Neither (IPv4) the network nor the broadcast address of the subnet, as
    Neutron's ``check_gateway_invalid_in_subnet``, which takes a gateway outside
    the CIDR (an on-link route to it).  IPv6 has no broadcast and its network
    address is the subnet-router anycast, which Neutron accepts."""
    if gateway is None:
        return []
    if gateway.version != net.version:
        return [Problem("subnet.gateway_ip",
                        f"gateway {gateway} is not an IPv{net.version} address")]
    if net.version == 4 and net.prefixlen <= 30 and gateway in (net.network_address,
                                                                net.broadcast_address):
        return [Problem("subnet.gateway_ip",
                        f"gateway {gateway} is the network or broadcast address of {net}")]
    return []


IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")  # the host makes its address: EUI-64


def _check_ipv6_modes(subnet: Subnet, net: ipam.IPNetwork) -> list[Problem]:
    """Neutron's rules for ``ipv6_ra_mode``/``ipv6_address_mode``."""
    ra, addr = subnet.ipv6_ra_mode, subnet.ipv6_address_mode
    named = [(n, v) for n, v in (("ipv6_ra_mode", ra), ("ipv6_address_mode", addr))
             if v is not None]
    if not named:
        return []
    first = f"subnet.{named[0][0]}"
    if net.version == 4:
        return [Problem(f"subnet.{n}", f"{n} is not valid when ip_version is 4")
                for n, _ in named]
    problems = [Problem(f"subnet.{n}", f"'{v}' is not one of {', '.join(IPV6_MODES)}")
                for n, v in named if v not in IPV6_MODES]
    if ra is not None and addr is not None and ra != addr:
        problems.append(Problem("subnet.ipv6_address_mode",
                                f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                                f"'{addr}' is not valid: if both are set they must be equal"))
    if not subnet.enable_dhcp:
        problems.append(Problem(first, "ipv6_ra_mode or ipv6_address_mode cannot be set "
                                       "when enable_dhcp is false"))
    if any(v in AUTO_ADDRESS_MODES for _, v in named) and net.prefixlen != 64:
        problems.append(Problem(first, f"invalid CIDR {net} for IPv6 address mode "
                                       f"{named[0][1]}: EUI-64 addresses need a /64 prefix"))
    return problems


def _check_pools(subnet: Subnet, net: ipam.IPNetwork,
                 gateway: ipam.IPAddress | None) -> list[Problem]:
    problems: list[Problem] = []
    bounds: list[tuple[int, int, int]] = []
    lo, hi = ipam.usable_range(net)
    for i, pool in enumerate(subnet.allocation_pools):
        path = f"subnet.allocation_pools[{i}]"
        start = parse_ip(pool.start, path + ".start", problems)
        end = parse_ip(pool.end, path + ".end", problems)
        if start is None or end is None:
            continue
        if start not in net or end not in net:
            problems.append(Problem(path, f"pool {start}-{end} is not inside {net}"))
            continue
        if not (lo <= int(start) and int(end) <= hi):
            problems.append(Problem(path, f"pool {start}-{end} includes the network or "
                                          f"broadcast address of {net}"))
            continue
        if int(start) > int(end):
            problems.append(Problem(path, f"pool start {start} is after its end {end}"))
            continue
        if gateway is not None and int(start) <= int(gateway) <= int(end):
            problems.append(Problem(path, f"gateway {gateway} is inside pool {start}-{end}",
                                    "conflict"))
        bounds.append((int(start), int(end), i))
    bounds.sort()
    reach, reach_index = -1, -1  # the furthest end seen so far, and whose it is
    for lo, hi, i in bounds:
        if lo <= reach:
            problems.append(Problem(f"subnet.allocation_pools[{i}]",
                                    f"overlaps allocation_pools[{reach_index}]", "conflict"))
        if hi > reach:
            reach, reach_index = hi, i
    return problems


def _check_extras(subnet: Subnet) -> list[Problem]:
    problems: list[Problem] = []
    for i, server in enumerate(subnet.dns_nameservers):
        parse_ip(server, f"subnet.dns_nameservers[{i}]", problems)
    if len(set(subnet.dns_nameservers)) != len(subnet.dns_nameservers):
        problems.append(Problem("subnet.dns_nameservers", "duplicate nameserver"))
    for i, route in enumerate(subnet.host_routes):
        parse_cidr(route.destination, f"subnet.host_routes[{i}].destination", problems)
        parse_ip(route.nexthop, f"subnet.host_routes[{i}].nexthop", problems)
    return problems


def check_fixed_ip(ip: str, subnet: Subnet, path: str,
                   allow_gateway: bool = False) -> list[Problem]:
    """An explicitly requested address must be a usable host address of the subnet."""
    problems: list[Problem] = []
    addr = parse_ip(ip, path, problems)
    if addr is None:
        return problems
    net = ipaddress.ip_network(subnet.cidr)
    if addr not in net:
        return [Problem(path, f"{addr} is not inside subnet {subnet.id} ({subnet.cidr})")]
    lo, hi = ipam.usable_range(net)
    is_gateway = _same_address(addr, subnet.gateway_ip)
    if not lo <= int(addr) <= hi and not (allow_gateway and is_gateway):
        problems.append(Problem(path, f"{addr} is the network or broadcast address of {net}"))
    if not allow_gateway and is_gateway:
        problems.append(Problem(path, f"{addr} is the gateway of subnet {subnet.id}", "conflict"))
    return problems


def _same_address(addr: ipam.IPAddress, other: str | None) -> bool:
    try:
        return other is not None and ipaddress.ip_address(other) == addr
    except ValueError:
        return False


def check_port(port: Port, subnets: dict[str, Subnet]) -> list[Problem]:
    problems = check_mac(port.mac_address, "port.mac_address")
    seen: set[str] = set()
    for i, fip in enumerate(port.fixed_ips):
        path = f"port.fixed_ips[{i}]"
        subnet = subnets.get(fip.subnet_id)
        if subnet is None or subnet.network_id != port.network_id:
            problems.append(Problem(path + ".subnet_id",
                                    f"subnet {fip.subnet_id} is not on network {port.network_id}"))
            continue
        if fip.ip_address in seen:
            problems.append(Problem(path + ".ip_address", f"{fip.ip_address} is listed twice"))
        seen.add(fip.ip_address)
    for i, pair in enumerate(port.allowed_address_pairs):
        path = f"port.allowed_address_pairs[{i}]"
        if "/" in pair.ip_address:
            parse_cidr(pair.ip_address, path + ".ip_address", problems)
        else:
            parse_ip(pair.ip_address, path + ".ip_address", problems)
        if pair.mac_address:
            problems += check_mac(pair.mac_address, path + ".mac_address")
    return problems


def check_rule(rule: SecurityGroupRule, existing: Iterable[SecurityGroupRule]) -> list[Problem]:
    problems: list[Problem] = []
    proto = rule.protocol
    if rule.direction not in ("ingress", "egress"):
        problems.append(Problem("security_group_rule.direction",
                                f"'{rule.direction}' is not ingress or egress"))
    if rule.ethertype not in ("IPv4", "IPv6"):
        problems.append(Problem("security_group_rule.ethertype",
                                f"'{rule.ethertype}' is not IPv4 or IPv6"))
    if proto is not None and proto not in PROTOCOLS and not _proto_number(proto):
        problems.append(Problem("security_group_rule.protocol",
                                f"protocol '{proto}' is not supported; use a name "
                                f"({', '.join(sorted(PROTOCOLS))}) or a number 0-255"))
    problems += _check_rule_ports(rule)
    if rule.remote_ip_prefix is not None:
        net = normalized_prefix(rule.remote_ip_prefix)
        if net is None:
            problems.append(Problem("security_group_rule.remote_ip_prefix",
                                    f"'{rule.remote_ip_prefix}' is not a valid IP subnet"))
        if net is not None and f"IPv{net.version}" != rule.ethertype:
            problems.append(Problem("security_group_rule.remote_ip_prefix",
                                    f"{rule.remote_ip_prefix} does not match ethertype "
                                    f"{rule.ethertype}"))
    problems += _check_one_remote(rule)
    if not problems:
        problems += _check_duplicate(rule, existing)
    return problems


def _check_one_remote(rule: SecurityGroupRule) -> list[Problem]:
    """A rule's remote is a prefix, a security group or an address group: at most one."""
    given = [name for name, value in (("remote_ip_prefix", rule.remote_ip_prefix),
                                      ("remote_group_id", rule.remote_group_id),
                                      ("remote_address_group_id", rule.remote_address_group_id))
             if value is not None]
    if len(given) < 2:
        return []
    if rule.remote_address_group_id is None:
        return [Problem("security_group_rule.remote_group_id",
                        "remote_group_id and remote_ip_prefix are mutually exclusive")]
    return [Problem("security_group_rule.remote_address_group_id",
                    f"only one of remote_ip_prefix, remote_group_id and remote_address_group_id "
                    f"may be given ({' and '.join(given)} are)")]


def group_address(value: object, bare: bool = False) -> str:
    """One address of an address group as Neutron stores it: the network of
    the prefix (``10.0.0.5/24`` is ``10.0.0.0/24``).  A bare address (no
    ``/``) is a /32 or /128 only where Neutron takes one (``bare``: the
    add_addresses action); its create refuses it, recommending the prefix.
    ValueError naming the value if it is not an address or prefix."""
    try:
        net = ipam.parse_network(value, strict=False)
    except (ValueError, TypeError):
        raise ValueError(f"'{value}' is not a valid IP subnet") from None
    if not bare and "/" not in str(value):
        raise ValueError(f"'{value}' isn't a recognized IP subnet cidr, '{net}' is recommended")
    return str(net)


def _proto_number(proto: str) -> bool:
    return proto.isdigit() and 0 <= int(proto) <= 255


def _check_rule_ports(rule: SecurityGroupRule) -> list[Problem]:
    lo, hi, proto = rule.port_range_min, rule.port_range_max, rule.protocol
    path = "security_group_rule.port_range_min"
    if lo is None and hi is None:
        return []
    if proto is None:
        return [Problem(path, "a port range needs a protocol")]
    if proto in ICMP_PROTOCOLS:
        bad = [v for v in (lo, hi) if v is not None and not 0 <= v <= 255]
        return [Problem(path, f"ICMP type/code {bad[0]} is outside 0-255")] if bad else []
    if proto not in PORT_PROTOCOLS:
        return [Problem(path, f"protocol {proto} has no ports")]
    for name, value in (("min", lo), ("max", hi)):
        if value is not None and not 1 <= value <= 65535:
            return [Problem(f"security_group_rule.port_range_{name}",
                            f"port {value} is outside 1-65535")]
    if lo is not None and hi is not None and lo > hi:
        return [Problem(path, f"port_range_min {lo} is greater than port_range_max {hi}")]
    return []


def rule_key(r: SecurityGroupRule) -> tuple[object, ...]:
    """What makes two rules the same rule (Neutron's duplicate check)."""
    proto = r.protocol
    if proto is not None and proto in PROTOCOLS:
        proto = str(PROTOCOLS[proto])
    net = normalized_prefix(r.remote_ip_prefix) if r.remote_ip_prefix is not None else None
    prefix = str(net) if net is not None and net.prefixlen else None
    return (r.security_group_id, r.direction, r.ethertype, proto, r.port_range_min,
            r.port_range_max, prefix, r.remote_group_id, r.remote_address_group_id)


def _check_duplicate(rule: SecurityGroupRule,
                     existing: Iterable[SecurityGroupRule]) -> list[Problem]:
    key = rule_key(rule)
    for other in existing:
        if other.id != rule.id and rule_key(other) == key:
            return [Problem("security_group_rule",
                            f"a rule like this already exists: {other.id}", "conflict")]
    return []
