"""Floating IPs: an address on an external network, associated with a port
reachable through a router whose gateway is on that network."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from overcast.api import convert as cv
from overcast.api import grants, policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, NotFound
from overcast.api.kinds import agent
from overcast.api.kinds import port as ports
from overcast.api.kinds.router import INTERFACE
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model.types import (
    FixedIP,
    FloatingIP,
    Network,
    Port,
    PortForwarding,
    Router,
    Subnet,
)

OWNER = "network:floatingip"
DHCP = "network:dhcp"  # the one device_owner Neutron gives no floating IP (is_fip_serviced)


def network_visible(ctx: Context, repo: Repo) -> Callable[[Network], bool]:
    return policy.visible(ctx, "network", repo.get, grants.of(repo))


def _extra(repo: Repo, fip: FloatingIP, out: dict[str, Any]) -> None:
    target = repo.get(Port, fip.port_id) if fip.port_id else None
    forwardings = repo.where(PortForwarding, floatingip_id=fip.id)
    out["status"] = _fip_status(repo, fip, target, bool(forwardings))
    out["port_forwardings"] = [_forwarding(pf) for pf in forwardings]
    out["qos_policy_id"] = None
    out["port_details"] = None if target is None else {
        "name": target.name, "network_id": target.network_id,
        "mac_address": target.mac_address, "admin_state_up": target.admin_state_up,
        "device_id": target.device_id, "device_owner": target.device_owner,
        "status": _status(repo, target)}


def _forwarding(pf: PortForwarding) -> dict[str, Any]:
    """What a floating IP shows of one of its port forwardings (Neutron's
    _extend_floatingip_dict, with floating-ip-port-forwarding-detail's id and
    internal_port_id): internal_port and external_port only where the range
    is one port (no key for a wider one), never the ranges."""
    out: dict[str, Any] = {"id": pf.id, "internal_ip_address": pf.internal_ip_address,
                           "protocol": pf.protocol, "internal_port_id": pf.internal_port_id}
    for name, text in (("internal_port", pf.internal_port_range),
                       ("external_port", pf.external_port_range)):
        lo, hi = text.split(":")
        if lo == hi:
            out[name] = int(lo)
    return out


def _fip_status(repo: Repo, fip: FloatingIP, target: Port | None, forwarded: bool) -> str:
    """ACTIVE once the agent of its port's host has it in place: its own
    port's status as that host wrote it (another host's is the one it had
    before the floating IP moved, or left by an agent that is gone).  One
    with port forwardings (and no port): ACTIVE once its router's SNAT host,
    which makes them, has written so (Neutron's l3 agent reports those
    floating IPs ACTIVE as it makes their forwardings)."""
    own = repo.get(Port, fip.floating_port_id) if fip.floating_port_id else None
    found = ports.realized(repo, own) if own is not None and (target or forwarded) else None
    if not found:
        return "DOWN"
    if target is not None and found.get("host") != target.binding_host_id:
        return "DOWN"
    if target is None and found.get("host") != _snat_host(repo, fip.router_id):
        return "DOWN"  # written by a SNAT host that is no longer it (gone, or failed over)
    return str(found["status"])


def _snat_host(repo: Repo, router_id: str | None) -> str | None:
    router = repo.get(Router, router_id) if router_id else None
    return agent.snat_host_of(repo, router, routed=True) if router is not None else None


def _status(repo: Repo, port: Port | None) -> str:
    found = ports.realized(repo, port) if port is not None else None
    return str(found["status"]) if found else "DOWN"


SCHEMA = Schema(
    FloatingIP, "floatingip", "floatingips", "/v2.0/floatingips",
    (
        Attr("floating_network_id", "floating_network_id", cv.to_uuidish, put=False,
             required=True),
        Attr("floating_ip_address", "floating_ip_address", cv.to_ip, put=False),
        Attr("subnet_id", "_subnet_id", cv.optional(cv.to_uuidish), put=False,
             render=False),
        Attr("port_id", "port_id", cv.optional(cv.to_uuidish)),
        Attr("fixed_ip_address", "fixed_ip_address", cv.optional(cv.to_ip)),
        Attr("router_id", "router_id", post=False, put=False),
        Attr("status", None, post=False, put=False),
        stored("dns_name", cv.to_str(255), put=False),
        stored("dns_domain", cv.to_str(255), put=False),
    ),
    extra=_extra,
)


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> FloatingIP:
    # a network the caller may not see is as if there were none (404), whatever it is
    net = repo.must(Network, fields["floating_network_id"], network_visible(ctx, repo))
    if not net.router_external:
        raise bad_request(f"Network {net.id} is not a valid external network")
    if not any(s.ip_version == 4 for s in repo.where(Subnet, network_id=net.id)):
        raise bad_request(f"Network {net.id} does not contain any IPv4 subnet")
    fip_id = fields.get("id") or repo.new_id()
    req: dict[str, str] = {}
    if fields.get("_subnet_id"):
        req["subnet_id"] = fields["_subnet_id"]
    if fields.get("floating_ip_address"):
        req["ip_address"] = _requested_address(repo, net, fields["floating_ip_address"],
                                               fields.get("_subnet_id"))
    port = ports.create(repo, Context("", True), {
        "id": repo.new_id(), "project_id": "", "network_id": net.id,
        "device_owner": OWNER, "device_id": fip_id, "port_security_enabled": False,
        "_fixed_ips": (req,) if req else None,
    })
    v4 = _ipv4(port)
    if not v4:
        raise Conflict(f"No more IP addresses available on network {net.id}.",
                       type="IpAddressGenerationFailure")
    fields.pop("_subnet_id", None)
    fip = FloatingIP(**{**fields, "id": fip_id, "floating_port_id": port.id,
                        "floating_ip_address": v4[0].ip_address})
    fip = _associate(repo, ctx, fip, fip.port_id, fip.fixed_ip_address)
    return repo.save(fip, new=True)


def bad_request(message: str) -> BadRequest:
    """Neutron's ``BadRequest(resource='floatingip')``: its type and its prefix."""
    return BadRequest(f"Bad floatingip request: {message}.", type="BadRequest")


