"""Floating IPs: an address on an external network, associated with a port
reachable through a router whose gateway is on that network."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from overcast.api import convert as cv
from overcast.api import policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, NotFound
from overcast.api.kinds import port as ports
from overcast.api.kinds.router import INTERFACE
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model.types import FloatingIP, Network, Port, Router, Subnet

OWNER = "network:floatingip"


def network_visible(ctx: Context, repo: Repo) -> Callable[[Network], bool]:
    return policy.visible(ctx, "network", repo.get)


def _extra(repo: Repo, fip: FloatingIP, out: dict[str, Any]) -> None:
    out["status"] = "ACTIVE" if fip.port_id else "DOWN"
    out["port_forwardings"] = []
    out["qos_policy_id"] = None
    target = repo.get(Port, fip.port_id) if fip.port_id else None
    out["port_details"] = None if target is None else {
        "name": target.name, "network_id": target.network_id,
        "mac_address": target.mac_address, "admin_state_up": target.admin_state_up,
        "device_id": target.device_id, "device_owner": target.device_owner, "status": "ACTIVE"}


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
        raise BadRequest(f"Bad floatingip request: Network {net.id} is not a valid external "
                         "network.")
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
    v4 = [f for f in port.fixed_ips if ipaddress.ip_address(f.ip_address).version == 4]
    if not v4:
        raise BadRequest(f"Bad floatingip request: external network {net.id} has no IPv4 "
                         "subnet.")
    fields.pop("_subnet_id", None)
    fip = FloatingIP(**{**fields, "id": fip_id, "floating_port_id": port.id,
                        "floating_ip_address": v4[0].ip_address})
    fip = _associate(repo, ctx, fip, fip.port_id, fip.fixed_ip_address)
    return repo.save(fip, new=True)


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
    if "port_id" in fields or "fixed_ip_address" in fields:
        port_id = fields.pop("port_id", fip.port_id)
        fixed = fields.pop("fixed_ip_address", None)
        fip = _associate(repo, ctx, fip, port_id, fixed)
    return repo.save(fip.replace(**fields))


def _associate(repo: Repo, ctx: Context, fip: FloatingIP, port_id: str | None,
               fixed: str | None) -> FloatingIP:
    if port_id is None:
        return fip.replace(port_id=None, fixed_ip_address=None, router_id=None)
    port = repo.must(Port, port_id, policy.visible(ctx, "port"))
    v4 = [f for f in port.fixed_ips if ipaddress.ip_address(f.ip_address).version == 4]
    chosen = [f for f in v4 if fixed is None or f.ip_address == fixed]
    if not chosen or (fixed is None and len(v4) > 1):
        raise BadRequest(f"Bad floatingip request: port {port.id} has no single IPv4 address"
                         f"{' ' + fixed if fixed else ''} to associate; give fixed_ip_address.")
    for other in repo.all(FloatingIP):
        if other.id != fip.id and other.port_id == port.id and \
                other.fixed_ip_address == chosen[0].ip_address:
            raise Conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) "
                           f"with port {port.id} using fixed IP {chosen[0].ip_address}, as that "
                           f"fixed IP already has a floating IP on external network "
                           f"{other.floating_network_id}.", type="FloatingIPPortAlreadyAssociated")
    router = _router_for(repo, fip.floating_network_id, chosen[0].subnet_id)
    if router is None:
        raise NotFound(f"External network {fip.floating_network_id} is not reachable from "
                       f"subnet {chosen[0].subnet_id}. Therefore, cannot associate Port "
                       f"{port.id} with a Floating IP.", type="ExternalGatewayForFloatingIPNotFound")
    return fip.replace(port_id=port.id, fixed_ip_address=chosen[0].ip_address,
                       router_id=router.id)


def _router_for(repo: Repo, ext_net: str, subnet_id: str) -> Router | None:
    for router in sorted(repo.all(Router), key=lambda r: r.id):
        gw = router.external_gateway or {}
        if gw.get("network_id") != ext_net:
            continue
        for port in repo.where(Port, device_id=router.id, device_owner=INTERFACE):
            if any(f.subnet_id == subnet_id for f in port.fixed_ips):
                return router
    return None


def delete(repo: Repo, ctx: Context, fip: FloatingIP) -> None:
    port = repo.get(Port, fip.floating_port_id)
    if port is not None:
        ports.release(repo, port)
    repo.remove(fip)
