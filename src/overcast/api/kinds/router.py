"""Routers: external gateway port, interfaces (ports owned by the router), routes."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from overcast.api import convert as cv
from overcast.api import grants, policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, NotFound
from overcast.api.kinds import availability_zone as az
from overcast.api.kinds import port as ports
from overcast.api.kinds import router_snat
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model.types import ROUTER_SNAT, FloatingIP, HostRoute, Network, Port, Router, Subnet

GATEWAY = "network:router_gateway"
INTERFACE = "network:router_interface"

_gw_ip = cv.dict_of({"subnet_id": cv.to_uuidish, "ip_address": cv.to_ip})
_gateway_fields = cv.dict_of({
    "network_id": cv.to_uuidish, "enable_snat": cv.to_bool,
    "external_fixed_ips": cv.list_of(_gw_ip),
}, ("network_id",))


def _gateway(value: Any) -> dict[str, Any] | None:
    """None or ``{}`` clears the gateway; anything else names its network."""
    if value is None or value == {}:
        return None
    return _gateway_fields(value)  # type: ignore[no-any-return]
_route = cv.dict_of({"destination": cv.to_cidr, "nexthop": cv.to_ip}, ("destination", "nexthop"))


MAX_ROUTES = 30  # Neutron's max_routes


def _routes(value: Any) -> tuple[HostRoute, ...]:
    """The routes, each once: Neutron's hostroutes validator refuses a route
    given twice (the same destination through two nexthops is two routes)."""
    routes = tuple(HostRoute(**r) for r in cv.list_of(_route, MAX_ROUTES)(value))
    seen: set[HostRoute] = set()
    for route in routes:
        if route in seen:
            raise ValueError(f"Duplicate hostroute '{route.destination} via {route.nexthop}'")
        seen.add(route)
    return routes


def _drop_unset(fields: dict[str, Any]) -> None:
    """The dvr extension's ``distributed`` is kept as given: a centralized
    router (false) is routed as every router here is, by each host for its
    own ports.  Null is Neutron's "not given": the default (true) on create,
    no change on update."""
    if fields.get("distributed", False) is None:
        del fields["distributed"]


def bad_request(message: str) -> BadRequest:
    """Neutron's ``BadRequest(resource='router')``: its type and its prefix."""
    return BadRequest(f"Bad router request: {message}.", type="BadRequest")


def _extra(repo: Repo, router: Router, out: dict[str, Any]) -> None:
    out["external_gateway_info"] = router.external_gateway or None
    out["availability_zones"] = az.router_zones(repo, router)
    out["flavor_id"] = None
    out["enable_ndp_proxy"] = False


SCHEMA = Schema(
    Router, "router", "routers", "/v2.0/routers",
    (
        stored("admin_state_up", cv.to_bool),
        Attr("status", "status", post=False, put=False),
        Attr("external_gateway_info", "external_gateway", _gateway),
        Attr("routes", "routes", _routes),
        Attr("distributed", "distributed", cv.optional(cv.to_bool), unset_default=True),
        stored("availability_zone_hints", az.hints, put=False),
        Attr("ha", "ha", cv.to_bool),
    ),
    extra=_extra,
)


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> Router:
    gateway = fields.pop("external_gateway", None)
    _drop_unset(fields)
    router = Router(**fields)
    az.check_hints(repo, "router", router.availability_zone_hints)
    if gateway:
        router = router.replace(external_gateway=_set_gateway(repo, ctx, router, gateway))
    _check_routes(repo, router)
    saved = repo.save(router, new=True)
    router_snat.sync(repo, saved)
    return saved


