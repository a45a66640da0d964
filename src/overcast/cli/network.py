"""``overcast network create|list|show|set|delete``."""

from __future__ import annotations

import argparse

from overcast.cli.client import Client
from overcast.cli.output import Column, admin_state, internal_external
from overcast.cli.resource import (
    Body,
    Spec,
    Subparsers,
    add_create,
    add_crud,
    add_set,
    copy_given,
    toggle,
)

NETWORK = Spec(
    kind="network",
    key="network",
    path="/v2.0/networks",
    columns=(Column("ID", "id"), Column("Name", "name"), Column("Subnets", "subnets")),
    long_columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("Status", "status"),
        Column("Project", "project_id"),
        Column("State", "admin_state_up", admin_state),
        Column("Shared", "shared"),
        Column("Subnets", "subnets"),
        Column("Network Type", "provider:network_type"),
        Column("Segment", "provider:segmentation_id"),
        Column("Router Type", "router:external", internal_external),
        Column("MTU", "mtu"),
        Column("Tags", "tags"),
    ),
    tags=True,
)

# argument dest -> Neutron attribute, for create and set alike
FIELDS = {
    "name": "name",
    "mtu": "mtu",
    "description": "description",
    "dns_domain": "dns_domain",
    "admin_state": "admin_state_up",
    "external": "router:external",
    "share": "shared",
    "port_security": "port_security_enabled",
}
PROVIDER = {
    "network_type": "provider:network_type",
    "segment": "provider:segmentation_id",
    "physical_network": "provider:physical_network",
}


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mtu", type=int, help="MTU of the network")
    parser.add_argument("--description", help="description")
    parser.add_argument("--dns-domain", help="DNS domain of the network's ports")
    toggle(parser, "admin_state", "--enable", "--disable", "administrative state")
    toggle(parser, "external", "--external", "--internal", "external (router gateway) network")
    toggle(parser, "share", "--share", "--no-share", "shared between projects")
    toggle(parser, "port_security", "--enable-port-security", "--disable-port-security",
           "port security default for new ports")


def _create_body(client: Client, args: argparse.Namespace) -> Body:
    return copy_given(args, copy_given(args, {}, FIELDS), PROVIDER)


def _set_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    return copy_given(args, {}, FIELDS)


def _list_params(client: Client, args: argparse.Namespace) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if args.name:
        params.append(("name", args.name))
    if args.tags:
        params.append(("tags", ",".join(args.tags)))
    if args.external is not None:
        params.append(("router:external", str(args.external).lower()))
    if args.share is not None:
        params.append(("shared", str(args.share).lower()))
    if args.network_type:
        params.append(("provider:network_type", args.network_type))
    return params


def register(sub: Subparsers) -> None:
    """Add the network verbs to the ``network`` command's subparsers."""
    create = add_create(sub, NETWORK, _create_body)
    create.add_argument("name", metavar="NAME", help="name of the new network")
    _common_options(create)
    create.add_argument("--provider-network-type", dest="network_type",
                        choices=("vxlan", "local", "flat"), help="segmentation type")
    create.add_argument("--provider-segment", dest="segment", type=int,
                        help="segment id (VNI for vxlan)")
    create.add_argument("--provider-physical-network", dest="physical_network",
                        help="physical network (flat)")

    commands = add_crud(sub, NETWORK, _list_params)
    listing = commands["list"]
    listing.add_argument("--name", help="only networks with this name")
    listing.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG",
                         help="only networks with this tag (repeatable: all of them)")
    toggle(listing, "external", "--external", "--internal", "only external/internal networks")
    toggle(listing, "share", "--share", "--no-share", "only shared/unshared networks")
    listing.add_argument("--provider-network-type", dest="network_type",
                         choices=("vxlan", "local", "flat"))

    setter = add_set(sub, NETWORK, _set_body)
    setter.add_argument("--name", help="new name")
    _common_options(setter)
    add_set(sub, NETWORK, lambda client, args, current: {}, verb="unset")


__all__ = ["NETWORK", "register"]
