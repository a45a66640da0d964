"""Address groups: sets of CIDRs that a security group rule names as its
remote (``remote_address_group_id``), with Neutron's add_addresses and
remove_addresses actions.  The firewall resolves such a rule to the group's
addresses of the rule's family, so an address added or removed changes what
every host with a port in the rule's group admits."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from overcast.api import convert as cv
from overcast.api import policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, NotFound
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema
from overcast.api.session import Call
from overcast.api.wire import Response
from overcast.model import validate
from overcast.model.types import AddressGroup, SecurityGroupRule

MAX_ADDRESSES = 10_000  # in one request: a body's list is parsed and checked whole


def _order(cidr: str) -> tuple[int, int, int]:
    net = ipaddress.ip_network(cidr)
    return net.version, int(net.network_address), net.prefixlen


def sorted_addresses(cidrs: Iterable[str]) -> tuple[str, ...]:
    """Distinct CIDRs in address order (IPv4 first, then by network, then length)."""
    return tuple(sorted(set(cidrs), key=_order))


def _addresses(bare: bool) -> cv.Converter:
    """A request's list of addresses, each normalized (``validate.group_address``)."""
    def convert(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise ValueError(f"'{cv.show(value)}' is not a list")
        if len(value) > MAX_ADDRESSES:
            raise ValueError(f"{len(value)} items exceed the limit of {MAX_ADDRESSES}")
        if not bare and len({repr(v) for v in value}) != len(value):
            # Neutron's validator of the attribute; its actions take repeats as one
            raise ValueError(f"Duplicate items in the list: '{cv.show(value)}'")
        return sorted_addresses(validate.group_address(v, bare) for v in value)
    return convert


SCHEMA = Schema(
    AddressGroup, "address_group", "address_groups", "/v2.0/address-groups",
    (Attr("addresses", "addresses", _addresses(bare=False), put=False),),
)


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> AddressGroup:
    return repo.save(AddressGroup(**fields), new=True)


def update(repo: Repo, ctx: Context, group: AddressGroup,
           fields: dict[str, Any]) -> AddressGroup:
    return repo.save(group.replace(**fields))


def delete(repo: Repo, ctx: Context, group: AddressGroup) -> None:
    """Refused while any rule, of any project, names the group (Neutron's check)."""
    if any(r.remote_address_group_id == group.id for r in repo.all(SecurityGroupRule)):
        raise Conflict(f"Address group {group.id} is in use on one or more security group "
                       "rules.", type="AddressGroupInUse")
    repo.remove(group)


def check_usable(repo: Repo, ctx: Context, group_id: str | None) -> None:
    """A rule may name an address group the caller may see; another project's
    group is as if there were none (404)."""
    if group_id is not None:
        repo.must(AddressGroup, group_id, SCHEMA.visible(ctx))


# the actions -------------------------------------------------------------------
def add_addresses(call: Call) -> Response:
    return _action(call, "add")


def remove_addresses(call: Call) -> Response:
    return _action(call, "remove")


def _requested(body: Any) -> tuple[str, ...]:
    """The ``{"addresses": [...]}`` body of an action, normalized."""
    if not isinstance(body, dict) or set(body) != {"addresses"}:
        raise BadRequest("The body of an address group action must be "
                         "{\"addresses\": [<CIDR>, ...]}")
    try:
        wanted: tuple[str, ...] = _addresses(bare=True)(body["addresses"])
    except ValueError as err:
        raise BadRequest(f"Invalid input for addresses. Reason: {err}.") from None
    return wanted


def _action(call: Call, verb: str) -> Response:
    """add_addresses / remove_addresses, as Neutron: all of them or none."""
    wanted = _requested(call.body())

    def apply(repo: Repo) -> dict[str, Any]:
        group = repo.must(AddressGroup, call.params["id"], SCHEMA.visible(call.ctx))
        policy.authorize(call.ctx, verb, "addresses", policy.target(SCHEMA.member, group),
                         what=f"address group {group.id}")
        held = set(group.addresses)
        if verb == "add":
            present = [a for a in wanted if a in held]
            if present:
                raise BadRequest(f"Addresses {', '.join(present)} already exist in the address "
                                 f"group {group.id}.", type="AddressesAlreadyExist")
            now = sorted_addresses([*held, *wanted])
        else:
            absent = [a for a in wanted if a not in held]
            if absent:
                raise NotFound(f"Addresses {', '.join(absent)} not found in the address group "
                               f"{group.id}.", type="AddressesNotFound")
            now = sorted_addresses(held - set(wanted))
        saved = repo.save(group.replace(addresses=now))
        return {SCHEMA.member: SCHEMA.render_for(call.ctx, repo, saved)}
    return Response(200, call.write(apply))