def update(repo: Repo, ctx: Context, router: Router, fields: dict[str, Any]) -> Router:
    if "external_gateway" in fields:
        gateway = fields.pop("external_gateway")
        current = router.external_gateway or {}
        if gateway and current and gateway.get("network_id") == current.get("network_id"):
            merged = {**current, **{k: v for k, v in gateway.items()
                                    if k != "external_fixed_ips"}}
            router = router.replace(external_gateway=merged)
        else:
            _clear_gateway(repo, router)
            router = router.replace(external_gateway=None)
            if gateway:
                router = router.replace(external_gateway=_set_gateway(repo, ctx, router, gateway))
    _drop_unset(fields)
    new = router.replace(**fields)
    if new.distributed != router.distributed and router.admin_state_up:  # up before this PUT
        # Neutron's _validate_router_migration, though here both kinds route alike
        raise bad_request("Cannot change the 'distributed' attribute of active routers. "
                          "Please set router admin_state_up to False prior to upgrade")
    _check_routes(repo, new)
    saved = repo.save(new)
    router_snat.sync(repo, saved)
    return saved


def edit_routes(repo: Repo, ctx: Context, router: Router, routes: tuple[HostRoute, ...],
                adding: bool) -> Router:
    """extraroute-atomic, in the caller's one transaction: adding a route the
    router has, or removing one it lacks, changes nothing (Neutron's
    _add_extra_routes and _remove_extra_routes); the result is checked as a
    routes update is."""
    if adding:
        new = tuple(dict.fromkeys((*router.routes, *routes)))
    else:
        gone = set(routes)
        new = tuple(r for r in router.routes if r not in gone)
    if len(new) > MAX_ROUTES:
        raise BadRequest(f"Unable to complete operation for {router.id}. The number of routes "
                         f"exceeds the maximum {MAX_ROUTES}.", type="RoutesExhausted")
    return update(repo, ctx, router, {"routes": new})


def action_routes(body: Any) -> tuple[HostRoute, ...]:
    """The routes of ``{"router": {"routes": [...]}}``; the same one twice is one."""
    inner = body.get("router") if isinstance(body, dict) and set(body) == {"router"} else None
    if not isinstance(inner, dict) or set(inner) != {"routes"}:
        raise BadRequest('Expected a body {"router": {"routes": [...]}}')
    try:
        return tuple(dict.fromkeys(HostRoute(**r) for r in
                                   cv.list_of(_route, MAX_ROUTES)(inner["routes"])))
    except ValueError as err:
        raise BadRequest(f"Invalid input for routes. Reason: {err}.") from None


def _set_gateway(repo: Repo, ctx: Context, router: Router,
                 gateway: dict[str, Any]) -> dict[str, Any]:
    """The gateway port on the external network, and the router's
    ``external_gateway_info``.  On a network without subnets the port has no
    address (``external_fixed_ips`` empty), as Neutron's l3_db makes it ("No
    IPs available for external network"): such a router has no SNAT and no
    floating IPs until it gets one."""
    net = repo.must(Network, gateway["network_id"],
                    policy.visible(ctx, "network", repo.get, grants.of(repo)))
    if not net.router_external:
        raise bad_request(f"Network {net.id} is not an external network")
    subnets = repo.where(Subnet, network_id=net.id)
    req = gateway.get("external_fixed_ips") or None
    gateway_ips = {s.gateway_ip for s in subnets if s.gateway_ip}
    for wanted in req or ():
        if wanted.get("ip_address") in gateway_ips:
            raise bad_request(f"External IP {wanted['ip_address']} is the same as the "
                              "gateway IP")
    _check_overlaps(repo, router, subnets)
    port = ports.create(repo, _service_ctx(), {
        "id": repo.new_id(), "project_id": "", "network_id": net.id,
        "device_owner": GATEWAY, "device_id": router.id, "_fixed_ips": req,
        "port_security_enabled": False,
    })
    if subnets and not port.fixed_ips:
        raise bad_request(f"External network {net.id} gave the router's gateway no address")
    return {"network_id": net.id, "enable_snat": gateway.get("enable_snat", True),
            "external_fixed_ips": [{"subnet_id": f.subnet_id, "ip_address": f.ip_address}
                                   for f in port.fixed_ips]}


def _service_ctx() -> Context:
    return Context("", True)


