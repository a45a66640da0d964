"""Port forwardings of a floating IP (Neutron's floating-ip-port-forwarding,
with its description and port ranges): what arrives at the floating IP on an
external port (or range) goes to an internal address and port (or range) of
one port behind the floating IP's router.  A floating IP with port
forwardings is associated with no port, and a port with a floating IP gets
no port forwarding (Neutron's FipInUseByPortForwarding,
PortHasBindingFloatingIP)."""

from __future__ import annotations

import ipaddress
from typing import Any

from overcast.api import convert as cv
from overcast.api import policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, NotFound
from overcast.api.kinds import floatingip as fips
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema
from overcast.model.types import FixedIP, FloatingIP, Port, PortForwarding

MEMBER = "floatingip_port_forwarding"  # the policy's name for it
PROTOCOLS = ("tcp", "udp")
PORTS = (1, 65535)
_port = cv.int_range(*PORTS)


def _range(value: Any) -> str:
    """Neutron's ``type:port_range``: ``"N"`` or ``"N:M"`` (N <= M), as ``"N:M"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"'{cv.show(value)}' is not a valid port range")
    parts = value.split(":")
    if len(parts) > 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"'{cv.show(value)}' is not a valid port range")
    lo, hi = int(parts[0]), int(parts[-1])
    if not (PORTS[0] <= lo <= PORTS[1] and PORTS[0] <= hi <= PORTS[1]):
        raise ValueError(f"'{cv.show(value)}' is not in range {PORTS[0]} through {PORTS[1]}")
    if lo > hi:
        raise ValueError(f"'{cv.show(value)}' is not a valid port range: {lo} is above {hi}")
    return f"{lo}:{hi}"


def _protocol(value: Any) -> str:
    text = value.lower() if isinstance(value, str) else value
    return str(cv.one_of(*PROTOCOLS)(text))


def _single(text: str) -> int | None:
    lo, hi = text.split(":") if text else ("", "-")
    return int(lo) if lo == hi else None


def _extra(repo: Repo, pf: PortForwarding, out: dict[str, Any]) -> None:
    out["external_port"] = _single(pf.external_port_range)
    out["internal_port"] = _single(pf.internal_port_range)


SCHEMA = Schema(
    PortForwarding, "port_forwarding", "port_forwardings",
    "/v2.0/floatingips/{parent_id}/port_forwardings",
    (
        Attr("protocol", "protocol", _protocol, required=True),
        Attr("internal_port_id", "internal_port_id", cv.to_uuidish, required=True),
        Attr("internal_ip_address", "internal_ip_address", cv.to_ip, required=True),
        Attr("external_port", "_external_port", cv.optional(_port), render=False),
        Attr("internal_port", "_internal_port", cv.optional(_port), render=False),
        Attr("external_port_range", "external_port_range", cv.optional(_range)),
        Attr("internal_port_range", "internal_port_range", cv.optional(_range)),
    ),
    extra=_extra,
    common=(
        Attr("id", "id", cv.to_uuid, put=False),
        Attr("project_id", "project_id", cv.to_str(255), put=False, render=False),
        Attr("tenant_id", "project_id", cv.to_str(255), put=False, render=False),
        Attr("description", "description", cv.to_str(255)),
    ),
)
def of_fip(repo: Repo, fip_id: str) -> list[PortForwarding]:
    return repo.where(PortForwarding, floatingip_id=fip_id)


def bad_request(message: str) -> BadRequest:
    """Neutron's ``BadRequest(resource='port_forwarding')``."""
    return BadRequest(f"Bad port_forwarding request: {message}.", type="BadRequest")


# the checks ----------------------------------------------------------------------
def _ports(fields: dict[str, Any], old: PortForwarding | None) -> dict[str, Any]:
    """external_port/internal_port as one-port ranges; one of each form, not both."""
    for side in ("external", "internal"):
        single, ranged = fields.pop(f"_{side}_port", None), fields.get(f"{side}_port_range")
        if single is not None and ranged is not None:
            raise bad_request(f"{side}_port and {side}_port_range cannot be given together")
        if single is not None:
            fields[f"{side}_port_range"] = f"{single}:{single}"
        elif ranged is None and old is None:
            raise BadRequest(f"Failed to parse request. Required attribute '{side}_port' or "
                             f"'{side}_port_range' not specified")
        elif ranged is None:
            fields.pop(f"{side}_port_range", None)
    return fields


def _width(text: str) -> int:
    lo, hi = text.split(":")
    return int(hi) - int(lo)


def _bounds(text: str) -> tuple[int, int]:
    lo, hi = text.split(":")
    return int(lo), int(hi)


def _collides(a: str, b: str) -> bool:
    (alo, ahi), (blo, bhi) = _bounds(a), _bounds(b)
    return max(alo, blo) <= min(ahi, bhi)


def _check_ranges(pf: PortForwarding) -> None:
    """N-N or 1-N (Neutron's _validate_ranges)."""
    inner = _width(pf.internal_port_range)
    if inner > 0 and inner != _width(pf.external_port_range):
        raise bad_request("Invalid ranges of internal and/or external ports. The relation "
                          "between internal and external ports must be N-N or 1-N")


def _check_collisions(repo: Repo, pf: PortForwarding) -> None:
    """No other forwarding of the floating IP with the protocol takes one of the
    external ports, none to the same internal address takes an internal one."""
    for other in repo.all(PortForwarding):
        if other.id == pf.id or other.protocol != pf.protocol:
            continue
        if other.floatingip_id == pf.floatingip_id and _collides(
                other.external_port_range, pf.external_port_range):
            raise _collision("external_port_range", other.external_port_range,
                             pf.external_port_range)
        if (other.internal_port_id, other.internal_ip_address) == (
                pf.internal_port_id, pf.internal_ip_address) and _collides(
                other.internal_port_range, pf.internal_port_range):
            raise _collision("internal_port_range", other.internal_port_range,
                             pf.internal_port_range)


