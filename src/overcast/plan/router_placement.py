"""Where a host's routers are: which routers exist on this host, with
their ports, their SNAT host and the floating IPs of this host's ports, and
which host reports their ports' status (``docs/routers.md``).  Pure.

A router exists on a host when the host has a port (not a router's own) on
one of its networks, or is the router's SNAT host: one of the live hosts
that map its external network's physical network, chosen by
:func:`overcast.model.scheduling.snat_host` as every agent chooses it.  A
router with interfaces and no SNAT host, whose networks have no port on a
host that can make routers (none at all, or only on hosts with the firewall
off or dead), exists on one host of its own (:func:`home_host`), so that its
interfaces are realized (ACTIVE) somewhere.  A
router whose gateway port has no address (Neutron makes one so on an
external network without subnet) has no SNAT host: nothing to SNAT to.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from overcast.model.scheduling import snat_host
from overcast.model.types import (
    ROUTER_GATEWAY,
    ROUTER_INTERFACE,
    ROUTER_SNAT,
    FloatingIP,
    Network,
    Port,
    PortForwarding,
    Router,
)
from overcast.plan.view import HostView

ROUTER_OWNERS = (ROUTER_INTERFACE, ROUTER_GATEWAY, ROUTER_SNAT)


@dataclass(frozen=True)
class Here:
    """A router that exists on this host: its interface ports, and for a
    router with an external gateway its gateway port, its SNAT port and
    the host chosen to do its SNAT (``snat_host``; None: no live host can)."""

    router: Router
    interfaces: tuple[Port, ...]
    gateway: Port | None = None
    snat: Port | None = None
    external: Network | None = None
    snat_host: str | None = None
    floating_ips: tuple[FloatingIP, ...] = ()  # those of ports bound to this host
    # on its SNAT host: its floating IPs' port forwardings, and those floating IPs
    port_forwardings: tuple[PortForwarding, ...] = ()
    forwarded: tuple[FloatingIP, ...] = ()
    reporter: str = ""  # the host that reports the status of the router's own ports

    def networks(self, host: str) -> set[str]:
        """The networks this router needs a bridge for on ``host``."""
        out = {p.network_id for p in self.interfaces}
        if self.external is not None and (self.snat_host == host or self.floating_ips):
            out.add(self.external.id)
        return out


def routers_here(view: HostView) -> list[Here]:
    """The routers with an interface on a network of a port bound here, and
    those whose SNAT this host does."""
    local = {p.network_id for p in view.ports
             if p.binding_host_id == view.host and p.device_owner not in ROUTER_OWNERS}
    owned: dict[tuple[str, str], list[Port]] = {}
    for port in view.ports:
        if port.device_owner in ROUTER_OWNERS and port.device_id:
            owned.setdefault((port.device_id, port.device_owner), []).append(port)
    networks = {n.id: n for n in view.networks}
    hosts_on: dict[str, set[str]] = {}  # network id -> hosts with a port (not a router's) on it
    for port in view.ports:
        if port.binding_host_id and port.device_owner not in ROUTER_OWNERS:
            hosts_on.setdefault(port.network_id, set()).add(port.binding_host_id)
    bound = {p.id for p in view.ports if p.binding_host_id == view.host}
    fips: dict[str, list[FloatingIP]] = {}
    for fip in view.floating_ips:
        if fip.router_id and fip.port_id in bound and fip.fixed_ip_address:
            fips.setdefault(fip.router_id, []).append(fip)
    out = []
    for router in sorted(view.routers, key=lambda r: r.id):
        if not router.admin_state_up:
            continue
        ifaces = sorted(owned.get((router.id, ROUTER_INTERFACE), ()), key=lambda p: p.id)
        item = Here(router, tuple(ifaces))
        if router.external_gateway:
            item = _with_gateway(view, item, networks, owned)
            if item.external is not None:
                item = replace(item, floating_ips=tuple(sorted(fips.get(router.id, ()),
                                                               key=lambda f: f.id)))
        present = {h for p in ifaces for h in hosts_on.get(p.network_id, ())}
        placed = _placed(view, item, present, any(p.network_id in local for p in ifaces),
                         networks)
        if placed is not None and placed.snat_host == view.host:
            placed = _with_forwardings(view, placed)
        if placed is not None:
            out.append(placed)
    return out


def _with_forwardings(view: HostView, item: Here) -> Here:
    """``item`` (on its SNAT host) with its floating IPs' port forwardings:
    those of its floating IPs on its external network that forward to one
    of the router's subnets' ports (a floating IP with port forwardings has
    no port of its own)."""
    rid = item.router.id
    pfs = sorted((pf for pf in view.port_forwardings if pf.router_id == rid),
                 key=lambda pf: pf.id)
    if not pfs or item.external is None:
        return item
    ext = item.external.id
    ips = {f.id: f for f in view.floating_ips
           if f.router_id == rid and f.floating_network_id == ext and not f.port_id}
    pfs = [pf for pf in pfs if pf.floatingip_id in ips]
    used = sorted({pf.floatingip_id for pf in pfs})
    return replace(item, port_forwardings=tuple(pfs), forwarded=tuple(ips[i] for i in used))


def _placed(view: HostView, item: Here, present: set[str], has_local: bool,
            networks: Mapping[str, Network]) -> Here | None:
    """``item`` with the host that reports it, when it is on this host, else None
    (``present``: the hosts with a port on its networks; ``has_local``: this one is)."""
    # those of them that can make it (a host with the firewall off, or dead, cannot: the
    # router must then be on a home host)
    capable = present & view.router_hosts
    home = None
    if item.interfaces and not capable and item.snat_host is None:
        home = home_host(item.router.id, _home_candidates(view, item.interfaces, networks))
    if item.snat_host == view.host or has_local:
        live = present & set(view.live_hosts) or present  # a dead host reports nothing
        reporter = item.snat_host or (min(capable) if capable else home) or min(live, default="")
        return replace(item, reporter=reporter)
    if home is not None and home == view.host:
        return replace(item, reporter=view.host)
    return None


def _home_candidates(view: HostView, ifaces: Sequence[Port],
                     networks: Mapping[str, Network]) -> frozenset[str]:
    """The hosts that can have routers and map the physical network of every
    interface's network that has one (a flat network: only those can bridge it)."""
    out = view.router_hosts
    for port in ifaces:
        net = networks.get(port.network_id)
        if net is not None and net.physical_network:
            out = out & frozenset(view.physnet_hosts.get(net.physical_network, ()))
    return out


