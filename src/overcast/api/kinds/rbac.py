"""RBAC policies (Neutron's rbac-policies): an object's owner grants another
project, or every project (``*``), access to it — ``access_as_shared`` (see
it, use it: ports on a network, a QoS policy or security group on one's
ports, an address group in one's rules) or, for a network,
``access_as_external`` (a router gateway and floating IPs on it).

The policies are the truth; what a kind keeps of them is a cache of the
wildcard ones, kept in step here: the ``shared`` of a network, QoS policy,
subnet pool or address scope
(a wildcard ``access_as_shared``), a network's ``router_external`` (some
``access_as_external``) and ``external_to_all`` (a wildcard one).  The
``shared`` an API caller sees is computed for it (``grants.render_shared``).
A project loses no access that something of its own still depends on
(``RbacPolicyInUse``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overcast.api import convert as cv
from overcast.api import grants, policy
from overcast.api.auth import Context
from overcast.api.errors import ApiError, BadRequest, Conflict, Forbidden
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema
from overcast.model.types import (
    ROUTER_GATEWAY,
    AddressGroup,
    AddressScope,
    Network,
    Port,
    QosPolicy,
    RbacPolicy,
    Resource,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    SubnetPool,
)

SHARED, EXTERNAL, WILDCARD = grants.SHARED, grants.EXTERNAL, grants.WILDCARD
Bound = Callable[[Repo, Any], set[str]]  # the projects whose objects use an object


def _port_projects(repo: Repo, net: Network) -> set[str]:
    return {p.project_id for p in repo.where(Port, network_id=net.id)}


def _gateway_projects(repo: Repo, net: Network) -> set[str]:
    """The projects of the routers with their gateway on the network."""
    routers = (repo.get(Router, p.device_id) for p in repo.where(Port, network_id=net.id)
               if p.device_owner == ROUTER_GATEWAY)
    return {r.project_id for r in routers if r is not None}


def _qos_users(repo: Repo, qos: QosPolicy) -> set[str]:
    users: list[Resource] = [p for p in repo.all(Port) if p.qos_policy_id == qos.id]
    users += [n for n in repo.all(Network) if n.qos_policy_id == qos.id]
    return {u.project_id for u in users}


def _group_users(repo: Repo, group: SecurityGroup) -> set[str]:
    return {p.project_id for p in repo.all(Port) if group.id in p.security_groups}


def _address_group_users(repo: Repo, group: AddressGroup) -> set[str]:
    return {r.project_id for r in repo.all(SecurityGroupRule)
            if r.remote_address_group_id == group.id}


def _pool_users(repo: Repo, pool: SubnetPool) -> set[str]:
    return {s.project_id for s in repo.where(Subnet, subnetpool_id=pool.id)}


def _scope_users(repo: Repo, scope: AddressScope) -> set[str]:
    return {p.project_id for p in repo.all(SubnetPool) if p.address_scope_id == scope.id}


@dataclass(frozen=True)
class ObjectType:
    """A kind RBAC policies may name: its ``object_type``, its class, its policy
    member, its actions and, for each, who depends on the access it grants;
    and whether the owner's own objects depend on none (a network's, as
    Neutron's ensure_no_project_ports_on_network; every other kind counts
    them, as Neutron's get_bound_project_ids)."""

    name: str
    cls: type[Resource]
    member: str
    bound: dict[str, Bound] = field(default_factory=dict)
    owner_needs_none: bool = False

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self.bound)


OBJECT_TYPES: dict[str, ObjectType] = {t.name: t for t in (
    ObjectType("network", Network, "network", {SHARED: _port_projects,
                                               EXTERNAL: _gateway_projects},
               owner_needs_none=True),
    ObjectType("qos_policy", QosPolicy, "policy", {SHARED: _qos_users}),
    ObjectType("security_group", SecurityGroup, "security_group", {SHARED: _group_users}),
    ObjectType("address_group", AddressGroup, "address_group", {SHARED: _address_group_users}),
    ObjectType("subnetpool", SubnetPool, "subnetpool", {SHARED: _pool_users}),
    ObjectType("address_scope", AddressScope, "address_scope", {SHARED: _scope_users}),
)}
# the kinds whose ``shared`` caches their wildcard access_as_shared policy
CACHES_SHARED = (Network, QosPolicy, SubnetPool, AddressScope)
BY_CLASS = {t.cls: t for t in OBJECT_TYPES.values()}


def _object_type(value: Any) -> str:
    text = str(cv.to_str(255)(value)).strip().lower()
    if text not in OBJECT_TYPES:
        raise ValueError(f"'{cv.show(value)}' is not a valid RBAC object type")
    return text


def _target(value: Any) -> str:
    text: str = cv.to_str(255)(value)
    if not text:
        raise ValueError("'' is not a valid target project ID; expected a project ID or '*'")
    return text


