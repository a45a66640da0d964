"""Subnet pools (Neutron's ``subnet_allocation``, ``default-subnetpools`` and
``subnetpool-prefix-ops`` extensions): prefixes that subnets take their CIDRs
from, with Neutron's prefix length bounds, per-project quota, one default
pool per IP version and address scopes whose pools never overlap.

A pool's allocations are its subnets (``subnetpool_id``, a secondary index):
a subnet made from a pool reads them in its transaction, so two concurrent
allocations never take the same prefix (the second one retries and sees
the first).  The prefix arithmetic is ``model.ipam``'s."""

from __future__ import annotations

import ipaddress
from typing import Any

from overcast.api import convert as cv
from overcast.api import grants
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict
from overcast.api.kinds import address_scope as scopes
from overcast.api.kinds import rbac
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import ipam
from overcast.model.types import AddressScope, Network, Subnet, SubnetPool

MAX_PREFIXES = 1000  # in one request
BITS = {4: 32, 6: 128}
DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}  # Neutron's SubnetPoolHelper


def _prefix(value: Any) -> str:
    """A CIDR of a pool, its host bits dropped: Neutron's ``type:subnet_list``
    takes ``10.0.0.1/24`` and its SubnetPoolReader keeps the network (an IPSet
    of the prefixes), so a pool overlapping another is a conflict, not a 400.
    A bare address is refused (validate_subnet wants a '/')."""
    net = _network(value)
    if "/" not in value:
        raise ValueError(f"'{cv.show(value)}' isn't a recognized IP subnet cidr, "
                         f"'{net}' is recommended")
    if ":" not in value:  # IPv4: only address/length as netaddr writes it (no netmask form)
        written = str(ipaddress.ip_interface(value))
        if written != value:
            raise ValueError(f"'{cv.show(value)}' isn't a recognized IP subnet cidr, "
                             f"'{written}' is recommended")
    return net


def _network(value: Any) -> str:
    """The network of a CIDR or, for a bare address, its /32 (/128): what
    netaddr's IPNetwork makes of either, as Neutron's SubnetPoolReader reads
    the prefixes of the prefix actions (unvalidated by the API)."""
    if isinstance(value, str):
        cv.clean(value)
    try:
        return str(ipam.parse_network(value, strict=False))
    except (ValueError, TypeError):
        raise ValueError(f"'{cv.show(value)}' is not a valid IP subnet") from None


def _prefix_list(value: Any) -> tuple[str, ...]:
    """A list of CIDRs, each canonical, no repeats (Neutron's ``type:subnet_list``)."""
    if not isinstance(value, list):
        raise ValueError(f"'{cv.show(value)}' is not a list")
    if len(value) > MAX_PREFIXES:
        raise ValueError(f"{len(value)} items exceed the limit of {MAX_PREFIXES}")
    if len({repr(v) for v in value}) != len(value):
        raise ValueError(f"Duplicate items in the list: '{cv.show(value)}'")
    return tuple(_prefix(v) for v in value)


def non_negative(value: Any) -> int:
    n = cv.to_int(value)
    if n < 0:
        raise ValueError(f"'{n}' should be non-negative")
    return n


def _extra(repo: Repo, pool: SubnetPool, out: dict[str, Any]) -> None:
    """Neutron shows a pool's prefix lengths as strings (``"24"``), whatever the
    request sent (its ``_make_subnetpool_dict``)."""
    for name in ("default_prefixlen", "min_prefixlen", "max_prefixlen"):
        out[name] = str(out[name])


