"""Neutron's ``quotas`` and ``quota_details``: how many objects of each kind a
project may have, and how many it has.

Limits live in one key per project (``keys.quota``), only for projects an
admin set them for; every other resource takes Neutron's default.  Usage is
the projects' counters (``keys.usage``), kept by ``Repo`` in the transaction
that makes or removes each object, so a create reads one counter instead of
counting the project's objects.  ``Guard`` enforces a create's quota in the
create's own transaction: two racing creates that both read a counter cannot
both commit, so a project never ends up over its limit.

As Neutron counts them, every object of the project counts, whoever made it:
the ports a router interface makes (the router's project), the default
security group and its rules; the router gateway, SNAT and floating IP ports
belong to no project and count for none.  Only a POST of the resource itself
is refused (Neutron's quota hook on the API), every item of a bulk create
against the project it is for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from overcast.api import convert as cv
from overcast.api import policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, Forbidden, NotFound
from overcast.api.repo import Repo
from overcast.api.session import Call
from overcast.api.wire import Response, unwrap
from overcast.model import keys

PATH = "/v2.0/quotas"
UNLIMITED = -1
MAX_LIMIT = 2**31 - 1  # Neutron's DB_INTEGER_MAX_VALUE
# resource -> Neutron's default limit (neutron/conf/quota.py); ApiConfig.quota_defaults
# changes them for a server
NEUTRON_DEFAULTS: dict[str, int] = {
    "floatingip": 50,
    "network": 100,
    "port": 500,
    "rbac_policy": 10,
    "router": 10,
    "security_group": 10,
    "security_group_rule": 100,
    "subnet": 100,
    "subnetpool": UNLIMITED,
}
NO_LIMITS = dict.fromkeys(NEUTRON_DEFAULTS, UNLIMITED)  # for benches that make thousands
OPTIONS = ("force", "check_limit")  # in an update's body, besides the limits


# the store ---------------------------------------------------------------------------
def defaults(repo: Repo) -> dict[str, int]:
    """Every resource's default limit on this server."""
    return {**NEUTRON_DEFAULTS, **{k: v for k, v in repo.cfg.quota_defaults.items()
                                   if k in NEUTRON_DEFAULTS}}


def parse_defaults(items: Iterable[str]) -> dict[str, int]:
    """``RESOURCE=N`` items (``all=N``: every resource) as default limits, or ValueError."""
    out: dict[str, int] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name != "all" and name not in NEUTRON_DEFAULTS:
            raise ValueError(f"'{item}': the resource must be one of "
                             f"{', '.join(sorted(NEUTRON_DEFAULTS))} or all")
        try:
            limit = _limit(name, value)
        except BadRequest:
            raise ValueError(f"'{item}': the limit must be an integer from -1 to "
                             f"{MAX_LIMIT}") from None
        out.update(dict.fromkeys(NEUTRON_DEFAULTS, limit) if name == "all" else {name: limit})
    return out


def _overrides(repo: Repo, project_id: str) -> dict[str, int]:
    found = repo.get_json(keys.quota(project_id))
    return dict(found) if isinstance(found, dict) else {}


def limits(repo: Repo, project_id: str) -> dict[str, int]:
    """Every resource's limit for the project (the default where none is set)."""
    return {**defaults(repo), **{k: v for k, v in _overrides(repo, project_id).items()
                                 if k in NEUTRON_DEFAULTS}}


def used(repo: Repo, project_id: str, resource: str) -> int:
    """The project's objects of a resource (0 for those Overcast has no kind of)."""
    return repo.usage(keys.usage(project_id, resource)) if resource in keys.COUNTED else 0


class Guard:
    """A create's quota check, in its transaction: the counters are read before
    the objects are made (the commit depends on them), ``check`` after (so a
    404 or 403 of an item comes first, as nothing is made then either)."""

    def __init__(self, repo: Repo, resource: str, projects: Iterable[str]) -> None:
        self.resource = resource
        self.wanted = Counter(p for p in projects if p)
        self.before: dict[str, tuple[int, int]] = {}  # project -> (used, limit)
        if resource in keys.COUNTED:
            for project in self.wanted:
                limit = limits(repo, project)[resource]
                if limit != UNLIMITED:
                    self.before[project] = (used(repo, project, resource), limit)

    def check(self) -> None:
        """OverQuota (409) if any project would hold more than its limit."""
        for project, (count, limit) in self.before.items():
            if count + self.wanted[project] > limit:
                raise Conflict(f"Quota exceeded for resources: {[self.resource]}.",
                               type="OverQuota")


def within(repo: Repo, project_id: str, resource: str) -> None:
    """OverQuota (409) if the project now holds more ``resource`` than its
    limit: for objects a create makes besides its own (a new security
    group's rules, as Neutron counts them), checked in the same transaction
    after they are made."""
    if resource not in keys.COUNTED or not project_id:
        return
    limit = limits(repo, project_id)[resource]
    if limit != UNLIMITED and used(repo, project_id, resource) > limit:
        raise Conflict(f"Quota exceeded for resources: {[resource]}.", type="OverQuota")


