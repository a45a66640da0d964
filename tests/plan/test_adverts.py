"""Router advertisements: which interfaces advertise what (the plan), and
the bytes of an RA (overcast.services.ra), checked field by field."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import replace

import pytest

from overcast.model.types import ROUTER_INTERFACE, FixedIP, Router, Subnet
from overcast.plan import plan_host
from overcast.plan.names import router_if_name, router_netns
from overcast.services import ra

from .scenarios import NET_A, NET_B, net, port, view

ROUTER = "eeeeeeee-5555-4555-8555-000000000005"


def test_an_ipv6_subnet_with_an_ra_mode_is_advertised_by_its_interface_only() -> None:
    subnets = (Subnet(id="s6", network_id=NET_A, ip_version=6, cidr="2001:db8:a::/64",
                      gateway_ip="2001:db8:a::1", ipv6_ra_mode="slaac",
                      ipv6_address_mode="slaac"),
               Subnet(id="s6b", network_id=NET_B, ip_version=6, cidr="2001:db8:b::/64",
                      gateway_ip="2001:db8:b::1"))  # no ra mode: addresses, no RA
    ifaces = [replace(port(0x10, NET_A, ""), device_owner=ROUTER_INTERFACE, device_id=ROUTER,
                      fixed_ips=(FixedIP("s6", "2001:db8:a::1"),)),
              replace(port(0x11, NET_B, ""), device_owner=ROUTER_INTERFACE, device_id=ROUTER,
                      fixed_ips=(FixedIP("s6b", "2001:db8:b::1"),))]
    vm = replace(port(1, NET_A, "h1"), fixed_ips=(FixedIP("s6", "2001:db8:a::f816:3eff:fe00:1"),))
    plan = plan_host(replace(view("h1", [net(NET_A, 1001), net(NET_B, 1002)], [*ifaces, vm]),
                             routers=(Router(id=ROUTER),), subnets=subnets))
    (advert,) = plan.adverts
    assert (advert.netns, advert.dev) == (router_netns(ROUTER, "h1"), router_if_name(ifaces[0].id))
    assert (advert.mode, advert.prefixes, advert.mtu) == ("slaac", ("2001:db8:a::/64",), 1450)


@pytest.mark.parametrize(("mode", "flags", "autonomous"), [
    ("slaac", 0, True), ("dhcpv6-stateless", 0x40, True), ("dhcpv6-stateful", 0x80, False)])
def test_an_advertisement_says_the_mode_the_prefix_the_mtu_and_the_routers_mac(
        mode: str, flags: int, autonomous: bool) -> None:
    data = ra.advertisement("fa:16:3e:00:00:10", ["2001:db8:a::/64"], 1450, mode)
    kind, code, _, hops, got_flags, lifetime = struct.unpack_from("!BBHBBH", data)
    assert (kind, code, hops, got_flags, lifetime) == (134, 0, 64, flags, ra.ROUTER_LIFETIME)
    options, at = {}, 16
    while at < len(data):
        options[data[at]] = data[at:at + data[at + 1] * 8]
        at += data[at + 1] * 8
    assert options[1][2:] == bytes.fromhex("fa163e000010")
    assert struct.unpack_from("!I", options[5], 4)[0] == 1450
    prefix = options[3]
    assert prefix[2] == 64 and bool(prefix[3] & 0x40) is autonomous and prefix[3] & 0x80
    assert ipaddress.IPv6Address(prefix[16:32]) == ipaddress.IPv6Address("2001:db8:a::")


def test_only_a_router_solicitation_is_one() -> None:
    assert ra.is_solicitation(bytes([133, 0, 0, 0, 0, 0, 0, 0]))
    assert not ra.is_solicitation(bytes([134, 0, 0, 0, 0, 0, 0, 0]))
    assert not ra.is_solicitation(b"\x85")
    with pytest.raises(ValueError, match="ipv6_ra_mode"):
        ra.advertisement("fa:16:3e:00:00:10", [], 1450, "bogus")
