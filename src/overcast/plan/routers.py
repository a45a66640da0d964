"""plan_routers: the routers of one host (``docs/routers.md``).  Pure.

A router exists on a host when the host has a port (not a router's own) on
a network the router has an interface on.  There it is a namespace with
every interface of the router (so a frame routed to a subnet leaves on that
subnet's bridge on this host, and crosses the overlay only to the host of
its destination), a permanent neighbour for every bound port on the
router's subnets (learned from the control plane, never by ARP over the
overlay) and the router's static routes.

The networks of those interfaces are planned on this host even without a
local port on them (their bridge, VXLAN device and FDB); the firewall gets
the elements that keep the gateway MACs and IPs off the overlay
(:class:`Overlay`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from overcast.model.problems import Problem
from overcast.model.types import ROUTER_GATEWAY, ROUTER_INTERFACE, Network, Port, Router, Subnet
from overcast.plan import names
from overcast.plan.subsystems.routers import (
    RouterAddress,
    RouterNamespace,
    RouterNeighbour,
    RouterPort,
    RouterRoute,
)
from overcast.plan.view import HostView

ROUTER_OWNERS = (ROUTER_INTERFACE, ROUTER_GATEWAY)


@dataclass(frozen=True)
class Overlay:
    """What the firewall keeps off the overlay: ``(vxlan device, gateway
    MAC, interface port id)``, ``(vxlan device, gateway IPv4, port id)``,
    and this host's own MAC for routed frames leaving by each of those
    VXLAN devices ``(vxlan device, network id)``."""

    host_mac: str = ""
    macs: tuple[tuple[str, str, str], ...] = ()
    ips: tuple[tuple[str, str, str], ...] = ()
    devices: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RouterPlan:
    records: tuple[object, ...] = ()
    attachments: tuple[tuple[str, str, int], ...] = ()  # (host side, bridge, mtu)
    overlay: Overlay = field(default_factory=Overlay)
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Here:
    """A router that exists on this host, with its interface ports."""

    router: Router
    interfaces: tuple[Port, ...]


def routers_here(view: HostView) -> list[Here]:
    """The routers with an interface on a network of a port bound here."""
    local = {p.network_id for p in view.ports
             if p.binding_host_id == view.host and p.device_owner not in ROUTER_OWNERS}
    by_router: dict[str, list[Port]] = {}
    for port in view.ports:
        if port.device_owner == ROUTER_INTERFACE and port.device_id:
            by_router.setdefault(port.device_id, []).append(port)
    out = []
    for router in sorted(view.routers, key=lambda r: r.id):
        ifaces = sorted(by_router.get(router.id, ()), key=lambda p: p.id)
        if router.admin_state_up and any(p.network_id in local for p in ifaces):
            out.append(Here(router, tuple(ifaces)))
    return out


def host_mac(underlay_ip: str) -> str:
    """This host's source MAC for frames its routers send over the overlay
    (Neutron DVR's host MAC): locally administered, from the underlay
    address, so hosts never share one: ``fa:17`` + the IPv4 address's four
    bytes (an IPv6 underlay: ``fa:18`` + four bytes of its SHA-256)."""
    try:
        addr = ipaddress.ip_address(underlay_ip)
    except ValueError:
        addr = None
    if isinstance(addr, ipaddress.IPv4Address):
        tail, head = addr.packed, "fa:17"
    else:
        tail, head = hashlib.sha256(underlay_ip.encode()).digest()[:4], "fa:18"
    return head + "".join(f":{b:02x}" for b in tail)


def plan_routers(view: HostView, here: Sequence[Here], bridges: Mapping[str, Network]) -> RouterPlan:
    """The routers ``here``, on the networks planned on this host
    (``bridges``: network id -> network, those whose bridge exists here)."""
    subnets = {s.id: s for s in view.subnets}
    records: list[object] = []
    attachments: list[tuple[str, str, int]] = []
    problems: list[Problem] = []
    macs, ips, devices = [], [], set()
    for item in here:
        ns = names.router_netns(item.router.id, view.host)
        records.append(RouterNamespace(ns, names.router_mark(item.router.id)))
        connected = []
        for port in item.interfaces:
            net = bridges.get(port.network_id)
            if net is None:
                continue  # its network cannot be planned here: the network's problem says why
            cidrs = _addresses(port, subnets, problems)
            if not cidrs:
                continue
            connected += [ipaddress.ip_interface(c).network for c in cidrs]
            qr = names.router_if_name(port.id)
            peer = names.router_port_name(port.id)
            v6 = any(ipaddress.ip_interface(c).version == 6 for c in cidrs)
            records.append(RouterPort(ns, qr, peer, port.mac_address.lower(), net.mtu,
                                      names.router_port_mark(port.id), v6))
            records += [RouterAddress(ns, qr, c) for c in cidrs]
            records += _neighbours(ns, qr, port, view.ports)
            attachments.append((peer, names.bridge_name(net.id), net.mtu))
            if net.network_type == "vxlan":
                vxlan = names.vxlan_name(net.id)
                devices.add((vxlan, net.id))
                macs.append((vxlan, port.mac_address.lower(), port.id))
                ips += [(vxlan, c.split("/")[0], port.id) for c in cidrs if ":" not in c]
        records += _routes(ns, item.router, connected, problems)
    overlay = Overlay(host_mac(view.underlay_ip), tuple(sorted(macs)), tuple(sorted(ips)),
                      tuple(sorted(devices)))
    return RouterPlan(tuple(records), tuple(attachments), overlay, tuple(problems))


def _addresses(port: Port, subnets: Mapping[str, Subnet], problems: list[Problem]) -> list[str]:
    """The interface's addresses, each with its subnet's prefix length."""
    out = []
    for fip in port.fixed_ips:
        subnet = subnets.get(fip.subnet_id)
        if subnet is None:
            problems.append(Problem(f"port/{port.id}", f"subnet {fip.subnet_id} is unknown"))
            continue
        out.append(f"{fip.ip_address}/{ipaddress.ip_network(subnet.cidr).prefixlen}")
    return sorted(out)


def _neighbours(ns: str, dev: str, iface: Port, ports: Iterable[Port]) -> list[RouterNeighbour]:
    """Every bound port on the interface's subnets, with its MAC."""
    subnets = {f.subnet_id for f in iface.fixed_ips}
    return [RouterNeighbour(ns, dev, f.ip_address, p.mac_address.lower())
            for p in ports if p.network_id == iface.network_id and p.binding_host_id
            and p.device_owner not in ROUTER_OWNERS and p.mac_address
            for f in p.fixed_ips if f.subnet_id in subnets]


def _routes(ns: str, router: Router, connected: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
            problems: list[Problem]) -> list[RouterRoute]:
    out = []
    for route in router.routes:
        hop = ipaddress.ip_address(route.nexthop)
        if not any(hop in net for net in connected if net.version == hop.version):
            problems.append(Problem(f"router/{router.id}",
                                    f"route {route.destination} via {route.nexthop}: the nexthop "
                                    "is on no interface of the router on this host"))
            continue
        out.append(RouterRoute(ns, str(ipaddress.ip_network(route.destination, strict=False)),
                               route.nexthop))
    return out