def _ipv4(port: Port) -> list[FixedIP]:
    return [f for f in port.fixed_ips if ipaddress.ip_address(f.ip_address).version == 4]


def _requested_address(repo: Repo, net: Network, address: str, subnet_id: str | None) -> str:
    """A requested floating_ip_address must be an address in the external network's
    subnets; say so naming floating_ip_address (not the port's fixed_ips)."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        raise BadRequest(f"Invalid input for floating_ip_address. Reason: '{address}' is not "
                         "a valid IP address.") from None
    subnets = [s for s in repo.where(Subnet, network_id=net.id)
               if not subnet_id or s.id == subnet_id]
    if not any(addr in ipaddress.ip_network(s.cidr) for s in subnets):
        raise BadRequest(f"Invalid input for floating_ip_address. Reason: {address} is not in "
                         f"any subnet of external network {net.id}.")
    return str(addr)


def update(repo: Repo, ctx: Context, fip: FloatingIP, fields: dict[str, Any]) -> FloatingIP:
    if not fields:  # Neutron's _check_and_get_fip_assoc: an empty update disassociates
        fields = {"port_id": None}
    if "port_id" in fields or "fixed_ip_address" in fields:
        port_id = fields.pop("port_id", fip.port_id)
        forwarded = bool(repo.where(PortForwarding, floatingip_id=fip.id))
        if port_id is not None and forwarded:
            raise Conflict(f"Floating IP {fip.id} in use by Port Forwarding resources.",
                           type="FipInUseByPortForwarding")
        fixed = fields.pop("fixed_ip_address", None)
        # its port forwardings keep their router
        fip = _associate(repo, ctx, fip, port_id, fixed).replace(
            **({"router_id": fip.router_id} if forwarded else {}))
    return repo.save(fip.replace(**fields))


def _associate(repo: Repo, ctx: Context, fip: FloatingIP, port_id: str | None,
               fixed: str | None) -> FloatingIP:
    """The floating IP associated with ``port_id`` (and its address ``fixed``),
    or with nothing (Neutron's _check_and_get_fip_assoc)."""
    if port_id is None:
        if fixed is not None:
            raise bad_request("fixed_ip_address cannot be specified without a port_id")
        return fip.replace(port_id=None, fixed_ip_address=None, router_id=None)
    _check_port_project(repo, ctx, fip, repo.get(Port, port_id))
    port = repo.must(Port, port_id, policy.visible(ctx, "port"))
    if repo.where(PortForwarding, internal_port_id=port.id):
        # Neutron's PortHasPortForwarding, for distributed routers: every router here
        raise BadRequest(f"Cannot associate floating IP to port {port.id} because it already "
                         "has a Port Forwarding binding.", type="PortHasPortForwarding")
    if port.device_owner == DHCP:
        raise bad_request(f"Port {port.id} is unable to be assigned a floating IP")
    chosen = _fixed_ip(port, fixed)
    for other in repo.where(FloatingIP, port_id=port.id):
        if other.id != fip.id and other.floating_network_id == fip.floating_network_id \
                and other.fixed_ip_address == chosen.ip_address:
            raise Conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) "
                           f"with port {port.id} using fixed IP {chosen.ip_address}, as that "
                           f"fixed IP already has a floating IP on external network "
                           f"{other.floating_network_id}.", type="FloatingIPPortAlreadyAssociated")
    router = router_for(repo, fip.floating_network_id, chosen.subnet_id)
    if router is None:
        raise NotFound(f"External network {fip.floating_network_id} is not reachable from "
                       f"subnet {chosen.subnet_id}.  Therefore, cannot associate Port "
                       f"{port.id} with a Floating IP.", type="ExternalGatewayForFloatingIPNotFound")
    return fip.replace(port_id=port.id, fixed_ip_address=chosen.ip_address,
                       router_id=router.id)


