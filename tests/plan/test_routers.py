"""Routers in the plan: where a router exists, what it holds, and its diff
rules against FakeKernel (the same subsystem code the driver runs)."""

from __future__ import annotations

import json
from dataclasses import replace

from overcast.agent.reconciler import reconcile
from overcast.linux import FakeKernel
from overcast.model.types import (
    ROUTER_GATEWAY,
    ROUTER_INTERFACE,
    ROUTER_SNAT,
    FixedIP,
    FloatingIP,
    HostRoute,
    MeteringLabel,
    MeteringLabelRule,
    Network,
    Port,
    PortForwarding,
    Router,
    Subnet,
)
from overcast.plan import HostPlan, HostView, plan_host
from overcast.plan.diff import diff
from overcast.plan.names import (
    bridge_name,
    router_if_name,
    router_netns,
    router_port_name,
    tap_name,
    vxlan_name,
)
from overcast.plan.router_placement import home_host
from overcast.plan.routers import host_mac
from overcast.plan.subsystems.fdb import FdbEntry
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.links import Attachment, Bridge
from overcast.plan.subsystems.routers import (
    RouterAddress,
    RouterMeter,
    RouterNamespace,
    RouterNat,
    RouterNeighbour,
    RouterPort,
    RouterRoute,
    RouterRule,
)

from .scenarios import HOSTS, NET_A, NET_B, net, port
from .scenarios import view as any_view

ROUTER = "eeeeeeee-5555-4555-8555-000000000005"
SUB_A = "aaaaaaaa-0000-4000-8000-00000000000a"
SUB_B = "bbbbbbbb-0000-4000-8000-00000000000b"


def subnets() -> list[Subnet]:
    return [Subnet(id=SUB_A, network_id=NET_A, cidr="10.0.1.0/24", gateway_ip="10.0.1.1"),
            Subnet(id=SUB_B, network_id=NET_B, cidr="10.0.2.0/24", gateway_ip="10.0.2.1")]


def iface(n: int, network_id: str, subnet_id: str, ip: str, router: str = ROUTER) -> Port:
    return replace(port(n, network_id, ""), device_owner=ROUTER_INTERFACE, device_id=router,
                   fixed_ips=(FixedIP(subnet_id, ip),), port_security_enabled=False)


def vm(n: int, network_id: str, host: str, subnet_id: str, ip: str) -> Port:
    return replace(port(n, network_id, host), fixed_ips=(FixedIP(subnet_id, ip),))


def view(host: str, networks: list[Network], ports: list[Port],
         hosts: dict[str, str] = HOSTS) -> HostView:
    """Without DHCP: its service namespaces (test_services.py) are not routers'."""
    return replace(any_view(host, networks, ports, hosts), dhcp=False)


def world(*ports: Port, routes: tuple[HostRoute, ...] = ()) -> tuple[list[Network], list[Port], Router]:
    return ([net(NET_A, 1001), net(NET_B, 1002, mtu=1400)],
            [iface(0x10, NET_A, SUB_A, "10.0.1.1"), iface(0x11, NET_B, SUB_B, "10.0.2.1"), *ports],
            Router(id=ROUTER, routes=routes))


def plan(host: str, networks: list[Network], ports: list[Port], router: Router) -> HostPlan:
    return plan_host(replace(view(host, networks, ports), routers=(router,),
                             subnets=tuple(subnets())))


def test_a_router_exists_where_a_port_is_on_one_of_its_networks_with_every_interface() -> None:
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"),
                                    vm(2, NET_B, "h2", SUB_B, "10.0.2.5"))
    h1 = plan("h1", networks, ports, router)
    ns = router_netns(ROUTER, "h1")
    assert h1.problems == ()
    assert [n.name for n in h1.state[RouterNamespace]] == [ns]
    assert {p.ifname: (p.mac, p.mtu) for p in h1.state[RouterPort]} == {
        router_if_name(ports[0].id): ("fa:16:3e:00:00:10", 1450),
        router_if_name(ports[1].id): ("fa:16:3e:00:00:11", 1400)}
    assert {a.cidr for a in h1.state[RouterAddress]} == {"10.0.1.1/24", "10.0.2.1/24"}
    # B has no port on h1, but routed frames to 10.0.2.5 leave by B's bridge here
    assert {b.name for b in h1.state[Bridge]} == {bridge_name(NET_A), bridge_name(NET_B)}
    assert Attachment(router_port_name(ports[1].id), bridge_name(NET_B), 1400) in h1.state[Attachment]
    # the neighbours of both subnets, wherever the ports are bound
    assert {(n.ip, n.mac) for n in h1.state[RouterNeighbour]} == {
        ("10.0.1.5", "fa:16:3e:00:00:01"), ("10.0.2.5", "fa:16:3e:00:00:02")}
    h3 = plan("h3", networks, ports, router)
    assert not h3.state[RouterNamespace] and not h3.state[Bridge]


