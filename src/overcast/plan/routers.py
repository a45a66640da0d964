"""plan_routers: the routers of one host (``docs/routers.md``).  Pure.

Where a router exists is :mod:`overcast.plan.router_placement`'s.  There it
is a namespace with
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
from overcast.model.types import (
    HostRoute,
    MeteringLabelRule,
    Network,
    Port,
    PortForwarding,
    Subnet,
)
from overcast.plan import names
from overcast.plan.adverts import Advert
from overcast.plan.firewall_expr import match, meta, payload
from overcast.plan.raw import NsRule
from overcast.plan.router_placement import ROUTER_OWNERS, Here
from overcast.plan.subsystems.announce import Announcement
from overcast.plan.subsystems.fdb import FdbEntry
from overcast.plan.subsystems.routers import (
    FIP_TABLE,
    FIP_TAG,
    MAIN_TABLE,
    Forwarding,
    NatRule,
    RouterAddress,
    RouterNamespace,
    RouterNeighbour,
    RouterPort,
    RouterRoute,
    RouterRule,
    meter,
    nat,
)
from overcast.plan.view import HostView

DEFAULT4 = "0.0.0.0/0"


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
    fdb: tuple[FdbEntry, ...] = ()  # the SNAT ports' MACs, at their SNAT hosts
    problems: tuple[Problem, ...] = ()
    # router-owned port id -> the devices it needs here, for the ports whose status this
    # host reports (Here.reporter; a floating IP's port: the host of its VM)
    reported: Mapping[str, frozenset[str]] = field(default_factory=dict)
    adverts: tuple[Advert, ...] = ()  # router advertisements on IPv6 interfaces


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
    on: dict[str, list[Port]] = {}  # network id -> its ports (each interface's neighbours)
    for port in view.ports:
        on.setdefault(port.network_id, []).append(port)
    b = _Routers(view, {s.id: s for s in view.subnets}, bridges, on)
    for item in here:
        b.router(item)
    overlay = Overlay(host_mac(view.underlay_ip), tuple(sorted(b.macs)), tuple(sorted(b.ips)),
                      tuple(sorted(b.devices)))
    return RouterPlan(tuple(b.records), tuple(b.attachments), overlay, tuple(sorted(b.fdb)),
                      tuple(b.problems), dict(sorted(b.reported.items())), tuple(sorted(b.adverts)))


@dataclass
class _Routers:
    view: HostView
    subnets: Mapping[str, Subnet]
    bridges: Mapping[str, Network]
    ports_on: Mapping[str, Sequence[Port]]
    records: list[object] = field(default_factory=list)
    attachments: list[tuple[str, str, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    macs: list[tuple[str, str, str]] = field(default_factory=list)
    ips: list[tuple[str, str, str]] = field(default_factory=list)
    devices: set[tuple[str, str]] = field(default_factory=set)
    fdb: list[FdbEntry] = field(default_factory=list)
    reported: dict[str, frozenset[str]] = field(default_factory=dict)
    adverts: list[Advert] = field(default_factory=list)

    def router(self, item: Here) -> None:
        ns = names.router_netns(item.router.id, self.view.host)
        self.records.append(RouterNamespace(ns, names.router_mark(item.router.id)))
        connected: list[IPNetwork] = []
        reports = item.reporter == self.view.host
        for port in item.interfaces:
            cidrs = self.device(ns, port, names.ROUTER_IF_PREFIX, reports)
            connected += [ipaddress.ip_interface(c).network for c in cidrs]
            if cidrs:
                self.records.extend(_neighbours(ns, names.router_if_name(port.id), port,
                                                self.ports_on.get(port.network_id, ())))
                self.overlay(port, cidrs)
                self.advertise(ns, port)
        routes = list(item.router.routes)
        nat_rules: list[NatRule] = []
        if item.gateway is not None:
            # the router's own subnets (before the gateway's join them) and what it reaches
            # through them
            inside = _inside(connected, item.router.routes)
            routes += self.snat(ns, item, connected, inside, nat_rules)
            nat_rules += self.floating(ns, item, inside)
        outside = self.external_subnets(item.gateway) if item.gateway is not None else []
        self.records.extend(_routes(ns, item.router.id, routes, connected, outside,
                                    self.problems))
        if nat_rules:
            self.records.append(nat(ns, nat_rules))
        external = sorted(r.ifname for r in self.records if isinstance(r, RouterPort)
                          and r.netns == ns and r.ifname.startswith(EXTERNAL_DEVICES))
        counted = _metering(self.view, item, external)
        if counted:
            self.records.append(meter(ns, counted))

    def device(self, ns: str, port: Port, prefix: str, reports: bool,
               host_length: bool = False) -> list[str]:
        """A veth pair for one of the router's ports; its addresses ([] when
        its network has no bridge here or it has no address).  ``reports``:
        this host reports the port's status (ACTIVE once its pair is in place)."""
        net = self.bridges.get(port.network_id)
        if net is None:
            return []  # its network cannot be planned here: the network's problem says why
        cidrs = _addresses(port, self.subnets, self.problems, host_length)
        if not cidrs:
            return []
        dev, peer = names.router_if_name(port.id, prefix), names.router_port_name(port.id)
        v6 = any(ipaddress.ip_interface(c).version == 6 for c in cidrs)
        self.records.append(RouterPort(ns, dev, peer, port.mac_address.lower(), net.mtu,
                                       names.router_port_mark(port.id), v6))
        self.records.extend(RouterAddress(ns, dev, c) for c in cidrs)
        self.attachments.append((peer, names.bridge_name(net.id), net.mtu))
        if reports:
            self.reported[port.id] = frozenset((peer,))
        return cidrs

    def advertise(self, ns: str, port: Port) -> None:
        """Router advertisements for the interface's IPv6 subnets with an ``ipv6_ra_mode``."""
        subnets = [self.subnets[f.subnet_id] for f in port.fixed_ips if f.subnet_id in self.subnets]
        ra = [s for s in subnets if s.ip_version == 6 and s.ipv6_ra_mode]
        if ra:
            net = self.bridges[port.network_id]
            self.adverts.append(Advert(ns, names.router_if_name(port.id),
                                       port.mac_address.lower(), net.mtu, str(ra[0].ipv6_ra_mode),
                                       tuple(sorted(s.cidr for s in ra))))

    def overlay(self, port: Port, cidrs: list[str]) -> None:
        """A gateway's MAC and IPs: kept off its network's VXLAN device."""
        net = self.bridges[port.network_id]
        if net.network_type != "vxlan":
            return
        vxlan = names.vxlan_name(net.id)
        self.devices.add((vxlan, net.id))
        self.macs.append((vxlan, port.mac_address.lower(), port.id))
        self.ips.extend((vxlan, c.split("/")[0], port.id) for c in cidrs if ":" not in c)

    def snat(self, ns: str, item: Here, connected: list[IPNetwork], inside: list[IPNetwork],
             nat_rules: list[NatRule]) -> list[HostRoute]:
        """SNAT on the router's SNAT host: its gateway port on the external
        network, its SNAT port on a subnet (for the other hosts' routers),
        the default route out and the SNAT rules (for the router's subnets
        and the networks behind its static routes: ``inside``).  Elsewhere:
        the default route to the SNAT port.  The routes, to add to the
        router's own."""
        rid = item.router.id
        if any(r.destination == DEFAULT4 for r in item.router.routes):
            return []  # the router's own default route wins
        assert item.gateway is not None
        if not item.gateway.fixed_ips:
            return []  # no external subnet: no address to SNAT to, no way out
        if item.snat_host is None:
            if item.interfaces:
                self.problems.append(Problem(f"router/{rid}", _no_snat_host(item)))
            return []
        snat_ip = _v4(item.snat)
        if item.snat_host != self.view.host:
            return self.to_snat_host(ns, item, snat_ip)
        gw_cidrs = self.device(ns, item.gateway, names.ROUTER_GW_PREFIX, True)
        gw_ip = next((c.split("/")[0] for c in gw_cidrs if ":" not in c), None)
        if gw_ip is None:
            return []
        v4 = [net for net in inside if net.version == 4]
        connected += [ipaddress.ip_interface(c).network for c in gw_cidrs]
        if item.snat is not None:
            self.device(ns, item.snat, names.ROUTER_SNAT_PREFIX, True, host_length=True)
        enable = bool((item.router.external_gateway or {}).get("enable_snat", True))
        dev = names.router_if_name(item.gateway.id, names.ROUTER_GW_PREFIX)
        nat_rules += self.forwardings(ns, item, dev)
        if enable:
            nat_rules += [("postrouting", [match(meta("oifname"), dev),
                                           match(payload("ip", "saddr"), _prefix(net)),
                                           {"snat": {"addr": gw_ip}}])
                          for net in v4]
        hop = self.external_gateway(item.gateway)
        if hop and not any(ipaddress.ip_address(hop) in ipaddress.ip_interface(c).network
                           for c in gw_cidrs):
            # a gateway outside the external subnet (Neutron accepts one): a route to it on
            # the gateway port's link, as Neutron's l3 agent makes (then the default via it)
            self.records.append(RouterRoute(ns, f"{hop}/32", "", dev=names.router_if_name(
                item.gateway.id, names.ROUTER_GW_PREFIX)))
            connected.append(ipaddress.ip_network(f"{hop}/32"))
        return [HostRoute(DEFAULT4, hop)] if hop else []

    def floating(self, ns: str, item: Here,
                 connected: Sequence[IPNetwork]) -> list[NatRule]:
        """The floating IPs of this host's ports: on the router's own device
        on the external network (``qf-``, its MAC this host's and router's),
        where this host answers ARP for them; DNAT in, SNAT out, and their
        ports' traffic leaves by it: policy rules send traffic to the
        router's own subnets to the main table first, then a floating IP's
        port to ``FIP_TABLE`` (the external subnet on ``qf-``, the default
        route out of it, and the router's static routes via the external
        network).  ``connected``: the router's subnets and the
        networks behind its static routes (:func:`_inside`).  The NAT rules,
        to add to the router's."""
        ext = item.external
        if not item.floating_ips or ext is None or ext.id not in self.bridges:
            return []
        assert item.gateway is not None
        hop, on_link = self.external_gateway(item.gateway), self.external_subnets(item.gateway)
        if hop is None:
            why = ("the external subnet has no gateway IP" if item.gateway.fixed_ips
                   else "the router's gateway has no address on the external network")
            self.problems.append(Problem(f"router/{item.router.id}",
                                         f"{why}: floating IPs have no way out"))
            return []
        rid = item.router.id
        dev, peer = names.router_if_name(rid, names.ROUTER_FIP_PREFIX), names.router_port_name(rid)
        self.records.append(RouterPort(ns, dev, peer, fip_mac(rid, self.view.host), ext.mtu,
                                       names.router_port_mark(rid)))
        self.attachments.append((peer, names.bridge_name(ext.id), ext.mtu))
        self.records.append(RouterRoute(ns, DEFAULT4, hop, FIP_TABLE, dev))
        self.records += [RouterRoute(ns, str(net), "", FIP_TABLE, dev) for net in on_link]
        self.records += [RouterRoute(ns, dst, hop_, FIP_TABLE, dev)
                         for dst, hop_ in _via(item.router.routes, on_link)]
        self.records += [RouterRule(ns, NsRule(FIP_MAIN_PRIORITY, "", MAIN_TABLE, dst=str(net)))
                         for net in connected if net.version == 4]
        rules: list[NatRule] = []
        for fip in item.floating_ips:
            fixed, public = str(fip.fixed_ip_address), fip.floating_ip_address
            if fip.floating_port_id:  # its status: ACTIVE here once its device is in place
                self.reported[fip.floating_port_id] = frozenset((peer,))
            self.records += [RouterAddress(ns, dev, f"{public}/32"),
                             RouterRule(ns, NsRule(FIP_PRIORITY, f"{fixed}/32", FIP_TABLE)),
                             Announcement(ns, dev, public)]
            rules += [("prerouting", [match(payload("ip", "daddr"), public),
                                      {"dnat": {"addr": fixed}}], f"{FIP_TAG} {public}"),
                      ("postrouting", [match(meta("oifname"), dev),
                                       match(payload("ip", "saddr"), fixed),
                                       {"snat": {"addr": public}}])]
        return rules

    def forwardings(self, ns: str, item: Here, dev: str) -> list[NatRule]:
        """The port forwardings of the router's floating IPs, on its SNAT host
        (as Neutron's l3 agent makes them on the centralized router): each
        floating IP an address of the gateway device ``dev`` (this host
        answers ARP for it, and says so with a gratuitous ARP), and what
        arrives at it on a forwarded protocol and port is DNATed to the
        internal address (and port: the same, one for the whole range, or
        the range's own by a map).  Replies come back through the SNAT
        port from the other hosts' routers, by conntrack.  The NAT rules."""
        if not item.port_forwardings:
            return []
        peer = names.router_port_name(item.gateway.id) if item.gateway is not None else ""
        for fip in item.forwarded:
            if fip.floating_port_id:  # ACTIVE once the gateway device is in place
                self.reported[fip.floating_port_id] = frozenset((peer,))
            self.records += [RouterAddress(ns, dev, f"{fip.floating_ip_address}/32"),
                             Announcement(ns, dev, fip.floating_ip_address)]
        at = {f.id: f.floating_ip_address for f in item.forwarded}
        return [("prerouting", [match(payload("ip", "daddr"), at[pf.floatingip_id]),
                                match(payload(pf.protocol, "dport"),
                                      _port_match(pf.external_port_range)),
                                {"dnat": _forwarded_to(pf)}],
                 _tag(at[pf.floatingip_id], pf))
                for pf in item.port_forwardings]

    def to_snat_host(self, ns: str, item: Here, snat_ip: str | None) -> list[HostRoute]:
        """The way to the SNAT host: its SNAT port's MAC, as a neighbour and
        in the FDB towards that host (the port is bound to no host)."""
        port = item.snat
        dst = self.view.hosts.get(item.snat_host or "", "")
        net = self.bridges.get(port.network_id) if port is not None else None
        iface = next((p for p in item.interfaces if port is not None
                      and p.network_id == port.network_id), None)
        if port is None or snat_ip is None or net is None or iface is None or not dst:
            return []
        dev = names.router_if_name(iface.id)
        self.records.append(RouterNeighbour(ns, dev, snat_ip, port.mac_address.lower()))
        if net.network_type == "vxlan":
            self.fdb.append(FdbEntry(names.vxlan_name(net.id), port.mac_address.lower(), dst))
        return [HostRoute(DEFAULT4, snat_ip)]

    def external_subnets(self, gateway: Port) -> list[IPNetwork]:
        """The IPv4 external subnets of the gateway port (on the ``qf-`` link)."""
        nets = (self.subnets.get(f.subnet_id) for f in gateway.fixed_ips)
        return [ipaddress.ip_network(s.cidr) for s in nets if s is not None and s.ip_version == 4]

    def external_gateway(self, gateway: Port) -> str | None:
        for fip in gateway.fixed_ips:
            subnet = self.subnets.get(fip.subnet_id)
            if subnet is not None and subnet.gateway_ip and ":" not in subnet.gateway_ip:
                return subnet.gateway_ip
        return None


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# a router's devices on the external network on a host: the gateway's on its SNAT host, the
# floating IPs' where its VMs with floating IPs are
EXTERNAL_DEVICES = (names.ROUTER_GW_PREFIX, names.ROUTER_FIP_PREFIX)


