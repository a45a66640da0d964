"""Just enough of Keystone's v3 API below ``/identity`` for the ``openstack``
CLI to name a project: ``openstack quota show|set|list|delete`` look the
project up in the identity service first.  Overcast has no project registry
(a project is an id its tokens and objects carry), so any project id is a
project named as itself; a member sees only their own, as Keystone's
default policy has it.  Point the CLI at it with
``OS_IDENTITY_ENDPOINT_OVERRIDE=<api url>/identity`` (``auth_type none``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from overcast.api.errors import NotFound
from overcast.api.session import Call
from overcast.api.wire import Response
from overcast.model import keys

PATH = "/identity"
VERSION = "v3.14"


def _base(call: Call) -> str:
    return call.req.base_url.rstrip("/") + PATH


def _version(call: Call) -> dict[str, Any]:
    return {"id": VERSION, "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": _base(call) + "/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.identity-v3+json"}]}


def _project(call: Call, project_id: str) -> dict[str, Any]:
    return {"id": project_id, "name": project_id, "domain_id": "default",
            "description": "", "enabled": True, "is_domain": False, "parent_id": "default",
            "tags": [], "options": {},
            "links": {"self": f"{_base(call)}/v3/projects/{project_id}"}}


def _known(call: Call) -> list[str]:
    """The projects an admin is told of: those with objects or quotas, and its own."""
    repo = call.read()
    found = {call.ctx.project_id}
    for kv in repo.peek(keys.USAGE):
        found.add(unquote(kv.key[len(keys.USAGE):].split("/", 1)[0]))
    for kv in repo.peek(keys.quota()):
        found.add(unquote(kv.key[len(keys.quota()):]))
    return sorted(p for p in found if p)


def versions(call: Call) -> Response:
    return Response(200, {"versions": {"values": [_version(call)]}})


def version(call: Call) -> Response:
    return Response(200, {"version": _version(call)})


def list_projects(call: Call) -> Response:
    ids = _known(call) if call.ctx.is_admin else [call.ctx.project_id]
    wanted = {k: v for k, v in call.req.params if k in ("id", "name")}
    out = [_project(call, p) for p in ids if all(p == v for v in wanted.values())]
    return Response(200, {"projects": out, "links": {"self": _base(call) + "/v3/projects",
                                                      "previous": None, "next": None}})


def show_project(call: Call) -> Response:
    project_id = call.params["project_id"]
    if not call.ctx.is_admin and project_id != call.ctx.project_id:
        raise NotFound(f"Could not find project: {project_id}.", type="NotFound")
    return Response(200, {"project": _project(call, project_id)})
