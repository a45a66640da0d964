"""Address scopes (Neutron's ``address-scope`` extension): a family of
addresses within which the subnet pools never overlap.  A pool names its
scope (``address_scope_id``); a network shows the scopes of its subnets'
pools (``ipv4_address_scope``, ``ipv6_address_scope``)."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api import grants
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict
from overcast.api.kinds import rbac
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model.types import AddressScope, SubnetPool


def to_ip_version(value: Any) -> int:
    """4 or 6, as a number or a string of one."""
    version = cv.to_int(value)
    if version not in (4, 6):
        raise ValueError(f"'{cv.show(value)}' is not in [4, 6]")
    return version


SCHEMA = Schema(
    AddressScope, "address_scope", "address_scopes", "/v2.0/address-scopes",
    (
        stored("shared", cv.to_bool),
        Attr("ip_version", "ip_version", to_ip_version, put=False, required=True),
    ),
    caller=grants.render_shared,
    caller_attrs=frozenset({"shared"}),
)


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> AddressScope:
    made = repo.save(AddressScope(**fields), new=True)
    if made.shared:  # Neutron's: shared is a wildcard RBAC policy (rbac-address-scope)
        rbac.grant_all(repo, made, rbac.SHARED)
    return made


def update(repo: Repo, ctx: Context, scope: AddressScope,
           fields: dict[str, Any]) -> AddressScope:
    """A shared scope stays shared (Neutron: its pools may be other projects')."""
    if scope.shared and fields.get("shared", True) is False:
        raise BadRequest(f"Unable to update address scope {scope.id} : Shared address scope "
                         "can't be unshared.", type="AddressScopeUpdateError")
    new = scope.replace(**fields)
    if new.shared and not scope.shared:
        rbac.grant_all(repo, scope, rbac.SHARED)
    return repo.save(new)


def delete(repo: Repo, ctx: Context, scope: AddressScope) -> None:
    """Refused while a pool, of any project, is in the scope."""
    if any(p.address_scope_id == scope.id for p in repo.all(SubnetPool)):
        raise Conflict(f"Unable to complete operation on address scope {scope.id}. There are "
                       "one or more subnet pools in use on the address scope.",
                       type="AddressScopeInUse")
    rbac.forget(repo, scope)
    repo.remove(scope)
