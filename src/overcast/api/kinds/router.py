"""Routers: external gateway port, interfaces (ports owned by the router), routes."""

from __future__ import annotations

import ipaddress
from typing import Any

from overcast.api import convert as cv
from overcast.api import policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, NotFound
from overcast.api.kinds import port as ports
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model.types import FloatingIP, HostRoute, Network, Port, Router, Subnet

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
    return tuple(HostRoute(**r) for r in cv.list_of(_route, MAX_ROUTES)(value))


def _extra(repo: Repo, router: Router, out: dict[str, Any]) -> None:
    out["external_gateway_info"] = router.external_gateway or None
    out["availability_zones"] = []
    out["availability_zone_hints"] = []
    out["flavor_id"] = None
    out["enable_ndp_proxy"] = False


SCHEMA = Schema(
    Router, "router", "routers", "/v2.0/routers",
    (
        stored("admin_state_up", cv.to_bool),
        Attr("status", "status", post=False, put=False),
        Attr("external_gateway_info", "external_gateway", _gateway),
        Attr("routes", "routes", _routes),
        Attr("distributed", "distributed", cv.to_bool),
        Attr("ha", "ha", cv.to_bool),
    ),
    extra=_extra,
)


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> Router:
    gateway = fields.pop("external_gateway", None)
    router = Router(**fields)
    if gateway:
        router = router.replace(external_gateway=_set_gateway(repo, ctx, router, gateway))
    _check_routes(repo, router)
    return repo.save(router, new=True)


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
    new = router.replace(**fields)
    _check_routes(repo, new)
    return repo.save(new)


def _set_gateway(repo: Repo, ctx: Context, router: Router,
                 gateway: dict[str, Any]) -> dict[str, Any]:
    net = repo.must(Network, gateway["network_id"], policy.visible(ctx, "network", repo.get))
    if not net.router_external:
        raise BadRequest(f"Bad router request: Network {net.id} is not an external network.")
    req = gateway.get("external_fixed_ips") or None
    port = ports.create(repo, _service_ctx(), {
        "id": repo.new_id(), "project_id": "", "network_id": net.id,
        "device_owner": GATEWAY, "device_id": router.id, "_fixed_ips": req,
        "port_security_enabled": False,
    })
    if not port.fixed_ips:
        raise BadRequest(f"Bad router request: external network {net.id} has no subnet.")
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


def interfaces(repo: Repo, router_id: str) -> list[Port]:
    return repo.where(Port, device_id=router_id, device_owner=INTERFACE)


def _check_routes(repo: Repo, router: Router) -> None:
    cidrs = [ipaddress.ip_network(s.cidr) for s in _attached_subnets(repo, router)]
    for i, route in enumerate(router.routes):
        try:
            ipaddress.ip_network(route.destination)
            hop = ipaddress.ip_address(route.nexthop)
        except ValueError as err:
            raise BadRequest(f"Invalid input for routes[{i}]. Reason: {err}.") from None
        if not any(hop in c for c in cidrs):
            raise BadRequest(f"Invalid format for routes: {route.destination} via "
                             f"{route.nexthop}: the nexthop is not connected with the router.")


def _attached_subnets(repo: Repo, router: Router) -> list[Subnet]:
    """The subnets of the router's own ports (interfaces and gateway): a port
    that merely names the router as its device connects nothing to it."""
    ids = {f.subnet_id for p in repo.where(Port, device_id=router.id)
           if p.device_owner in (INTERFACE, GATEWAY) for f in p.fixed_ips}
    return [s for s in repo.all(Subnet) if s.id in ids]


def delete(repo: Repo, ctx: Context, router: Router) -> None:
    if interfaces(repo, router.id):
        raise Conflict(f"Router {router.id} still has ports", type="RouterInUse")
    _clear_gateway(repo, router)
    repo.remove(router)


def add_interface(repo: Repo, ctx: Context, router: Router, body: Any) -> dict[str, Any]:
    subnet_id, port_id = _interface_args(body)
    if subnet_id is not None:
        port = _port_for_subnet(repo, ctx, router, subnet_id)
    else:
        port = _adopt_port(repo, ctx, router, str(port_id))
    return _interface_info(router, port)


def _interface_args(body: Any) -> tuple[str | None, str | None]:
    if not isinstance(body, dict) or set(body) - {"subnet_id", "port_id"}:
        raise BadRequest("Bad router request: expected a body with subnet_id or port_id.")
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    if (subnet_id is None) == (port_id is None):
        raise BadRequest("Bad router request: Either subnet_id or port_id must be specified "
                         "(and not both).")
    if not isinstance(subnet_id or port_id, str):
        raise BadRequest("Bad router request: subnet_id/port_id must be a string.")
    return subnet_id, port_id