def _clear_gateway(repo: Repo, router: Router) -> None:
    if any(f.router_id == router.id for f in repo.all(FloatingIP)):
        raise Conflict(f"Gateway cannot be updated for router {router.id}, since a gateway to "
                       "external network is required by one or more floating IPs.",
                       type="RouterExternalGatewayInUseByFloatingIp")
    for port in repo.where(Port, device_id=router.id, device_owner=GATEWAY):
        ports.release(repo, port)
    router_snat.sync(repo, router.replace(external_gateway=None))


def interfaces(repo: Repo, router_id: str) -> list[Port]:
    return repo.where(Port, device_id=router_id, device_owner=INTERFACE)


def _check_routes(repo: Repo, router: Router) -> None:
    """Each nexthop on one of the router's subnets and not one of its own
    addresses, its SNAT port's included: the SNAT host would route the
    traffic to itself (extraroute_db._validate_routes_nexthop: every port
    of the router)."""
    cidrs = [ipaddress.ip_network(s.cidr) for s in _attached_subnets(repo, router)]
    snat = repo.where(Port, device_id=router.id, device_owner=ROUTER_SNAT)
    own = {ipaddress.ip_address(f.ip_address) for p in [*_router_ports(repo, router), *snat]
           for f in p.fixed_ips}
    for i, route in enumerate(router.routes):
        try:
            ipaddress.ip_network(route.destination)
            hop = ipaddress.ip_address(route.nexthop)
        except ValueError as err:
            raise BadRequest(f"Invalid input for routes[{i}]. Reason: {err}.") from None
        if not any(hop in c for c in cidrs):
            raise _invalid_route(route, "the nexthop is not connected with router")
        if hop in own:
            raise _invalid_route(route, "the nexthop is used by router")


def _invalid_route(route: HostRoute, reason: str) -> BadRequest:
    return BadRequest(f"Invalid format for routes: {route.destination} via {route.nexthop}, "
                      f"{reason}", type="InvalidRoutes")


def _attached_subnets(repo: Repo, router: Router) -> list[Subnet]:
    """The subnets of the router's own ports (interfaces and gateway): a port
    that merely names the router as its device connects nothing to it."""
    ids = {f.subnet_id for p in _router_ports(repo, router) for f in p.fixed_ips}
    return [s for s in repo.all(Subnet) if s.id in ids]


def _router_ports(repo: Repo, router: Router) -> list[Port]:
    return [p for p in repo.where(Port, device_id=router.id)
            if p.device_owner in (INTERFACE, GATEWAY)]


def delete(repo: Repo, ctx: Context, router: Router) -> None:
    attached = sorted(p.id for p in interfaces(repo, router.id))
    if attached:
        raise Conflict(f"Router {router.id} has ports still attached: {', '.join(attached)}",
                       type="RouterInUse")
    _clear_gateway(repo, router)
    repo.remove(router)


def add_interface(repo: Repo, ctx: Context, router: Router, body: Any) -> dict[str, Any]:
    subnet_id, port_id = _interface_args(body)
    if subnet_id is not None:
        port = _port_for_subnet(repo, ctx, router, subnet_id)
    else:
        port = _adopt_port(repo, ctx, router, str(port_id))
    router_snat.sync(repo, router)
    _revise(repo, router)
    return _interface_info(router, port)


def _revise(repo: Repo, router: Router) -> None:
    """Neutron's RouterPort revises_on_change: an interface revises its router."""
    repo.save(repo.get(Router, router.id) or router)


def _interface_args(body: Any, removal: bool = False) -> tuple[str | None, str | None]:
    """The subnet_id and port_id of an interface request: one of them to add
    one, one or both to remove one (Neutron's _validate_interface_info)."""
    if not isinstance(body, dict) or set(body) - {"subnet_id", "port_id"}:
        raise bad_request("expected a body with subnet_id or port_id")
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    if subnet_id is None and port_id is None:
        raise bad_request("Either subnet_id or port_id must be specified")
    if not removal and subnet_id is not None and port_id is not None:
        raise bad_request("Cannot specify both subnet_id and port_id")
    return _uuid_or_none(subnet_id), _uuid_or_none(port_id)


