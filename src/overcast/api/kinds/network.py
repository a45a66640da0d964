"""Networks: MTU, segment (VNI, see ``allocation``), in-use checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overcast.api import allocation, grants
from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.config import ApiConfig
from overcast.api.errors import ApiError, BadRequest, Conflict
from overcast.api.kinds import availability_zone as az
from overcast.api.kinds import floatingip as floatingips
from overcast.api.kinds import port as ports
from overcast.api.kinds import qos, rbac, segment_range
from overcast.api.kinds import subnetpool as subnetpools
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import validate
from overcast.model.problems import ModelError
from overcast.model.types import FloatingIP, Network, Port, Subnet

# Ports the network owns itself; they do not keep it "in use".
NETWORK_OWNED = ("network:dhcp",)


def _extra(repo: Repo, net: Network, out: dict[str, Any]) -> None:
    subnets = repo.where(Subnet, network_id=net.id)
    out["subnets"] = sorted(s.id for s in subnets)
    out["availability_zones"] = az.network_zones(repo, net)
    out["ipv4_address_scope"] = subnetpools.network_scope(repo, subnets, 4)
    out["ipv6_address_scope"] = subnetpools.network_scope(repo, subnets, 6)
    out["l2_adjacency"] = True


SCHEMA = Schema(
    Network, "network", "networks", "/v2.0/networks",
    (
        stored("admin_state_up", cv.to_bool),
        Attr("status", "status", post=False, put=False),
        stored("shared", cv.to_bool),
        Attr("router:external", "router_external", cv.to_bool),
        stored("mtu", cv.int_range(0, 65535)),  # neutron-lib: non-negative
        stored("port_security_enabled", cv.to_bool),
        Attr("provider:network_type", "network_type", cv.to_str(32), put=False),
        Attr("provider:segmentation_id", "segmentation_id", cv.optional(cv.to_int), put=False),
        Attr("provider:physical_network", "physical_network", cv.optional(cv.to_str(64)),
             put=False),
        stored("dns_domain", cv.to_str(255)),
        stored("availability_zone_hints", az.hints, put=False),
        stored("qos_policy_id", cv.optional(cv.to_uuidish)),
        stored("is_default", cv.to_bool),
    ),
    extra=_extra,
    caller=grants.render_shared,
    caller_attrs=frozenset({"shared"}),
)


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> Network:
    cfg = repo.cfg
    net_type = fields.get("network_type") or cfg.default_network_type
    fields["network_type"] = net_type
    fields.setdefault("mtu", cfg.default_mtu(net_type))
    _check_mtu(cfg, net_type, fields["mtu"])
    net = _default(repo, Network(**fields))
    if net.qos_policy_id is None:  # Neutron's qos-default
        net = net.replace(qos_policy_id=qos.project_default(repo, net.project_id))
    problems = validate.check_network(net, cfg.vni_range)
    if problems:
        raise ModelError(problems)
    if net_type == "vxlan":
        net = net.replace(segmentation_id=allocation.take_vni(
            repo, net, segment_range.ranges_for(repo, net.project_id)))
    if net_type == "flat" and any(n.network_type == "flat" for n in
                                  repo.where(Network, physical_network=net.physical_network)):
        # one bridge per physical network and host holds its uplink: one flat network on it
        raise Conflict(f"Unable to create the flat network. Physical network "
                       f"{net.physical_network} is in use.", type="FlatNetworkInUse")
    qos.check_usable(repo, ctx, net.qos_policy_id)
    az.check_hints(repo, "network", net.availability_zone_hints)
    made = repo.save(net, new=True)
    if made.shared:  # Neutron's: shared and external are wildcard RBAC policies
        rbac.grant_all(repo, made, rbac.SHARED)
    if made.router_external:
        rbac.grant_all(repo, made, rbac.EXTERNAL)
    return made


def _default(repo: Repo, net: Network) -> Network:
    """Neutron's is_default: only an external network is (it is no longer once
    it stops being external), and only one at a time (DefaultExternalNetworkExists)."""
    if not net.router_external:
        return net.replace(is_default=False)
    if net.is_default:
        for other in repo.where(Network, router_external=True):
            if other.is_default and other.id != net.id:
                raise Conflict(f"A default external network already exists: {other.id}.",
                               type="DefaultExternalNetworkExists")
    return net


def check_subnet_mtu(net: Network, ip_version: int) -> None:
    """Neutron's _validate_subnet_network_mtu: a network may have any MTU, but a
    subnet needs 68 (IPv4) or 1280 (IPv6); and the MTU of a network with
    subnets stays above theirs (_validate_change_network_mtu)."""
    least = 1280 if ip_version == 6 else 68
    if net.mtu < least:
        raise Conflict(f"MTU of {net.id} is not valid, subnet requires a minimum of {least}",
                       type="NetworkMTUSubnetConflict")


def _check_mtu(cfg: ApiConfig, net_type: str, mtu: int) -> None:
    if mtu > cfg.max_mtu(net_type):
        raise BadRequest(f"Invalid input for mtu. Reason: requested MTU {mtu} is too big for a "
                         f"{net_type} network; the maximum is {cfg.max_mtu(net_type)}.")


def update(repo: Repo, ctx: Context, net: Network, fields: dict[str, Any]) -> Network:
    new = net.replace(**fields)
    _rbac(repo, net, new)
    if new.router_external and not net.router_external:
        new = new.replace(external_to_all=True)
    _check_mtu(repo.cfg, new.network_type, new.mtu)
    new = _default(repo, new)
    if new.mtu != net.mtu:
        for subnet in repo.where(Subnet, network_id=net.id):
            check_subnet_mtu(new, subnet.ip_version)
    if new.qos_policy_id != net.qos_policy_id:
        qos.check_usable(repo, ctx, new.qos_policy_id)
    return repo.save(new)


def _rbac(repo: Repo, net: Network, new: Network) -> None:
    """``shared`` and ``router:external`` changed: their wildcard RBAC policies
    come or go (Neutron's); sharing ends only while no other project uses the
    network without a policy of its own."""
    if new.shared and not net.shared:
        rbac.grant_all(repo, net, rbac.SHARED)
    elif net.shared and not new.shared:
        rbac.revoke_all(repo, net, rbac.SHARED, _invalid_shared(net), _users)
    if new.router_external and not net.router_external:
        rbac.grant_all(repo, net, rbac.EXTERNAL)
    elif net.router_external and not new.router_external:
        rbac.drop_external(repo, net)


def _invalid_shared(net: Network) -> Callable[[str], ApiError]:
    # which projects use it is theirs to know: the message names none
    return lambda why: Conflict(f"Unable to reconfigure sharing settings for network {net.id}. "
                                "Multiple tenants are using it.", type="InvalidSharedSetting")


def _users(repo: Repo, net: Network) -> set[str]:
    """Neutron's _validate_shared_update: the projects of the network's ports
    (but the cloud's own, network:*) and subnets."""
    ports = {p.project_id for p in repo.where(Port, network_id=net.id)
             if not p.device_owner.startswith("network:")}
    return ports | {s.project_id for s in repo.where(Subnet, network_id=net.id)}


def delete(repo: Repo, ctx: Context, net: Network) -> None:
    for fip in repo.where(FloatingIP, floating_network_id=net.id):
        if fip.port_id is None and fip.router_id is None:  # Neutron's _process_l3_delete
            floatingips.delete(repo, ctx, fip)
    owned_ports = repo.where(Port, network_id=net.id)
    if any(p.device_owner not in NETWORK_OWNED for p in owned_ports):
        raise Conflict(f"Unable to complete operation on network {net.id}. There are one or "
                       "more ports still in use on the network.", type="NetworkInUse")
    for owned in owned_ports:  # the network's own ports (DHCP) go with it
        ports.release(repo, owned)
    for subnet in repo.where(Subnet, network_id=net.id):
        allocation.release_subnet(repo, subnet)
        repo.remove(subnet)
    allocation.release_vni(repo, net)
    rbac.forget(repo, net)
    repo.remove(net)
