"""What RBAC policies grant a project: for each object, the actions granted to
the project itself or to every project (``*``).

Read through the ``target_tenant`` index, once per transaction and project
(two small ranges: the project's policies and the wildcard ones), and kept
current by the transaction (``Repo.view``), so a policy decision costs a
dict lookup, not a scan of the policies of each object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overcast.api.auth import Context
from overcast.api.repo import Repo
from overcast.model.types import RbacPolicy

WILDCARD = "*"
SHARED = "access_as_shared"
EXTERNAL = "access_as_external"

# (object id, project) -> the actions granted to that project on that object
Grants = Callable[[str, str], frozenset[str]]


class GrantTable:
    """The policies of one target, by object id (a ``Repo`` view)."""

    def __init__(self, policies: list[RbacPolicy]) -> None:
        self._by_object: dict[str, dict[str, str]] = {}
        for p in policies:
            self.add(p)

    def add(self, policy: RbacPolicy) -> None:
        self._by_object.setdefault(policy.object_id, {})[policy.id] = policy.action

    def discard(self, policy: RbacPolicy) -> None:
        self._by_object.get(policy.object_id, {}).pop(policy.id, None)

    def actions(self, object_id: str) -> frozenset[str]:
        return frozenset(self._by_object.get(object_id, {}).values())


def _table(repo: Repo, target: str) -> GrantTable:
    return repo.view(RbacPolicy, "target_tenant", target, "grants", GrantTable)


def of(repo: Repo) -> Grants:
    """The grants as ``repo`` (a snapshot or a transaction) has them."""
    def granted(object_id: str, project: str) -> frozenset[str]:
        found = _table(repo, WILDCARD).actions(object_id)
        if project and project != WILDCARD:
            found |= _table(repo, project).actions(object_id)
        return found
    return granted


def render_shared(ctx: Context, repo: Repo, obj: Any, out: dict[str, Any]) -> None:
    """Neutron's ``shared`` of an RBAC object: whether it is shared with the
    caller's project (a policy for it or for every project), as the caller asks."""
    out["shared"] = bool(getattr(obj, "shared", False)) or SHARED in of(repo)(obj.id,
                                                                               ctx.project_id)