def test_the_overlay_keeps_gateway_macs_and_ips_and_knows_the_host_mac() -> None:
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"))
    (ruleset,) = plan("h1", networks, ports, router).state[NftRuleset]
    by_set = {(e.set, e.key, e.data) for e in ruleset.elements
              if e.set in ("router_mac", "router_ip4", "host_mac")}
    vx_a, vx_b = vxlan_name(NET_A), vxlan_name(NET_B)
    assert by_set == {
        ("router_mac", f'{{"concat":["{vx_a}","fa:16:3e:00:00:10"]}}', ""),
        ("router_mac", f'{{"concat":["{vx_b}","fa:16:3e:00:00:11"]}}', ""),
        ("router_ip4", f'{{"concat":["{vx_a}","10.0.1.1"]}}', ""),
        ("router_ip4", f'{{"concat":["{vx_b}","10.0.2.1"]}}', ""),
        # the DHCP server's address is every host's own too (plan/leases.py)
        ("router_ip4", f'{{"concat":["{vx_a}","169.254.169.254"]}}', ""),
        ("router_ip4", f'{{"concat":["{vx_b}","169.254.169.254"]}}', ""),
        # and the service namespace's MAC (plan/services.py)
        ("router_mac", f'{{"concat":["{vx_a}","fa:16:3f:00:00:01"]}}', ""),
        ("router_mac", f'{{"concat":["{vx_b}","fa:16:3f:00:00:01"]}}', ""),
        ("host_mac", f'"{vx_a}"', '"fa:17:c6:12:00:01"'),
        ("host_mac", f'"{vx_b}"', '"fa:17:c6:12:00:01"')}


def test_host_macs_differ_per_host() -> None:
    assert len({host_mac(ip) for ip in HOSTS.values()}) == len(HOSTS)
    assert host_mac("198.18.0.1") == "fa:17:c6:12:00:01"
    assert host_mac("fd00::1").startswith("fa:18:")


def test_two_projects_with_the_same_cidrs_get_two_namespaces() -> None:
    other = "ffffffff-6666-4666-8666-000000000006"
    net_c = "cccccccc-0000-4000-8000-00000000000c"
    sub_c = "cccccccc-0000-4000-8000-0000000000cc"
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"))
    networks.append(net(net_c, 1003))
    ports += [iface(0x12, net_c, sub_c, "10.0.1.1", other), vm(3, net_c, "h1", sub_c, "10.0.1.5")]
    view_ = replace(view("h1", networks, ports), routers=(router, Router(id=other)),
                    subnets=(*subnets(), Subnet(id=sub_c, network_id=net_c, cidr="10.0.1.0/24",
                                                gateway_ip="10.0.1.1")))
    state = plan_host(view_).state
    assert {n.name for n in state[RouterNamespace]} == {router_netns(ROUTER, "h1"),
                                                        router_netns(other, "h1")}
    assert sorted((a.netns == router_netns(other, "h1"), a.cidr) for a in state[RouterAddress]) == [
        (False, "10.0.1.1/24"), (False, "10.0.2.1/24"), (True, "10.0.1.1/24")]


def test_static_routes_need_a_connected_nexthop() -> None:
    routes = (HostRoute("192.0.2.0/24", "10.0.1.7"), HostRoute("198.51.100.0/24", "10.9.9.9"))
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"), routes=routes)
    result = plan("h1", networks, ports, router)
    assert [(r.dst, r.gateway) for r in result.state[RouterRoute]] == [("192.0.2.0/24", "10.0.1.7")]
    assert [p.path for p in result.problems] == [f"router/{ROUTER}"]


def test_without_the_firewall_no_router_is_made_and_that_is_said() -> None:
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"))
    result = plan_host(replace(view("h1", networks, ports), routers=(router,),
                               subnets=tuple(subnets()), firewall=False))
    assert not result.state[RouterNamespace]
    assert "routers need the firewall" in result.problems[0].message


def converged(kernel: FakeKernel, result: HostPlan) -> None:
    """Two passes: a tap joins its bridge once the firewall's chains exist."""
    for _ in range(2):
        assert reconcile(kernel, result.state).errors == ()
    assert diff(result.state, kernel.observe()) == []


def test_the_fake_kernel_converges_and_deleting_the_router_removes_exactly_it() -> None:
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"),
                                    vm(2, NET_B, "h2", SUB_B, "10.0.2.5"),
                                    routes=(HostRoute("192.0.2.0/24", "10.0.1.7"),))
    kernel = FakeKernel()
    kernel.add_device(tap_name(ports[2].id))
    converged(kernel, plan("h1", networks, ports, router))
    ns = router_netns(ROUTER, "h1")
    space = kernel.namespaces.spaces[ns]
    assert space.forwarding and {ln.up for ln in space.links.values()} == {True}
    assert kernel.links[router_port_name(ports[0].id)].master == bridge_name(NET_A)
    # the interface port leaves: its veth pair goes, the namespace stays
    without_b = [p for p in ports if p.id != ports[1].id]
    converged(kernel, plan("h1", networks, without_b, router))
    assert router_port_name(ports[1].id) not in kernel.links
    assert set(kernel.namespaces.spaces[ns].links) == {router_if_name(ports[0].id)}
    # the router's last local reason goes: its namespace and the A interface's pair go
    converged(kernel, plan("h1", networks, [p for p in without_b if p.id != ports[2].id], router))
    assert kernel.namespaces.spaces == {}
    assert not [name for name in kernel.links if name.startswith("ocq")]