@functools.lru_cache(maxsize=65536)
def home_host(router_id: str, router_hosts: frozenset[str]) -> str | None:
    """Where a router with interfaces is made while no host that can make it
    has a port (not a router's own) on any of its networks and it has no SNAT
    host: one of the live hosts that can have routers (and map the physical
    networks of its interfaces' flat networks), chosen as a SNAT host is (the
    same on every agent, and moved only when that host goes or comes; kept per
    set of hosts: the hash of each pair would cost every pass).  Its
    interfaces are realized and reported there, as Neutron's L3 scheduler puts
    every router on some agent; once such a host has a port on one of its
    networks, the router is where the ports are instead."""
    return snat_host(router_id, router_hosts)


def _with_gateway(view: HostView, item: Here, networks: Mapping[str, Network],
                  owned: Mapping[tuple[str, str], list[Port]]) -> Here:
    rid = item.router.id
    gateways = sorted(owned.get((rid, ROUTER_GATEWAY), ()), key=lambda p: p.id)
    snats = sorted(owned.get((rid, ROUTER_SNAT), ()), key=lambda p: p.id)
    external = networks.get(str((item.router.external_gateway or {}).get("network_id", "")))
    if not gateways or external is None:
        return item
    candidates = view.physnet_hosts.get(external.physical_network or "", ())
    # a gateway without address (Neutron's, on an external network without subnet) has
    # nothing to SNAT to: no SNAT host
    addressed = bool(gateways[0].fixed_ips)
    host = snat_host(rid, candidates) if item.interfaces and addressed else None
    return replace(item, gateway=gateways[0], snat=snats[0] if snats else None,
                   external=external, snat_host=host)
