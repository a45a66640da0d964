"""The routers issue, "Bad input": Neutron's router and floating IP errors,
each with Neutron's status, its ``type`` and a message naming what was wrong,
and nothing written on refusal (the store compared before and after).

The references are Neutron's own: ``neutron/db/l3_db.py`` (interfaces,
gateways, floating IPs), ``neutron/db/extraroute_db.py`` (static routes),
``neutron_lib/exceptions/l3.py`` and ``extraroute.py`` (the types)."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Direct, Projects, Reply, assert_error, dump

Obj = dict[str, Any]


@pytest.fixture
def ext(client: Direct) -> Obj:
    net = client.network(name="ext", **{"router:external": True})
    net["subnet"] = client.subnet(net["id"], "203.0.113.0/28")
    return net


@pytest.fixture
def router(client: Direct, ext: Obj) -> Obj:
    return client.create("router", "routers", name="r1",
                         external_gateway_info={"network_id": ext["id"]})


def add(client: Direct, router: Obj, **body: str) -> Reply:
    return client.put(f"/v2.0/routers/{router['id']}/add_router_interface", body)


def remove(client: Direct, router: Obj, **body: str) -> Reply:
    return client.put(f"/v2.0/routers/{router['id']}/remove_router_interface", body)


def set_router(client: Direct, router: Obj, **attrs: Any) -> Reply:
    return client.put(f"/v2.0/routers/{router['id']}", {"router": attrs})


def attached(client: Direct, router: Obj, cidr: str, name: str = "n") -> tuple[Obj, Obj]:
    """A network and subnet of ``cidr`` made an interface of ``router``."""
    net = client.network(name=name)
    sub = client.subnet(net["id"], cidr)
    assert add(client, router, subnet_id=sub["id"]).status == 200
    return net, sub


def fip_post(client: Direct, **attrs: Any) -> Reply:
    return client.post("/v2.0/floatingips", {"floatingip": attrs})


# interfaces: overlapping CIDRs (l3_db._raise_on_subnets_overlap) -------------------
@pytest.mark.parametrize("cidr", ["10.0.0.0/25", "10.0.0.0/16", "10.0.0.128/26"])
def test_a_subnet_overlapping_an_interface_is_refused(client: Direct, router: Obj,
                                                      unchanged: Any, cidr: str) -> None:
    _, first = attached(client, router, "10.0.0.0/24", "a")
    other = client.network(name="b")
    sub = client.subnet(other["id"], cidr)
    port = client.port(other["id"])
    unchanged()
    for body in ({"subnet_id": sub["id"]}, {"port_id": port["id"]}):
        err = assert_error(add(client, router, **body), 400, type="BadRequest")
        assert err["message"] == (f"Bad router request: Cidr {cidr} of subnet {sub['id']} "
                                  f"overlaps with cidr 10.0.0.0/24 of subnet {first['id']}.")


def test_a_subnet_overlapping_the_external_network_is_refused(client: Direct, router: Obj,
                                                              ext: Obj, unchanged: Any) -> None:
    """Neutron counts every subnet of the gateway's network as the router's."""
    net = client.network(name="n")
    sub = client.subnet(net["id"], "203.0.113.0/24")
    unchanged()
    assert_error(add(client, router, subnet_id=sub["id"]), 400, "203.0.113.0/24", sub["id"],
                 "203.0.113.0/28", ext["subnet"]["id"], "overlaps", type="BadRequest")


def test_a_gateway_overlapping_an_interface_is_refused(client: Direct, ext: Obj,
                                                       unchanged: Any) -> None:
    plain = client.create("router", "routers", name="r2")
    _, sub = attached(client, plain, "203.0.113.0/24")
    unchanged()
    r = set_router(client, plain, external_gateway_info={"network_id": ext["id"]})
    assert_error(r, 400, "203.0.113.0/28", ext["subnet"]["id"], sub["id"], "overlaps",
                 type="BadRequest")


def test_disjoint_subnets_are_all_accepted(client: Direct, router: Obj) -> None:
    attached(client, router, "10.0.0.0/24", "a")
    attached(client, router, "10.0.1.0/24", "b")
    attached(client, router, "10.1.0.0/16", "c")


def test_the_same_subnet_twice_names_it(client: Direct, router: Obj, unchanged: Any) -> None:
    _, sub = attached(client, router, "10.0.0.0/24")
    unchanged()
    assert_error(add(client, router, subnet_id=sub["id"]), 400,
                 f"Router already has a port on subnet {sub['id']}", type="BadRequest")


def test_the_gateways_own_subnet_is_not_an_interface(client: Direct, router: Obj, ext: Obj,
                                                     unchanged: Any) -> None:
    """An interface on the subnet the gateway port already has an address on
    (Neutron's _check_for_dup_router_subnets sees the gateway port too)."""
    unchanged()
    assert_error(add(client, router, subnet_id=ext["subnet"]["id"]), 400,
                 f"Router already has a port on subnet {ext['subnet']['id']}",
                 type="BadRequest")


def test_an_external_subnet_is_an_interface_of_a_router_without_gateway(
        client: Direct, ext: Obj) -> None:
    """Neutron does not refuse an interface on an external network's subnet as
    such: only a router with its gateway there (above) refuses it."""
    plain = client.create("router", "routers", name="r2")
    r = add(client, plain, subnet_id=ext["subnet"]["id"])
    assert r.status == 200 and r.body["network_id"] == ext["id"]


def test_a_gateway_on_an_interfaces_subnet_is_refused(client: Direct, ext: Obj,
                                                     unchanged: Any) -> None:
    plain = client.create("router", "routers", name="r2")
    assert add(client, plain, subnet_id=ext["subnet"]["id"]).status == 200
    unchanged()
    r = set_router(client, plain, external_gateway_info={"network_id": ext["id"]})
    assert_error(r, 400, f"Router already has a port on subnet {ext['subnet']['id']}",
                 type="BadRequest")


@pytest.mark.parametrize("ra_mode", [None, "slaac"])
def test_an_ipv6_subnet_advertised_by_another_router_is_no_interface(
        client: Direct, router: Obj, unchanged: Any, ra_mode: str | None) -> None:
    net = client.network(name="six")
    sub = client.subnet(net["id"], "2001:db8:6::/64", ip_version=6,
                        ipv6_address_mode="slaac", ipv6_ra_mode=ra_mode)
    if ra_mode is not None:  # the router itself advertises: fine
        assert add(client, router, subnet_id=sub["id"]).status == 200
        unchanged()
        return
    port = client.port(net["id"])
    unchanged()
    for body in ({"subnet_id": sub["id"]}, {"port_id": port["id"]}):
        assert_error(add(client, router, **body), 400, sub["id"],
                     "configured to receive RAs from an external router", type="BadRequest")


# interfaces: gateway IP, ports -------------------------------------------------------
def test_a_subnet_without_gateway_ip_is_refused(client: Direct, router: Obj,
                                                unchanged: Any) -> None:
    net = client.network(name="n")
    sub = client.subnet(net["id"], "10.0.0.0/24", gateway_ip=None)
    assert sub["gateway_ip"] is None
    unchanged()
    assert_error(add(client, router, subnet_id=sub["id"]), 400, sub["id"], "gateway IP",
                 type="BadRequest")


def test_a_port_attached_elsewhere_is_in_use(client: Direct, router: Obj, net: Obj,
                                             subnet: Obj, unchanged: Any) -> None:
    vm = client.port(net["id"], device_id="vm-1", device_owner="compute:nova")
    other = client.create("router", "routers", name="r2")
    _, sub = attached(client, other, "10.9.0.0/24")
    theirs = client.get("/v2.0/ports", params={"device_id": other["id"]}).body["ports"][0]
    unchanged()
    for port, device in ((vm, "vm-1"), (theirs, other["id"])):
        err = assert_error(add(client, router, port_id=port["id"]), 409, type="PortInUse")
        assert err["message"] == (f"Unable to complete operation on port {port['id']} for "
                                  f"network {port['network_id']}. Port already has an "
                                  f"attached device {device}.")


def test_a_port_without_fixed_ip_is_no_interface(client: Direct, router: Obj, net: Obj,
                                                 subnet: Obj, unchanged: Any) -> None:
    port = client.port(net["id"], fixed_ips=[])
    unchanged()
    assert_error(add(client, router, port_id=port["id"]), 400, port["id"], "fixed IP",
                 type="BadRequest")


def test_a_port_with_two_ipv4_subnets_is_no_interface(client: Direct, router: Obj, net: Obj,
                                                      subnet: Obj, unchanged: Any) -> None:
    second = client.subnet(net["id"], "10.0.1.0/24")
    port = client.port(net["id"], fixed_ips=[{"subnet_id": subnet["id"]},
                                            {"subnet_id": second["id"]}])
    unchanged()
    assert_error(add(client, router, port_id=port["id"]), 400,
                 "Cannot have multiple IPv4 subnets on router port", port["id"],
                 type="BadRequest")


# deleting a router --------------------------------------------------------------------
def test_a_router_with_interfaces_is_in_use(client: Direct, router: Obj,
                                            unchanged: Any) -> None:
    attached(client, router, "10.0.0.0/24", "a")
    attached(client, router, "10.0.1.0/24", "b")
    ids = sorted(p["id"] for p in client.get("/v2.0/ports", params={
        "device_id": router["id"], "device_owner": "network:router_interface"}).body["ports"])
    unchanged()
    err = assert_error(client.delete(f"/v2.0/routers/{router['id']}"), 409, type="RouterInUse")
    assert err["message"] == f"Router {router['id']} has ports still attached: {', '.join(ids)}"


def test_a_router_with_only_a_gateway_is_deleted(client: Direct, router: Obj) -> None:
    assert client.delete(f"/v2.0/routers/{router['id']}").status == 204
    assert client.get("/v2.0/ports").body["ports"] == []


# gateways ---------------------------------------------------------------------------
def test_an_external_network_without_subnet_gives_a_gateway_without_address(
        client: Direct) -> None:
    """As Neutron's l3_db (it logs "No IPs available for external network"): the
    gateway port is made without address, and with nothing to SNAT to the router
    gets no SNAT port; a floating IP there has no subnet to come from."""
    bare = client.network(name="bare", **{"router:external": True})
    plain = client.create("router", "routers", name="r2")
    gw = {"network_id": bare["id"]}
    made = client.create("router", "routers", name="r3", external_gateway_info=gw)
    r = set_router(client, plain, external_gateway_info=gw)
    assert r.status == 200, r.body
    for router in (made, r.body["router"]):
        assert router["external_gateway_info"] == {
            "network_id": bare["id"], "enable_snat": True, "external_fixed_ips": []}
        [port] = client.get("/v2.0/ports", params={"device_id": router["id"]}).body["ports"]
        assert (port["device_owner"], port["network_id"], port["fixed_ips"]) == (
            "network:router_gateway", bare["id"], [])
    attached(client, made, "10.0.0.0/24")
    owners = {p["device_owner"] for p in client.get(
        "/v2.0/ports", params={"device_id": made["id"]}).body["ports"]}
    assert owners == {"network:router_gateway", "network:router_interface"}
    assert_error(fip_post(client, floating_network_id=bare["id"]), 400,
                 f"Network {bare['id']} does not contain any IPv4 subnet", type="BadRequest")
    # clearing the gateway takes its port away, and the network can then go
    assert set_router(client, plain, external_gateway_info={}).status == 200
    assert set_router(client, made, external_gateway_info={}).status == 200
    assert client.get("/v2.0/ports", params={"network_id": bare["id"]}).body["ports"] == []
    assert client.delete(f"/v2.0/networks/{bare['id']}").status == 204


def test_an_internal_network_is_no_gateway(client: Direct, net: Obj, subnet: Obj,
                                           unchanged: Any) -> None:
    unchanged()
    r = client.post("/v2.0/routers", {"router": {"external_gateway_info": {
        "network_id": net["id"]}}})
    assert_error(r, 400, f"Network {net['id']} is not an external network",
                 type="BadRequest")


def test_the_external_subnets_gateway_ip_is_not_the_routers(client: Direct, ext: Obj,
                                                            unchanged: Any) -> None:
    unchanged()
    taken = ext["subnet"]["gateway_ip"]
    r = client.post("/v2.0/routers", {"router": {"external_gateway_info": {
        "network_id": ext["id"], "external_fixed_ips": [{"ip_address": taken}]}}})
    assert_error(r, 400, f"External IP {taken} is the same as the gateway IP",
                 type="BadRequest")


def test_an_exhausted_external_network_gives_no_gateway(client: Direct, unchanged: Any) -> None:
    small = client.network(name="small", **{"router:external": True})
    client.subnet(small["id"], "198.51.100.0/30")  # one address: .2 (.1 is the gateway)
    client.create("router", "routers", name="r2",
                  external_gateway_info={"network_id": small["id"]})
    unchanged()
    r = client.post("/v2.0/routers", {"router": {"external_gateway_info": {
        "network_id": small["id"]}}})
    assert_error(r, 409, small["id"], type="IpAddressGenerationFailure")


# static routes (extraroute_db) --------------------------------------------------------
def test_a_nexthop_on_the_routers_own_address_is_refused(client: Direct, router: Obj,
                                                         unchanged: Any) -> None:
    attached(client, router, "10.0.0.0/24")
    own = client.get(f"/v2.0/routers/{router['id']}").body["router"]
    gateway_ip = own["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    unchanged()
    for hop in ("10.0.0.1", gateway_ip):
        r = set_router(client, router, routes=[{"destination": "192.0.2.0/24",
                                                "nexthop": hop}])
        assert_error(r, 400, hop, "the nexthop is used by router", type="InvalidRoutes")


def test_a_nexthop_off_the_routers_subnets_is_refused(client: Direct, router: Obj,
                                                      unchanged: Any) -> None:
    attached(client, router, "10.0.0.0/24")
    unchanged()
    r = set_router(client, router, routes=[{"destination": "192.0.2.0/24",
                                            "nexthop": "10.9.9.9"}])
    assert_error(r, 400, "10.9.9.9", "the nexthop is not connected with router",
                 type="InvalidRoutes")


def test_duplicate_routes_are_refused(client: Direct, router: Obj, unchanged: Any) -> None:
    attached(client, router, "10.0.0.0/24")
    unchanged()
    route = {"destination": "192.0.2.0/24", "nexthop": "10.0.0.5"}
    r = set_router(client, router, routes=[route, dict(route)])
    assert_error(r, 400, "routes", "Duplicate", "192.0.2.0/24", "10.0.0.5")


def test_one_destination_through_two_nexthops_is_accepted(client: Direct, router: Obj) -> None:
    attached(client, router, "10.0.0.0/24")
    routes = [{"destination": "192.0.2.0/24", "nexthop": "10.0.0.5"},
              {"destination": "192.0.2.0/24", "nexthop": "10.0.0.6"}]
    r = set_router(client, router, routes=routes)
    assert r.status == 200 and r.body["router"]["routes"] == routes


def test_an_interface_a_route_needs_stays(client: Direct, router: Obj, unchanged: Any) -> None:
    net, sub = attached(client, router, "10.0.0.0/24")
    port = client.get("/v2.0/ports", params={"device_id": router["id"], "device_owner": "network:router_interface",
                                             "network_id": net["id"]}).body["ports"][0]
    assert set_router(client, router, routes=[{"destination": "192.0.2.0/24",
                                               "nexthop": "10.0.0.5"}]).status == 200
    unchanged()
    for body in ({"subnet_id": sub["id"]}, {"port_id": port["id"]}):
        err = assert_error(remove(client, router, **body), 409,
                           type="RouterInterfaceInUseByRoute")
        assert err["message"] == (f"Router interface for subnet {sub['id']} on router "
                                  f"{router['id']} cannot be deleted, as it is required "
                                  "by one or more routes.")


def test_an_interface_no_route_needs_goes(client: Direct, router: Obj) -> None:
    attached(client, router, "10.0.0.0/24", "a")
    _, other = attached(client, router, "10.0.1.0/24", "b")
    assert set_router(client, router, routes=[{"destination": "192.0.2.0/24",
                                               "nexthop": "10.0.0.5"}]).status == 200
    assert remove(client, router, subnet_id=other["id"]).status == 200


def test_removing_by_port_and_its_own_subnet_is_fine(client: Direct, router: Obj) -> None:
    net, sub = attached(client, router, "10.0.0.0/24")
    port = client.get("/v2.0/ports", params={"device_id": router["id"], "device_owner": "network:router_interface",
                                             "network_id": net["id"]}).body["ports"][0]
    r = remove(client, router, port_id=port["id"], subnet_id=sub["id"])
    assert r.status == 200 and r.body["port_id"] == port["id"]


def test_removing_by_port_and_another_subnet_is_a_mismatch(client: Direct, router: Obj,
                                                           unchanged: Any) -> None:
    net, _ = attached(client, router, "10.0.0.0/24", "a")
    _, other = attached(client, router, "10.0.1.0/24", "b")
    port = client.get("/v2.0/ports", params={"device_id": router["id"], "device_owner": "network:router_interface",
                                             "network_id": net["id"]}).body["ports"][0]
    unchanged()
    err = assert_error(remove(client, router, port_id=port["id"], subnet_id=other["id"]), 400,
                       type="SubnetMismatchForPort")
    assert err["message"] == (f"Subnet on port {port['id']} does not match the requested "
                              f"subnet {other['id']}.")


# floating IPs ------------------------------------------------------------------------
@pytest.fixture
def vm(client: Direct, router: Obj) -> Obj:
    """A port on a subnet that ``router`` connects to the external network."""
    net, _ = attached(client, router, "10.0.0.0/24", "inside")
    return client.port(net["id"], device_id="vm-1", device_owner="compute:nova")


def test_a_port_without_fixed_ip_gets_no_floating_ip(client: Direct, ext: Obj, vm: Obj,
                                                     unchanged: Any) -> None:
    bare = client.port(vm["network_id"], fixed_ips=[])
    unchanged()
    assert_error(fip_post(client, floating_network_id=ext["id"], port_id=bare["id"]), 400,
                 f"Bad floatingip request: Cannot add floating IP to port {bare['id']} that "
                 "has no fixed IPv4 addresses.", type="BadRequest")


def test_a_port_with_two_addresses_needs_fixed_ip_address(client: Direct, ext: Obj, vm: Obj,
                                                          unchanged: Any) -> None:
    two = client.port(vm["network_id"], fixed_ips=[{"ip_address": "10.0.0.50"},
                                                   {"ip_address": "10.0.0.51"}])
    unchanged()
    assert_error(fip_post(client, floating_network_id=ext["id"], port_id=two["id"]), 400,
                 f"Port {two['id']} has multiple fixed IPv4 addresses", type="BadRequest")


def test_a_fixed_ip_address_not_on_the_port_is_refused(client: Direct, ext: Obj, vm: Obj,
                                                       unchanged: Any) -> None:
    unchanged()
    r = fip_post(client, floating_network_id=ext["id"], port_id=vm["id"],
                 fixed_ip_address="10.0.0.99")
    assert_error(r, 400, f"Port {vm['id']} does not have fixed ip 10.0.0.99",
                 type="BadRequest")


def test_an_ipv6_fixed_ip_address_is_refused(client: Direct, ext: Obj, vm: Obj,
                                             unchanged: Any) -> None:
    unchanged()
    r = fip_post(client, floating_network_id=ext["id"], port_id=vm["id"],
                 fixed_ip_address="2001:db8::5")
    assert_error(r, 400, "2001:db8::5", "not an IPv4 address", type="BadRequest")


def test_a_fixed_ip_address_needs_a_port(client: Direct, ext: Obj, vm: Obj,
                                         unchanged: Any) -> None:
    fip = client.create("floatingip", "floatingips", floating_network_id=ext["id"])
    unchanged()
    address = vm["fixed_ips"][0]["ip_address"]
    for r in (fip_post(client, floating_network_id=ext["id"], fixed_ip_address=address),
              client.put(f"/v2.0/floatingips/{fip['id']}",
                         {"floatingip": {"fixed_ip_address": address}})):
        assert_error(r, 400, "fixed_ip_address cannot be specified without a port_id",
                     type="BadRequest")


def test_a_dhcp_port_gets_no_floating_ip(client: Direct, ext: Obj, vm: Obj,
                                         unchanged: Any) -> None:
    dhcp = client.port(vm["network_id"], device_owner="network:dhcp")
    unchanged()
    assert_error(fip_post(client, floating_network_id=ext["id"], port_id=dhcp["id"]), 400,
                 f"Port {dhcp['id']} is unable to be assigned a floating IP", type="BadRequest")


def test_a_network_the_router_does_not_reach_has_no_floating_ip(client: Direct, ext: Obj,
                                                                router: Obj,
                                                                unchanged: Any) -> None:
    alone = client.network(name="alone")
    sub = client.subnet(alone["id"], "10.5.0.0/24")
    port = client.port(alone["id"])
    unchanged()
    err = assert_error(fip_post(client, floating_network_id=ext["id"], port_id=port["id"]), 404,
                       type="ExternalGatewayForFloatingIPNotFound")
    assert err["message"] == (f"External network {ext['id']} is not reachable from subnet "
                              f"{sub['id']}.  Therefore, cannot associate Port {port['id']} "
                              "with a Floating IP.")


def test_a_second_floating_ip_for_one_fixed_ip_is_in_use(client: Direct, ext: Obj, vm: Obj,
                                                         unchanged: Any) -> None:
    first = client.create("floatingip", "floatingips", floating_network_id=ext["id"],
                          port_id=vm["id"])
    second = client.create("floatingip", "floatingips", floating_network_id=ext["id"])
    # the first one re-associated with the same port: no conflict with itself
    r = client.put(f"/v2.0/floatingips/{first['id']}", {"floatingip": {"port_id": vm["id"]}})
    assert r.status == 200
    unchanged()
    fixed = vm["fixed_ips"][0]["ip_address"]
    r = client.put(f"/v2.0/floatingips/{second['id']}", {"floatingip": {"port_id": vm["id"]}})
    err = assert_error(r, 409, type="FloatingIPPortAlreadyAssociated")
    assert err["message"] == (
        f"Cannot associate floating IP {second['floating_ip_address']} ({second['id']}) with "
        f"port {vm['id']} using fixed IP {fixed}, as that fixed IP already has a floating IP "
        f"on external network {ext['id']}.")


def test_one_fixed_ip_has_a_floating_ip_on_each_external_network(client: Direct, ext: Obj,
                                                                 vm: Obj) -> None:
    """Neutron's conflict is per external network: a second one, reached by a
    second router, maps the same fixed IP again."""
    client.create("floatingip", "floatingips", floating_network_id=ext["id"], port_id=vm["id"])
    other = client.network(name="ext2", **{"router:external": True})
    client.subnet(other["id"], "198.51.100.0/28")
    second = client.create("router", "routers", name="r2",
                           external_gateway_info={"network_id": other["id"]})
    sub = client.get("/v2.0/subnets", params={"network_id": vm["network_id"]}).body["subnets"]
    port = client.port(vm["network_id"], fixed_ips=[{"subnet_id": sub[0]["id"],
                                                     "ip_address": "10.0.0.254"}])
    assert add(client, second, port_id=port["id"]).status == 200
    fip = client.create("floatingip", "floatingips", floating_network_id=other["id"],
                        port_id=vm["id"])
    assert fip["router_id"] == second["id"]


def test_the_router_on_the_subnets_gateway_ip_carries_the_floating_ip(client: Direct,
                                                                      ext: Obj) -> None:
    """Of two routers between a subnet and the external network, Neutron picks
    the one whose interface holds the subnet's gateway IP."""
    net = client.network(name="n")
    sub = client.subnet(net["id"], "10.0.0.0/24")
    gw = {"network_id": ext["id"]}
    routers = [client.create("router", "routers", name=f"r{i}", external_gateway_info=gw)
               for i in range(2)]
    side, main = sorted(routers, key=lambda r: r["id"])  # the first by id holds no gateway IP
    side_port = client.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.200"}])
    assert add(client, side, port_id=side_port["id"]).status == 200
    assert add(client, main, subnet_id=sub["id"]).status == 200
    vm = client.port(net["id"])
    fip = client.create("floatingip", "floatingips", floating_network_id=ext["id"],
                        port_id=vm["id"])
    assert fip["router_id"] == main["id"]


def test_an_exhausted_floating_ip_pool_is_a_conflict(client: Direct, unchanged: Any) -> None:
    small = client.network(name="small", **{"router:external": True})
    client.subnet(small["id"], "198.51.100.0/30")
    client.create("floatingip", "floatingips", floating_network_id=small["id"])
    unchanged()
    assert_error(fip_post(client, floating_network_id=small["id"]), 409, small["id"],
                 type="IpAddressGenerationFailure")


def test_an_external_network_without_ipv4_subnet_has_no_floating_ip(client: Direct,
                                                                    unchanged: Any) -> None:
    six = client.network(name="six", **{"router:external": True})
    client.subnet(six["id"], "2001:db8:5::/64", ip_version=6)
    unchanged()
    assert_error(fip_post(client, floating_network_id=six["id"]), 400,
                 f"Network {six['id']} does not contain any IPv4 subnet", type="BadRequest")


# another project's port ---------------------------------------------------------------
class Two(Projects):
    """alice and bob in two projects, ops the admin with the external network."""

    def __init__(self) -> None:
        super().__init__()
        self.public = self.ops.network(name="public", **{"router:external": True})
        self.ops.subnet(self.public["id"], "203.0.113.0/24")
        b_net = self.bob.network(name="b")
        self.bob.subnet(b_net["id"], "10.2.0.0/24")
        b_router = self.bob.create("router", "routers", name="br",
                                   external_gateway_info={"network_id": self.public["id"]})
        net_b = b_net["id"]
        sub_b = self.bob.get("/v2.0/subnets", params={"network_id": net_b}).body["subnets"][0]
        assert add(self.bob, b_router, subnet_id=sub_b["id"]).status == 200
        self.b_vm = self.bob.port(net_b)


def test_another_projects_port_is_not_found() -> None:
    cloud = Two()
    mine = cloud.alice.create("floatingip", "floatingips",
                              floating_network_id=cloud.public["id"])
    before = dump(cloud.store)
    port = cloud.b_vm["id"]
    for r in (fip_post(cloud.alice, floating_network_id=cloud.public["id"], port_id=port),
              cloud.alice.put(f"/v2.0/floatingips/{mine['id']}",
                              {"floatingip": {"port_id": port}})):
        assert_error(r, 404, port, type="PortNotFound")
    assert dump(cloud.store) == before


# a subnet's gateway held by a router (db_base_plugin_v2._validate_subnet) -------------------
def test_a_gateway_a_router_interface_holds_is_neither_moved_nor_removed(
        client: Direct, router: Obj) -> None:
    _, sub = attached(client, router, "10.0.9.0/24")
    path = f"/v2.0/subnets/{sub['id']}"
    iface = client.get("/v2.0/ports", params={"device_id": router["id"],
                                              "device_owner": "network:router_interface"})
    (port,) = iface["ports"]
    for gateway in ("10.0.9.2", None):
        assert_error(client.put(path, {"subnet": {"gateway_ip": gateway}}), 409,
                     f"Current gateway ip 10.0.9.1 already in use by port {port['id']}. "
                     "Unable to update.", type="GatewayIpInUse")
    assert client.get(path)["subnet"]["gateway_ip"] == "10.0.9.1"
    assert client.put(path, {"subnet": {"name": "renamed", "gateway_ip": "10.0.9.1"}}).status == 200
    assert remove(client, router, subnet_id=sub["id"]).status == 200
    moved = client.put(path, {"subnet": {"gateway_ip": None}})
    assert moved.status == 200 and moved["subnet"]["gateway_ip"] is None
