"""``overcast port create|list|show|set|delete``."""

from __future__ import annotations

import argparse
from typing import Any

from overcast.cli.client import Client
from overcast.cli.network import NETWORK
from overcast.cli.output import Column, admin_state, enforcement, qos_enforcement
from overcast.cli.qos import POLICY
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
from overcast.cli.security import GROUP
from overcast.cli.subnet import SUBNET

PORT = Spec(
    kind="port",
    key="port",
    path="/v2.0/ports",
    columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("MAC Address", "mac_address"),
        Column("Fixed IP Addresses", "fixed_ips"),
        Column("Status", "status"),
    ),
    long_columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("MAC Address", "mac_address"),
        Column("Fixed IP Addresses", "fixed_ips"),
        Column("Status", "status"),
        Column("State", "admin_state_up", admin_state),
        Column("Security Groups", "security_groups"),
        Column("Device Owner", "device_owner"),
        Column("Host", "binding:host_id"),
        Column("Tags", "tags"),
    ),
    tags=True,
    # which groups and which QoS limits are enforced on which host
    show_formatters={"overcast:firewall": enforcement, "overcast:qos": qos_enforcement},
)

FIELDS = {
    "name": "name",
    "description": "description",
    "mac_address": "mac_address",
    "device": "device_id",
    "device_owner": "device_owner",
    "host": "binding:host_id",
    "vnic_type": "binding:vnic_type",
    "port_security": "port_security_enabled",
    "dns_name": "dns_name",
    "public_hostname": "overcast:public_hostname",
    "admin_state": "admin_state_up",
}
fixed_ip = kv({"subnet": "subnet_id", "ip-address": "ip_address"})
address_pair = kv({"ip-address": "ip_address", "mac-address": "mac_address"}, ("ip-address",))


def resolve_fixed_ips(client: Client, given: list[dict[str, str]] | None) -> list[dict[str, str]]:
    """--fixed-ip values with the subnet (name or id) resolved to its id."""
    out = []
    for entry in given or []:
        entry = dict(entry)
        if "subnet_id" in entry:
            entry["subnet_id"] = SUBNET.find_id(client, entry["subnet_id"])
        out.append(entry)
    return out


def _groups(client: Client, given: list[str] | None) -> list[str]:
    return [GROUP.find_id(client, g) for g in given or []]


def _create_body(client: Client, args: argparse.Namespace) -> Body:
    body = copy_given(args, {"network_id": NETWORK.find_id(client, args.network)}, FIELDS)
    if args.fixed_ips:
        body["fixed_ips"] = resolve_fixed_ips(client, args.fixed_ips)
    if args.no_security_group:
        body["security_groups"] = []
    elif args.security_groups:
        body["security_groups"] = _groups(client, args.security_groups)
    if args.pairs:
        body["allowed_address_pairs"] = args.pairs
    if args.qos_policy:
        body["qos_policy_id"] = POLICY.find_id(client, args.qos_policy)
    return body


def _set_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    body = copy_given(args, {}, FIELDS)
    changes: dict[str, Any] = {
        "fixed_ips": merged(current.get("fixed_ips"), resolve_fixed_ips(client, args.fixed_ips),
                            args.no_fixed_ip),
        "security_groups": merged(current.get("security_groups"),
                                  _groups(client, args.security_groups), args.no_security_group),
        "allowed_address_pairs": merged(current.get("allowed_address_pairs"), args.pairs,
                                        args.no_allowed_address),
    }
    body.update({k: v for k, v in changes.items() if v is not None})
    if args.no_qos_policy:
        body["qos_policy_id"] = None
    elif args.qos_policy:
        body["qos_policy_id"] = POLICY.find_id(client, args.qos_policy)
    return body


def _unset_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    changes: dict[str, Any] = {
        "fixed_ips": removed(current.get("fixed_ips"), resolve_fixed_ips(client, args.fixed_ips)),
        "security_groups": removed(current.get("security_groups"),
                                   _groups(client, args.security_groups)),
        "allowed_address_pairs": removed(current.get("allowed_address_pairs"), args.pairs),
    }
    body = {k: v for k, v in changes.items() if v is not None}
    if args.qos_policy:
        body["qos_policy_id"] = None
    if args.host:
        body["binding:host_id"] = ""
    if args.public_hostname:
        body["overcast:public_hostname"] = ""
    return body