SCHEMA = Schema(
    SubnetPool, "subnetpool", "subnetpools", "/v2.0/subnetpools",
    (
        Attr("prefixes", "prefixes", _prefix_list, required=True),
        Attr("ip_version", "ip_version", post=False, put=False),
        stored("default_prefixlen", non_negative),
        stored("min_prefixlen", non_negative),
        stored("max_prefixlen", non_negative),
        stored("default_quota", cv.optional(non_negative)),
        stored("address_scope_id", cv.optional(cv.to_uuid)),  # neutron-lib's uuid_or_none
        stored("shared", cv.to_bool, put=False),
        stored("is_default", cv.to_bool),
    ),
    extra=_extra,
    caller=grants.render_shared,
    caller_attrs=frozenset({"shared"}),
)


# the pool itself -------------------------------------------------------------------
def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> SubnetPool:
    if "name" not in fields:  # neutron-lib: a pool's name has no default
        raise BadRequest("Failed to parse request. Required attribute 'name' not specified")
    prefixes = _read_prefixes(fields["prefixes"])
    version = ipaddress.ip_network(prefixes[0]).version
    fields.update(prefixes=prefixes, ip_version=version)
    fields.setdefault("min_prefixlen", DEFAULT_MIN_PREFIXLEN[version])
    fields.setdefault("max_prefixlen", BITS[version])
    fields.setdefault("default_prefixlen", fields["min_prefixlen"])
    pool = SubnetPool(**fields)
    _check_bounds(pool)
    if pool.is_default:
        _check_no_other_default(repo, pool)
    _check_scope(repo, ctx, pool, None)
    made = repo.save(pool, new=True)
    if made.shared:  # Neutron's: shared is a wildcard RBAC policy (rbac-subnetpool)
        rbac.grant_all(repo, made, rbac.SHARED)
    return made


def _read_prefixes(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """Neutron's SubnetPoolReader: at least one prefix, one family, compacted."""
    if not prefixes:
        raise BadRequest("Empty subnet pool prefix list.", type="EmptySubnetPoolPrefixList")
    if len({ipaddress.ip_network(p).version for p in prefixes}) > 1:
        raise BadRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
                         type="PrefixVersionMismatch")
    return ipam.compact(prefixes)


def _bounds_error(kind: str, value: int, base_kind: str, base: int) -> BadRequest:
    return BadRequest(f"Illegal prefix bounds: {kind}={value}, {base_kind}={base}.",
                      type="IllegalSubnetPoolPrefixBounds")


def _check_bounds(pool: SubnetPool) -> None:
    """min <= default <= max <= the family's bits (Neutron's order of checks)."""
    lo, hi, default = pool.min_prefixlen, pool.max_prefixlen, pool.default_prefixlen
    if lo > hi:
        raise _bounds_error("min_prefixlen", lo, "max_prefixlen", hi)
    if hi > BITS[pool.ip_version]:
        raise _bounds_error("max_prefixlen", hi, "ip_version_max", BITS[pool.ip_version])
    if default < lo:
        raise _bounds_error("default_prefixlen", default, "min_prefixlen", lo)
    if default > hi:
        raise _bounds_error("default_prefixlen", default, "max_prefixlen", hi)


def _check_no_other_default(repo: Repo, pool: SubnetPool) -> None:
    if any(p.is_default and p.ip_version == pool.ip_version and p.id != pool.id
           for p in repo.all(SubnetPool)):
        raise BadRequest("Invalid input for operation: A default subnetpool for this IP family "
                         "has already been set. Only one default may exist per IP family.",
                         type="InvalidInput")


def _check_scope(repo: Repo, ctx: Context, pool: SubnetPool, old: SubnetPool | None) -> None:
    """Neutron's _validate_address_scope_id: a scope the caller may use, of the
    pool's family, whose other pools the pool does not overlap; moving a pool
    that has subnets must not leave a network's subnets in two scopes."""
    if pool.address_scope_id is None:
        return
    scope = repo.must(AddressScope, pool.address_scope_id, scopes.SCHEMA.visible(ctx, repo))
    if scope.ip_version != pool.ip_version:
        raise BadRequest(f"Illegal subnetpool association: subnetpool {pool.id} cannot "
                         f"associate with address scope {scope.id} because subnetpool "
                         f"ip_version is not {scope.ip_version}.",
                         type="IllegalSubnetPoolIpVersionAssociationToAddressScope")
    if old is not None and old.address_scope_id != pool.address_scope_id:
        _check_network_affinity(repo, pool)
    for other in repo.all(SubnetPool):
        if (other.address_scope_id == scope.id and other.id != pool.id
                and ipam.overlapping(other.prefixes, pool.prefixes)):
            raise Conflict("Failed to associate address scope: subnetpools within an address "
                           "scope must have unique prefixes.", type="AddressScopePrefixConflict")


