"""``overcast network agent list|show|set``: the host agents (hypervisors)."""

from __future__ import annotations

import argparse

from overcast.cli.client import Client
from overcast.cli.output import Column, admin_state, alive
from overcast.cli.resource import (
    Body,
    Spec,
    Subparsers,
    add_list,
    add_set,
    add_show,
    copy_given,
    group,
    toggle,
)

AGENT = Spec(
    kind="network agent",
    key="agent",
    path="/v2.0/agents",
    columns=(
        Column("ID", "id"),
        Column("Agent Type", "agent_type"),
        Column("Host", "host"),
        Column("Availability Zone", "availability_zone"),
        Column("Alive", "alive", alive),
        Column("State", "admin_state_up", admin_state),
        Column("Binary", "binary"),
    ),
    name_attr="host",  # an agent can be named by its host
)


def _list_params(client: Client, args: argparse.Namespace) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if args.host:
        params.append(("host", args.host))
    if args.agent_type:
        params.append(("agent_type", args.agent_type))
    return params


def _set_body(client: Client, args: argparse.Namespace, current: Body) -> Body:
    return copy_given(args, {}, {"admin_state": "admin_state_up", "description": "description"})


def register(network: Subparsers) -> None:
    sub = group(network, "agent", "list, show, enable or disable the host agents (one per hypervisor)")
    listing = add_list(sub, AGENT, _list_params)
    listing.add_argument("--host", help="only the agent of this host")
    listing.add_argument("--agent-type", help="only agents of this type")
    add_show(sub, AGENT)
    setter = add_set(sub, AGENT, _set_body)
    setter.add_argument("--description")
    toggle(setter, "admin_state", "--enable", "--disable",
           "administrative state (a disabled host gets no new ports)")
