"""What this host's DHCP server answers (``overcast.services.dhcp`` speaks
the protocol): one lease per local port with an IPv4 address on a subnet
with DHCP enabled.  Part of the plan, not of the kernel state (a lease is
answered, not kept in the kernel), so the agent hands the latest plan's
leases to its DHCP responder, as it does the routers' adverts.  The address
is the port's fixed IP: the API allocated it, so a lease survives any agent
restart and two ports never get the same address.  Pure data.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from overcast.model.types import Network, Port, Subnet

DEFAULT_DOMAIN = "openstacklocal"  # the API's default dns_domain (Neutron's too)
# the DHCP server's address (its server id) on every subnet: link-local, never a
# tenant's, reached on-link (a classless route of every lease) and answered by ARP on
# the VM's own tap (a unicast renewal goes to it); where the metadata service will be
SERVER_IP = "169.254.169.254"
SERVER_ROUTE = (f"{SERVER_IP}/32", "0.0.0.0")  # RFC 3442: next hop 0.0.0.0 is on-link
# the source MAC of the replies (they leave by the VM's own tap: never on a bridge)
SERVER_MAC = "fa:16:3f:00:00:01"
LEASE_TIME = 86400  # seconds; a changed address is NAKed at the next renewal


@dataclass(frozen=True, slots=True, order=True)
class Lease:
    """Port ``port_id`` on tap ``dev`` with MAC ``mac`` gets ``ip``/``prefixlen``
    and the rest of its subnet's and network's configuration.  ``routes``
    are the subnet's host routes (destination, next hop); ``extra`` its
    IPv4 extra DHCP options (name, value)."""

    dev: str
    port_id: str
    mac: str
    ip: str
    prefixlen: int
    server_ip: str
    router: str | None
    dns_servers: tuple[str, ...]
    domain: str
    host_name: str
    mtu: int
    routes: tuple[tuple[str, str], ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    lease_time: int = LEASE_TIME
    public: bool = False  # the port has a public name: its boots and releases are told


def host_name(port: Port, ip: str) -> str:
    """The port's dns_name, else the name Neutron (and the API's
    dns_assignment) generates from its address."""
    return port.dns_name or "host-" + ip.replace(".", "-").replace(":", "-")


def _served(ports: Iterable[Port], devices: Mapping[str, str],
            networks: Mapping[str, Network]) -> Iterator[tuple[Port, str, Network]]:
    """The local ports a DHCP server of this host answers: up, with their
    device here (``devices``: port id -> tap) and their network planned."""
    for port in ports:
        dev, net = devices.get(port.id), networks.get(port.network_id)
        if dev is not None and net is not None and port.admin_state_up:
            yield port, dev, net


def plan_leases(ports: Iterable[Port], devices: Mapping[str, str],
                networks: Mapping[str, Network], subnets: Iterable[Subnet],
                domain: str = DEFAULT_DOMAIN, resolver: str | None = None) -> tuple[Lease, ...]:
    """The leases of the local ports that have a device here (``devices``:
    port id -> tap), administratively up, with an IPv4 address on a
    DHCP-enabled subnet (the first such address: DHCPv4 gives one).
    ``resolver``: the DNS server of a subnet without dns_nameservers (the
    host's own, ``plan/services.py``; None: none)."""
    by_id = {s.id: s for s in subnets}
    out = []
    for port, dev, net in _served(ports, devices, networks):
        for fixed in port.fixed_ips:
            subnet = by_id.get(fixed.subnet_id)
            if subnet is not None and subnet.ip_version == 4 and subnet.enable_dhcp:
                out.append(_lease(port, dev, net, subnet, fixed.ip_address, domain, resolver))
                break
    return tuple(sorted(out))


def _v4(addresses: Iterable[str]) -> tuple[str, ...]:
    """The IPv4 ones (the API takes an IPv6 server on an IPv4 subnet; DHCPv4 cannot say it)."""
    return tuple(a for a in addresses if ipaddress.ip_address(a).version == 4)


def _gateway_on_link(gateway: str | None, cidr: ipaddress.IPv4Network) -> tuple[tuple[str, str], ...]:
    """A gateway outside the subnet (Neutron accepts one) is reached on the
    link: its host route comes before the default route through it, or the
    client cannot install that."""
    if not gateway or ipaddress.ip_address(gateway) in cidr:
        return ()
    return ((f"{gateway}/32", "0.0.0.0"),)


def _lease(port: Port, dev: str, net: Network, subnet: Subnet, ip: str, domain: str,
           resolver: str | None) -> Lease:
    cidr = ipaddress.IPv4Network(subnet.cidr, strict=False)
    return Lease(
        dev=dev, port_id=port.id, mac=port.mac_address.lower(), ip=ip, prefixlen=cidr.prefixlen,
        server_ip=SERVER_IP,
        router=subnet.gateway_ip or None,
        dns_servers=_v4(subnet.dns_nameservers) or ((resolver,) if resolver else ()),
        domain=(net.dns_domain or domain).rstrip("."),
        # a port with a public name is called by it (its public FQDN: metadata)
        host_name=port.public_hostname.split(".")[0] if port.public_hostname else host_name(port, ip),
        mtu=net.mtu,
        routes=(*_gateway_on_link(subnet.gateway_ip, cidr),
                *((r.destination, r.nexthop) for r in subnet.host_routes
                  if ipaddress.ip_network(r.destination, strict=False).version == 4),
                SERVER_ROUTE),
        extra=tuple((o.opt_name, o.opt_value) for o in port.extra_dhcp_opts
                    if o.ip_version == 4 and o.opt_value is not None),
        public=bool(port.public_hostname))


@dataclass(frozen=True, slots=True, order=True)
class Lease6:
    """What this host's DHCPv6 server answers for the port on tap ``dev``:
    its addresses on ``dhcpv6-stateful`` subnets (``stateful``), else only
    the other configuration (``dhcpv6-stateless``: addresses by SLAAC)."""

    dev: str
    port_id: str
    mac: str
    stateful: bool
    addresses: tuple[str, ...]
    dns_servers: tuple[str, ...]
    domain: str


DHCPV6_MODES = ("dhcpv6-stateful", "dhcpv6-stateless")


def plan_leases6(ports: Iterable[Port], devices: Mapping[str, str],
                 networks: Mapping[str, Network], subnets: Iterable[Subnet],
                 domain: str = DEFAULT_DOMAIN) -> tuple[Lease6, ...]:
    """The DHCPv6 leases of the local ports (up, with their device here) that
    have an address on an IPv6 subnet whose ``ipv6_address_mode`` is DHCPv6."""
    by_id = {s.id: s for s in subnets}
    out = []
    for port, dev, net in _served(ports, devices, networks):
        on = [(f, by_id[f.subnet_id]) for f in port.fixed_ips if f.subnet_id in by_id]
        dhcp6 = [(f, s) for f, s in on if s.ip_version == 6 and s.enable_dhcp
                 and s.ipv6_address_mode in DHCPV6_MODES]
        if not dhcp6:
            continue
        stateful = tuple(f.ip_address for f, s in dhcp6 if s.ipv6_address_mode == DHCPV6_MODES[0])
        servers = tuple(a for _, s in dhcp6 for a in s.dns_nameservers
                        if ipaddress.ip_address(a).version == 6)
        out.append(Lease6(dev, port.id, port.mac_address.lower(), bool(stateful), stateful,
                          tuple(dict.fromkeys(servers)), (net.dns_domain or domain).rstrip(".")))
    return tuple(sorted(out))
