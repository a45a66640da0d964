"""Neutron's ``network-ip-availability``: per network and subnet, how many
addresses its allocation pools hold and how many are allocated, for the
operator (``get_network_ip_availability`` is admin only, as Neutron's).

As Neutron's ``IpAvailabilityMixin``: ``total_ips`` is the size of the
subnet's pools (of its CIDR if it has none), ``used_ips`` counts every
allocation on the subnet (router, SNAT, floating IP and DHCP ports too), and a
network without subnets is listed with none unless ``ip_version`` is asked.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from overcast.api import policy
from overcast.api.errors import BadRequest, NotFound
from overcast.api.repo import Repo
from overcast.api.session import Call
from overcast.api.wire import Response
from overcast.model import keys
from overcast.model.types import Network, Subnet

COLLECTION, MEMBER = "network_ip_availabilities", "network_ip_availability"
PATH = "/v2.0/network-ip-availabilities"
FILTERS = ("network_id", "network_name", "tenant_id", "project_id", "ip_version")
RULE = "get_network_ip_availability"


def _total(subnet: Subnet) -> int:
    if not subnet.allocation_pools:
        return int(ipaddress.ip_network(subnet.cidr).num_addresses)
    return sum(int(ipaddress.ip_address(p.end)) - int(ipaddress.ip_address(p.start)) + 1
               for p in subnet.allocation_pools)


def _subnet(repo: Repo, subnet: Subnet) -> dict[str, Any]:
    return {"subnet_id": subnet.id, "subnet_name": subnet.name, "cidr": subnet.cidr,
            "ip_version": subnet.ip_version, "total_ips": _total(subnet),
            "used_ips": len(repo.peek(keys.ipam(subnet.id)))}


def _network(repo: Repo, net: Network, versions: set[str] | None) -> dict[str, Any] | None:
    subnets = sorted(repo.where(Subnet, network_id=net.id),
                     key=lambda s: (s.ip_version, s.created_at, s.id))
    if versions is not None:
        subnets = [s for s in subnets if str(s.ip_version) in versions]
        if not subnets:
            return None
    rows = [_subnet(repo, s) for s in subnets]
    return {"network_id": net.id, "network_name": net.name, "tenant_id": net.project_id,
            "project_id": net.project_id, "subnet_ip_availability": rows,
            "total_ips": sum(r["total_ips"] for r in rows),
            "used_ips": sum(r["used_ips"] for r in rows)}


def _query(call: Call, member: bool) -> tuple[dict[str, set[str]], list[str]]:
    """The filters (a repeated key means any of them) and ``fields``."""
    filters: dict[str, set[str]] = {}
    fields: list[str] = []
    for key, value in call.req.params:
        if key == "fields":
            fields.append(value)
        elif key in FILTERS and not member:
            filters.setdefault(key, set()).add(value)
        else:
            raise BadRequest(f"[{key}] is invalid attribute for filtering")
    return filters, fields


def _wanted(net: Network, filters: dict[str, set[str]]) -> bool:
    values = {"network_id": net.id, "network_name": net.name, "tenant_id": net.project_id,
              "project_id": net.project_id}
    return all(values[k] in v for k, v in filters.items() if k != "ip_version")


def _select(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item


def _may(call: Call, net: Network) -> bool:
    return policy.allowed(RULE, call.ctx, policy.Target(net.project_id))


def list_all(call: Call) -> Response:
    """Every network the caller may see this of (a member: none, as Neutron
    filters the list by the policy)."""
    filters, fields = _query(call, member=False)
    repo = call.read(bulk=True)
    versions = filters.get("ip_version")
    out = []
    for net in sorted(repo.all(Network), key=lambda n: n.id):
        if _may(call, net) and _wanted(net, filters):
            item = _network(repo, net, versions)
            if item is not None:
                out.append(_select(item, fields))
    return Response(200, {COLLECTION: out})


def show(call: Call) -> Response:
    """One network's; a member is told nothing is there (Neutron's 404 for a
    GET its policy refuses)."""
    _, fields = _query(call, member=True)
    repo = call.read()
    net_id = call.params["id"]
    net = repo.get(Network, net_id)
    # one answer for a network that is not there and one the caller may not see: no
    # network id is told to exist (Neutron's two answers tell it; docs/security.md)
    if net is None or not _may(call, net):
        raise NotFound(f"Network {net_id} could not be found.", type="NetworkNotFound")
    item = _network(repo, net, None)
    assert item is not None
    return Response(200, {MEMBER: _select(item, fields)})