def _metering(view: HostView, item: Here, devices: Sequence[str]
              ) -> list[tuple[str, list[object], str]]:
    """The metering rules of the labels that apply to the router (its
    project's, and the shared ones), on its external ``devices`` here
    (Neutron's metering counts traffic through the router's external
    gateway): ingress is what comes in by them to ``remote_ip_prefix``,
    egress what goes out by them from it, matched as Neutron's iptables
    driver matches them (``-d`` in, ``-s`` out, in the forward hook: the
    tenant's side of a floating IP's or SNAT's translation; ``0.0.0.0/0``
    counts all).  A chain per label: its excluded
    rules first (not counted), then each rule that counts (a packet counts
    once per label, for the first of its rules it matches)."""
    if not devices or not view.metering_labels:
        return []
    router = item.router
    labels = sorted((lb for lb in view.metering_labels
                     if lb.shared or lb.project_id == router.project_id), key=lambda lb: lb.id)
    by_label: dict[str, list[MeteringLabelRule]] = {}
    for rule in view.metering_rules:
        by_label.setdefault(rule.metering_label_id, []).append(rule)
    out: list[tuple[str, list[object], str]] = []
    for label in labels:
        rules = sorted(by_label.get(label.id, ()), key=lambda r: (not r.excluded, r.id))
        if not rules:
            continue
        chain = f"label-{label.id}"
        out.append(("forward", [{"jump": {"target": chain}}], ""))
        for rule in rules:
            net = ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
            ingress = rule.direction == "ingress"
            dev = meta("iifname" if ingress else "oifname")
            stmts: list[object] = [match(dev, devices[0] if len(devices) == 1
                                         else {"set": list(devices)})]
            family = "ip" if net.version == 4 else "ip6"
            if net.prefixlen:
                stmts.append(match(payload(family, "daddr" if ingress else "saddr"),
                                   _prefix(net)))
            else:
                stmts.append(match(meta("nfproto"), "ipv4" if net.version == 4 else "ipv6"))
            if rule.excluded:
                out.append((chain, [*stmts, {"return": None}], ""))
            else:
                out.append((chain, [*stmts, {"counter": None}, {"return": None}], rule.id))
    return out
