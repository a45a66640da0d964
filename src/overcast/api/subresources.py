"""Paths below one object: tags, port bindings, router interface actions and
QoS policy rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, Conflict, Forbidden, MethodNotAllowed, NotFound
from overcast.api.kinds import qos, router
from overcast.api.kinds.port import to_vnic_type
from overcast.api.registry import Handlers
from overcast.api.repo import Repo
from overcast.model import keys
from overcast.model.types import BandwidthLimitRule, Port, PortBinding

if TYPE_CHECKING:
    from overcast.api.service import Api, Request, Response

MAX_TAGS = 50


def route(api: Api, ctx: Context, req: Request, h: Handlers, id_: str, rest: str) -> Response:
    parts = rest.strip("/").split("/")
    if parts[0] == "tags" and h.tags and len(parts) <= 2:
        return _tags(api, ctx, req, h, id_, parts[1] if len(parts) > 1 else None)
    if h.kind.member == "port" and parts[0] == "bindings":
        return _bindings(api, ctx, req, id_, parts[1:])
    if h.kind.member == "router" and len(parts) == 1 and parts[0] in (
            "add_router_interface", "remove_router_interface"):
        return _router_action(api, ctx, req, id_, parts[0])
    if h.kind.member == "policy" and parts[0] == "bandwidth_limit_rules" and len(parts) <= 2:
        return _qos_rules(api, ctx, req, id_, parts[1] if len(parts) > 1 else None)
    raise NotFound(f"The resource could not be found: {req.path}", type="HTTPNotFound")


# tags ------------------------------------------------------------------------
def _tags(api: Api, ctx: Context, req: Request, h: Handlers, id_: str,
          tag: str | None) -> Response:
    from overcast.api.service import Response, check_revision

    kind = h.kind
    if req.method == "GET":
        repo = api.read()
        obj = repo.must(kind.cls, id_, kind.visible(ctx, repo))
        if tag is None:
            return Response(200, {"tags": list(obj.tags)})
        if tag not in obj.tags:
            raise NotFound(f"Tag {tag} could not be found for {kind.member} {id_}.",
                           type="TagNotFound")
        return Response(204)
    if req.method == "PUT" and tag is None:
        body = api.body(req)
        if not isinstance(body, dict) or set(body) != {"tags"}:
            raise BadRequest("Expected a body {\"tags\": [...]}")
        try:
            new = tuple(dict.fromkeys(cv.list_of(cv.to_tag)(body["tags"])))
        except ValueError as err:
            raise BadRequest(f"Invalid input for tags. Reason: {err}.") from None
        change = lambda tags: new  # noqa: E731
    elif req.method == "PUT":
        assert tag is not None  # a PUT without a tag is the branch above
        cv_tag = _valid_tag(tag)
        change = lambda tags: tags if cv_tag in tags else (*tags, cv_tag)  # noqa: E731
    elif req.method == "DELETE":
        change = _remover(kind.member, id_, tag)
    else:
        raise MethodNotAllowed(f"{req.method} is not allowed on {req.path}")

    def apply(repo: Repo) -> list[str]:
        obj = repo.must(kind.cls, id_, kind.visible(ctx, repo))
        if not ctx.owns(obj.project_id):
            raise Forbidden(f"Only the owner of {kind.member} {id_} may change its tags")
        check_revision(req, kind.member, obj)
        tags = change(tuple(obj.tags))
        if len(tags) > MAX_TAGS:
            raise BadRequest(f"Too many tags: at most {MAX_TAGS}")
        return list(repo.save(obj.replace(tags=tags)).tags)
    tags = api.write(apply)
    if req.method == "DELETE":
        return Response(204)
    return Response(201 if tag is not None else 200, None if tag is not None else {"tags": tags})


def _valid_tag(tag: str) -> str:
    try:
        return cv.to_tag(tag)
    except ValueError as err:
        raise BadRequest(f"Invalid input for tag. Reason: {err}.") from None


def _remover(member: str, id_: str, tag: str | None) -> Any:
    def change(tags: tuple[str, ...]) -> tuple[str, ...]:
        if tag is None:
            return ()
        if tag not in tags:
            raise NotFound(f"Tag {tag} could not be found for {member} {id_}.",
                           type="TagNotFound")
        return tuple(t for t in tags if t != tag)
    return change


# port bindings -----------------------------------------------------------------
def _binding_view(b: PortBinding) -> dict[str, Any]:
    return {"host": b.host, "vnic_type": b.vnic_type, "profile": b.profile,
            "status": b.status, "vif_type": "tap",
            "vif_details": {"port_filter": True, "connectivity": "l2"}}


def _all_bindings(repo: Repo, port: Port) -> list[PortBinding]:
    out = [PortBinding.from_stored(v) for _, v in repo.range_json(keys.binding(port.id))]
    if port.binding_host_id:
        out.append(PortBinding(port.id, port.binding_host_id, "ACTIVE", port.binding_vnic_type,
                               dict(port.binding_profile)))
    return sorted(out, key=lambda b: (b.status != "ACTIVE", b.host))


def _bindings(api: Api, ctx: Context, req: Request, port_id: str,
              parts: list[str]) -> Response:
    from overcast.api.service import Response

    visible = lambda p: ctx.may_see(p.project_id)  # noqa: E731
    if not ctx.is_admin:  # bindings place ports on hosts: the operator's (Neutron: admin only)
        api.read().must(Port, port_id, visible)  # 404 for what the caller cannot see
        raise Forbidden(f"Port bindings of port {port_id} are restricted to administrators")
    if req.method == "GET" and not parts:
        repo = api.read()
        port = repo.must(Port, port_id, visible)
        return Response(200, {"bindings": [_binding_view(b) for b in _all_bindings(repo, port)]})
    if req.method == "POST" and not parts:
        body = api.unwrap(api.body(req), "binding")
        return Response(201, {"binding": api.write(
            lambda repo: _create_binding(repo, repo.must(Port, port_id, visible), body))})
    if len(parts) == 2 and parts[1] == "activate" and req.method == "PUT":
        return Response(200, {"binding": api.write(
            lambda repo: _activate(repo, repo.must(Port, port_id, visible), parts[0]))})
    if len(parts) == 1 and req.method == "DELETE":
        api.write(lambda repo: _delete_binding(repo, repo.must(Port, port_id, visible),
                                               parts[0]))
        return Response(204)
    raise MethodNotAllowed(f"{req.method} is not allowed on {req.path}")


def _create_binding(repo: Repo, port: Port, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("host"), str) or not body["host"]:
        raise BadRequest("Invalid input for binding: 'host' is required")
    unknown = set(body) - {"host", "vnic_type", "profile"}
    if unknown:
        raise BadRequest(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    host = body["host"]
    if host in {b.host for b in _all_bindings(repo, port)}:
        raise Conflict(f"Binding for port {port.id} on host {host} already exists.",
                       type="PortBindingAlreadyExists")
    try:
        profile = cv.to_dict(body.get("profile"))
    except ValueError as err:
        raise BadRequest(f"Invalid input for profile. Reason: {err}.") from None
    try:
        vnic_type = to_vnic_type(body.get("vnic_type", "normal"))
    except ValueError as err:
        raise BadRequest(f"Invalid input for vnic_type. Reason: {err}.") from None
    binding = PortBinding(port.id, host, "INACTIVE" if port.binding_host_id else "ACTIVE",
                          vnic_type, profile)
    if binding.status == "ACTIVE":
        repo.save(port.replace(binding_host_id=host, binding_profile=profile))
    else:
        repo.put_json(keys.binding(port.id, host), binding.to_stored())
    return _binding_view(binding)


def _activate(repo: Repo, port: Port, host: str) -> dict[str, Any]:
    stored = repo.get_json(keys.binding(port.id, host))
    if stored is None:
        if port.binding_host_id == host:
            raise Conflict(f"Binding for port {port.id} on host {host} is already active.",
                           type="PortBindingAlreadyActive")
        raise NotFound(f"Binding for port {port.id} for host {host} could not be found.",
                       type="PortBindingNotFound")
    new = PortBinding.from_stored(stored)
    repo.delete_key(keys.binding(port.id, host))
    if port.binding_host_id:
        old = PortBinding(port.id, port.binding_host_id, "INACTIVE", port.binding_vnic_type,
                          dict(port.binding_profile))
        repo.put_json(keys.binding(port.id, old.host), old.to_stored())
    repo.save(port.replace(binding_host_id=host, binding_vnic_type=new.vnic_type,
                           binding_profile=new.profile))
    return _binding_view(PortBinding(port.id, host, "ACTIVE", new.vnic_type, new.profile))


def _delete_binding(repo: Repo, port: Port, host: str) -> None:
    if repo.get_json(keys.binding(port.id, host)) is not None:
        repo.delete_key(keys.binding(port.id, host))
    elif port.binding_host_id == host:
        repo.save(port.replace(binding_host_id="", binding_profile={}))
    else:
        raise NotFound(f"Binding for port {port.id} for host {host} could not be found.",
                       type="PortBindingNotFound")


# router interfaces ---------------------------------------------------------------
def _router_action(api: Api, ctx: Context, req: Request, router_id: str,
                   action: str) -> Response:
    from overcast.api.service import Response
    from overcast.model.types import Router

    if req.method != "PUT":
        raise MethodNotAllowed(f"{req.method} is not allowed on {req.path}")
    body = api.body(req)
    fn = router.add_interface if action == "add_router_interface" else router.remove_interface
    visible = router.KIND.visible(ctx)
    return Response(200, api.write(lambda repo: fn(repo, ctx, repo.must(Router, router_id,
                                                                         visible), body)))


# QoS rules -------------------------------------------------------------------------
def _qos_rules(api: Api, ctx: Context, req: Request, policy_id: str,
               rule_id: str | None) -> Response:
    from overcast.api.service import Response
    from overcast.model.types import QosPolicy

    kind = qos.RULE_KIND
    pvisible = qos.POLICY_KIND.visible(ctx)

    def rule_of(repo: Repo) -> BandwidthLimitRule:
        repo.must(QosPolicy, policy_id, pvisible)
        rule = repo.must(BandwidthLimitRule, str(rule_id))
        if rule.policy_id != policy_id:
            raise NotFound(f"Bandwidth limit rule {rule_id} could not be found in policy "
                           f"{policy_id}.", type="QoSRuleNotFound")
        return rule
    if rule_id is None and req.method == "GET":
        repo = api.read()
        repo.must(QosPolicy, policy_id, pvisible)
        return Response(200, api.list(ctx, req, Handlers(kind, None, None, None), repo,
                                      ("policy_id", policy_id)))
    if rule_id is None and req.method == "POST":
        fields = kind.parse(ctx, api.unwrap(api.body(req), kind.member), True)
        return Response(201, {kind.member: api.write(lambda repo: kind.render(
            repo, qos.create_rule(repo, ctx, repo.must(QosPolicy, policy_id, pvisible),
                                  fields)))})
    if rule_id is not None and req.method == "GET":
        repo = api.read()
        return Response(200, {kind.member: kind.render(repo, rule_of(repo))})
    if rule_id is not None and req.method == "PUT":
        fields = kind.parse(ctx, api.unwrap(api.body(req), kind.member), False)
        return Response(200, {kind.member: api.write(lambda repo: kind.render(
            repo, qos.update_rule(repo, ctx, rule_of(repo), fields)))})
    if rule_id is not None and req.method == "DELETE":
        api.write(lambda repo: qos.delete_rule(repo, ctx, rule_of(repo)))
        return Response(204)
    raise MethodNotAllowed(f"{req.method} is not allowed on {req.path}")