def test_a_host_side_deleted_by_hand_is_made_again_with_its_addresses_and_routes() -> None:
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"),
                                    routes=(HostRoute("192.0.2.0/24", "10.0.1.7"),))
    result = plan("h1", networks, ports, router)
    kernel = FakeKernel()
    converged(kernel, result)
    kernel.remove_device(router_port_name(ports[0].id))
    converged(kernel, result)
    ns = kernel.namespaces.spaces[router_netns(ROUTER, "h1")]
    assert {a.cidr for a in ns.addresses} == {"10.0.1.1/24", "10.0.2.1/24"}
    assert {n.ip for n in ns.neighbours.values()} == {"10.0.1.5"}
    assert {(r.dst, r.gateway) for r in ns.routes} == {("192.0.2.0/24", "10.0.1.7")}


def test_a_namespace_of_our_name_without_a_mark_is_adopted_and_one_of_another_host_is_not_ours() -> None:
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"))
    kernel = FakeKernel()
    kernel.namespaces.add(router_netns(ROUTER, "h1"), "")
    kernel.namespaces.spaces[router_netns(ROUTER, "h1")].mark = ""
    converged(kernel, plan("h1", networks, ports, router))
    assert kernel.namespaces.spaces[router_netns(ROUTER, "h1")].mark.startswith("overcast:router:")


def test_a_changed_mac_and_mtu_are_updated_in_place() -> None:
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"))
    kernel = FakeKernel()
    converged(kernel, plan("h1", networks, ports, router))
    networks[0] = net(NET_A, 1001, mtu=1300)
    changes = diff(plan("h1", networks, ports, router).state, kernel.observe())
    assert [c.op for c in changes if isinstance(c.obj, RouterPort)] == ["update"]
    converged(kernel, plan("h1", networks, ports, router))


EXT = "e0000000-0000-4000-8000-0000000000e0"
SUB_EXT = "e0000000-0000-4000-8000-0000000000e1"


def with_gateway(*ports: Port, hosts: tuple[str, ...] = ("h2", "h3"),
                 fips: tuple[FloatingIP, ...] = (),
                 port_forwardings: tuple[PortForwarding, ...] = (),
                 metering: tuple[tuple[MeteringLabel, ...], tuple[MeteringLabelRule, ...]] = ((), ()),
                 routes: tuple[HostRoute, ...] = (),
                 ext_gateway: str = "203.0.113.1",
                 addressed: bool = True) -> tuple[HostPlan, ...]:
    """The router of ``world`` with an external gateway (203.0.113.5) and a
    SNAT port (10.0.1.2); ``hosts`` map the external network's physical network.
    Not ``addressed``: the external network has no subnet, so the gateway port
    has no address and the router no SNAT port (as the API makes them)."""
    networks, base, router = world(*ports, routes=routes)
    ext = replace(net(EXT, type_="flat", mtu=1500), physical_network="external",
                  router_external=True)
    gateway = replace(port(0x20, EXT, ""), device_owner=ROUTER_GATEWAY, device_id=ROUTER,
                      fixed_ips=(FixedIP(SUB_EXT, "203.0.113.5"),) if addressed else ())
    snat = replace(port(0x21, NET_A, ""), device_owner=ROUTER_SNAT, device_id=ROUTER,
                   fixed_ips=(FixedIP(SUB_A, "10.0.1.2"),))
    router = replace(router, external_gateway={"network_id": EXT, "enable_snat": True})
    subs = (*subnets(), Subnet(id=SUB_EXT, network_id=EXT, cidr="203.0.113.0/24",
                               gateway_ip=ext_gateway))
    if not addressed:
        subs = subs[:-1]
    owned = [gateway, snat] if addressed else [gateway]
    plans = []
    for host in ("h1", "h2", "h3"):
        v = replace(view(host, [*networks, ext], [*base, *owned]), routers=(router,),
                    subnets=subs, physnet_hosts={"external": hosts},
                    physical_networks={"external": "eth9"} if host in hosts else {},
                    floating_ips=fips, port_forwardings=port_forwardings,
                    metering_labels=metering[0], metering_rules=metering[1])
        plans.append(plan_host(v))
    return tuple(plans)


def snat_host_of(plans: tuple[HostPlan, ...]) -> list[str]:
    return [p.host for p in plans if any(isinstance(r, RouterNat) for r in p.state.records)]