def _register_unset(sub: Subparsers) -> None:
    unset = add_set(sub, PORT, _unset_body, verb="unset")
    unset.add_argument("--fixed-ip", dest="fixed_ips", action="append", type=fixed_ip,
                       metavar="subnet=SUBNET,ip-address=IP", help="address to remove")
    unset.add_argument("--security-group", dest="security_groups", action="append",
                       metavar="SG", help="security group to remove (repeatable)")
    unset.add_argument("--allowed-address", dest="pairs", action="append", type=address_pair,
                       metavar="ip-address=IP[,mac-address=MAC]", help="address pair to remove")
    unset.add_argument("--qos-policy", action="store_true", help="detach the QoS policy")
    unset.add_argument("--host", action="store_true", help="unbind the port from its host")
    unset.add_argument("--public-hostname", action="store_true",
                       help="end the port's dynamic public binding")


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--description")
    parser.add_argument("--fixed-ip", dest="fixed_ips", action="append", type=fixed_ip,
                        metavar="subnet=SUBNET,ip-address=IP",
                        help="address on a subnet (repeatable; either key may be omitted)")
    parser.add_argument("--mac-address", metavar="MAC")
    parser.add_argument("--device", metavar="DEVICE_ID", help="id of the VM/device using the port")
    parser.add_argument("--device-owner", metavar="OWNER", help="e.g. compute:nova")
    parser.add_argument("--host", metavar="HOST", help="bind the port to this hypervisor")
    parser.add_argument("--vnic-type", choices=("normal", "direct", "macvtap"))
    parser.add_argument("--security-group", dest="security_groups", action="append",
                        metavar="SG", help="security group (name or id, repeatable)")
    parser.add_argument("--no-security-group", action="store_true",
                        help="no security groups (with --security-group on set: replace)")
    toggle(parser, "port_security", "--enable-port-security", "--disable-port-security",
           "port security")
    parser.add_argument("--allowed-address", dest="pairs", action="append", type=address_pair,
                        metavar="ip-address=IP[,mac-address=MAC]",
                        help="allowed address pair (repeatable)")
    parser.add_argument("--dns-name", metavar="NAME", help="host name in the internal DNS")
    parser.add_argument("--public-hostname", metavar="FQDN",
                        help="public name (e.g. www.cloud.example): while the VM runs, a public "
                             "address from the pool and this name in the public zone point at it")
    parser.add_argument("--qos-policy", metavar="POLICY", help="QoS policy (name or id)")
    toggle(parser, "admin_state", "--enable", "--disable", "administrative state")


def _list_params(client: Client, args: argparse.Namespace) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if args.network:
        params.append(("network_id", NETWORK.find_id(client, args.network)))
    for dest, attr in (("host", "binding:host_id"), ("device_owner", "device_owner"),
                       ("device", "device_id"), ("mac_address", "mac_address"),
                       ("name", "name")):
        if getattr(args, dest):
            params.append((attr, getattr(args, dest)))
    return params


def register(top: Subparsers) -> None:
    sub = group(top, "port", "manage ports: virtual NICs on networks, with MAC and IPs")
    create = add_create(sub, PORT, _create_body)
    create.add_argument("name", metavar="NAME", help="name of the new port")
    create.add_argument("--network", required=True, help="network (name or id)")
    _options(create)

    listing = add_crud(sub, PORT, _list_params)["list"]
    listing.add_argument("--network", help="only ports on this network")
    listing.add_argument("--host", help="only ports bound to this host")
    listing.add_argument("--device-owner", help="only ports with this device owner")
    listing.add_argument("--device", metavar="DEVICE_ID", help="only ports of this device")
    listing.add_argument("--mac-address", help="only the port with this MAC")
    listing.add_argument("--name", help="only ports with this name")

    setter = add_set(sub, PORT, _set_body)
    setter.add_argument("--name")
    _options(setter)
    setter.add_argument("--no-fixed-ip", action="store_true",
                        help="remove all fixed IPs (with --fixed-ip: replace them)")
    setter.add_argument("--no-allowed-address", action="store_true",
                        help="clear allowed address pairs (with --allowed-address: replace)")
    setter.add_argument("--no-qos-policy", action="store_true", help="detach the QoS policy")
    _register_unset(sub)