SCHEMA = Schema(
    RbacPolicy, "rbac_policy", "rbac_policies", "/v2.0/rbac-policies",
    (
        Attr("object_type", "object_type", _object_type, put=False, required=True),
        Attr("object_id", "object_id", cv.to_uuid, put=False, required=True),
        Attr("action", "action", cv.to_str(255), put=False, required=True),
        Attr("target_tenant", "target_tenant", _target, required=True),
    ),
    standard=False,
)


# the API's create, update and delete ------------------------------------------------
def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> RbacPolicy:
    kind = OBJECT_TYPES[fields["object_type"]]
    if fields["action"] not in kind.actions:
        raise BadRequest(f"Invalid action '{fields['action']}' for object type "
                         f"'{kind.name}'. Valid actions: {kind.actions}",
                         type="InvalidActionForType")
    obj = _owned(repo, ctx, kind, fields["object_id"])
    adopt(repo, obj)
    _unique(repo, fields["object_id"], fields["action"], fields["target_tenant"])
    if isinstance(obj, SubnetPool):
        _check_scope_access(repo, ctx, obj, fields["target_tenant"])
    made = repo.save(RbacPolicy(**fields), new=True)
    _sync(repo, obj, made.action)
    return made


def update(repo: Repo, ctx: Context, pol: RbacPolicy, fields: dict[str, Any]) -> RbacPolicy:
    """Only the target changes; the project it had keeps what depends on it
    unless the new target covers it."""
    kind = OBJECT_TYPES[pol.object_type]
    obj = _owned(repo, ctx, kind, pol.object_id)
    adopt(repo, obj)
    new = pol.replace(**fields)
    if new.target_tenant != pol.target_tenant:
        _unique(repo, pol.object_id, pol.action, new.target_tenant)
        _release(repo, kind, obj, pol, new.target_tenant)
    saved = repo.save(new)
    _sync(repo, obj, pol.action)
    return saved


def delete(repo: Repo, ctx: Context, pol: RbacPolicy) -> None:
    kind = OBJECT_TYPES[pol.object_type]
    obj = repo.get(kind.cls, pol.object_id)
    if obj is None:  # its object is gone (policies go with it): nothing depends on it
        repo.remove(pol)
        return
    adopt(repo, obj)
    _release(repo, kind, obj, pol)
    repo.remove(pol)
    _sync(repo, obj, pol.action)


def _owned(repo: Repo, ctx: Context, kind: ObjectType, object_id: str) -> Any:
    """The object, which the caller may see (else 404) and owns (else 400, as
    Neutron: only admins manipulate policies on objects they do not own)."""
    obj = repo.must(kind.cls, object_id,
                    policy.visible(ctx, kind.member, repo.get, grants.of(repo)))
    if not ctx.is_admin and obj.project_id != ctx.project_id:
        what = "networks" if kind.cls is Network else "objects"
        raise BadRequest(f"Invalid input for operation: Only admins can manipulate policies "
                         f"on {what} they do not own.", type="InvalidInput")
    return obj


def _unique(repo: Repo, object_id: str, action: str, target: str) -> None:
    if any(p.action == action and p.target_tenant == target
           for p in repo.where(RbacPolicy, object_id=object_id)):
        raise Conflict("An RBAC policy already exists with those values.",
                       type="DuplicateRbacPolicy")


def _check_scope_access(repo: Repo, ctx: Context, pool: SubnetPool, target: str) -> None:
    """A policy sharing a pool in an address scope is made only for a
    project that may use the scope (Neutron's
    SubnetPool.validate_rbac_policy_create: the scope shared, or a policy
    sharing it with the target or with every project), else the target
    would get a pool it cannot use.  Checked when the policy is made, as in
    Neutron.  Only the caller's own policies on the scope count for a
    member (Neutron's query hooks), so the answer tells nobody whom another
    project shares its scope with."""
    scope = repo.get(AddressScope, pool.address_scope_id or "")
    if scope is None or scope.shared:
        return
    granted = any(p.action == SHARED and p.target_tenant in (target, WILDCARD)
                  and (ctx.is_admin or p.project_id == ctx.project_id)
                  for p in repo.where(RbacPolicy, object_id=scope.id))
    if not granted:
        raise BadRequest(f"Invalid input for operation: Failed to create RBAC policy on object "
                         f"{pool.id} because target project doesn't have access to associated "
                         "address scope.", type="InvalidInput")


def in_use(obj: Resource, details: str) -> Conflict:
    return Conflict(f"RBAC policy on object {obj.id} cannot be removed because other objects "
                    f"depend on it.\nDetails: {details}", type="RbacPolicyInUse")


