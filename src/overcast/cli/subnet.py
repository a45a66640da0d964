"""``overcast subnet create|list|show|set|delete``."""

from __future__ import annotations

import argparse

from overcast.cli.client import Client
from overcast.cli.network import NETWORK
from overcast.cli.output import Column
from overcast.cli.resource import (
    Body,
    Spec,
    Subparsers,
    add_create,
    add_crud,
    add_set,
    copy_given,
    group,
    kv,
    merged,
    removed,
    toggle,
)

SUBNET = Spec(
    kind="subnet",
    key="subnet",
    path="/v2.0/subnets",
    columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("Network", "network_id"),
        Column("Subnet", "cidr"),
    ),
    long_columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("Network", "network_id"),
        Column("Subnet", "cidr"),
        Column("Project", "project_id"),
        Column("DHCP", "enable_dhcp"),
        Column("Name Servers", "dns_nameservers"),
        Column("Allocation Pools", "allocation_pools"),
        Column("Host Routes", "host_routes"),
        Column("IP Version", "ip_version"),
        Column("Gateway", "gateway_ip"),
        Column("Tags", "tags"),
    ),
    tags=True,
)

FIELDS = {"name": "name", "description": "description", "dhcp": "enable_dhcp"}
CREATE_FIELDS = {
    **FIELDS,
    "subnet_range": "cidr",
    "ip_version": "ip_version",
    "ipv6_ra_mode": "ipv6_ra_mode",
    "ipv6_address_mode": "ipv6_address_mode",
}
pool = kv({"start": "start", "end": "end"}, required=("start", "end"))
route = kv({"destination": "destination", "gateway": "nexthop"}, required=("destination", "gateway"))


def _gateway(body: Body, gateway: str | None) -> None:
    if gateway is None or gateway == "auto":
        return
    body["gateway_ip"] = None if gateway.lower() == "none" else gateway


def _create_body(client: Client, args: argparse.Namespace) -> Body:
    body = copy_given(args, {"network_id": NETWORK.find_id(client, args.network)}, CREATE_FIELDS)
    _gateway(body, args.gateway)
    if args.pools:
        body["allocation_pools"] = args.pools
    if args.dns:
        body["dns_nameservers"] = args.dns
    if args.routes:
        body["host_routes"] = args.routes
    return body


def _set_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    body = copy_given(args, {}, FIELDS)
    _gateway(body, args.gateway)
    changes = {
        "allocation_pools": merged(current.get("allocation_pools"), args.pools, args.no_pools),
        "dns_nameservers": merged(current.get("dns_nameservers"), args.dns, args.no_dns),
        "host_routes": merged(current.get("host_routes"), args.routes, args.no_routes),
    }
    body.update({k: v for k, v in changes.items() if v is not None})
    return body


def _unset_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    changes = {
        "allocation_pools": removed(current.get("allocation_pools"), args.pools),
        "dns_nameservers": removed(current.get("dns_nameservers"), args.dns),
        "host_routes": removed(current.get("host_routes"), args.routes),
    }
    return {k: v for k, v in changes.items() if v is not None}


def _collection_options(parser: argparse.ArgumentParser, verb: str = "") -> None:
    parser.add_argument("--allocation-pool", dest="pools", action="append", type=pool,
                        metavar="start=IP,end=IP", help=f"{verb}allocation pool (repeatable)")
    parser.add_argument("--dns-nameserver", dest="dns", action="append", metavar="IP",
                        help=f"{verb}DNS server for DHCP clients (repeatable)")
    parser.add_argument("--host-route", dest="routes", action="append", type=route,
                        metavar="destination=CIDR,gateway=IP",
                        help=f"{verb}route pushed by DHCP (repeatable)")


def _list_params(client: Client, args: argparse.Namespace) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if args.network:
        params.append(("network_id", NETWORK.find_id(client, args.network)))
    if args.ip_version:
        params.append(("ip_version", str(args.ip_version)))
    if args.name:
        params.append(("name", args.name))
    return params


def register(top: Subparsers) -> None:
    sub = group(top, "subnet", "manage subnets: address ranges, pools and gateways of networks")
    create = add_create(sub, SUBNET, _create_body)
    create.add_argument("name", metavar="NAME", help="name of the new subnet")
    create.add_argument("--network", required=True, help="network (name or id)")
    create.add_argument("--subnet-range", required=True, metavar="CIDR", help="e.g. 10.0.0.0/24")
    create.add_argument("--ip-version", type=int, choices=(4, 6), default=4)
    create.add_argument("--gateway", metavar="IP|auto|none", help="gateway (default: auto)")
    create.add_argument("--description")
    create.add_argument("--ipv6-ra-mode", choices=("slaac", "dhcpv6-stateful", "dhcpv6-stateless"))
    create.add_argument("--ipv6-address-mode",
                        choices=("slaac", "dhcpv6-stateful", "dhcpv6-stateless"))
    toggle(create, "dhcp", "--dhcp", "--no-dhcp", "DHCP (default: on)")
    _collection_options(create)

    listing = add_crud(sub, SUBNET, _list_params)["list"]
    listing.add_argument("--network", help="only subnets of this network")
    listing.add_argument("--ip-version", type=int, choices=(4, 6))
    listing.add_argument("--name", help="only subnets with this name")

    setter = add_set(sub, SUBNET, _set_body)
    setter.add_argument("--name")
    setter.add_argument("--description")
    setter.add_argument("--gateway", metavar="IP|none")
    toggle(setter, "dhcp", "--dhcp", "--no-dhcp", "DHCP")
    _collection_options(setter, "add ")
    setter.add_argument("--no-allocation-pool", dest="no_pools", action="store_true",
                        help="clear the allocation pools (with --allocation-pool: replace)")
    setter.add_argument("--no-dns-nameservers", dest="no_dns", action="store_true",
                        help="clear the DNS servers (with --dns-nameserver: replace)")
    setter.add_argument("--no-host-route", dest="no_routes", action="store_true",
                        help="clear the host routes (with --host-route: replace)")
    _collection_options(add_set(sub, SUBNET, _unset_body, verb="unset"), "remove ")
