"""plan/leases.py: which local ports this host's DHCP server answers, with
what, and the firewall's stop for their requests (``dhcp_local``)."""

from __future__ import annotations

import json
from dataclasses import replace

from overcast.model.types import ExtraDhcpOpt, FixedIP, HostRoute, Port, Subnet
from overcast.plan import plan_host
from overcast.plan.leases import SERVER_IP, Lease, Lease6
from overcast.plan.names import tap_name

from .scenarios import NET_A, NET_B, net, port, view

SUB_A = "5a000000-0000-4000-8000-00000000000a"
SUB_A6 = "5a000000-0000-4000-8000-0000000000a6"
SUB_B = "5b000000-0000-4000-8000-00000000000b"


def subnets() -> list[Subnet]:
    return [
        Subnet(id=SUB_A, network_id=NET_A, cidr="10.0.0.0/24", gateway_ip="10.0.0.1",
               dns_nameservers=("10.0.0.53", "10.0.0.54"),
               host_routes=(HostRoute("172.16.0.0/12", "10.0.0.254"),
                            HostRoute("2001:db8::/32", "fd00::1"))),
        Subnet(id=SUB_A6, network_id=NET_A, ip_version=6, cidr="fd00::/64", gateway_ip="fd00::1"),
        Subnet(id=SUB_B, network_id=NET_B, cidr="10.1.0.0/24", gateway_ip=None, enable_dhcp=True),
    ]


def on(subnet: str, ip: str) -> tuple[FixedIP, ...]:
    return (FixedIP(subnet, ip),)


def leases_of(host: str, ports: list[Port], subs: list[Subnet] | None = None,
              dns_domain: str = "openstacklocal") -> tuple[Lease, ...]:
    networks = [replace(net(NET_A, 1001), dns_domain="cloud.example."), net(NET_B, 1002, mtu=1400)]
    v = replace(view(host, networks, ports), subnets=subnets() if subs is None else subs,
                dns_domain=dns_domain)
    return plan_host(v).leases


def test_a_local_port_gets_its_address_and_its_subnets_configuration() -> None:
    p = port(1, NET_A, "h1", fixed_ips=(FixedIP(SUB_A6, "fd00::5"), FixedIP(SUB_A, "10.0.0.5")),
             dns_name="web", extra_dhcp_opts=(ExtraDhcpOpt("tftp-server", "10.0.0.9"),
                                              ExtraDhcpOpt("bootfile-name", "x", 6)))
    (lease,) = leases_of("h1", [p])
    assert lease == Lease(
        dev=tap_name(p.id), port_id=p.id, mac=p.mac_address, ip="10.0.0.5", prefixlen=24,
        server_ip=SERVER_IP, router="10.0.0.1", dns_servers=("10.0.0.53", "10.0.0.54"),
        domain="cloud.example", host_name="web", mtu=1450,
        routes=(("172.16.0.0/12", "10.0.0.254"), (f"{SERVER_IP}/32", "0.0.0.0")), extra=(("tftp-server", "10.0.0.9"),))


def test_without_gateway_or_dns_name_the_name_is_made_up() -> None:
    p = port(2, NET_B, "h1", fixed_ips=on(SUB_B, "10.1.0.7"))
    (lease,) = leases_of("h1", [p], dns_domain="lab.example")
    assert (lease.router, lease.server_ip) == (None, SERVER_IP)
    assert (lease.host_name, lease.domain, lease.mtu) == ("host-10-1-0-7", "lab.example", 1400)


def test_only_local_ports_up_on_dhcp_enabled_ipv4_subnets_get_a_lease() -> None:
    here = port(1, NET_A, "h1", fixed_ips=on(SUB_A, "10.0.0.5"))
    ports = [here,
             port(2, NET_A, "h2", fixed_ips=on(SUB_A, "10.0.0.6")),  # another host's
             port(3, NET_A, "h1", fixed_ips=on(SUB_A, "10.0.0.7"), admin_state_up=False),
             port(4, NET_A, "h1", fixed_ips=on(SUB_A6, "fd00::4")),  # IPv6 only
             port(5, NET_B, "h1", fixed_ips=on(SUB_B, "10.1.0.5"))]
    subs = [s if s.id != SUB_B else replace(s, enable_dhcp=False) for s in subnets()]
    assert [lease.port_id for lease in leases_of("h1", ports, subs)] == [here.id]
    assert leases_of("h2", ports, subs)[0].port_id == ports[1].id


def test_the_firewall_stops_the_requests_of_the_ports_it_answers() -> None:
    served = port(1, NET_A, "h1", fixed_ips=on(SUB_A, "10.0.0.5"))
    unserved = port(5, NET_B, "h1", fixed_ips=on(SUB_B, "10.1.0.5"))
    subs = [s if s.id != SUB_B else replace(s, enable_dhcp=False) for s in subnets()]
    networks = [net(NET_A, 1001), net(NET_B, 1002)]
    plan = plan_host(replace(view("h1", networks, [served, unserved]), subnets=subs))
    assert plan.firewall is not None
    stopped = [(json.loads(e.key), e.comment) for e in plan.firewall.ruleset.elements
               if e.set == "dhcp_local"]
    assert stopped == [(tap_name(served.id), served.id)]


def test_dhcpv6_leases_for_stateful_and_stateless_subnets() -> None:
    s6 = "5a000000-0000-4000-8000-0000000000b6"
    subs = [*subnets(), Subnet(id=s6, network_id=NET_B, ip_version=6, cidr="fd01::/64",
                               ipv6_address_mode="dhcpv6-stateless",
                               dns_nameservers=("fd01::53", "10.0.0.53"))]
    subs = [replace(s, ipv6_address_mode="dhcpv6-stateful") if s.id == SUB_A6 else s for s in subs]
    full = port(1, NET_A, "h1", fixed_ips=(FixedIP(SUB_A, "10.0.0.5"), FixedIP(SUB_A6, "fd00::5")))
    info = port(2, NET_B, "h1", fixed_ips=(FixedIP(s6, "fd01::7"),))
    slaac = port(3, NET_A, "h1", fixed_ips=(FixedIP(SUB_A, "10.0.0.6"),))
    networks = [replace(net(NET_A, 1001), dns_domain="cloud.example."), net(NET_B, 1002)]
    plan = plan_host(replace(view("h1", networks, [full, info, slaac]), subnets=tuple(subs)))
    assert plan.leases6 == (
        Lease6(tap_name(full.id), full.id, full.mac_address, True, ("fd00::5",), (), "cloud.example"),
        Lease6(tap_name(info.id), info.id, info.mac_address, False, (), ("fd01::53",),
               "openstacklocal"))
    assert plan.firewall is not None
    stopped = {json.loads(e.key) for e in plan.firewall.ruleset.elements if e.set == "dhcp_local"}
    assert stopped == {tap_name(full.id), tap_name(info.id), tap_name(slaac.id)}


def test_a_gateway_outside_the_subnet_is_routed_on_the_link_before_the_default() -> None:
    """Neutron accepts such a gateway; a client installs the default route
    through it only with a route to it on the link (option 121, in order)."""
    subs = [Subnet(id=SUB_B, network_id=NET_B, cidr="10.1.0.0/24", gateway_ip="10.9.9.1")]
    (lease,) = leases_of("h1", [port(2, NET_B, "h1", fixed_ips=on(SUB_B, "10.1.0.7"))], subs)
    assert lease.router == "10.9.9.1"
    assert lease.routes == (("10.9.9.1/32", "0.0.0.0"), (f"{SERVER_IP}/32", "0.0.0.0"))
