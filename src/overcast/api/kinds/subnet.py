"""Subnets: default gateway and pools, overlap and pool checks, in-use checks."""

from __future__ import annotations

import bisect
import ipaddress
from typing import Any

from overcast.api import allocation, policy
from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict
from overcast.api.kinds import network as networks
from overcast.api.kinds import subnetpool as subnetpools
from overcast.api.repo import Repo
from overcast.api.resource import MISSING, Attr, Schema, stored
from overcast.model import ipam, keys, validate
from overcast.model.problems import ModelError, Problem
from overcast.model.types import (
    ROUTER_INTERFACE,
    AllocationPool,
    HostRoute,
    Network,
    Port,
    Subnet,
    SubnetPool,
)

MAX_DNS_NAMESERVERS = 5  # Neutron's max_dns_nameservers
MAX_HOST_ROUTES = 20  # Neutron's max_subnet_host_routes


def _canonical(conv: cv.Converter) -> cv.Converter:
    """A clean string, in canonical form if ``conv`` takes it (``2001:DB8::1`` is
    ``2001:db8::1``, so the in-use and gateway checks see one spelling), else as
    given: ``validate.check_subnet`` then names what is wrong and where
    (``dns_nameservers[1]``)."""
    def convert(value: Any) -> str:
        text = str(cv.to_str(64)(value))
        try:
            return str(conv(text))
        except ValueError:
            return text
    return convert


_ip = _canonical(cv.to_ip)
_cidr = _canonical(cv.to_cidr)
_pool = cv.dict_of({"start": _ip, "end": _ip}, ("start", "end"))
_route = cv.dict_of({"destination": _cidr, "nexthop": _ip}, ("destination", "nexthop"))


def _pools(value: Any) -> tuple[AllocationPool, ...]:
    return tuple(AllocationPool(**p) for p in cv.list_of(_pool)(value))


def _routes(value: Any) -> tuple[HostRoute, ...]:
    return tuple(HostRoute(**r) for r in cv.list_of(_route, MAX_HOST_ROUTES)(value))


# what neutron-lib's validate_subnet_service_types lets a service type start with:
# its device owner prefixes, and each character of "compute:" (it adds that string
# to its list of prefixes, so ``test:type_1`` passes; clients rely on it)
_SERVICE_TYPE_STARTS = ("network:", "neutron:", *"compute:")


def _service_type(value: Any) -> str:
    """A device_owner such as ``network:floatingip`` or ``compute:nova``, as
    loosely as Neutron checks it (``_SERVICE_TYPE_STARTS``)."""
    text = str(cv.to_str(255)(value))
    if not text.startswith(_SERVICE_TYPE_STARTS):
        raise ValueError(f"Subnet service type {text} does not correspond to a valid "
                         "device owner")
    return text


def _extra(repo: Repo, subnet: Subnet, out: dict[str, Any]) -> None:
    out["segment_id"] = None
    out["dns_publish_fixed_ip"] = False