def _uuid_or_none(value: Any) -> str | None:
    """neutron-lib's validate_uuid, as _validate_interface_info applies it."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(value if isinstance(value, str) else "-"))
    except ValueError:
        raise bad_request(f"'{cv.show(value)}' is not a valid UUID") from None


def _port_for_subnet(repo: Repo, ctx: Context, router: Router, subnet_id: str) -> Port:
    subnet = repo.must(Subnet, subnet_id, policy.visible(ctx, "subnet", repo.get, grants.of(repo)))
    if subnet.gateway_ip is None:
        raise bad_request(f"Subnet {subnet.id} for router interface must have a gateway IP")
    # a router port on the subnet's network takes its gateway: the network owner's to allow
    policy.authorize(ctx, "create", "port", policy.target(
        "port", {"project_id": router.project_id, "network_id": subnet.network_id}, repo.get),
        {"device_owner": INTERFACE, "port_security_enabled": False,
         "fixed_ips": [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}]},
        f"network {subnet.network_id}")
    _check_router_advertised(subnet)
    _check_overlaps(repo, router, [subnet])
    _check_one_port_per_network(repo, router, subnet.network_id)
    return ports.create(repo, ctx, {
        "id": repo.new_id(), "project_id": router.project_id,
        "network_id": subnet.network_id, "device_owner": INTERFACE, "device_id": router.id,
        "_fixed_ips": ({"subnet_id": subnet.id, "ip_address": subnet.gateway_ip},),
        "port_security_enabled": False,
    })


def _check_router_advertised(subnet: Subnet) -> None:
    """An IPv6 subnet whose hosts take their addresses from an external
    router's advertisements (address mode without RA mode) is no interface:
    the router would advertise beside that one (l3_db._validate_subnet_address_mode)."""
    if subnet.ip_version == 6 and subnet.ipv6_ra_mode is None and \
            subnet.ipv6_address_mode is not None:
        raise bad_request(f"IPv6 subnet {subnet.id} configured to receive RAs from an "
                          "external router cannot be added to Neutron Router")


def _check_one_port_per_network(repo: Repo, router: Router, network_id: str) -> None:
    """One interface per network and router (Overcast's rule: Neutron would add
    a second IPv4 subnet of the network as a second port)."""
    if any(p.network_id == network_id for p in interfaces(repo, router.id)):
        raise bad_request(f"Router already has a port on network {network_id}")


def _check_overlaps(repo: Repo, router: Router, new: list[Subnet]) -> None:
    """No subnet twice on one router, and no two of its subnets overlapping: the
    router's are its ports' subnets and every subnet of its gateway's network
    (Neutron's _check_for_dup_router_subnets and _raise_on_subnets_overlap)."""
    mine: dict[str, Subnet] = {}
    for port in _router_ports(repo, router):
        for fixed in port.fixed_ips:
            if any(s.id == fixed.subnet_id for s in new):
                raise bad_request(f"Router already has a port on subnet {fixed.subnet_id}")
        subnets = (repo.where(Subnet, network_id=port.network_id)
                   if port.device_owner == GATEWAY
                   else [s for f in port.fixed_ips if (s := repo.get(Subnet, f.subnet_id))])
        mine.update((s.id, s) for s in subnets)
    for subnet in new:
        for other in sorted(mine.values(), key=lambda s: s.id):
            if ipaddress.ip_network(subnet.cidr).overlaps(ipaddress.ip_network(other.cidr)):
                raise bad_request(f"Cidr {subnet.cidr} of subnet {subnet.id} overlaps with "
                                  f"cidr {other.cidr} of subnet {other.id}")


def _adopt_port(repo: Repo, ctx: Context, router: Router, port_id: str) -> Port:
    port = repo.must(Port, port_id, policy.visible(ctx, "port"))
    # the port becomes a router port without port security: as if updated so
    policy.authorize(ctx, "update", "port", policy.target("port", port, repo.get),
                     {"device_owner": INTERFACE, "device_id": router.id,
                      "port_security_enabled": False}, f"port {port.id}")
    if port.device_id:  # Neutron's _check_router_port: the device, whatever its owner
        raise Conflict(f"Unable to complete operation on port {port.id} for network "
                       f"{port.network_id}. Port already has an attached device "
                       f"{port.device_id}.", type="PortInUse")
    if not port.fixed_ips:
        raise bad_request(f"Router port {port.id} must have at least one fixed IP")
    if int(port.mac_address[:2], 16) & 1:  # no device takes a multicast MAC as its own
        raise bad_request(f"Router port {port.id} has the multicast MAC address "
                          f"{port.mac_address}: an interface needs a unicast one")
    subnets = [repo.must(Subnet, f.subnet_id) for f in port.fixed_ips]
    for subnet in subnets:
        _check_router_advertised(subnet)
    if len({s.id for s in subnets if s.ip_version == 4}) > 1:
        raise bad_request(f"Cannot have multiple IPv4 subnets on router port {port.id}")
    _check_overlaps(repo, router, subnets)
    _check_one_port_per_network(repo, router, port.network_id)
    return repo.save(port.replace(device_id=router.id, device_owner=INTERFACE,
                                  security_groups=(), port_security_enabled=False))


def _interface_info(router: Router, port: Port) -> dict[str, Any]:
    subnet_ids = [f.subnet_id for f in port.fixed_ips]
    return {"id": router.id, "tenant_id": router.project_id, "project_id": router.project_id,
            "port_id": port.id, "network_id": port.network_id,
            "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids}


def remove_interface(repo: Repo, ctx: Context, router: Router, body: Any) -> dict[str, Any]:
    subnet_id, port_id = _interface_args(body, removal=True)
    port = _interface_to_remove(repo, router, subnet_id, port_id)
    info = _interface_info(router, port)
    _check_fips(repo, router, port)
    _check_route_nexthops(repo, router, port)
    ports.release(repo, port)
    router = repo.get(Router, router.id) or router
    _check_routes(repo, router)
    router_snat.sync(repo, router)
    _revise(repo, router)
    return info


def _interface_to_remove(repo: Repo, router: Router, subnet_id: str | None,
                         port_id: str | None) -> Port:
    """The interface a removal names: by port (and then the subnet, if given,
    must be the port's: SubnetMismatchForPort), else by subnet."""
    for port in interfaces(repo, router.id):
        subnets = {f.subnet_id for f in port.fixed_ips}
        if port_id is not None and port.id == port_id:
            if subnet_id is not None and subnet_id not in subnets:
                raise BadRequest(f"Subnet on port {port.id} does not match the requested "
                                 f"subnet {subnet_id}.", type="SubnetMismatchForPort")
            return port
        if port_id is None and subnet_id in subnets:
            return port
    what = f"port {port_id}" if port_id else f"subnet {subnet_id}"
    raise NotFound(f"Router {router.id} does not have an interface with {what}",
                   type="RouterInterfaceNotFound")


def _check_route_nexthops(repo: Repo, router: Router, port: Port) -> None:
    """An interface whose subnet holds a static route's nexthop stays while the
    route does (extraroute_db._confirm_router_interface_not_in_use)."""
    for fixed in port.fixed_ips:
        subnet = repo.get(Subnet, fixed.subnet_id)
        if subnet is None:
            continue
        cidr = ipaddress.ip_network(subnet.cidr)
        if any(ipaddress.ip_address(r.nexthop) in cidr for r in router.routes):
            raise Conflict(f"Router interface for subnet {subnet.id} on router {router.id} "
                           "cannot be deleted, as it is required by one or more routes.",
                           type="RouterInterfaceInUseByRoute")


def _check_fips(repo: Repo, router: Router, port: Port) -> None:
    subnets = {f.subnet_id for f in port.fixed_ips}
    for fip in repo.where(FloatingIP, router_id=router.id):
        target = repo.get(Port, fip.port_id or "")
        if target and any(f.subnet_id in subnets for f in target.fixed_ips):
            raise Conflict(f"Router interface for subnet {', '.join(sorted(subnets))} on router "
                           f"{router.id} cannot be deleted, as it is required by one or more "
                           "floating IPs.", type="RouterInterfaceInUseByFloatingIP")