def test_one_live_host_with_the_external_mapping_does_snat_and_the_others_route_to_it() -> None:
    plans = with_gateway(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"), vm(2, NET_B, "h1", SUB_B, "10.0.2.5"))
    (snat,) = snat_host_of(plans)
    assert snat in ("h2", "h3")
    h1 = plans[0]
    assert h1.problems == ()
    assert [(r.dst, r.gateway) for r in h1.state[RouterRoute]] == [("0.0.0.0/0", "10.0.1.2")]
    assert ("10.0.1.2", "fa:16:3e:00:00:21") in {(n.ip, n.mac) for n in h1.state[RouterNeighbour]}
    assert FdbEntry(vxlan_name(NET_A), "fa:16:3e:00:00:21", HOSTS[snat]) in h1.state[FdbEntry]
    on = next(p for p in plans if p.host == snat)
    assert {(p.ifname[:3], p.mac) for p in on.state[RouterPort]} == {
        ("qr-", "fa:16:3e:00:00:10"), ("qr-", "fa:16:3e:00:00:11"),
        ("qg-", "fa:16:3e:00:00:20"), ("sg-", "fa:16:3e:00:00:21")}
    assert {a.cidr for a in on.state[RouterAddress] if a.dev.startswith(("qg-", "sg-"))} == {
        "203.0.113.5/24", "10.0.1.2/32"}
    assert [(r.dst, r.gateway) for r in on.state[RouterRoute]] == [("0.0.0.0/0", "203.0.113.1")]
    (nat_,) = on.state[RouterNat]
    assert [text for _, text in nat_.rules] == [
        f'[{{"match":{{"left":{{"meta":{{"key":"oifname"}}}},"op":"==","right":"qg-{port(0x20, EXT, "").id[:8]}000"}}}},'
        '{"match":{"left":{"payload":{"field":"saddr","protocol":"ip"}},"op":"==",'
        f'"right":{{"prefix":{{"addr":"{cidr}","len":24}}}}}}}},{{"snat":{{"addr":"203.0.113.5"}}}}]'
        for cidr in ("10.0.1.0", "10.0.2.0")]
    assert Attachment(router_port_name(port(0x20, EXT, "").id), bridge_name(EXT), 1500) \
        in on.state[Attachment]


def test_an_external_gateway_outside_its_subnet_is_reached_on_the_gateway_ports_link() -> None:
    """Neutron accepts a gateway outside the subnet; its l3 agent routes to it
    on the gateway port's link, then the default route goes through it."""
    plans = with_gateway(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"), ext_gateway="198.51.100.1")
    (snat,) = snat_host_of(plans)
    on = next(p for p in plans if p.host == snat)
    assert on.problems == ()
    qg = router_if_name(port(0x20, EXT, "").id, "qg-")
    assert sorted((r.dst, r.gateway, r.dev) for r in on.state[RouterRoute]) == [
        ("0.0.0.0/0", "198.51.100.1", ""), ("198.51.100.1/32", "", qg)]
    kernel = FakeKernel()
    kernel.add_device("eth9", kind="veth")  # the external uplink
    converged(kernel, on)  # the link's route first: the default via it is then accepted


def test_a_gateway_without_address_gives_no_snat_and_no_external_address() -> None:
    """An external network without subnet: Neutron makes the gateway port
    without address.  Nothing is NATed, nothing leaves by the external network,
    and the router routes between its own subnets as before, on every host."""
    vms = (vm(1, NET_A, "h1", SUB_A, "10.0.1.5"), vm(2, NET_B, "h2", SUB_B, "10.0.2.5"))
    plans = with_gateway(*vms, addressed=False)
    assert snat_host_of(plans) == []
    qg = router_if_name(port(0x20, EXT, "").id, "qg-")
    for p in plans:
        assert p.problems == (), p.host
        assert not [r for r in p.state[RouterRoute] if r.dst == "0.0.0.0/0"], p.host
        assert not [d for d in p.state[RouterPort] if d.ifname == qg], p.host
        assert bridge_name(EXT) not in {b.name for b in p.state[Bridge]}, p.host
    for h in plans[:2]:
        assert {a.cidr for a in h.state[RouterAddress]} == {"10.0.1.1/24", "10.0.2.1/24"}
    kernel = FakeKernel()
    kernel.add_device(tap_name(vms[0].id))
    converged(kernel, plans[0])
    # the same router with an addressed gateway still does SNAT, on one host
    assert len(snat_host_of(with_gateway(*vms))) == 1
    # a floating IP from a subnet the network got later has no way out: that is said
    fip = FloatingIP(id="f1000000-0000-4000-8000-0000000000f1", floating_network_id=EXT,
                     floating_ip_address="203.0.113.50", port_id=vms[0].id,
                     fixed_ip_address="10.0.1.5", router_id=ROUTER)
    h1 = with_gateway(*vms, fips=(fip,), hosts=("h1", "h2", "h3"), addressed=False)[0]
    assert [p.message for p in h1.problems] == [
        "the router's gateway has no address on the external network: floating IPs have no "
        "way out"]
    assert not h1.state[RouterNat]


def test_the_snat_host_moves_when_it_is_no_longer_alive_and_nobody_is_said() -> None:
    plans = with_gateway(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"))
    (first,) = snat_host_of(plans)
    other = "h3" if first == "h2" else "h2"
    assert snat_host_of(with_gateway(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"), hosts=(other,))) == [other]
    nobody = with_gateway(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"), hosts=())
    assert snat_host_of(nobody) == []
    assert "nobody does SNAT" in nobody[0].problems[0].message


def test_the_snat_host_converges_and_a_nat_rule_deleted_by_hand_is_put_back() -> None:
    plans = with_gateway(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"))
    (snat,) = snat_host_of(plans)
    on = next(p for p in plans if p.host == snat)
    kernel = FakeKernel()
    kernel.add_device("eth9", kind="veth")
    converged(kernel, on)
    space = kernel.namespaces.spaces[router_netns(ROUTER, snat)]
    table = space.nft.tables[("ip", "overcast_nat")]
    rule = next(o for k, o in table.objects if k == "rule")
    space.nft.batch([{"delete": {"rule": {"family": "ip", "table": "overcast_nat",
                                          "chain": rule["chain"], "handle": rule["handle"]}}}])
    assert [c.op for c in diff(on.state, kernel.observe()) if isinstance(c.obj, RouterNat)] == ["update"]
    converged(kernel, on)
    # the router loses its gateway: the SNAT host's router goes whole
    converged(kernel, plan_host(replace(view(snat, [], []), physical_networks={"external": "eth9"})))
    assert kernel.namespaces.spaces == {}
    assert kernel.links["eth9"].master == ""


def test_a_floating_ip_is_dnat_and_snat_on_its_ports_host_on_the_routers_own_device() -> None:
    vm1 = vm(1, NET_A, "h1", SUB_A, "10.0.1.5")
    fip = FloatingIP(id="f1000000-0000-4000-8000-0000000000f1", floating_network_id=EXT,
                     floating_ip_address="203.0.113.50", port_id=vm1.id,
                     fixed_ip_address="10.0.1.5", router_id=ROUTER)
    plans = with_gateway(vm1, fips=(fip,), hosts=("h1", "h2", "h3"))
    h1 = plans[0]
    ns = router_netns(ROUTER, "h1")
    qf = router_if_name(ROUTER, "qf-")
    assert RouterAddress(ns, qf, "203.0.113.50/32") in h1.state[RouterAddress]
    assert RouterRoute(ns, "0.0.0.0/0", "203.0.113.1", 16, qf) in h1.state[RouterRoute]
    assert {(r.rule.src, r.rule.dst) for r in h1.state[RouterRule]} == {
        ("", "10.0.1.0/24"), ("", "10.0.2.0/24"), ("10.0.1.5/32", "")}
    assert RouterRoute(ns, "203.0.113.0/24", "", 16, qf) in h1.state[RouterRoute]
    assert Attachment(router_port_name(ROUTER), bridge_name(EXT), 1500) in h1.state[Attachment]
    texts = [t for nat_ in h1.state[RouterNat] for _, t in nat_.rules]
    assert any('"dnat":{"addr":"10.0.1.5"}' in t and "203.0.113.50" in t for t in texts)
    assert any('"snat":{"addr":"203.0.113.50"}' in t for t in texts)
    # nowhere else
    assert not [a for p in plans[1:] for a in p.state[RouterAddress] if a.dev == qf]
    kernel = FakeKernel()
    kernel.add_device("eth9", kind="veth")
    kernel.add_device(tap_name(vm1.id))
    converged(kernel, h1)
    assert kernel.namespaces.spaces[ns].garps == [(qf, "203.0.113.50")]
    # a second floating IP keeps the device; the first leaves, with its conntrack entries
    vm2 = vm(2, NET_A, "h1", SUB_A, "10.0.1.6")
    other = replace(fip, id="f2000000-0000-4000-8000-0000000000f2", port_id=vm2.id,
                    floating_ip_address="203.0.113.51", fixed_ip_address="10.0.1.6")
    kernel.add_device(tap_name(vm2.id))
    converged(kernel, with_gateway(vm1, vm2, fips=(fip, other), hosts=("h1", "h2", "h3"))[0])
    converged(kernel, with_gateway(vm1, vm2, fips=(other,), hosts=("h1", "h2", "h3"))[0])
    # as the address leaves, and again once the NAT has no rule left to make a new entry
    assert kernel.namespaces.spaces[ns].forgotten == ["203.0.113.50", "203.0.113.50"]
    assert RouterAddress(ns, qf, "203.0.113.51/32") in {
        RouterAddress(ns, a.dev, a.cidr) for a in kernel.namespaces.spaces[ns].addresses}


def test_one_host_reports_the_routers_own_ports_the_snat_host_when_there_is_one() -> None:
    ports = (vm(1, NET_A, "h1", SUB_A, "10.0.1.5"), vm(2, NET_B, "h2", SUB_B, "10.0.2.5"))
    networks, base, router = world(*ports)
    h1, h2 = (plan(h, networks, base, router) for h in ("h1", "h2"))
    # no gateway: the first host (by name) that has the router reports its interfaces
    assert set(h1.reported) == {base[0].id, base[1].id} and h2.reported == {}
    assert h1.reported[base[0].id] == frozenset({router_port_name(base[0].id)})
    plans = with_gateway(*ports)
    (snat,) = snat_host_of(plans)
    reporters = {p.host: set(p.reported) for p in plans if p.reported}
    gateway, snat_port = port(0x20, EXT, "").id, port(0x21, NET_A, "").id
    assert reporters == {snat: {base[0].id, base[1].id, gateway, snat_port}}


def test_a_router_with_no_port_on_its_networks_is_made_on_one_home_host_which_reports_it() -> None:
    networks, ports, router = world()
    everywhere = frozenset(HOSTS)

    def plans(*extra: Port, router_hosts: frozenset[str] = everywhere) -> dict[str, HostPlan]:
        return {h: plan_host(replace(view(h, networks, [*ports, *extra]), routers=(router,),
                                     subnets=tuple(subnets()), router_hosts=router_hosts))
                for h in sorted(HOSTS)}

    idle = plans()
    made = [h for h, p in idle.items() if p.state[RouterNamespace]]
    assert made == [home_host(ROUTER, everywhere)]
    (home,) = made
    assert set(idle[home].reported) == {ports[0].id, ports[1].id}
    assert all(p.reported == {} for h, p in idle.items() if h != home)
    # its interfaces' networks have their bridges there, nowhere else
    assert {b.name for b in idle[home].state[Bridge]} == {bridge_name(NET_A), bridge_name(NET_B)}
    assert not any(p.state[Bridge] for h, p in idle.items() if h != home)
    # no host that can have routers (none alive, or the firewall off everywhere): none made
    assert not any(p.state[RouterNamespace] for p in plans(router_hosts=frozenset()).values())
    # the home host gone: another takes it
    rest = everywhere - {home}
    assert [h for h, p in plans(router_hosts=rest).items() if p.state[RouterNamespace]] == [
        home_host(ROUTER, rest)] and home_host(ROUTER, rest) != home
    # a port bound on one of its networks: the router is where the port is, and that host reports
    other = min(everywhere - {home})
    busy = plans(vm(1, NET_B, other, SUB_B, "10.0.2.5"))
    assert [h for h, p in busy.items() if p.state[RouterNamespace]] == [other]
    assert set(busy[other].reported) == {ports[0].id, ports[1].id}
    # a port only on a host that cannot make routers (the firewall off, or dead): still the
    # home host, which reports the interfaces
    elsewhere = plans(vm(2, NET_A, home, SUB_A, "10.0.1.6"), router_hosts=everywhere - {home})
    other_home = home_host(ROUTER, everywhere - {home})
    assert other_home is not None and elsewhere[other_home].state[RouterNamespace]
    assert set(elsewhere[other_home].reported) == {ports[0].id, ports[1].id}
    assert elsewhere[home].reported == {}
    # a router without interfaces is made nowhere
    bare = plan_host(replace(view(home, networks, []), routers=(router,),
                             subnets=tuple(subnets()), router_hosts=everywhere))
    assert not bare.state[RouterNamespace]


def test_a_home_host_maps_the_physical_network_of_an_interfaces_flat_network() -> None:
    flat = replace(net(NET_B, 0, type_="flat", mtu=1500), physical_network="phys")
    networks, ports, router = world()
    networks = [networks[0], flat]
    everywhere = frozenset(HOSTS)
    for mapped in ({"h1"}, {"h2"}, {"h3"}):
        made = [h for h in sorted(HOSTS) if plan_host(replace(
            view(h, networks, ports), routers=(router,), subnets=tuple(subnets()),
            router_hosts=everywhere, physnet_hosts={"phys": tuple(sorted(mapped))},
            physical_networks={"phys": "eth9"} if h in mapped else {})).state[RouterNamespace]]
        assert made == sorted(mapped)


def test_a_floating_ips_port_reaches_the_networks_behind_static_routes_by_the_main_table() -> None:
    vm1 = vm(1, NET_A, "h1", SUB_A, "10.0.1.5")
    fip = FloatingIP(id="f1000000-0000-4000-8000-0000000000f1", floating_network_id=EXT,
                     floating_ip_address="203.0.113.50", port_id=vm1.id,
                     fixed_ip_address="10.0.1.5", router_id=ROUTER)
    # 192.168.100.0/24 is behind a VM of subnet A; 0.0.0.0/0 and an unconnected nexthop are not
    routes = (HostRoute("192.168.100.0/24", "10.0.1.7"), HostRoute("0.0.0.0/0", "10.0.2.9"),
              HostRoute("198.51.100.0/24", "10.9.9.9"))
    h1 = with_gateway(vm1, fips=(fip,), hosts=("h1", "h2", "h3"), routes=routes)[0]
    # else the rule from 10.0.1.5 sends them to table 16: out to the internet, SNAT to the FIP
    assert {(r.rule.priority, r.rule.src, r.rule.dst, r.rule.table)
            for r in h1.state[RouterRule]} == {
        (1000, "", "10.0.1.0/24", 254), (1000, "", "10.0.2.0/24", 254),
        (1000, "", "192.168.100.0/24", 254), (2000, "10.0.1.5/32", "", 16)}


def test_snat_covers_the_networks_behind_the_routers_static_routes() -> None:
    # else their traffic leaves the gateway port with its private source address
    plans = with_gateway(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"),
                         routes=(HostRoute("192.168.100.0/24", "10.0.1.7"),))
    (snat,) = snat_host_of(plans)
    (nat_,) = next(p for p in plans if p.host == snat).state[RouterNat]
    sources = [json.loads(text)[1]["match"]["right"]["prefix"] for _, text in nat_.rules]
    assert sources == [{"addr": "10.0.1.0", "len": 24}, {"addr": "10.0.2.0", "len": 24},
                       {"addr": "192.168.100.0", "len": 24}]


def test_a_static_route_via_the_external_network_is_the_snat_hosts_and_a_floating_ips() -> None:
    vm1 = vm(1, NET_A, "h2", SUB_A, "10.0.1.5")
    fip = FloatingIP(id="f1000000-0000-4000-8000-0000000000f1", floating_network_id=EXT,
                     floating_ip_address="203.0.113.50", port_id=vm1.id,
                     fixed_ip_address="10.0.1.5", router_id=ROUTER)
    route = HostRoute("198.51.100.0/24", "203.0.113.254")
    plans = with_gateway(vm1, fips=(fip,), routes=(route,), hosts=("h1", "h2", "h3"))
    assert [p.host for p in plans if any(r.ifname.startswith("qg-")
                                         for r in p.state[RouterPort])] == ["h1"]
    assert RouterRoute(router_netns(ROUTER, "h1"), "198.51.100.0/24", "203.0.113.254") \
        in plans[0].state[RouterRoute]
    # h2 is no SNAT host: its other ports' traffic goes there by the default route (no problem
    # to say), and the floating IP's port leaves by qf- through that nexthop
    h2 = plans[1]
    assert h2.problems == ()
    assert [(r.dst, r.gateway) for r in h2.state[RouterRoute] if r.table == 254] == [
        ("0.0.0.0/0", "10.0.1.2")]
    assert RouterRoute(router_netns(ROUTER, "h2"), "198.51.100.0/24", "203.0.113.254", 16,
                       router_if_name(ROUTER, "qf-")) in h2.state[RouterRoute]
    kernel = FakeKernel()
    kernel.add_device("eth9", kind="veth")
    kernel.add_device(tap_name(vm1.id))
    converged(kernel, h2)


def test_of_two_routes_to_one_destination_the_first_is_made_and_the_second_is_said() -> None:
    # the API takes both (two nexthops are two routes); the kernel refuses a second route
    # to one destination on every pass
    routes = (HostRoute("192.168.100.0/24", "10.0.1.8"), HostRoute("192.168.100.0/24", "10.0.1.7"))
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"), routes=routes)
    result = plan("h1", networks, ports, router)
    assert [(r.dst, r.gateway) for r in result.state[RouterRoute]] == [
        ("192.168.100.0/24", "10.0.1.8")]
    assert [p.message for p in result.problems] == [
        "route 192.168.100.0/24 via 10.0.1.7: the route via 10.0.1.8 takes 192.168.100.0/24 "
        "(one route per destination)"]
    kernel = FakeKernel()
    kernel.add_device(tap_name(ports[2].id))
    converged(kernel, result)


def test_an_interface_made_again_gets_its_namespaces_routes_back_in_the_same_pass() -> None:
    networks, ports, router = world(vm(1, NET_A, "h1", SUB_A, "10.0.1.5"),
                                    routes=(HostRoute("192.0.2.0/24", "10.0.1.7"),))
    result = plan("h1", networks, ports, router)
    kernel = FakeKernel()
    converged(kernel, result)
    kernel.set_link(router_port_name(ports[0].id), alias="overcast:someone-else")  # not ours now
    assert reconcile(kernel, result.state).errors == ()  # one pass: remade, and its route too
    ns = kernel.namespaces.spaces[router_netns(ROUTER, "h1")]
    assert {(r.dst, r.gateway) for r in ns.routes} == {("192.0.2.0/24", "10.0.1.7")}


def test_a_floating_ips_port_forwardings_are_dnat_on_the_snat_host_only() -> None:
    """Its address on the gateway device of the router's SNAT host (ARP
    answered there, a gratuitous ARP sent), each forwarding a DNAT rule with
    the external port kept, one internal port, or a map for offset ranges;
    the floating IP's status is reported there."""
    vm1 = vm(1, NET_A, "h1", SUB_A, "10.0.1.5")
    fip = FloatingIP(id="f1000000-0000-4000-8000-0000000000f1", floating_network_id=EXT,
                     floating_ip_address="203.0.113.60", router_id=ROUTER,
                     floating_port_id="f1000000-0000-4000-8000-00000000fff1")
    pfs = [PortForwarding(id=f"9f000000-0000-4000-8000-00000000000{n}",
                          floatingip_id=fip.id, router_id=ROUTER, protocol=proto,
                          internal_port_id=vm1.id, internal_ip_address="10.0.1.5",
                          external_port_range=ext, internal_port_range=inner)
           for n, (proto, ext, inner) in enumerate((("tcp", "2222:2222", "22:22"),
                                                     ("udp", "5000:5009", "5000:5009"),
                                                     ("tcp", "8080:8081", "80:81")))]
    plans = with_gateway(vm1, fips=(fip,), port_forwardings=tuple(pfs))
    (snat,) = snat_host_of(plans)
    on = next(p for p in plans if p.host == snat)
    ns, qg = router_netns(ROUTER, snat), router_if_name(port(0x20, EXT, "").id, "qg-")
    assert RouterAddress(ns, qg, "203.0.113.60/32") in on.state[RouterAddress]
    texts = [json.loads(t) for nat_ in on.state[RouterNat] for chain, t in nat_.rules
             if chain == "prerouting"]
    assert [t[-1]["dnat"] for t in texts] == [
        {"addr": "10.0.1.5", "port": 22},
        {"addr": "10.0.1.5"},
        {"addr": "10.0.1.5", "port": {"map": {
            "key": {"payload": {"field": "dport", "protocol": "tcp"}},
            "data": {"set": [[8080, 80], [8081, 81]]}}}}]
    assert [t[1]["match"]["right"] for t in texts] == [2222, {"range": [5000, 5009]},
                                                       {"range": [8080, 8081]}]
    assert fip.floating_port_id in on.reported
    # nowhere else: no other host has the address, and the VM's host does no DNAT
    for other in plans:
        if other.host != snat:
            assert not [a for a in other.state[RouterAddress] if a.cidr == "203.0.113.60/32"]
            assert fip.floating_port_id not in other.reported
    kernel = FakeKernel()
    kernel.add_device("eth9", kind="veth")
    converged(kernel, on)
    assert (qg, "203.0.113.60") in kernel.namespaces.spaces[ns].garps
    # one forwarding gone while the others stay: its flows go (tcp 2222), no other's
    fewer = with_gateway(vm1, fips=(fip,), port_forwardings=tuple(pfs[1:]))
    converged(kernel, next(p for p in fewer if p.host == snat))
    assert kernel.namespaces.spaces[ns].forgotten == ["203.0.113.60 6 2222-2222"]
    # the last ones gone: so is the address, and its conntrack entries with it
    converged(kernel, next(p for p in with_gateway(vm1, fips=(fip,)) if p.host == snat))
    assert kernel.namespaces.spaces[ns].forgotten[1:] == [
        "203.0.113.60", "203.0.113.60 17 5000-5009", "203.0.113.60 6 8080-8081"]


def test_metering_counts_on_the_routers_external_devices_of_each_host_with_exclusions_first() -> None:
    """The labels of the router's project and the shared ones, on qg- of its
    SNAT host and qf- where a VM has a floating IP; another project's label
    counts nothing here; a label's excluded rules return before its counting
    ones."""
    vm1 = vm(1, NET_A, "h1", SUB_A, "10.0.1.5")
    fip = FloatingIP(id="f1000000-0000-4000-8000-0000000000f1", floating_network_id=EXT,
                     floating_ip_address="203.0.113.50", port_id=vm1.id,
                     fixed_ip_address="10.0.1.5", router_id=ROUTER)
    mine = MeteringLabel(id="1abe1000-0000-4000-8000-000000000001")
    shared = MeteringLabel(id="1abe1000-0000-4000-8000-000000000002", project_id="other",
                           shared=True)
    theirs = MeteringLabel(id="1abe1000-0000-4000-8000-000000000003", project_id="other")
    rules = (MeteringLabelRule(id="4e1e0000-0000-4000-8000-000000000001",
                               metering_label_id=mine.id, direction="egress",
                               remote_ip_prefix="0.0.0.0/0"),
             MeteringLabelRule(id="4e1e0000-0000-4000-8000-000000000002",
                               metering_label_id=mine.id, direction="egress",
                               remote_ip_prefix="10.0.1.5/32", excluded=True),
             MeteringLabelRule(id="4e1e0000-0000-4000-8000-000000000003",
                               metering_label_id=shared.id, direction="ingress",
                               remote_ip_prefix="198.51.100.0/24"),
             MeteringLabelRule(id="4e1e0000-0000-4000-8000-000000000004",
                               metering_label_id=theirs.id, direction="ingress",
                               remote_ip_prefix="0.0.0.0/0"))
    plans = {p.host: p for p in with_gateway(vm1, fips=(fip,), hosts=("h1", "h2", "h3"),
                                             metering=((mine, shared, theirs), rules))}
    snat = next(h for h, p in plans.items() if any(
        r.ifname.startswith("qg-") for r in p.state[RouterPort]))
    for host, made in plans.items():
        devices = sorted(r.ifname for r in made.state[RouterPort]
                         if r.ifname.startswith(("qg-", "qf-")))
        meters = made.state[RouterMeter]
        if not devices:
            assert not meters, host  # no external device here: nothing passes to count
            continue
        (m,) = meters
        chains = [chain for chain, _, _ in m.rules]
        assert chains == ["forward", f"label-{mine.id}", f"label-{mine.id}",
                          "forward", f"label-{shared.id}"], chains
        texts = [json.loads(t) for _, t, _ in m.rules]
        # mine: the excluded rule returns first, then 0.0.0.0/0 counts (IPv4, out by them);
        # as Neutron's driver, egress is matched by source (the tenant's side), ingress by
        # destination
        assert texts[1][1]["match"] == {"left": {"payload": {"field": "saddr", "protocol": "ip"}},
                                        "op": "==",
                                        "right": {"prefix": {"addr": "10.0.1.5", "len": 32}}}
        assert texts[4][1]["match"]["left"] == {"payload": {"field": "daddr", "protocol": "ip"}}
        assert texts[1][-1] == {"return": None} and {"counter": None} not in texts[1]
        assert texts[2][1] == {"match": {"left": {"meta": {"key": "nfproto"}}, "op": "==",
                                         "right": "ipv4"}}
        assert [rid for _, _, rid in m.rules] == ["", "", rules[0].id, "", rules[2].id]
        dev = texts[2][0]["match"]
        assert dev["left"] == {"meta": {"key": "oifname"}}
        assert dev["right"] == (devices[0] if len(devices) == 1 else {"set": devices}), host
        assert texts[4][0]["match"]["left"] == {"meta": {"key": "iifname"}}
    assert {h for h, p in plans.items() if p.state[RouterMeter]} == {"h1", snat}
    # converges, and a label's rule deleted makes the table again (a new digest)
    kernel = FakeKernel()
    kernel.add_device("eth9", kind="veth")
    kernel.add_device(tap_name(vm1.id))
    converged(kernel, plans["h1"])
    fewer = {p.host: p for p in with_gateway(vm1, fips=(fip,), hosts=("h1", "h2", "h3"),
                                             metering=((mine, shared, theirs), rules[1:]))}
    assert fewer["h1"].state[RouterMeter][0].digest != plans["h1"].state[RouterMeter][0].digest
    converged(kernel, fewer["h1"])
