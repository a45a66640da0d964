"""plan/services.py: a network's service namespace on each host with a
lease on it (169.254.169.254 with the DHCP server's MAC, on the network's
bridge) and the DNS zone answered there."""

from __future__ import annotations

from dataclasses import replace

from overcast.agent.reconciler import reconcile
from overcast.linux import FakeKernel
from overcast.model.types import FixedIP, FloatingIP, Network, Port, Subnet
from overcast.plan import HostPlan, plan_host
from overcast.plan.diff import diff
from overcast.plan.leases import SERVER_IP, SERVER_MAC
from overcast.plan.names import bridge_name, router_if_name, router_port_name, tap_name
from overcast.plan.services import DnsZone, MetadataZone, PortMeta, service_id, service_netns
from overcast.plan.subsystems.routers import RouterAddress, RouterNamespace, RouterPort, RouterRoute

from .scenarios import NET_A, NET_B, net, port, view

SUB_A = "5a000000-0000-4000-8000-00000000000a"
SUB_A6 = "5a000000-0000-4000-8000-0000000000a6"
SUB_B = "5b000000-0000-4000-8000-00000000000b"
PROJECT, OTHER = "p" * 32, "q" * 32


def world(*ports: Port) -> tuple[list[Network], list[Subnet], list[Port]]:
    networks = [replace(net(NET_A, 1001), project_id=PROJECT, dns_domain="a.example."),
                replace(net(NET_B, 1002), project_id=OTHER)]
    subnets = [Subnet(id=SUB_A, network_id=NET_A, cidr="10.0.0.0/24", gateway_ip="10.0.0.1"),
               Subnet(id=SUB_A6, network_id=NET_A, ip_version=6, cidr="fd00::/64"),
               Subnet(id=SUB_B, network_id=NET_B, cidr="10.0.0.0/24", gateway_ip="10.0.0.1")]
    return networks, subnets, list(ports)


def vm(n: int, network: str, host: str, *fixed: tuple[str, str], project: str = PROJECT,
       **kw: object) -> Port:
    return replace(port(n, network, host, **kw), project_id=project,
                   fixed_ips=tuple(FixedIP(s, ip) for s, ip in fixed))


def planned(host: str, networks: list[Network], subnets: list[Subnet], ports: list[Port],
            dhcp: bool = True, firewall: bool = True) -> HostPlan:
    return plan_host(replace(view(host, networks, ports), subnets=tuple(subnets), dhcp=dhcp,
                             firewall=firewall))


def test_a_network_with_a_lease_here_gets_its_service_namespace() -> None:
    networks, subnets, ports = world(vm(1, NET_A, "h1", (SUB_A, "10.0.0.5")),
                                     vm(2, NET_B, "h2", (SUB_B, "10.0.0.5"), project=OTHER))
    plan = planned("h1", networks, subnets, ports)
    ns, sid = service_netns(NET_A, "h1"), service_id(NET_A)
    dev = router_if_name(sid)
    assert plan.state[RouterNamespace] == (RouterNamespace(ns, f"overcast:router:{sid}"),)
    (svc,) = plan.state[RouterPort]
    assert (svc.netns, svc.ifname, svc.peer, svc.mac, svc.mtu) == (ns, dev, router_port_name(sid),
                                                                   SERVER_MAC, 1450)
    assert plan.state[RouterAddress] == (RouterAddress(ns, dev, f"{SERVER_IP}/32"),)
    assert plan.state[RouterRoute] == (RouterRoute(ns, "0.0.0.0/0", "", 254, dev),)
    assert plan.leases[0].dns_servers == (SERVER_IP,)  # the subnet names none: ours
    # no lease, no namespace: host h3 has no port, h2's network is another
    assert planned("h3", networks, subnets, ports).state[RouterNamespace] == ()
    assert planned("h1", networks, subnets, ports, dhcp=False).state[RouterNamespace] == ()
    assert planned("h1", networks, subnets, ports, firewall=False).state[RouterNamespace] == ()


