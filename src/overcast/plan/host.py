"""plan_host: the part of the logical model that concerns one host -> that
host's desired kernel state.  Pure and deterministic: the same view, in any
order, gives the same plan, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from overcast.model.problems import Problem
from overcast.model.types import Network, Port
from overcast.plan import names
from overcast.plan.adverts import Advert
from overcast.plan.diff import kinds
from overcast.plan.firewall import FirewallPlan, compile_firewall
from overcast.plan.leases import SERVER_IP, Lease, Lease6, plan_leases, plan_leases6
from overcast.plan.qos import PortQos, Uplink, plan_qos
from overcast.plan.router_placement import Here, routers_here
from overcast.plan.routers import RouterPlan, plan_routers
from overcast.plan.services import DnsZone, MetadataZone, ServicePlan, plan_services
from overcast.plan.state import KernelState
from overcast.plan.subsystems.fdb import BUM_MAC, FdbEntry
from overcast.plan.subsystems.links import Attachment, Bridge, Vxlan
from overcast.plan.view import HostView

__all__ = ["MAX_VNI", "SUPPORTED_TYPES", "HostPlan", "HostView", "plan_host"]  # HostView: re-exported

MAX_VNI = 2**24 - 1
SUPPORTED_TYPES = ("vxlan", "local", "flat")


@dataclass(frozen=True)
class HostPlan:
    """The desired state of one host, plus what the agent needs to report."""

    host: str
    state: KernelState
    port_devices: Mapping[str, str] = field(default_factory=dict)  # port id -> tap name
    # port id -> every device the port needs (its tap, its network's bridge and VXLAN)
    port_needs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    ports_down: frozenset[str] = frozenset()  # placed, but administratively down
    problems: tuple[Problem, ...] = ()  # what this host cannot realize, and why
    # router-owned ports (interfaces, gateway, SNAT, floating IPs) whose status this host
    # reports -> the devices each needs here
    reported: Mapping[str, frozenset[str]] = field(default_factory=dict)
    adverts: tuple[Advert, ...] = ()  # the routers' IPv6 router advertisements (sent, not kept)
    # the compiled firewall (None with the firewall off): what each port gets, elements' sources
    firewall: FirewallPlan | None = field(default=None, compare=False)
    leases: tuple[Lease, ...] = ()  # what this host's DHCP server answers (answered, not kept)
    dns: tuple[DnsZone, ...] = ()  # what its DNS server answers in each service namespace
    metadata: tuple[MetadataZone, ...] = ()  # and its metadata service
    leases6: tuple[Lease6, ...] = ()  # what its DHCPv6 server answers
    qos: Mapping[str, PortQos] = field(default_factory=dict)  # local port id -> QoS enforced

    def render(self) -> str:
        """Normalized, sorted text (for golden tests and `overcast` debugging)."""
        lines = [f"host {self.host}"]
        lines += self.state.render(kinds()).splitlines()
        lines += [f"port {pid} dev {dev}" for pid, dev in sorted(self.port_devices.items())]
        lines += [f"problem {p}" for p in self.problems]
        return "\n".join(lines) + "\n"


@dataclass
class _Builder:
    view: HostView
    bridges: list[Bridge] = field(default_factory=list)
    vxlans: list[Vxlan] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    fdb: list[FdbEntry] = field(default_factory=list)
    port_devices: dict[str, str] = field(default_factory=dict)
    port_needs: dict[str, frozenset[str]] = field(default_factory=dict)
    ports_down: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    used_names: dict[str, str] = field(default_factory=dict)  # kernel name -> owner id
    planned: dict[str, Network] = field(default_factory=dict)  # networks with a bridge here

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def claim(self, name: str, owner: str, path: str) -> bool:
        """Reserve a kernel name; False (and a problem) if another object has it."""
        holder = self.used_names.setdefault(name, owner)
        if holder != owner:
            self.problem(path, f"{name} is already used by {holder}")
            return False
        return True


def plan_host(view: HostView) -> HostPlan:
    """Compute the desired kernel state of ``view.host``."""
    b = _Builder(view)
    networks = {n.id: n for n in sorted(view.networks, key=lambda n: n.id)}
    ports = sorted(view.ports, key=lambda p: p.id)
    local = [p for p in ports if p.binding_host_id == view.host]
    for port in local:
        if port.network_id not in networks:
            b.problem(f"port/{port.id}", f"network {port.network_id} is unknown")
    here = routers_here(view) if view.routers else []
    routed = {net_id for item in here for net_id in item.networks(view.host)}
    for net in networks.values():
        net_local = [p for p in local if p.network_id == net.id]
        if net_local or net.id in routed:  # a router's network: routed frames leave by it
            remote = [p for p in ports if p.network_id == net.id and _is_remote(p, view)]
            _plan_network(b, net, net_local, remote)
    routers = _plan_routers(b, here)
    # DHCP and the network's services (they keep a MAC off the overlay: with the firewall only)
    leases = plan_leases(local, b.port_devices, networks, view.subnets, view.dns_domain,
                         SERVER_IP if view.firewall else None) if view.dhcp else ()
    leases6 = plan_leases6(local, b.port_devices, networks, view.subnets,
                           view.dns_domain) if view.dhcp else ()
    services = _plan_services(b, leases)
    firewall = []
    fw = None
    if view.firewall:  # every port is pinned on the ruleset: its elements name the port's tap
        fw = compile_firewall(view, b.port_devices, routers.overlay, b.planned,
                              {**{v4.port_id: v4.dev for v4 in leases},
                               **{v6.port_id: v6.dev for v6 in leases6}})
        firewall.append(fw.ruleset)
        b.problems += fw.problems
    qos = plan_qos(local, b.port_devices, networks, view.qos_policies, view.qos_rules,
                   view.qos_features, _uplink(view))
    state = KernelState.of(routers.records, services.records, b.bridges, b.vxlans,
                           b.attachments, b.fdb, firewall, qos.records)
    problems = tuple(sorted(set(b.problems), key=lambda p: (p.path, p.message)))
    return HostPlan(view.host, state, dict(sorted(b.port_devices.items())),
                    dict(sorted(b.port_needs.items())), frozenset(b.ports_down), problems,
                    dict(routers.reported), routers.adverts, fw, leases, services.zones,
                    services.metadata, leases6, qos.ports)


def _plan_routers(b: _Builder, here: list[Here]) -> RouterPlan:
    """The routers of this host, their interfaces attached to the bridges."""
    if not here:
        return RouterPlan()
    if not b.view.firewall:
        for item in here:  # the gateway MAC would be seen on the overlay: no router at all
            b.problem(f"router/{item.router.id}", "routers need the firewall (agent option "
                      "--firewall on): it keeps their gateway MACs off the overlay")
        return RouterPlan()
    plan = plan_routers(b.view, here, b.planned)
    b.problems += plan.problems
    b.fdb += plan.fdb
    for peer, bridge, mtu in plan.attachments:
        if b.claim(peer, peer, f"router/{bridge}"):
            b.attachments.append(Attachment(peer, bridge, mtu))
    return plan


def _plan_services(b: _Builder, leases: tuple[Lease, ...]) -> ServicePlan:
    """The service namespaces of the networks with a lease here, attached."""
    if not leases or not b.view.firewall:
        return ServicePlan()
    plan = plan_services(leases, b.view.ports, b.view.host, b.planned, b.view.subnets,
                         b.view.dns_domain, b.view.floating_ips)
    for peer, bridge, mtu in plan.attachments:
        if b.claim(peer, peer, f"network/{bridge}"):
            b.attachments.append(Attachment(peer, bridge, mtu))
    return plan


def _is_remote(port: Port, view: HostView) -> bool:
    return bool(port.binding_host_id) and port.binding_host_id != view.host


def _plan_network(b: _Builder, net: Network, local: list[Port], remote: list[Port]) -> None:
    path = f"network/{net.id}"
    if not _network_ok(b, net, path) or not _claim_network(b, net, path):
        return
    bridge, mark = names.bridge_name(net.id), names.network_mark(net.id)
    # br_netfilter per bridge (never the host-wide sysctls): the firewall's
    # security groups see bridged IPv4/IPv6 in the inet hooks
    nf = b.view.firewall
    b.planned[net.id] = net
    b.bridges.append(Bridge(bridge, net.mtu, mark, nf_call_iptables=nf, nf_call_ip6tables=nf))
    needs = {bridge}
    if net.network_type == "vxlan":
        vxlan = names.vxlan_name(net.id)
        needs.add(vxlan)
        b.vxlans.append(Vxlan(vxlan, int(net.segmentation_id or 0), b.view.underlay_ip, net.mtu, mark))
        b.attachments.append(Attachment(vxlan, bridge, net.mtu))
        _plan_remote(b, vxlan, remote)
    if net.network_type == "flat":
        # the uplink is the operator's device: attached, its MTU left alone, never deleted
        uplink = b.view.physical_networks[str(net.physical_network)]
        needs.add(uplink)
        b.attachments.append(Attachment(uplink, bridge))
    for port in local:
        tap = names.tap_name(port.id)
        if b.claim(tap, f"port/{port.id}", f"port/{port.id}"):
            b.attachments.append(Attachment(tap, bridge, net.mtu, port.admin_state_up,
                                            group=names.PORT_GROUP))
            b.port_devices[port.id] = tap
            b.port_needs[port.id] = frozenset(needs | {tap})
            if not port.admin_state_up:
                b.ports_down.add(port.id)


def _claim_network(b: _Builder, net: Network, path: str) -> bool:
    """Reserve the network's kernel names (and its VNI: the kernel allows one
    vxlan device per VNI and port)."""
    wanted = [names.bridge_name(net.id)]
    if net.network_type == "vxlan":
        wanted += [names.vxlan_name(net.id), f"vni {net.segmentation_id}"]
    if net.network_type == "flat":  # a device is a port of one bridge only
        wanted.append(b.view.physical_networks[str(net.physical_network)])
    return all([b.claim(name, path, path) for name in wanted])


def _network_ok(b: _Builder, net: Network, path: str) -> bool:
    if net.network_type not in SUPPORTED_TYPES:
        b.problem(path, f"network_type {net.network_type} is not supported by this agent")
        return False
    if not 68 <= net.mtu <= 65535:
        b.problem(path, f"mtu {net.mtu} is out of range 68..65535")
        return False
    if net.network_type == "flat":
        return _flat_ok(b, net, path)
    if net.network_type != "vxlan":
        return True
    if net.segmentation_id is None or not 1 <= net.segmentation_id <= MAX_VNI:
        b.problem(path, f"vxlan segmentation_id {net.segmentation_id} is not in 1..{MAX_VNI}")
        return False
    if not b.view.underlay_ip:
        b.problem(path, f"host {b.view.host} has no underlay IP for vxlan")
        return False
    return True


def _flat_ok(b: _Builder, net: Network, path: str) -> bool:
    """A flat network needs its physical network mapped to an uplink on this host."""
    physnet = net.physical_network or ""
    if physnet not in b.view.physical_networks:
        b.problem(path, f"physical network '{physnet}' is not mapped on host {b.view.host} "
                  f"(agent option --physical-network {physnet}=DEVICE)")
        return False
    return True


def _plan_remote(b: _Builder, vxlan: str, remote: Iterable[Port]) -> None:
    """Static FDB for every remote MAC, head-end replication per remote host."""
    for port in remote:
        dst = b.view.hosts.get(port.binding_host_id, "")
        if not dst:
            b.problem(f"port/{port.id}", f"bound to host {port.binding_host_id} with no known underlay IP")
            continue
        if dst == b.view.underlay_ip:
            b.problem(f"port/{port.id}", f"host {port.binding_host_id} has this host's underlay IP {dst}")
            continue
        b.fdb.append(FdbEntry(vxlan, BUM_MAC, dst))
        for mac in _macs(port):
            b.fdb.append(FdbEntry(vxlan, mac, dst))


def _macs(port: Port) -> list[str]:
    """The port's unicast MACs: a multicast one (the API accepts it, as Neutron)
    as a static entry would pull that group's frames to one host; the flood
    entries already carry them to every interested host."""
    macs = [port.mac_address] + [pair.mac_address for pair in port.allowed_address_pairs]
    return sorted({m.lower() for m in macs if m and not int(m[:2], 16) & 1})


def _uplink(view: HostView) -> Uplink | None:
    """Where egress minimum bandwidth is guaranteed (the agent's --qos-uplink)."""
    if view.qos_uplink is None:
        return None
    return Uplink(*view.qos_uplink, view.physical_networks)