SCHEMA = Schema(
    Subnet, "subnet", "subnets", "/v2.0/subnets",
    (
        Attr("network_id", "network_id", cv.to_uuidish, put=False, required=True),
        Attr("ip_version", "ip_version", cv.int_range(4, 6), put=False),
        Attr("cidr", "cidr", cv.optional(_cidr), put=False),
        Attr("gateway_ip", "gateway_ip", cv.optional(_ip)),
        Attr("allocation_pools", "allocation_pools", _pools),
        Attr("dns_nameservers", "dns_nameservers",
             cv.list_of(_ip, MAX_DNS_NAMESERVERS)),
        Attr("host_routes", "host_routes", _routes),
        stored("enable_dhcp", cv.to_bool),
        Attr("ipv6_ra_mode", "ipv6_ra_mode",
             cv.optional(cv.one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless")), put=False),
        Attr("ipv6_address_mode", "ipv6_address_mode",
             cv.optional(cv.one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless")), put=False),
        Attr("subnetpool_id", "subnetpool_id", cv.optional(cv.to_uuidish), put=False),
        # request only (subnet_allocation, default-subnetpools): taken out by ``create``
        Attr("prefixlen", "prefixlen", cv.optional(subnetpools.non_negative), put=False,
             render=False),
        Attr("use_default_subnetpool", "use_default_subnetpool", cv.to_bool, put=False,
             render=False),
        Attr("service_types", "service_types", cv.list_of(_service_type, 20)),
    ),
    extra=_extra,
)


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> Subnet:
    network = repo.must(Network, fields["network_id"])  # the handler checked the policy
    net, pool = _cidr_of(repo, ctx, fields)
    networks.check_subnet_mtu(network, net.version)
    subnetpools.check_network(repo, network, net.version, pool)
    gateway = fields.get("gateway_ip", MISSING)
    if gateway is MISSING:
        fields["gateway_ip"] = ipam.default_gateway(net)
    if "allocation_pools" not in fields or not fields["allocation_pools"]:
        fields["allocation_pools"] = tuple(ipam.default_pools(net, _valid_ip(fields["gateway_ip"])))
    subnet = Subnet(**fields)
    by_address = repo.view(Subnet, "network_id", network.id, "by_address", ByAddress)
    problems = validate.check_subnet(subnet, by_address.neighbours(net))
    if any(p.path == "subnet.cidr" and p.kind == "conflict" for p in problems):
        # Neutron's words and status: tempest tries the next CIDR on exactly this 400
        raise BadRequest(f"Invalid input for operation: Requested subnet with cidr: {net} for "
                         f"network: {network.id} overlaps with another subnet.",
                         type="InvalidInput")
    if problems:
        raise ModelError(problems)
    repo.save(network)  # Neutron's revises_on_change: a subnet revises its network
    return repo.save(subnet, new=True)


def _cidr_of(repo: Repo, ctx: Context,
             fields: dict[str, Any]) -> tuple[ipam.IPNetwork, SubnetPool | None]:
    """The new subnet's CIDR (given, or taken from its subnet pool) and its pool;
    ``fields`` get the CIDR, the IP version and the pool, and lose what only the
    request has (``prefixlen``, ``use_default_subnetpool``)."""
    if fields.get("cidr") is not None:
        _parse_cidr(fields["cidr"])  # a pool's arithmetic needs a CIDR: say what is wrong first
    pool = subnetpools.for_subnet(repo, ctx, fields)
    if pool is not None:
        subnetpools.allocate(repo, pool, fields)
    elif "cidr" not in fields:
        raise BadRequest("a subnetpool must be specified in the absence of a cidr")
    fields.pop("prefixlen", None)
    net = _parse_cidr(fields["cidr"])
    fields.setdefault("ip_version", net.version)
    return net, pool


def _parse_cidr(cidr: str) -> ipam.IPNetwork:
    problems: list[Problem] = []
    net = validate.parse_cidr(cidr, "subnet.cidr", problems)
    if net is None:
        raise ModelError(problems)
    return net


class ByAddress:
    """A network's subnets in address order, kept current by the transaction
    (``Repo.view``): a new CIDR can only overlap its two neighbours (the
    subnets of a network never overlap each other), so a bulk create of N
    subnets costs N look-ups, not N x N comparisons."""

    def __init__(self, subnets: list[Subnet]) -> None:
        self._order: list[tuple[int, int, str]] = []
        self._by_id: dict[str, Subnet] = {}
        for s in subnets:
            self.add(s)

    @staticmethod
    def _key(subnet: Subnet) -> tuple[int, int, str] | None:
        try:
            net = ipaddress.ip_network(subnet.cidr)
        except ValueError:
            return None
        return (net.version, int(net.network_address), subnet.id)

    def add(self, subnet: Subnet) -> None:
        key = self._key(subnet)
        if key is not None and subnet.id not in self._by_id:
            bisect.insort(self._order, key)
            self._by_id[subnet.id] = subnet

    def discard(self, subnet: Subnet) -> None:
        old = self._by_id.pop(subnet.id, None)
        key = self._key(old) if old is not None else None
        if key is not None:
            self._order.remove(key)

    def neighbours(self, net: ipam.IPNetwork) -> list[Subnet]:
        """The subnets just below and just above ``net``'s first address."""
        i = bisect.bisect_left(self._order, (net.version, int(net.network_address), ""))
        near = self._order[max(i - 1, 0):i + 1]
        return [self._by_id[k[2]] for k in near]


def _valid_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def update(repo: Repo, ctx: Context, subnet: Subnet, fields: dict[str, Any]) -> Subnet:
    new = subnet.replace(**fields)
    if subnet.gateway_ip is not None and new.gateway_ip != subnet.gateway_ip:
        # as Neutron: the gateway a router's port holds is neither moved nor removed
        holder = repo.get_json(keys.ipam(subnet.id, subnet.gateway_ip))
        port = repo.get(Port, holder) if isinstance(holder, str) else None
        if port is not None and port.device_owner.startswith("network:router"):
            raise Conflict(f"Current gateway ip {subnet.gateway_ip} already in use by port "
                           f"{port.id}. Unable to update.", type="GatewayIpInUse")
    siblings = repo.where(Subnet, network_id=subnet.network_id)
    problems = validate.check_subnet(new, siblings)
    if problems:
        raise ModelError(problems)
    if new.gateway_ip is not None and new.gateway_ip != subnet.gateway_ip:
        owner = repo.get_json(keys.ipam(subnet.id, new.gateway_ip))
        if owner is not None:
            port = repo.get(Port, owner) if isinstance(owner, str) else None
            seen = policy.named(ctx, "port", [port] if port is not None else [])
            raise Conflict(f"Gateway ip {new.gateway_ip} conflicts with allocation pool or is "
                           f"in use{' by port ' + seen[0] if seen else ''}",
                           type="GatewayConflictWithAllocationPools")
    _revise_network(repo, subnet)
    return repo.save(new)


def _revise_network(repo: Repo, subnet: Subnet) -> None:
    network = repo.get(Network, subnet.network_id)
    if network is not None:
        repo.save(network)


_AUTO_DELETED = ("network:dhcp",)  # Neutron's AUTO_DELETE_PORT_OWNERS


def delete(repo: Repo, ctx: Context, subnet: Subnet) -> None:
    """Neutron's _remove_subnet_ip_allocations_from_ports: a router interface
    always holds the subnet, other ports only unless its addresses are
    automatic (SLAAC, DHCPv6 stateless), which leave the ports with it."""
    users = [p for p in repo.where(Port, network_id=subnet.network_id)
             if any(f.subnet_id == subnet.id for f in p.fixed_ips)]
    automatic = {subnet.ipv6_address_mode, subnet.ipv6_ra_mode} & set(
        validate.AUTO_ADDRESS_MODES)
    holding = [p for p in users if p.device_owner == ROUTER_INTERFACE or
               not automatic and p.device_owner not in _AUTO_DELETED]
    if holding:
        seen = policy.named(ctx, "port", holding)
        named = f" ({', '.join(seen)})" if seen else ""
        raise Conflict(f"Unable to complete operation on subnet {subnet.id}: one or more ports "
                       f"have an IP allocation from this subnet{named}.", type="SubnetInUse")
    for port in users:
        repo.save(port.replace(fixed_ips=tuple(f for f in port.fixed_ips
                                               if f.subnet_id != subnet.id)))
    allocation.release_subnet(repo, subnet)
    repo.remove(subnet)
    _revise_network(repo, subnet)
