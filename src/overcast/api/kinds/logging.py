"""Packet logs (Neutron's logging): which security group events (ALL,
ACCEPT, DROP) to log, of one group (``resource_id``), one port
(``target_id``, which must be in the group when both are named), or every
group of the project.  The operator's (Neutron's policy)."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, NotFound
from overcast.api.repo import Repo
from overcast.api.resource import COMMON, Attr, Schema, stored
from overcast.model.types import NetworkLog, Port, SecurityGroup

EVENTS = ("ACCEPT", "DROP", "ALL")
RESOURCE_TYPES = ("security_group",)
PATH = "/v2.0/log/loggable-resources"

SCHEMA = Schema(
    NetworkLog, "log", "logs", "/v2.0/log/logs",
    (
        Attr("resource_type", "resource_type", cv.to_str(36), put=False, required=True),
        Attr("resource_id", "resource_id", cv.optional(cv.to_uuidish), put=False),
        Attr("target_id", "target_id", cv.optional(cv.to_uuidish), put=False),
        Attr("event", "event", cv.one_of(*EVENTS), put=False),
        stored("enabled", cv.to_bool),
    ),
    common=tuple(a for a in COMMON if a.name != "tags"),
)


def _check(repo: Repo, log: NetworkLog) -> None:
    """Neutron's validators: a type it logs, a group and a port that exist, the
    port in the group."""
    if log.resource_type not in RESOURCE_TYPES:
        raise BadRequest(f"Invalid input for operation: Invalid log resource_type: "
                         f"{log.resource_type}.", type="InvalidLogResourceType")
    if log.resource_id is not None and repo.get(SecurityGroup, log.resource_id) is None:
        raise NotFound(f"Resource {log.resource_id} could not be found.",
                       type="ResourceNotFound")
    port = repo.get(Port, log.target_id) if log.target_id is not None else None
    if log.target_id is not None and port is None:
        raise NotFound(f"Target resource {log.target_id} could not be found.",
                       type="TargetResourceNotFound")
    if port is not None and log.resource_id is not None and \
            log.resource_id not in port.security_groups:
        raise BadRequest(f"Invalid input for operation: Invalid resource constraint between "
                         f"resource (security_group {log.resource_id}) and target resource "
                         f"(port {log.target_id}).", type="InvalidResourceConstraint")


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> NetworkLog:
    log = NetworkLog(**fields)
    _check(repo, log)
    return repo.save(log, new=True)


def update(repo: Repo, ctx: Context, log: NetworkLog, fields: dict[str, Any]) -> NetworkLog:
    return repo.save(log.replace(**fields))


def delete(repo: Repo, ctx: Context, log: NetworkLog) -> None:
    repo.remove(log)


def loggable_resources() -> dict[str, Any]:
    return {"loggable_resources": [{"type": t} for t in RESOURCE_TYPES]}