def _release(repo: Repo, kind: ObjectType, obj: Any, pol: RbacPolicy, new_target: str = "",
             error: Callable[[str], ApiError] | None = None,
             bound: Bound | None = None) -> None:
    """Neutron's check before a policy goes or changes its target: the
    projects that lose the access it grants have nothing that depends on it
    (ports on the network, routers with their gateway on it, ports, networks
    or rules using the object), unless another policy still grants them; the
    new target covers them only for access_as_external (Neutron checks a
    moved access_as_shared policy as a deleted one).  A network's owner
    needs no policy; the owner of any other kind does, once it shares."""
    target, owner = pol.target_tenant, kind.owner_needs_none
    if target == obj.project_id or new_target == WILDCARD:  # Neutron's early return, every kind
        return
    others = {p.target_tenant for p in repo.where(RbacPolicy, object_id=obj.id)
              if p.action == pol.action and p.id != pol.id}
    allowed = others | {""} | ({obj.project_id} if owner else set())
    if pol.action == EXTERNAL:
        allowed.add(new_target)
    if WILDCARD in allowed:
        return
    fail = error or (lambda why: in_use(obj, why))
    if target == WILDCARD and pol.action == EXTERNAL and obj.is_default:
        raise fail("Default external networks must be shared to everyone.")
    users = (bound or kind.bound[pol.action])(repo, obj)
    losing = users - allowed if target == WILDCARD else {target} & users
    if losing:
        raise fail("There are routers attached to this network that depend on this policy "
                   "for access." if pol.action == EXTERNAL else f"project_id={target}")


def _sync(repo: Repo, obj: Any, action: str) -> None:
    """The object's cache of its wildcard policies after a change of its
    policies of ``action`` (a network is revised by every change, as Neutron's)."""
    pols = [p for p in repo.where(RbacPolicy, object_id=obj.id) if p.action == action]
    wild = any(p.target_tenant == WILDCARD for p in pols)
    changes: dict[str, Any] = {}
    if isinstance(obj, CACHES_SHARED) and action == SHARED:
        changes["shared"] = wild
    if isinstance(obj, Network) and action == EXTERNAL:
        external = bool(pols)
        if obj.router_external and not external:
            not_external(repo, obj)
        changes.update(router_external=external, external_to_all=wild or not external)
        if not external:
            changes["is_default"] = False
    new = obj.replace(**changes)
    if new != obj or isinstance(obj, Network):
        repo.save(new)


# what the kinds call ---------------------------------------------------------------
def adopt(repo: Repo, obj: Resource) -> None:
    """The wildcard policies an object's flags say it has, made if it has not
    (one stored before RBAC policies were): the flags and the policies agree
    before either changes."""
    if isinstance(obj, CACHES_SHARED) and obj.shared:
        grant_all(repo, obj, SHARED)
    if isinstance(obj, Network) and obj.router_external and obj.external_to_all:
        grant_all(repo, obj, EXTERNAL)


def not_external(repo: Repo, net: Network) -> None:
    """Neutron's check before a network stops being external: no router has its gateway on it."""
    if any(p.device_owner == ROUTER_GATEWAY for p in repo.where(Port, network_id=net.id)):
        raise Conflict(f"External network {net.id} cannot be updated to be made non-external, "
                       "since it has existing gateway ports.", type="ExternalNetworkInUse")


def grant_all(repo: Repo, obj: Resource, action: str) -> None:
    """The wildcard policy that ``shared`` or ``router:external`` set to true
    makes, owned by the object's project (none is made twice)."""
    if any(p.action == action and p.target_tenant == WILDCARD
           for p in repo.where(RbacPolicy, object_id=obj.id)):
        return
    repo.save(RbacPolicy(id=repo.new_id(), project_id=obj.project_id,
                         object_type=BY_CLASS[type(obj)].name, object_id=obj.id,
                         action=action, target_tenant=WILDCARD), new=True)


def revoke_all(repo: Repo, obj: Resource, action: str,
               error: Callable[[str], ApiError] | None = None,
               bound: Bound | None = None) -> None:
    """``shared`` set to false: the wildcard policy goes, if nothing depends on it."""
    kind = BY_CLASS[type(obj)]
    adopt(repo, obj)
    for pol in repo.where(RbacPolicy, object_id=obj.id):
        if pol.action == action and pol.target_tenant == WILDCARD:
            _release(repo, kind, obj, pol, error=error, bound=bound)
            repo.remove(pol)


def drop_external(repo: Repo, net: Network) -> None:
    """``router:external`` set to false: every access_as_external policy goes."""
    not_external(repo, net)
    for pol in repo.where(RbacPolicy, object_id=net.id):
        if pol.action == EXTERNAL:
            repo.remove(pol)


def forget(repo: Repo, obj: Resource) -> None:
    """An object goes: its policies go with it."""
    for pol in repo.where(RbacPolicy, object_id=obj.id):
        repo.remove(pol)


# identity --------------------------------------------------------------------------
def no_identity(call: Any) -> Any:
    """Overcast has no identity service: a client that looks a project up
    here (``openstack network rbac create --target-project P`` asks
    /v2.0/tenants) is refused, and takes the name it was given as the id."""
    raise Forbidden("Overcast has no identity service: name projects by their id",
                    type="HTTPForbidden")
