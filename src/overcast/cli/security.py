"""``overcast security group create|list|show|set|delete`` and
``overcast security group rule create|list|show|delete``."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from overcast.cli.client import Client
from overcast.cli.output import Column, counter, format_dict
from overcast.cli.resource import (
    Body,
    Spec,
    Subparsers,
    add_create,
    add_crud,
    add_delete,
    add_list,
    add_set,
    add_show,
    copy_given,
    flags,
    group,
    toggle,
)

# what a rule inside ``security group show`` leaves out: its group and bookkeeping
_RULE_NOISE = {"security_group_id", "project_id", "tenant_id", "created_at", "updated_at",
               "revision_number", "tags", "name", "description", "belongs_to_default_sg",
               "normalized_cidr", "remote_address_group_id", "overcast:packets", "overcast:bytes"}


def format_rules(rules: Any) -> str:
    """One line per rule, only the attributes that say something (like openstackclient)."""
    return "\n".join(
        format_dict({k: v for k, v in rule.items() if k not in _RULE_NOISE and v not in (None, "")})
        for rule in rules or []
    )


GROUP = Spec(
    kind="security group",
    key="security_group",
    path="/v2.0/security-groups",
    columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("Description", "description"),
        Column("Project", "project_id"),
        Column("Tags", "tags"),
    ),
    tags=True,
    show_formatters={"security_group_rules": format_rules},
)


def port_range(rule: dict[str, Any]) -> str:
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if low is None and high is None:
        return ""
    return f"{low}:{high if high is not None else low}"


RULE_COLUMNS = (
    Column("ID", "id"),
    Column("IP Protocol", "protocol"),
    Column("Ethertype", "ethertype"),
    Column("IP Range", "remote_ip_prefix"),
    Column("Port Range", "port_range", compute=port_range),
    Column("Direction", "direction"),
    Column("Remote Security Group", "remote_group_id"),
    Column("Security Group", "security_group_id"),
)

RULE = Spec(
    kind="security group rule",
    key="security_group_rule",
    path="/v2.0/security-group-rules",
    columns=RULE_COLUMNS,
    long_columns=(*RULE_COLUMNS,
                  Column("Packets", "overcast:packets", counter),  # summed over hosts
                  Column("Bytes", "overcast:bytes", counter)),
    show_formatters={"overcast:packets": counter, "overcast:bytes": counter},
)

DIRECTIONS = {"--ingress": "ingress", "--egress": "egress"}
GROUP_FIELDS = {"name": "name", "description": "description", "stateful": "stateful"}


def _group_body(client: Client, args: argparse.Namespace, current: Body | None = None) -> Body:
    return copy_given(args, {}, GROUP_FIELDS)


def _ports(text: str) -> tuple[int, int]:
    low, _, high = text.partition(":")
    try:
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected PORT or MIN:MAX") from None


def _ethertype(args: argparse.Namespace) -> str:
    if args.ethertype:
        return str(args.ethertype)
    if args.remote_ip:
        try:
            net = ipaddress.ip_network(args.remote_ip, strict=False)
            return "IPv6" if net.version == 6 else "IPv4"
        except ValueError:
            pass  # the server says what is wrong with it
    return "IPv4"


def _rule_body(client: Client, args: argparse.Namespace) -> Body:
    body: Body = {
        "security_group_id": GROUP.find_id(client, args.group),
        "direction": args.direction or "ingress",
        "ethertype": _ethertype(args),
    }
    if args.protocol and args.protocol.lower() != "any":
        body["protocol"] = args.protocol.lower()
    ports = args.dst_port or (args.icmp_type, args.icmp_code)
    for key, value in zip(("port_range_min", "port_range_max"), ports, strict=True):
        if value is not None:
            body[key] = value
    if args.remote_group:
        body["remote_group_id"] = GROUP.find_id(client, args.remote_group)
    else:
        body["remote_ip_prefix"] = args.remote_ip or (
            "::/0" if body["ethertype"] == "IPv6" else "0.0.0.0/0"
        )
    if args.description:
        body["description"] = args.description
    return body


def _rule_params(client: Client, args: argparse.Namespace) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if args.group:
        params.append(("security_group_id", GROUP.find_id(client, args.group)))
    if args.direction:
        params.append(("direction", args.direction))
    if args.protocol and args.protocol != "any":
        params.append(("protocol", args.protocol))
    return params


def _register_rules(sub: Subparsers) -> None:
    create = add_create(sub, RULE, _rule_body)
    create.add_argument("group", metavar="GROUP", help="security group the rule belongs to")
    create.add_argument("--protocol", metavar="PROTO",
                        help="tcp, udp, icmp, ipv6-icmp, any (default) or a number")
    create.add_argument("--dst-port", type=_ports, metavar="PORT[:PORT]",
                        help="destination port or range (tcp/udp)")
    create.add_argument("--icmp-type", type=int)
    create.add_argument("--icmp-code", type=int)
    flags(create, "direction", DIRECTIONS, "direction (default: ingress)")
    create.add_argument("--ethertype", choices=("IPv4", "IPv6"))
    peer = create.add_mutually_exclusive_group()
    peer.add_argument("--remote-ip", metavar="CIDR", help="remote address block")
    peer.add_argument("--remote-group", metavar="GROUP", help="remote security group")
    create.add_argument("--description")

    listing = add_list(sub, RULE, _rule_params)
    listing.add_argument("group", nargs="?", metavar="GROUP", help="only rules of this group")
    listing.add_argument("--protocol", help="only rules for this protocol")
    flags(listing, "direction", DIRECTIONS, "only rules in this direction")
    add_show(sub, RULE)
    add_delete(sub, RULE)


def register(top: Subparsers) -> None:
    security = group(top, "security", "manage security groups and their rules")
    sub = group(security, "group", "manage security groups (firewall rule sets applied to ports)")
    create = add_create(sub, GROUP, _group_body)
    create.add_argument("name", metavar="NAME", help="name of the new group")
    create.add_argument("--description")
    toggle(create, "stateful", "--stateful", "--stateless", "stateful (default: yes)")
    add_crud(sub, GROUP)
    setter = add_set(sub, GROUP, _group_body)
    setter.add_argument("--name")
    setter.add_argument("--description")
    toggle(setter, "stateful", "--stateful", "--stateless", "stateful")
    _register_rules(group(sub, "rule", "manage the rules of security groups"))