def _port_for_subnet(repo: Repo, ctx: Context, router: Router, subnet_id: str) -> Port:
    subnet = repo.must(Subnet, subnet_id, policy.visible(ctx, "subnet", repo.get))
    if subnet.gateway_ip is None:
        raise BadRequest(f"Bad router request: Subnet {subnet.id} does not have a gateway IP.")
    # a router port on the subnet's network takes its gateway: the network owner's to allow
    policy.authorize(ctx, "create", "port", policy.target(
        "port", {"project_id": router.project_id, "network_id": subnet.network_id}, repo.get),
        {"device_owner": INTERFACE, "port_security_enabled": False,
         "fixed_ips": [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}]},
        f"network {subnet.network_id}")
    _check_not_attached(repo, router, subnet)
    return ports.create(repo, ctx, {
        "id": repo.new_id(), "project_id": router.project_id,
        "network_id": subnet.network_id, "device_owner": INTERFACE, "device_id": router.id,
        "_fixed_ips": ({"subnet_id": subnet.id, "ip_address": subnet.gateway_ip},),
        "port_security_enabled": False,
    })


def _check_not_attached(repo: Repo, router: Router, subnet: Subnet) -> None:
    for port in interfaces(repo, router.id):
        if any(f.subnet_id == subnet.id for f in port.fixed_ips):
            raise BadRequest(f"Bad router request: Router already has a port on subnet "
                             f"{subnet.id}.")
        if port.network_id == subnet.network_id:
            raise BadRequest(f"Bad router request: Router already has a port on network "
                             f"{subnet.network_id}.")


def _adopt_port(repo: Repo, ctx: Context, router: Router, port_id: str) -> Port:
    port = repo.must(Port, port_id, policy.visible(ctx, "port"))
    # the port becomes a router port without port security: as if updated so
    policy.authorize(ctx, "update", "port", policy.target("port", port, repo.get),
                     {"device_owner": INTERFACE, "device_id": router.id,
                      "port_security_enabled": False}, f"port {port.id}")
    if port.device_id or port.device_owner:
        raise Conflict(f"Unable to complete operation on port {port.id} for network "
                       f"{port.network_id}. Port already has an attached device "
                       f"{port.device_id or port.device_owner}.", type="PortInUse")
    if not port.fixed_ips:
        raise BadRequest(f"Bad router request: Router port {port.id} must have at least one "
                         "fixed IP.")
    for fip in port.fixed_ips:
        _check_not_attached(repo, router, repo.must(Subnet, fip.subnet_id))
    return repo.save(port.replace(device_id=router.id, device_owner=INTERFACE,
                                  security_groups=(), port_security_enabled=False))


def _interface_info(router: Router, port: Port) -> dict[str, Any]:
    subnet_ids = [f.subnet_id for f in port.fixed_ips]
    return {"id": router.id, "tenant_id": router.project_id, "project_id": router.project_id,
            "port_id": port.id, "network_id": port.network_id,
            "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids}


def remove_interface(repo: Repo, ctx: Context, router: Router, body: Any) -> dict[str, Any]:
    subnet_id, port_id = _interface_args(body)
    for port in interfaces(repo, router.id):
        if port.id == port_id or any(f.subnet_id == subnet_id for f in port.fixed_ips):
            info = _interface_info(router, port)
            _check_fips(repo, router, port)
            ports.release(repo, port)
            router = repo.get(Router, router.id) or router
            _check_routes(repo, router)
            return info
    what = f"subnet {subnet_id}" if subnet_id else f"port {port_id}"
    raise NotFound(f"Router {router.id} does not have an interface with {what}",
                   type="RouterInterfaceNotFound")


def _check_fips(repo: Repo, router: Router, port: Port) -> None:
    subnets = {f.subnet_id for f in port.fixed_ips}
    for fip in repo.where(FloatingIP, router_id=router.id):
        target = repo.get(Port, fip.port_id or "")
        if target and any(f.subnet_id in subnets for f in target.fixed_ips):
            raise Conflict(f"Router interface for subnet {', '.join(sorted(subnets))} on router "
                           f"{router.id} cannot be deleted, as it is required by one or more "
                           "floating IPs.", type="RouterInterfaceInUseByFloatingIP")