def test_the_zone_holds_the_projects_ports_under_their_names_and_nothing_else() -> None:
    networks, subnets, ports = world(
        vm(1, NET_A, "h1", (SUB_A, "10.0.0.5"), (SUB_A6, "fd00::5"), dns_name="Web"),
        vm(2, NET_A, "h2", (SUB_A, "10.0.0.6")),
        vm(3, NET_B, "h1", (SUB_B, "10.0.0.5"), project=PROJECT, dns_name="spy"))
    zones = {z.network_id: z for z in planned("h1", networks, subnets, ports).dns}
    assert zones[NET_A] == DnsZone(service_netns(NET_A, "h1"), NET_A, "a.example", (
        ("host-10-0-0-6.a.example", ("10.0.0.6",)),
        ("web.a.example", ("10.0.0.5", "fd00::5"))), ("10.0.0.0/24", "fd00::/64"))
    # B is another project's network: its port (made by whoever) is in B's zone only
    assert [h for h, _ in zones[NET_B].hosts] == ["spy.openstacklocal"]
    assert zones[NET_A].serial != zones[NET_B].serial


def test_the_fake_kernel_converges_and_the_namespace_goes_with_the_last_lease() -> None:
    networks, subnets, ports = world(vm(1, NET_A, "h1", (SUB_A, "10.0.0.5")))
    kernel = FakeKernel()
    kernel.add_device(tap_name(ports[0].id))
    plan = planned("h1", networks, subnets, ports)
    for _ in range(2):  # a tap joins its bridge once the firewall's chains exist
        assert reconcile(kernel, plan.state).errors == ()
    assert diff(plan.state, kernel.observe()) == []
    ns = service_netns(NET_A, "h1")
    assert kernel.links[router_port_name(service_id(NET_A))].master == bridge_name(NET_A)
    gone = planned("h1", networks, subnets, [])
    assert reconcile(kernel, gone.state).errors == ()
    assert ns not in kernel.namespaces.spaces


def test_the_metadata_of_the_local_ports_with_a_lease() -> None:
    fip = FloatingIP(id="f1", floating_ip_address="203.0.113.9", port_id="x",
                     fixed_ip_address="10.0.0.5")
    networks, subnets, ports = world(
        vm(1, NET_A, "h1", (SUB_A, "10.0.0.5"), device_id="vm-1", dns_name="web"),
        vm(2, NET_A, "h2", (SUB_A, "10.0.0.6")))
    plan = plan_host(replace(view("h1", networks, ports), subnets=tuple(subnets),
                             floating_ips=(replace(fip, port_id=ports[0].id),)))
    (zone,) = plan.metadata
    assert zone == MetadataZone(service_netns(NET_A, "h1"), (PortMeta(
        "10.0.0.5", ports[0].id, "vm-1", ports[0].mac_address, "web.a.example", "10.0.0.0/24",
        "203.0.113.9"),))  # h2's port is answered on h2


def test_metadata_tells_a_port_its_own_floating_ip_not_that_of_the_same_address_elsewhere() -> None:
    networks, subnets, ports = world(vm(1, NET_A, "h1", (SUB_A, "10.0.0.5")),
                                     vm(2, NET_B, "h1", (SUB_B, "10.0.0.5"), project=OTHER))
    fip = FloatingIP(id="f1", floating_ip_address="203.0.113.9", port_id=ports[1].id,
                     fixed_ip_address="10.0.0.5")
    plan = plan_host(replace(view("h1", networks, ports), subnets=tuple(subnets),
                             floating_ips=(fip,)))
    public = {z.netns: [p.public_ipv4 for p in z.ports] for z in plan.metadata}
    assert public == {service_netns(NET_A, "h1"): [""], service_netns(NET_B, "h1"): ["203.0.113.9"]}