def _check_network_affinity(repo: Repo, pool: SubnetPool) -> None:
    mine = allocations(repo, pool)
    ids = {s.id for s in mine}
    for network_id in sorted({s.network_id for s in mine}):
        if any(s.ip_version == pool.ip_version and s.id not in ids
               for s in repo.where(Subnet, network_id=network_id)):
            raise _scope_affinity()


def _scope_affinity() -> BadRequest:
    return BadRequest("Subnets of the same address family hosted on the same network must all "
                      "participate in the same address scope.",
                      type="NetworkAddressScopeAffinityError")


def update(repo: Repo, ctx: Context, pool: SubnetPool, fields: dict[str, Any]) -> SubnetPool:
    if "prefixes" in fields:
        fields["prefixes"] = _grown(pool, _read_prefixes(fields["prefixes"]))
    new = pool.replace(**fields)
    _check_bounds(new)
    if new.is_default and not pool.is_default:
        _check_no_other_default(repo, new)
    if pool.address_scope_id is not None:
        _check_scope_owner(repo, ctx, pool)
    _check_scope(repo, ctx, new, pool)
    return repo.save(new)


def _grown(pool: SubnetPool, prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """New prefixes of an update: of the pool's family, and a superset of the old."""
    if ipaddress.ip_network(prefixes[0]).version != pool.ip_version:
        raise BadRequest("Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
                         type="PrefixVersionMismatch")
    if not ipam.covers(prefixes, pool.prefixes):
        raise _prefix_update("Existing prefixes must be a subset of the new prefixes")
    return prefixes


def _prefix_update(why: str) -> BadRequest:
    return BadRequest(f"Illegal update to prefixes: {why}.", type="IllegalSubnetPoolPrefixUpdate")


def _check_scope_owner(repo: Repo, ctx: Context, pool: SubnetPool) -> None:
    """A pool in another project's (shared) scope is frozen for its owner."""
    scope = repo.get(AddressScope, pool.address_scope_id or "")
    if scope is not None and not ctx.is_admin and scope.project_id != ctx.project_id:
        raise BadRequest(f"Illegal subnetpool update : subnetpool {pool.id} cannot be updated "
                         f"when associated with shared address scope {scope.id}.",
                         type="IllegalSubnetPoolUpdate")


def delete(repo: Repo, ctx: Context, pool: SubnetPool) -> None:
    """Refused while a subnet, of any project, has its CIDR from the pool
    (Neutron's SubnetPoolDeleteError, a 400)."""
    if allocations(repo, pool):
        raise BadRequest("Unable to delete subnet pool: Subnet pool has existing allocations.",
                         type="SubnetPoolDeleteError")
    rbac.forget(repo, pool)
    repo.remove(pool)


def allocations(repo: Repo, pool: SubnetPool) -> list[Subnet]:
    return repo.where(Subnet, subnetpool_id=pool.id)


# subnetpool-prefix-ops (the routes: ``handlers.add_prefixes``, ``handlers.remove_prefixes``)
def requested(body: Any) -> tuple[str, ...]:
    """The ``{"prefixes": [...]}`` body of an action: a non-empty list of
    CIDRs or addresses, read as Neutron's add_prefixes and remove_prefixes
    read them (netaddr: host bits dropped, an address is its /32 or /128),
    not as strictly as a create's ``prefixes``."""
    prefixes = body.get("prefixes") if isinstance(body, dict) else None
    if not prefixes or not isinstance(prefixes, list):
        raise BadRequest("Request body contains invalid data")
    try:
        return tuple(dict.fromkeys(_network(p) for p in prefixes))
    except ValueError as err:
        raise BadRequest(f"Invalid input for prefixes. Reason: {err}.") from None


def add_prefixes(repo: Repo, ctx: Context, pool: SubnetPool,
                 wanted: tuple[str, ...]) -> SubnetPool:
    """The pool's prefixes and ``wanted``, as an update of its prefixes would."""
    return update(repo, ctx, pool, {"prefixes": (*pool.prefixes, *wanted)})


def remove_prefixes(repo: Repo, ctx: Context, pool: SubnetPool,
                    wanted: tuple[str, ...]) -> SubnetPool:
    """The pool without ``wanted``; refused if a subnet of the pool is in them,
    nothing to do if none of them is in the pool (Neutron's rules)."""
    if not ipam.overlapping(pool.prefixes, wanted):
        return pool
    if ipam.overlapping((s.cidr for s in allocations(repo, pool)), wanted):
        raise _prefix_update("One or more the prefixes to be removed is in use by a subnet.")
    return repo.save(pool.replace(prefixes=ipam.remove_prefixes(pool.prefixes, wanted)))


# subnets from a pool (``subnet.create``) -----------------------------------------
def for_subnet(repo: Repo, ctx: Context, fields: dict[str, Any]) -> SubnetPool | None:
    """The pool a new subnet asks for (``subnetpool_id``, or with
    ``use_default_subnetpool`` the default of its IP version), or None; takes
    the request-only fields out of ``fields`` (Neutron's _get_subnetpool_id)."""
    use_default = fields.pop("use_default_subnetpool", False)
    if fields.get("cidr", "") is None:
        del fields["cidr"]
    if "cidr" in fields and fields.get("prefixlen") is not None:
        raise BadRequest("cidr and prefixlen must not be supplied together")
    pool_id = fields.get("subnetpool_id")
    if use_default and pool_id is not None:
        raise BadRequest("subnetpool_id and use_default_subnetpool cannot both be specified")
    if pool_id is not None:
        return repo.must(SubnetPool, pool_id, SCHEMA.visible(ctx, repo))
    return _default_pool(repo, ctx, fields) if use_default else None


def _default_pool(repo: Repo, ctx: Context, fields: dict[str, Any]) -> SubnetPool:
    version = (ipaddress.ip_network(fields["cidr"], strict=False).version if "cidr" in fields
               else fields.get("ip_version"))
    if version is None:
        raise BadRequest("ip_version must be specified in the absence of cidr and "
                         "subnetpool_id")
    pool = default_pool(repo, ctx, version)
    if pool is None:
        raise BadRequest(f"No default subnetpool found for IPv{version}")
    return pool


def default_pool(repo: Repo, ctx: Context, version: int) -> SubnetPool | None:
    """The default pool of an IP version that the caller may use, if any."""
    visible = SCHEMA.visible(ctx, repo)
    for pool in sorted(repo.all(SubnetPool), key=lambda p: p.id):
        if pool.is_default and pool.ip_version == version and visible(pool):
            return pool
    return None


def allocate(repo: Repo, pool: SubnetPool, fields: dict[str, Any]) -> None:
    """The new subnet's CIDR from ``pool`` (``fields``: the subnet's, changed in
    place): the one it names if free, else a free one of ``prefixlen`` (the
    pool's default length if none), as Neutron's SubnetAllocator."""
    prefixlen = fields.pop("prefixlen", None)
    specific = "cidr" in fields
    if not specific and fields.get("allocation_pools"):
        raise BadRequest("allocation_pools allowed only for specific subnet requests.")
    version = fields.get("ip_version") or (
        ipaddress.ip_network(fields["cidr"], strict=False).version if specific else None)
    if version is not None and version != pool.ip_version:
        raise BadRequest(f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} "
                         "subnet pool")
    if specific:
        prefixlen = ipaddress.ip_network(fields["cidr"], strict=False).prefixlen
    elif prefixlen is None:
        prefixlen = pool.default_prefixlen
    _check_prefixlen(pool, prefixlen)
    taken = allocations(repo, pool)
    _check_quota(pool, taken, str(fields.get("project_id", "")), prefixlen)
    free = ipam.free_blocks(pool.prefixes, [s.cidr for s in taken])
    fields.update(subnetpool_id=pool.id, ip_version=pool.ip_version)
    if specific:
        if not ipam.within_one(free, fields["cidr"]):
            raise _exhausted("Cannot allocate requested subnet from the available set of "
                             "prefixes")
        return
    cidr = ipam.allocate_any(free, prefixlen)
    if cidr is None:
        raise _exhausted(f"Insufficient prefix space to allocate subnet size /{prefixlen}")
    fields["cidr"] = cidr


