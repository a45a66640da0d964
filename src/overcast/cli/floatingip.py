"""``overcast floating ip create|list|show|set|unset|delete``."""

from __future__ import annotations

import argparse

from overcast.cli.client import Client
from overcast.cli.network import NETWORK
from overcast.cli.output import Column
from overcast.cli.port import PORT
from overcast.cli.resource import (
    Body,
    Spec,
    Subparsers,
    add_create,
    add_crud,
    add_set,
    copy_given,
    group,
)
from overcast.cli.router import ROUTER
from overcast.cli.subnet import SUBNET

FLOATING_IP = Spec(
    kind="floating ip",
    key="floatingip",
    path="/v2.0/floatingips",
    columns=(
        Column("ID", "id"),
        Column("Floating IP Address", "floating_ip_address"),
        Column("Fixed IP Address", "fixed_ip_address"),
        Column("Port", "port_id"),
        Column("Floating Network", "floating_network_id"),
        Column("Project", "project_id"),
    ),
    long_columns=(
        Column("ID", "id"),
        Column("Floating IP Address", "floating_ip_address"),
        Column("Fixed IP Address", "fixed_ip_address"),
        Column("Port", "port_id"),
        Column("Floating Network", "floating_network_id"),
        Column("Project", "project_id"),
        Column("Router", "router_id"),
        Column("Status", "status"),
        Column("Description", "description"),
        Column("Tags", "tags"),
    ),
    name_attr="floating_ip_address",  # shown, set and deleted by address or id
    tags=True,
)

FIELDS = {
    "fixed_ip_address": "fixed_ip_address",
    "floating_ip_address": "floating_ip_address",
    "description": "description",
    "dns_name": "dns_name",
    "dns_domain": "dns_domain",
}


def _create_body(client: Client, args: argparse.Namespace) -> Body:
    body = copy_given(args, {"floating_network_id": NETWORK.find_id(client, args.network)}, FIELDS)
    if args.port:
        body["port_id"] = PORT.find_id(client, args.port)
    if args.subnet:
        body["subnet_id"] = SUBNET.find_id(client, args.subnet)
    return body


def _set_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    body = copy_given(args, {}, {"fixed_ip_address": "fixed_ip_address",
                                 "description": "description"})
    if args.port:
        body["port_id"] = PORT.find_id(client, args.port)
    return body


def _unset_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    return {"port_id": None} if args.port else {}


def _list_params(client: Client, args: argparse.Namespace) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    resolved = (("network", NETWORK, "floating_network_id"), ("port", PORT, "port_id"),
                ("router", ROUTER, "router_id"))
    for dest, spec, attr in resolved:
        value = getattr(args, dest)
        if value:
            params.append((attr, spec.find_id(client, value)))
    for dest in ("fixed_ip_address", "floating_ip_address", "status"):
        if getattr(args, dest):
            params.append((dest, getattr(args, dest)))
    return params


def register(top: Subparsers) -> None:
    floating = group(top, "floating", "manage floating IPs")
    sub = group(floating, "ip", "manage floating IPs: external addresses mapped to ports")
    create = add_create(sub, FLOATING_IP, _create_body)
    create.add_argument("network", metavar="NETWORK", help="external network to allocate from")
    create.add_argument("--port", help="port to associate (name or id)")
    create.add_argument("--fixed-ip-address", metavar="IP", help="which of the port's addresses")
    create.add_argument("--floating-ip-address", metavar="IP", help="ask for this address")
    create.add_argument("--subnet", help="external subnet to allocate from")
    create.add_argument("--description")
    create.add_argument("--dns-name")
    create.add_argument("--dns-domain")

    listing = add_crud(sub, FLOATING_IP, _list_params)["list"]
    listing.add_argument("--network", help="only floating IPs of this external network")
    listing.add_argument("--port", help="only the floating IP of this port")
    listing.add_argument("--router", help="only floating IPs behind this router")
    listing.add_argument("--fixed-ip-address", metavar="IP")
    listing.add_argument("--floating-ip-address", metavar="IP")
    listing.add_argument("--status", choices=("ACTIVE", "DOWN", "ERROR"))

    setter = add_set(sub, FLOATING_IP, _set_body)
    setter.add_argument("--port", help="port to associate (name or id)")
    setter.add_argument("--fixed-ip-address", metavar="IP", help="which of the port's addresses")
    setter.add_argument("--description")

    unset = add_set(sub, FLOATING_IP, _unset_body, verb="unset")
    unset.add_argument("--port", action="store_true", help="disassociate from its port")
