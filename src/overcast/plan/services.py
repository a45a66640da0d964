"""Each network's services on a host: a namespace holding the DHCP server's
address, 169.254.169.254, on the network's bridge, where the agent answers
the network's DNS (and, next, its metadata) for the local VMs.

One namespace per network per host (``ocr-m<10 of the network id>-<host>``),
as Neutron's and OVN's metadata namespaces: the VMs of one network may use
the addresses of another's, and a namespace has one routing table.  It is a
router namespace to the routers subsystem (namespace, veth pair, address, an
on-link default route: the VMs are on its link), so the kernel records, the
driver, the repair and ``lab down`` are the routers'.  Its sysctls are a
router's too, forwarding on: a frame sent to it for another address goes
back out of its one interface, to where the VM could send it itself, through
the destination port's firewall all the same (known limit: the driver has
no namespace without forwarding yet).
Its MAC is the DHCP server's: the VMs learn it from the DHCP responder's ARP
answer or from the namespace, alike, and the firewall keeps it off the overlay.

What the DNS server answers there is part of the plan (``DnsZone``), like
the leases: answered, not kept in the kernel.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from overcast.model.types import FloatingIP, Network, Port, Subnet
from overcast.plan import names
from overcast.plan.leases import SERVER_IP, SERVER_MAC, Lease, host_name
from overcast.plan.subsystems.routers import (
    MAIN_TABLE,
    RouterAddress,
    RouterNamespace,
    RouterPort,
    RouterRoute,
)

DNS_TTL = 30


def service_id(network_id: str) -> str:
    """The id a network's service namespace and device are named by: ``m``
    and the network's id (never a router's: router ids are UUIDs, hex)."""
    return "m" + network_id.replace("-", "")


def service_netns(network_id: str, host: str) -> str:
    return names.router_netns(service_id(network_id), host)


@dataclass(frozen=True, slots=True, order=True)
class DnsZone:
    """What the DNS server in ``netns`` answers: the names of the ports of
    the network's project in ``domain`` (``hosts``: fully qualified name ->
    addresses) and the reverse zones of ``cidrs`` (their subnets)."""

    netns: str
    network_id: str
    domain: str
    hosts: tuple[tuple[str, tuple[str, ...]], ...]
    cidrs: tuple[str, ...]

    @property
    def serial(self) -> int:
        """Changes with the zone's content (a CRC: equal content, equal serial)."""
        return zlib.crc32(repr((self.domain, self.hosts, self.cidrs)).encode()) or 1


@dataclass(frozen=True, slots=True, order=True)
class PortMeta:
    """What the metadata service in a network's service namespace says to
    the local port with address ``ip`` (``services/metadata.py``)."""

    ip: str
    port_id: str
    instance_id: str  # the port's device_id (Nova's instance), else the port's id
    mac: str
    local_hostname: str
    cidr: str
    public_ipv4: str = ""  # its floating IP's address
    public_hostname: str = ""  # its public name (the dynamic public binding)


@dataclass(frozen=True, slots=True, order=True)
class MetadataZone:
    netns: str
    ports: tuple[PortMeta, ...]


@dataclass(frozen=True)
class ServicePlan:
    records: tuple[object, ...] = ()
    attachments: tuple[tuple[str, str, int], ...] = ()  # (host side, bridge, mtu)
    zones: tuple[DnsZone, ...] = field(default=())
    metadata: tuple[MetadataZone, ...] = field(default=())


def plan_services(leases: Iterable[Lease], ports: Iterable[Port], host: str,
                  networks: Mapping[str, Network], subnets: Iterable[Subnet],
                  domain: str, floating_ips: Iterable[FloatingIP] = ()) -> ServicePlan:
    """A service namespace for each network with a lease on this host: its
    DNS zone, and the metadata of the local ports that have a lease."""
    leases = list(leases)
    ports = list(ports)
    by_port = {p.id: p for p in ports}
    subnet_list = list(subnets)
    records: list[object] = []
    attachments: list[tuple[str, str, int]] = []
    zones: list[DnsZone] = []
    metadata: list[MetadataZone] = []
    # by (port, address): two networks may use the same addresses
    public = {(f.port_id, f.fixed_ip_address): f.floating_ip_address for f in floating_ips
              if f.port_id and f.fixed_ip_address}
    served = sorted({by_port[lease.port_id].network_id for lease in leases if lease.port_id in by_port})
    for net_id in served:
        net = networks[net_id]
        sid = service_id(net_id)
        ns = names.router_netns(sid, host)
        dev, peer = names.router_if_name(sid), names.router_port_name(sid)
        records += [RouterNamespace(ns, names.router_mark(sid)),
                    RouterPort(ns, dev, peer, SERVER_MAC, net.mtu, names.router_port_mark(sid)),
                    RouterAddress(ns, dev, f"{SERVER_IP}/32"),
                    RouterRoute(ns, "0.0.0.0/0", "", MAIN_TABLE, dev)]
        attachments.append((peer, names.bridge_name(net_id), net.mtu))
        zones.append(_zone(ns, net, ports, networks, subnet_list, domain))
        metadata.append(MetadataZone(ns, tuple(sorted(
            _meta(lease, by_port[lease.port_id], public) for lease in leases
            if lease.port_id in by_port and by_port[lease.port_id].network_id == net_id))))
    return ServicePlan(tuple(records), tuple(attachments), tuple(zones), tuple(metadata))


def _meta(lease: Lease, port: Port, public: Mapping[tuple[str, str], str]) -> PortMeta:
    cidr = str(ipaddress.IPv4Interface(f"{lease.ip}/{lease.prefixlen}").network)
    fqdn = f"{lease.host_name}.{lease.domain}" if lease.domain else lease.host_name
    return PortMeta(lease.ip, port.id, port.device_id or port.id, lease.mac, fqdn, cidr,
                    public.get((port.id, lease.ip), ""), port.public_hostname)


def _zone(ns: str, net: Network, ports: list[Port], networks: Mapping[str, Network],
          subnets: list[Subnet], default: str) -> DnsZone:
    """The ports on the networks of the network's project that have its
    domain (whoever made the port: an operator's port on a project's network
    is that network's): each fixed IP under the port's dns_name, else under
    its generated name."""
    domain = _domain(net, default)
    same = {n.id for n in networks.values()
            if n.project_id == net.project_id and _domain(n, default) == domain}
    hosts: dict[str, list[str]] = {}
    for port in ports:
        if port.network_id not in same:
            continue
        for fixed in port.fixed_ips:
            name = f"{host_name(port, fixed.ip_address)}.{domain}".lower()
            hosts.setdefault(name, []).append(fixed.ip_address)
    cidrs = sorted(s.cidr for s in subnets if s.network_id in same)
    return DnsZone(ns, net.id, domain,
                   tuple(sorted((h, tuple(sorted(a, key=_address_order)))
                                for h, a in hosts.items())),
                   tuple(cidrs))


def _address_order(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def _domain(net: Network, default: str) -> str:
    return (net.dns_domain or default).rstrip(".").lower()