def _exhausted(why: str) -> Conflict:
    """Neutron's SubnetAllocationError (which Neutron answers with a 500: here the
    409 of an exhausted resource, as for addresses)."""
    return Conflict(f"Failed to allocate subnet: {why}.", type="SubnetAllocationError")


def _check_prefixlen(pool: SubnetPool, prefixlen: int) -> None:
    if prefixlen > pool.max_prefixlen:
        raise BadRequest(f"Unable to allocate subnet with prefix length {prefixlen}, maximum "
                         f"allowed prefix is {pool.max_prefixlen}.",
                         type="MaxPrefixSubnetAllocationError")
    if prefixlen < pool.min_prefixlen:
        raise BadRequest(f"Unable to allocate subnet with prefix length {prefixlen}, minimum "
                         f"allowed prefix is {pool.min_prefixlen}.",
                         type="MinPrefixSubnetAllocationError")


def _check_quota(pool: SubnetPool, taken: list[Subnet], project_id: str, prefixlen: int) -> None:
    """``default_quota``: what one project's subnets may take of the pool, in
    /32s (IPv4) or /64s (IPv6); none or 0: no limit."""
    if not pool.default_quota:
        return
    used = ipam.quota_units(s.cidr for s in taken if s.project_id == project_id)
    wanted = 2.0 ** (ipam.QUOTA_UNIT[pool.ip_version] - prefixlen)
    if used + wanted > pool.default_quota:
        raise Conflict("Per-project subnet pool prefix quota exceeded.",
                       type="SubnetPoolQuotaExceeded")


def check_network(repo: Repo, network: Network, version: int, pool: SubnetPool | None) -> None:
    """Neutron's _validate_network_subnetpools: a network's subnets of one family
    come from one pool, or with address scopes from pools of one scope."""
    subnets = repo.where(Subnet, network_id=network.id)
    scope = network_scope(repo, subnets, version)
    if scope is not None and pool is not None and pool.address_scope_id != scope:
        raise _scope_affinity()
    for s in subnets:
        if s.ip_version != version:
            continue
        other_pool = pool is not None and s.subnetpool_id != pool.id and scope is None
        pooled_beside_plain = pool is None and s.subnetpool_id is not None
        if other_pool or pooled_beside_plain:
            raise BadRequest("Subnets hosted on the same network must be allocated from the "
                             "same subnet pool.", type="NetworkSubnetPoolAffinityError")


def network_scope(repo: Repo, subnets: list[Subnet], version: int) -> str | None:
    """The address scope of a network's subnets of one family (of their pools)."""
    for s in subnets:
        pool = repo.get(SubnetPool, s.subnetpool_id) if s.subnetpool_id else None
        if pool is not None and s.ip_version == version and pool.address_scope_id:
            return pool.address_scope_id
    return None