# reading and checking requests ------------------------------------------------------
def _project(call: Call) -> str:
    project_id = call.params["project_id"]
    try:
        cv.clean(project_id)
    except ValueError as err:
        raise BadRequest(f"Invalid project_id: {err}") from None
    if len(project_id) > 255:
        raise BadRequest("Invalid project_id: longer than 255 characters")
    return project_id


def _may_read(ctx: Context, project_id: str) -> None:
    """Anyone reads their own project's quota; another's is the admin's (get_quota)."""
    if project_id != ctx.project_id:
        policy.authorize(ctx, "get", "quota", policy.Target(ctx.project_id))


def _limit(name: str, value: Any) -> int:
    try:
        n: int = cv.to_int(value)
    except ValueError as err:
        raise BadRequest(f"Invalid input for {name}. Reason: {err}.") from None
    if n < UNLIMITED:
        raise BadRequest(f"Invalid input for {name}. Reason: '{n}' is too small - must be at "
                         f"least '{UNLIMITED}'.")
    if n > MAX_LIMIT:
        raise BadRequest(f"Invalid input for {name}. Reason: '{n}' is too large - must be no "
                         f"larger than '{MAX_LIMIT}'.")
    return n


def parse_update(body: Any) -> tuple[dict[str, int], bool]:
    """The limits a PUT sets, and whether it forces them below the usage."""
    item = unwrap(body, "quota")
    if not isinstance(item, dict):
        raise BadRequest("Body of quota must be a JSON object")
    unknown = sorted(set(item) - set(NEUTRON_DEFAULTS) - set(OPTIONS))
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    force = False
    if "force" in item:
        try:
            force = cv.to_bool(item["force"])
        except ValueError as err:
            raise BadRequest(f"Invalid input for force. Reason: {err}.") from None
    if "check_limit" in item:  # Neutron's: always checked now unless forced
        try:
            cv.to_bool(item["check_limit"])
        except ValueError as err:
            raise BadRequest(f"Invalid input for check_limit. Reason: {err}.") from None
    return {k: _limit(k, v) for k, v in item.items() if k in NEUTRON_DEFAULTS}, force


def _not_below_usage(repo: Repo, project_id: str, wanted: dict[str, int]) -> None:
    """Neutron's check before a new limit: not below what the project uses."""
    for resource, limit in sorted(wanted.items()):
        if limit == UNLIMITED:
            continue
        count = used(repo, project_id, resource)
        if count > limit:
            raise BadRequest(f"Quota limit {limit} for {resource} must be greater than or "
                             f"equal to already used {count}")


# route handlers ------------------------------------------------------------------------
def list_all(call: Call) -> Response:
    """The projects with limits of their own, each with all its limits (admin only)."""
    policy.authorize(call.ctx, "get", "quota", policy.Target(call.ctx.project_id))
    repo = call.read()
    out = []
    for key, _ in repo.range_json(keys.quota()):
        project_id = unquote(key[len(keys.quota()):])
        out.append({**limits(repo, project_id), "project_id": project_id,
                    "tenant_id": project_id})
    return Response(200, {"quotas": out})


def show(call: Call) -> Response:
    project_id = _project(call)
    _may_read(call.ctx, project_id)
    return Response(200, {"quota": limits(call.read(), project_id)})


def show_default(call: Call) -> Response:
    project_id = _project(call)
    _may_read(call.ctx, project_id)
    return Response(200, {"quota": defaults(call.read())})


def show_details(call: Call) -> Response:
    """used, limit and reserved per resource (nothing is ever reserved here:
    a create counts in the transaction that makes it)."""
    project_id = _project(call)
    if project_id != call.ctx.project_id and not call.ctx.is_admin:
        raise Forbidden("User does not have admin privileges: Only admin is authorized to "
                        "access quotas for another project.", type="AdminRequired")
    repo = call.read()
    return Response(200, {"quota": {
        resource: {"limit": limit, "used": used(repo, project_id, resource), "reserved": 0}
        for resource, limit in limits(repo, project_id).items()}})


def update(call: Call) -> Response:
    project_id = _project(call)
    policy.authorize(call.ctx, "update", "quota", policy.Target(call.ctx.project_id))
    wanted, force = parse_update(call.body())

    def apply(repo: Repo) -> dict[str, int]:
        if not force:
            _not_below_usage(repo, project_id, wanted)
        if wanted:
            repo.put_json(keys.quota(project_id), {**_overrides(repo, project_id), **wanted})
        return limits(repo, project_id)
    return Response(200, {"quota": call.write(apply)})


def reset(call: Call) -> Response:
    """Back to the defaults; 404 for a project with no limits of its own."""
    project_id = _project(call)
    policy.authorize(call.ctx, "delete", "quota", policy.Target(call.ctx.project_id))

    def apply(repo: Repo) -> None:
        if repo.get_json(keys.quota(project_id)) is None:
            raise NotFound(f"Quota for project {project_id} could not be found.",
                           type="TenantQuotaNotFound")
        repo.delete_key(keys.quota(project_id))
    call.write(apply)
    return Response(204)


def own_project(key: str) -> Any:
    """``GET /v2.0/quotas/project`` (and ``/tenant``): the caller's project."""
    def handler(call: Call) -> Response:
        return Response(200, {key: {f"{key}_id": call.ctx.project_id}})
    return handler