def _check_port_project(repo: Repo, ctx: Context, fip: FloatingIP, port: Port | None) -> None:
    """Neutron's _internal_fip_assoc_data: a member's floating IP goes only to
    a port of its own project.  Another project's port on the member's own
    network is one Neutron shows the network's owner, so it is this 400
    rather than the 404 of a port the caller cannot know of."""
    if port is None or ctx.is_admin or port.project_id == fip.project_id:
        return
    net = repo.get(Network, port.network_id)
    if net is not None and net.project_id == ctx.project_id:
        raise bad_request(f"Cannot process floating IP association with Port {port.id}, "
                          "since that port is owned by a different tenant")


def _fixed_ip(port: Port, fixed: str | None) -> FixedIP:
    """The port's address a floating IP maps to: ``fixed``, which must be an
    IPv4 address of the port, else the port's only IPv4 address
    (Neutron's _internal_fip_assoc_data)."""
    if fixed is not None:
        if ipaddress.ip_address(fixed).version != 4:
            raise bad_request(f"Cannot process floating IP association with {fixed}, since "
                              "that is not an IPv4 address")
        found = [f for f in port.fixed_ips if f.ip_address == fixed]
        if not found:
            raise bad_request(f"Port {port.id} does not have fixed ip {fixed}")
        return found[0]
    v4 = _ipv4(port)
    if not v4:
        raise bad_request(f"Cannot add floating IP to port {port.id} that has no fixed IPv4 "
                          "addresses")
    if len(v4) > 1:
        raise bad_request(f"Port {port.id} has multiple fixed IPv4 addresses.  Must provide a "
                          "specific IPv4 address when assigning a floating IP")
    return v4[0]


def router_for(repo: Repo, ext_net: str, subnet_id: str) -> Router | None:
    """The router between the subnet and the external network: of several, the
    one whose interface holds the subnet's gateway IP, else the first by id
    (Neutron's get_router_for_floatingip)."""
    subnet = repo.get(Subnet, subnet_id)
    found: list[tuple[bool, str, Router]] = []
    for router in repo.all(Router):
        if (router.external_gateway or {}).get("network_id") != ext_net:
            continue
        addresses = [f.ip_address for p in repo.where(Port, device_id=router.id,
                                                      device_owner=INTERFACE)
                     for f in p.fixed_ips if f.subnet_id == subnet_id]
        if addresses:
            on_gateway = subnet is not None and subnet.gateway_ip in addresses
            found.append((not on_gateway, router.id, router))
    return min(found, key=lambda t: t[:2])[2] if found else None


def delete(repo: Repo, ctx: Context, fip: FloatingIP) -> None:
    if repo.where(PortForwarding, floatingip_id=fip.id):  # Neutron's PRECOMMIT_DELETE check
        raise Conflict(f"Floating IP {fip.id} in use by Port Forwarding resources.",
                       type="FipInUseByPortForwarding")
    port = repo.get(Port, fip.floating_port_id)
    if port is not None:
        ports.release(repo, port)
    repo.remove(fip)
