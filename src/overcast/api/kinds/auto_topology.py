"""Neutron's ``auto-allocated-topology``: ``GET
/v2.0/auto-allocated-topology/{project_id}`` gives a project a network, a
subnet from each default subnet pool and a router with a gateway on the
default external network (``is_default``) and an interface on each subnet —
made once, in one transaction, then the same answer each time.
``?fields=dry-run`` only checks that it could be made; ``DELETE`` takes it
away again."""

from __future__ import annotations

from typing import Any

from overcast.api import policy
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict
from overcast.api.kinds import network as networks
from overcast.api.kinds import router as routers
from overcast.api.kinds import subnet as subnets
from overcast.api.kinds import subnetpool as subnetpools
from overcast.api.repo import Repo
from overcast.model.types import AutoAllocatedTopology, Network, Router, SubnetPool

DRY_RUN = "dry-run"  # Neutron's CHECK_REQUIREMENTS field


def project_of(ctx: Context, project_id: str, action: str) -> str:
    """The project a request is about (``None``: the caller's); 403 unless it is
    the caller's or the caller is an admin."""
    project = ctx.project_id if project_id == "None" else project_id
    policy.authorize(ctx, action, "auto_allocated_topology", policy.Target(owner=project),
                     what=f"project {project}")
    return project


def answer(project: str, network_id: str) -> dict[str, Any]:
    return {"auto_allocated_topology": {"id": network_id, "project_id": project,
                                        "tenant_id": project}}


def _failure(reason: str) -> Conflict:
    return Conflict(f"Deployment error: {reason}.", type="AutoAllocationFailure")


def _external(repo: Repo) -> Network:
    found = sorted((n for n in repo.where(Network, router_external=True) if n.is_default),
                   key=lambda n: n.id)
    if not found:
        raise _failure("No default router:external network")
    return found[0]


def _pools(repo: Repo, ctx: Context) -> list[SubnetPool]:
    pools = [p for p in (subnetpools.default_pool(repo, ctx, v) for v in (4, 6)) if p]
    if not pools:
        raise _failure("No default subnetpools defined")
    return pools


def check(repo: Repo, ctx: Context, project: str) -> dict[str, Any]:
    """``?fields=dry-run``: the requirements are met, or the 409 that says which is not."""
    _external(repo)
    _pools(repo, ctx)
    return answer(project, "dry-run=pass")


def ensure(repo: Repo, ctx: Context, project: str) -> dict[str, Any]:
    """The project's topology, made now if it has none (one transaction: two
    racing requests make one topology, the second one's retry finds it)."""
    made = repo.get(AutoAllocatedTopology, project)
    if made is not None and repo.get(Network, made.network_id) is None:
        repo.remove(made)  # its network was deleted by hand: as Neutron's cascade, start over
        made = None
    if made is None:
        made = _build(repo, ctx, project)
    return answer(project, made.network_id)


def _build(repo: Repo, ctx: Context, project: str) -> AutoAllocatedTopology:
    external = _external(repo)
    pools = _pools(repo, ctx)
    net = networks.create(repo, ctx, {"id": repo.new_id(), "project_id": project,
                                      "name": "auto_allocated_network"})
    made = []
    for pool in pools:
        try:
            made.append(subnets.create(repo, ctx, {
                "id": repo.new_id(), "project_id": project, "network_id": net.id,
                "name": f"auto_allocated_subnet_v{pool.ip_version}",
                "ip_version": pool.ip_version, "subnetpool_id": pool.id}))
        except (BadRequest, Conflict):
            raise _failure("Unable to provide project private network") from None
    try:
        router = routers.create(repo, ctx, {
            "id": repo.new_id(), "project_id": project, "name": "auto_allocated_router",
            "external_gateway": {"network_id": external.id}})
        for sub in made:
            routers.add_interface(repo, ctx, router, {"subnet_id": sub.id})
    except BadRequest:
        raise _failure("Unable to provide external connectivity") from None
    return repo.save(AutoAllocatedTopology(id=project, project_id=project, network_id=net.id,
                                           router_id=router.id), new=True)


def delete(repo: Repo, ctx: Context, project: str) -> None:
    """The router (its interfaces, its gateway) and the network go; nothing to
    do if the project has no topology."""
    made = repo.get(AutoAllocatedTopology, project)
    if made is None:
        return
    if repo.get(Router, made.router_id) is not None:
        for port in routers.interfaces(repo, made.router_id):
            if port.network_id == made.network_id:
                routers.remove_interface(repo, ctx, repo.must(Router, made.router_id),
                                         {"port_id": port.id})
        routers.delete(repo, ctx, repo.must(Router, made.router_id))
    net = repo.get(Network, made.network_id)
    if net is not None:
        networks.delete(repo, ctx, net)
    repo.remove(made)
