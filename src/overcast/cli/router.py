"""``overcast router create|list|show|set|unset|delete`` and
``overcast router add|remove subnet|port``."""

from __future__ import annotations

import argparse
from typing import Any

from overcast.cli.client import Client, CliError
from overcast.cli.network import NETWORK
from overcast.cli.output import Column, admin_state
from overcast.cli.port import PORT, fixed_ip, resolve_fixed_ips
from overcast.cli.resource import (
    Body,
    Result,
    Spec,
    Subparsers,
    add_create,
    add_crud,
    add_set,
    command,
    copy_given,
    group,
    kv,
    merged,
    toggle,
)
from overcast.cli.subnet import SUBNET


def interfaces_info(client: Client, router: Body) -> Body:
    """What openstackclient shows as ``interfaces_info``: the router's ports."""
    ports = PORT.list(client, [("device_id", str(router["id"]))])
    return {"interfaces_info": [
        {"port_id": p["id"], "ip_address": ip.get("ip_address"), "subnet_id": ip.get("subnet_id")}
        for p in ports if p.get("device_owner") != "network:router_gateway"
        for ip in p.get("fixed_ips") or []
    ]}


ROUTER = Spec(
    kind="router",
    key="router",
    path="/v2.0/routers",
    columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("Status", "status"),
        Column("State", "admin_state_up", admin_state),
        Column("Project", "project_id"),
    ),
    long_columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("Status", "status"),
        Column("State", "admin_state_up", admin_state),
        Column("Project", "project_id"),
        Column("Distributed", "distributed"),
        Column("Routes", "routes"),
        Column("External gateway info", "external_gateway_info"),
        Column("Tags", "tags"),
    ),
    tags=True,
    show_extra=interfaces_info,
)

FIELDS = {"name": "name", "description": "description", "admin_state": "admin_state_up"}
route = kv({"destination": "destination", "gateway": "nexthop"}, ("destination", "gateway"))


def _gateway(client: Client, args: argparse.Namespace, current: Body) -> dict[str, Any] | None:
    """external_gateway_info from --external-gateway/--[en|dis]able-snat/--fixed-ip."""
    if args.gateway is None and args.snat is None and not args.fixed_ips:
        return None
    info = dict(current.get("external_gateway_info") or {})
    if args.gateway is not None:
        info = {"network_id": NETWORK.find_id(client, args.gateway)}
    if not info.get("network_id"):
        raise CliError("--enable-snat/--disable-snat/--fixed-ip need --external-gateway")
    if args.snat is not None:
        info["enable_snat"] = args.snat
    if args.fixed_ips:
        info["external_fixed_ips"] = resolve_fixed_ips(client, args.fixed_ips)
    return {k: v for k, v in info.items() if k in ("network_id", "enable_snat",
                                                   "external_fixed_ips")}


def _create_body(client: Client, args: argparse.Namespace) -> Body:
    body = copy_given(args, {}, FIELDS)
    gateway = _gateway(client, args, {})
    if gateway is not None:
        body["external_gateway_info"] = gateway
    return body


def _set_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    body = copy_given(args, {}, FIELDS)
    gateway = _gateway(client, args, current)
    if gateway is not None:
        body["external_gateway_info"] = gateway
    routes = merged(current.get("routes"), args.routes, args.no_route)
    if routes is not None:
        body["routes"] = routes
    return body


def _unset_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    body: Body = {}
    if args.gateway:
        body["external_gateway_info"] = {}
    if args.routes:
        body["routes"] = [r for r in current.get("routes") or [] if r not in args.routes]
    return body


def _gateway_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--external-gateway", dest="gateway", metavar="NETWORK",
                        help="external network for the router's gateway")
    toggle(parser, "snat", "--enable-snat", "--disable-snat", "source NAT on the gateway")
    parser.add_argument("--fixed-ip", dest="fixed_ips", action="append", type=fixed_ip,
                        metavar="subnet=SUBNET,ip-address=IP", help="gateway address")


def _interface(verb: str, what: str) -> Any:
    def handler(client: Client, args: argparse.Namespace) -> Result:
        router_id = ROUTER.find_id(client, args.router)
        spec = SUBNET if what == "subnet" else PORT
        body = {f"{what}_id": spec.find_id(client, args.target)}
        client.put(f"{ROUTER.item(router_id)}/{verb}_router_interface", body)
        return None

    return handler


def _register_interfaces(sub: Subparsers) -> None:
    for verb, word in (("add", "add"), ("remove", "remove")):
        inner = group(sub, word, f"{word} a router interface")
        for what in ("subnet", "port"):
            parser = command(inner, what, _interface(verb, what),
                             f"{word.capitalize()} a {what} {'to' if verb == 'add' else 'from'}"
                             " a router", output=False)
            parser.add_argument("router", metavar="ROUTER", help="router (name or id)")
            parser.add_argument("target", metavar=what.upper(), help=f"{what} (name or id)")


def register(top: Subparsers) -> None:
    sub = group(top, "router", "manage routers: subnet interfaces, external gateway, static routes")
    create = add_create(sub, ROUTER, _create_body)
    create.add_argument("name", metavar="NAME", help="name of the new router")
    create.add_argument("--description")
    toggle(create, "admin_state", "--enable", "--disable", "administrative state")
    _gateway_options(create)
    add_crud(sub, ROUTER)

    setter = add_set(sub, ROUTER, _set_body)
    setter.add_argument("--name")
    setter.add_argument("--description")
    toggle(setter, "admin_state", "--enable", "--disable", "administrative state")
    _gateway_options(setter)
    setter.add_argument("--route", dest="routes", action="append", type=route,
                        metavar="destination=CIDR,gateway=IP", help="static route (repeatable)")
    setter.add_argument("--no-route", action="store_true",
                        help="clear static routes (with --route: replace them)")

    unset = add_set(sub, ROUTER, _unset_body, verb="unset")
    unset.add_argument("--external-gateway", dest="gateway", action="store_true",
                       help="remove the external gateway")
    unset.add_argument("--route", dest="routes", action="append", type=route,
                       metavar="destination=CIDR,gateway=IP", help="static route to remove")
    _register_interfaces(sub)
