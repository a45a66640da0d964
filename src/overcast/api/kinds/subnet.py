"""Subnets: default gateway and pools, overlap and pool checks, in-use checks."""

from __future__ import annotations

import ipaddress
from typing import Any

from overcast.api import allocation
from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, Forbidden
from overcast.api.repo import Repo
from overcast.api.resource import MISSING, Attr, Schema, stored
from overcast.model import ipam, keys, validate
from overcast.model.problems import ModelError, Problem
from overcast.model.types import AllocationPool, HostRoute, Network, Port, Subnet

_pool = cv.dict_of({"start": cv.to_str(64), "end": cv.to_str(64)}, ("start", "end"))
_route = cv.dict_of({"destination": cv.to_str(64), "nexthop": cv.to_str(64)},
                    ("destination", "nexthop"))


def _pools(value: Any) -> tuple[AllocationPool, ...]:
    return tuple(AllocationPool(**p) for p in cv.list_of(_pool)(value))


def _routes(value: Any) -> tuple[HostRoute, ...]:
    return tuple(HostRoute(**r) for r in cv.list_of(_route)(value))


def _gateway(value: Any) -> str | None:
    if value is None:
        return None
    return str(cv.to_str(64)(value))


def _extra(repo: Repo, subnet: Subnet, out: dict[str, Any]) -> None:
    out["service_types"] = []
    out["segment_id"] = None
    out["dns_publish_fixed_ip"] = False


SCHEMA = Schema(
    Subnet, "subnet", "subnets", "/v2.0/subnets",
    (
        Attr("network_id", "network_id", cv.to_uuidish, put=False, required=True),
        Attr("ip_version", "ip_version", cv.int_range(4, 6), put=False),
        Attr("cidr", "cidr", cv.to_str(64), put=False),
        Attr("gateway_ip", "gateway_ip", _gateway),
        Attr("allocation_pools", "allocation_pools", _pools),
        Attr("dns_nameservers", "dns_nameservers", cv.list_of(cv.to_str(64))),
        Attr("host_routes", "host_routes", _routes),
        stored("enable_dhcp", cv.to_bool),
        Attr("ipv6_ra_mode", "ipv6_ra_mode",
             cv.optional(cv.one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless")), put=False),
        Attr("ipv6_address_mode", "ipv6_address_mode",
             cv.optional(cv.one_of("slaac", "dhcpv6-stateful", "dhcpv6-stateless")), put=False),
        Attr("subnetpool_id", "subnetpool_id", cv.optional(cv.to_uuidish), put=False),
    ),
    extra=_extra,
    shared_via=lambda repo, s: _network_shared(repo, s),
)


def _network_shared(repo: Repo, subnet: Subnet) -> bool:
    """Subnets of a shared network are visible to every project, as in Neutron."""
    net = repo.get(Network, subnet.network_id)
    return net is not None and net.shared


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> Subnet:
    network = repo.must(Network, fields["network_id"], lambda n: ctx.may_see(n.project_id, n.shared))
    if not ctx.owns(network.project_id):
        raise Forbidden(f"Only the owner of network {network.id} may add subnets to it")
    if fields.get("subnetpool_id") is not None:
        raise BadRequest("Invalid input for subnetpool_id. Reason: subnet pools are not supported.")
    if "cidr" not in fields:
        raise BadRequest("Failed to parse request. Required attribute 'cidr' not specified")
    problems: list[Problem] = []
    net = validate.parse_cidr(fields["cidr"], "subnet.cidr", problems)
    if net is None:
        raise ModelError(problems)
    fields.setdefault("ip_version", net.version)
    gateway = fields.get("gateway_ip", MISSING)
    if gateway is MISSING:
        fields["gateway_ip"] = ipam.default_gateway(net)
    if "allocation_pools" not in fields or not fields["allocation_pools"]:
        fields["allocation_pools"] = tuple(ipam.default_pools(net, _valid_ip(fields["gateway_ip"])))
    subnet = Subnet(**fields)
    siblings = repo.where(Subnet, network_id=network.id)
    problems = validate.check_subnet(subnet, siblings)
    if problems:
        raise ModelError(problems)
    return repo.save(subnet, new=True)


def _valid_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def update(repo: Repo, ctx: Context, subnet: Subnet, fields: dict[str, Any]) -> Subnet:
    if not ctx.owns(subnet.project_id):
        raise Forbidden(f"Only the owner of subnet {subnet.id} may change it")
    new = subnet.replace(**fields)
    siblings = repo.where(Subnet, network_id=subnet.network_id)
    problems = validate.check_subnet(new, siblings)
    if problems:
        raise ModelError(problems)
    if new.gateway_ip is not None and new.gateway_ip != subnet.gateway_ip:
        owner = repo.get_json(keys.ipam(subnet.id, new.gateway_ip))
        if owner is not None:
            raise Conflict(f"Gateway ip {new.gateway_ip} conflicts with allocation pool or is "
                           f"in use by port {owner}", type="GatewayConflictWithAllocationPools")
    return repo.save(new)


def delete(repo: Repo, ctx: Context, subnet: Subnet) -> None:
    if not ctx.owns(subnet.project_id):
        raise Forbidden(f"Only the owner of subnet {subnet.id} may delete it")
    users = [p.id for p in repo.where(Port, network_id=subnet.network_id)
             if any(f.subnet_id == subnet.id for f in p.fixed_ips)]
    if users:
        raise Conflict(f"Unable to complete operation on subnet {subnet.id}: one or more ports "
                       f"have an IP allocation from this subnet ({', '.join(sorted(users)[:5])}).",
                       type="SubnetInUse")
    allocation.release_subnet(repo, subnet)
    repo.remove(subnet)
