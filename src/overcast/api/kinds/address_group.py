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
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, NotFound
from overcast.api.kinds import rbac
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema
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
    rbac.forget(repo, group)
    repo.remove(group)


def check_usable(repo: Repo, ctx: Context, group_id: str | None) -> None:
    """A rule may name an address group the caller may see; another project's
    group is as if there were none (404)."""
    if group_id is not None:
        repo.must(AddressGroup, group_id, SCHEMA.visible(ctx, repo))


# the actions (their routes: ``handlers.add_addresses``, ``handlers.remove_addresses``)
def requested(body: Any) -> tuple[str, ...]:
    """The ``{"addresses": [...]}`` body of an action, normalized (a bare
    address is its host prefix, repeats are one), or a 400."""
    if not isinstance(body, dict) or set(body) != {"addresses"}:
        raise BadRequest("The body of an address group action must be "
                         "{\"addresses\": [<CIDR>, ...]}")
    try:
        wanted: tuple[str, ...] = _addresses(bare=True)(body["addresses"])
    except ValueError as err:
        raise BadRequest(f"Invalid input for addresses. Reason: {err}.") from None
    return wanted


def add(repo: Repo, ctx: Context, group: AddressGroup, wanted: tuple[str, ...]) -> AddressGroup:
    """All of ``wanted`` join the group, or none if one is in it already (Neutron's rule)."""
    present = [a for a in wanted if a in group.addresses]
    if present:
        raise BadRequest(f"Addresses {', '.join(present)} already exist in the address group "
                         f"{group.id}.", type="AddressesAlreadyExist")
    return repo.save(group.replace(addresses=sorted_addresses([*group.addresses, *wanted])))


def remove(repo: Repo, ctx: Context, group: AddressGroup,
           wanted: tuple[str, ...]) -> AddressGroup:
    """All of ``wanted`` leave the group, or none if one is not in it (Neutron's
    AddressesNotFound, a NotFound: 404)."""
    absent = [a for a in wanted if a not in group.addresses]
    if absent:
        raise NotFound(f"Addresses {', '.join(absent)} not found in the address group "
                       f"{group.id}.", type="AddressesNotFound")
    return repo.save(group.replace(addresses=sorted_addresses(set(group.addresses) - set(wanted))))