def _collision(key: str, existing: str, asked: str) -> BadRequest:
    return bad_request(f"There is a port collision with the {key}. The following ranges "
                       f"collide: {existing} and {asked}")


def _internal(port: Port, address: str) -> FixedIP:
    """The port's IPv4 fixed IP ``address`` (Neutron: one of its IPv4 fixed IPs)."""
    v4 = [f for f in port.fixed_ips if ipaddress.ip_address(f.ip_address).version == 4]
    if not v4:
        raise bad_request(f"Requested internal port {port.id} must allocate an IPv4 address "
                          "at least")
    found = [f for f in v4 if f.ip_address == address]
    if not found:
        shown = [{"subnet_id": f.subnet_id, "ip_address": f.ip_address} for f in v4]
        raise bad_request(f"Requested internal IP address {address} is not suitable for "
                          f"internal neutron port {port.id}, as its fixed_ips are {shown}")
    return found[0]


def _check_port_free(repo: Repo, port: Port, address: str) -> None:
    """A port that has a floating IP gets no port forwarding (PortHasBindingFloatingIP)."""
    for fip in repo.where(FloatingIP, port_id=port.id):
        raise Conflict(f"Cannot create port forwarding to floating IP {fip.floating_ip_address} "
                       f"({fip.id}) with port {port.id} using fixed IP {address}, as that port "
                       "already has a binding floating IP.", type="PortHasBindingFloatingIP")


def _router(repo: Repo, fip: FloatingIP, pf: PortForwarding, fixed: FixedIP) -> str:
    """The router between the internal subnet and the floating IP's network,
    the same for every forwarding of the floating IP (Neutron's _check_router_match)."""
    router = fips.router_for(repo, fip.floating_network_id, fixed.subnet_id)
    if router is None:
        raise bad_request(f"External network {fip.floating_network_id} is not reachable from "
                          f"subnet {fixed.subnet_id}. Cannot set Port forwarding for port "
                          f"{pf.internal_port_id} with Floating IP {fip.id}")
    for other in of_fip(repo, fip.id):
        if other.id != pf.id and other.router_id != router.id:
            raise bad_request(f"The Floating IP {fip.id} had been set on router "
                              f"{other.router_id}, the internal Neutron port "
                              f"{pf.internal_port_id} can not reach it")
    return router.id


def _checked(repo: Repo, ctx: Context, fip: FloatingIP, pf: PortForwarding) -> PortForwarding:
    if fip.port_id is not None:
        raise Conflict(f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with "
                       f"port {pf.internal_port_id} using fixed IP {pf.internal_ip_address}, as "
                       "that fixed IP already has a floating IP on external network "
                       f"{fip.floating_network_id}.", type="FloatingIPPortAlreadyAssociated")
    port = repo.must(Port, pf.internal_port_id, policy.visible(ctx, "port"))
    fixed = _internal(port, pf.internal_ip_address)
    _check_port_free(repo, port, pf.internal_ip_address)
    _check_ranges(pf)
    _check_collisions(repo, pf)
    return pf.replace(router_id=_router(repo, fip, pf, fixed),
                      floating_ip_address=fip.floating_ip_address)


# the handlers' work --------------------------------------------------------------
def fip_of(repo: Repo, ctx: Context, fip_id: str) -> FloatingIP:
    """The path's floating IP, or 404 for one the caller may not see."""
    return repo.must(FloatingIP, fip_id, fips.SCHEMA.visible(ctx))


def target(fip: FloatingIP) -> policy.Target:
    """The rules look at the floating IP's owner (Neutron's ADMIN_OR_PARENT_OWNER)."""
    return policy.Target(owner=fip.project_id)


def find(repo: Repo, fip: FloatingIP, pf_id: str) -> PortForwarding:
    pf = repo.get(PortForwarding, pf_id)
    if pf is None or pf.floatingip_id != fip.id:
        raise NotFound(f"Port Forwarding {pf_id} could not be found.",
                       type="PortForwardingNotFound")
    return pf


def create(repo: Repo, ctx: Context, fip: FloatingIP, fields: dict[str, Any]) -> PortForwarding:
    fields = _ports(dict(fields), None)
    pf = PortForwarding(**{**fields, "floatingip_id": fip.id, "project_id": fip.project_id})
    made = repo.save(_checked(repo, ctx, fip, pf), new=True)
    _route(repo, fip, made.router_id)
    return made


def update(repo: Repo, ctx: Context, fip: FloatingIP, pf: PortForwarding,
           fields: dict[str, Any]) -> PortForwarding:
    new = pf.replace(**_ports(dict(fields), pf))
    saved = repo.save(_checked(repo, ctx, fip, new))
    _route(repo, fip, saved.router_id)
    return saved


def delete(repo: Repo, fip: FloatingIP, pf: PortForwarding) -> None:
    repo.remove(pf)
    if not of_fip(repo, fip.id):
        _route(repo, fip, None)


def _route(repo: Repo, fip: FloatingIP, router_id: str | None) -> None:
    """The floating IP's router_id is its port forwardings' router while it has
    some, as Neutron sets it (no port is associated meanwhile)."""
    if fip.router_id != router_id:
        repo.save(fip.replace(router_id=router_id))