FIP_MAIN_PRIORITY = 1000  # traffic to the router's own subnets: the main table, for everyone
FIP_PRIORITY = 2000  # then a floating IP's port: out by the floating IPs' device


def fip_mac(router_id: str, host: str) -> str:
    """The MAC of a router's floating IP device on one host: locally
    administered (``fa:19``), from the router and the host, so it is the
    same after a restart and differs between hosts and routers."""
    digest = hashlib.sha256(f"{router_id}@{host}".encode()).digest()[:4]
    return "fa:19" + "".join(f":{b:02x}" for b in digest)


def _ports(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition(":")
    return int(lo), int(hi or lo)


def _port_match(text: str) -> object:
    lo, hi = _ports(text)
    return lo if lo == hi else {"range": [lo, hi]}


def _tag(ip: str, pf: PortForwarding) -> str:
    """Its rule's tag (``Forwarding.tag``): what its flows are, to forget
    when it goes."""
    (elo, ehi), (ilo, ihi) = _ports(pf.external_port_range), _ports(pf.internal_port_range)
    proto = 6 if pf.protocol == "tcp" else 17
    return Forwarding(ip, proto, elo, ehi, f"{pf.internal_ip_address}:{ilo}-{ihi}").tag


def _forwarded_to(pf: PortForwarding) -> dict[str, object]:
    """The DNAT of a port forwarding: to its internal address, with the
    external port kept (the same range), one internal port for every
    external one, or each external port's own internal one (ranges of one
    length: Neutron refuses others)."""
    (elo, ehi), (ilo, ihi) = _ports(pf.external_port_range), _ports(pf.internal_port_range)
    out: dict[str, object] = {"addr": pf.internal_ip_address}
    if ilo == ihi:
        out["port"] = ilo
    elif (ilo, ihi) != (elo, ehi):
        out["port"] = {"map": {"key": payload(pf.protocol, "dport"),
                               "data": {"set": [[elo + i, ilo + i]
                                                for i in range(min(ehi - elo, ihi - ilo) + 1)]}}}
    return out


def _v4(port: Port | None) -> str | None:
    return next((f.ip_address for f in port.fixed_ips if ":" not in f.ip_address), None) \
        if port is not None else None


def _prefix(net: IPNetwork) -> dict[str, object]:
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _no_snat_host(item: Here) -> str:
    physnet = item.external.physical_network if item.external is not None else ""
    return (f"no live host maps physical network '{physnet}' of external network "
            f"{item.external.id if item.external is not None else '?'}: nobody does SNAT "
            "for this router")


def _addresses(port: Port, subnets: Mapping[str, Subnet], problems: list[Problem],
               host_length: bool = False) -> list[str]:
    """The port's addresses, each with its subnet's prefix length (or the
    host length: the SNAT port's address must not make a second connected
    route to its subnet beside the gateway's)."""
    out = []
    for fip in port.fixed_ips:
        subnet = subnets.get(fip.subnet_id)
        if subnet is None:
            problems.append(Problem(f"port/{port.id}", f"subnet {fip.subnet_id} is unknown"))
            continue
        net = ipaddress.ip_network(subnet.cidr)
        out.append(f"{fip.ip_address}/{net.max_prefixlen if host_length else net.prefixlen}")
    return sorted(out)


def _neighbours(ns: str, dev: str, iface: Port, ports: Iterable[Port]) -> list[RouterNeighbour]:
    """Every bound port on the interface's subnets, with its MAC."""
    subnets = {f.subnet_id for f in iface.fixed_ips}
    return [RouterNeighbour(ns, dev, f.ip_address, p.mac_address.lower())
            for p in ports if p.network_id == iface.network_id and p.binding_host_id
            and p.device_owner not in ROUTER_OWNERS and p.mac_address
            for f in p.fixed_ips if f.subnet_id in subnets]


def _inside(subnets: Sequence[IPNetwork], routes: Iterable[HostRoute]) -> list[IPNetwork]:
    """The router's subnets and the IPv4 networks its static routes reach
    through a nexthop on one of them (the default route left out): traffic
    to those stays inside the router, a floating IP's port's too."""
    out = list(subnets)
    for route in routes:
        dst = ipaddress.ip_network(route.destination, strict=False)
        hop = ipaddress.ip_address(route.nexthop)
        if dst.version == 4 and dst.prefixlen and dst not in out and any(
                hop in net for net in subnets if net.version == 4):
            out.append(dst)
    return out


def _via(routes: Iterable[HostRoute], nets: Sequence[IPNetwork]) -> list[tuple[str, str]]:
    """(destination, nexthop) of the static routes through a nexthop on one
    of ``nets`` (the default route left out; of two to one destination, the
    first)."""
    out: dict[str, str] = {}
    for route in routes:
        dst = str(ipaddress.ip_network(route.destination, strict=False))
        hop = ipaddress.ip_address(route.nexthop)
        if dst != DEFAULT4 and dst not in out and any(hop in net for net in nets):
            out[dst] = route.nexthop
    return list(out.items())


def _routes(ns: str, router_id: str, routes: Iterable[HostRoute], connected: Sequence[IPNetwork],
            outside: Sequence[IPNetwork], problems: list[Problem]) -> list[RouterRoute]:
    """The router's static routes whose nexthop is on one of its networks
    here (the default route to the SNAT host or out of the gateway port is
    one of them).  One via the external network (``outside``) is the SNAT
    host's only: elsewhere the default route takes its traffic there.  Of
    two to one destination the first is made (no multipath: the kernel
    refuses a second route to it)."""
    out: dict[str, RouterRoute] = {}
    for route in routes:
        hop = ipaddress.ip_address(route.nexthop)
        if not any(hop in net for net in connected if net.version == hop.version):
            if any(hop in net for net in outside if net.version == hop.version):
                continue
            problems.append(Problem(f"router/{router_id}",
                                    f"route {route.destination} via {route.nexthop}: the nexthop "
                                    "is on no interface of the router on this host"))
            continue
        dst = str(ipaddress.ip_network(route.destination, strict=False))
        if dst in out:
            problems.append(Problem(f"router/{router_id}", f"route {dst} via {route.nexthop}: "
                                    f"the route via {out[dst].gateway} takes {dst} (one route "
                                    "per destination)"))
            continue
        out[dst] = RouterRoute(ns, dst, route.nexthop)
    return list(out.values())
