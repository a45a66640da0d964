"""Route handlers for the collections of ``registry`` and their members, for
router interface and address group actions and for the rules of a QoS policy
(every type of ``qos.RULE_KINDS``).

Each takes the ``Call`` (who, what, the path's ids, the store) and returns the
``Response``; the work on the model runs in one read snapshot or one
transaction."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from overcast.api import convert as cv
from overcast.api import grants, listing, policy, query, quotas
from overcast.api.auth import Context
from overcast.api.errors import BadRequest, NotFound
from overcast.api.kinds import address_group, auto_topology, qos, router, security, subnetpool
from overcast.api.registry import Handlers
from overcast.api.repo import Repo
from overcast.api.session import Call, Session
from overcast.api.wire import Response, check_revision, unwrap
from overcast.model.types import (
    AddressGroup,
    QosPolicy,
    Router,
    SecurityGroup,
    SubnetPool,
)


# collections ---------------------------------------------------------------------
def list_collection(h: Handlers, call: Call) -> Response:
    prepare = (partial(_with_default_group, call.session, _default_group_project(call))
               if h.schema.cls is SecurityGroup else None)
    return Response(200, listing.page(call.ctx, call.req, h.schema, call.read(bulk=True),
                                      prepare=prepare))


def _default_group_project(call: Call) -> str:
    """Whose default group a listing of groups makes: the caller's or, for an
    admin, the project the filter names (Neutron's get_security_groups: an
    admin listing a new project's groups finds its default one).  A member
    filtering on another project sees none of its groups, so makes none."""
    first: dict[str, str] = {}
    for key, value in call.req.params:
        first.setdefault(key, value)
    given = first.get("project_id") or first.get("tenant_id")
    if not call.ctx.is_admin or call.ctx.read_only or not given or given == "*":
        return call.ctx.project_id
    try:
        return str(cv.to_str(255)(given))
    except ValueError:  # no project has such an id: the filter finds nothing anyway
        return call.ctx.project_id


def _with_default_group(session: Session, project_id: str, repo: Repo) -> Repo:
    """Listing groups makes the project's default group, as Neutron does."""
    if any(g.project_id == project_id and g.name == "default" for g in repo.all(SecurityGroup)):
        return repo
    session.write(lambda tx: security.ensure_default(tx, project_id))
    return session.read(bulk=True)


def create(h: Handlers, call: Call) -> Response:
    body = call.body()
    schema = h.schema
    if isinstance(body, dict) and schema.collection in body and schema.member not in body:
        items = body[schema.collection]
        if not isinstance(items, list) or not items:
            raise BadRequest(f"Bulk create needs a non-empty list in '{schema.collection}'")
        if len(items) > MAX_BULK:
            raise BadRequest(f"Bulk create of {len(items)} {schema.collection} exceeds the "
                             f"limit of {MAX_BULK} objects per request")
        # Neutron's prepare_request_body: an item may come wrapped ({"port": {...}})
        items = [i[schema.member] if isinstance(i, dict) and schema.member in i else i
                 for i in items]
        parsed = [(item, _new_fields(h, call, item)) for item in items]

        def bulk(repo: Repo) -> list[dict[str, Any]]:
            return [schema.render_for(call.ctx, repo, o) for o in _make_all(h, call, repo, parsed)]
        return Response(201, {schema.collection: call.write(bulk)})
    item = unwrap(body, schema.member)
    fields = _new_fields(h, call, item)
    return Response(201, {schema.member: call.write(
        lambda repo: schema.render_for(call.ctx, repo,
                                       _make_all(h, call, repo, [(item, fields)])[0]))})


def _make_all(h: Handlers, call: Call, repo: Repo,
              parsed: list[tuple[Any, dict[str, Any]]]) -> list[Any]:
    """The objects of a create, within their projects' quotas (every item counts)."""
    guard = quotas.Guard(repo, h.schema.cls.KIND, (f.get("project_id", "") for _, f in parsed))
    made = [_make(h, call.ctx, repo, item, f) for item, f in parsed]
    guard.check()
    return made


MAX_BULK = 1000  # objects in one bulk create


def _new_fields(h: Handlers, call: Call, item: Any) -> dict[str, Any]:
    fields = h.parse_body(call.ctx, item, True)
    fields.setdefault("id", call.session.seams.new_id())
    return fields


def _make(h: Handlers, ctx: Context, repo: Repo, item: dict[str, Any],
          fields: dict[str, Any]) -> Any:
    """One object of a create: its parent must be visible (else 404), the
    policy must allow the create and every attribute the body sets (else 403)."""
    assert h.create is not None  # routes has a POST only for kinds that can be made
    member = h.schema.member
    granted = grants.of(repo)
    policy.parent_must_be_visible(ctx, member, fields, repo.get, granted)
    link = policy.PARENTS.get(member)
    what = f"{link[1].KIND} {fields.get(link[0])}" if link else ""
    policy.authorize(ctx, "create", member, policy.target(member, fields, repo.get, granted),
                     h.schema.explicit(item, fields), what)
    return h.create(repo, ctx, dict(fields))


# members -------------------------------------------------------------------------
def show(h: Handlers, call: Call) -> Response:
    schema = h.schema
    repo = call.read()
    obj = repo.must(schema.cls, call.params["id"], schema.visible(call.ctx, repo))
    q = query.parse(schema, [(k, v) for k, v in call.req.params if k == "fields"], set())
    return Response(200, {schema.member: query.select(q, schema.render_for(call.ctx, repo,
                                                                            obj))})


def update(h: Handlers, call: Call) -> Response:
    schema, change = h.schema, h.update
    assert change is not None  # routes has a PUT only for kinds that can change
    item = call.member_body(schema.member)
    fields = h.parse_body(call.ctx, item, False)

    def apply(repo: Repo) -> dict[str, Any]:
        found = schema.visible(call.ctx, repo, writing=True)
        obj = repo.must(schema.cls, call.params["id"], found)
        check_revision(call.req, schema.member, obj)
        policy.authorize(call.ctx, "update", schema.member,
                         policy.target(schema.member, obj, repo.get), item,
                         f"{schema.member} {obj.id}")
        return schema.render_for(call.ctx, repo, change(repo, call.ctx, obj, dict(fields)))
    return Response(200, {schema.member: call.write(apply)})


def delete(h: Handlers, call: Call) -> Response:
    schema, remove = h.schema, h.delete
    assert remove is not None  # routes has a DELETE only for kinds that can go

    def apply(repo: Repo) -> None:
        found = schema.visible(call.ctx, repo, writing=True)
        obj = repo.must(schema.cls, call.params["id"], found)
        check_revision(call.req, schema.member, obj)
        policy.authorize(call.ctx, "delete", schema.member,
                         policy.target(schema.member, obj, repo.get), what=f"{schema.member} {obj.id}")
        remove(repo, call.ctx, obj)
    call.write(apply)
    return Response(204)


# router interfaces ---------------------------------------------------------------
def add_router_interface(call: Call) -> Response:
    return _router_action(call, "add", router.add_interface)


def remove_router_interface(call: Call) -> Response:
    return _router_action(call, "remove", router.remove_interface)


RouterAction = Callable[[Repo, Context, Router, Any], dict[str, Any]]


def _router_action(call: Call, verb: str, action: RouterAction) -> Response:
    body = call.body()
    visible = router.SCHEMA.visible(call.ctx)

    def apply(repo: Repo) -> dict[str, Any]:
        found = repo.must(Router, call.params["id"], visible)
        # the rule is add_router_interface / remove_router_interface, on the router
        policy.authorize(call.ctx, verb, "router_interface", policy.target("router", found),
                         what=f"router {found.id}")
        return action(repo, call.ctx, found, body)
    return Response(200, call.write(apply))


def add_extraroutes(call: Call) -> Response:
    return _routes_action(call, "add", True)


def remove_extraroutes(call: Call) -> Response:
    return _routes_action(call, "remove", False)


def _routes_action(call: Call, verb: str, adding: bool) -> Response:
    """extraroute-atomic: the router's routes read and written in one transaction."""
    routes = router.action_routes(call.body())
    visible = router.SCHEMA.visible(call.ctx)

    def apply(repo: Repo) -> dict[str, Any]:
        found = repo.must(Router, call.params["id"], visible)
        policy.authorize(call.ctx, verb, "extraroutes", policy.target("router", found),
                         what=f"router {found.id}")
        changed = router.edit_routes(repo, call.ctx, found, routes, adding)
        return {"router": router.SCHEMA.render_for(call.ctx, repo, changed)}
    return Response(200, call.write(apply))


# address group actions ---------------------------------------------------------
def add_addresses(call: Call) -> Response:
    return _address_action(call, "add", address_group.add)


def remove_addresses(call: Call) -> Response:
    return _address_action(call, "remove", address_group.remove)


AddressAction = Callable[[Repo, Context, AddressGroup, tuple[str, ...]], AddressGroup]


def _address_action(call: Call, verb: str, action: AddressAction) -> Response:
    """add_addresses / remove_addresses: the group as it is after, as Neutron answers."""
    wanted = address_group.requested(call.body())
    schema = address_group.SCHEMA

    def apply(repo: Repo) -> dict[str, Any]:
        group = repo.must(AddressGroup, call.params["id"], schema.visible(call.ctx, repo))
        # the rule is add_addresses / remove_addresses, on the group
        policy.authorize(call.ctx, verb, "addresses", policy.target(schema.member, group),
                         what=f"address group {group.id}")
        return {schema.member: schema.render_for(call.ctx, repo,
                                                 action(repo, call.ctx, group, wanted))}
    return Response(200, call.write(apply))


# subnet pool prefix actions (subnetpool-prefix-ops) ------------------------------------
def add_prefixes(call: Call) -> Response:
    return _prefix_action(call, "add", subnetpool.add_prefixes)


def remove_prefixes(call: Call) -> Response:
    return _prefix_action(call, "remove", subnetpool.remove_prefixes)


PrefixAction = Callable[[Repo, Context, SubnetPool, tuple[str, ...]], SubnetPool]


def _prefix_action(call: Call, verb: str, action: PrefixAction) -> Response:
    """add_prefixes / remove_prefixes: Neutron answers ``{"prefixes": [...]}``."""
    wanted = subnetpool.requested(call.body())
    schema = subnetpool.SCHEMA

    def apply(repo: Repo) -> dict[str, Any]:
        pool = repo.must(SubnetPool, call.params["id"], schema.visible(call.ctx, repo))
        # the rule is add_prefixes / remove_prefixes, on the pool
        policy.authorize(call.ctx, verb, "prefixes", policy.target(schema.member, pool),
                         what=f"subnetpool {pool.id}")
        return {"prefixes": list(action(repo, call.ctx, pool, wanted).prefixes)}
    return Response(200, call.write(apply))


# auto-allocated-topology ---------------------------------------------------------------
def show_auto_topology(call: Call) -> Response:
    """The project's topology, made on the first GET; ``?fields=dry-run`` only checks."""
    fields = [v for k, v in call.req.params if k == "fields"]
    project = auto_topology.project_of(call.ctx, call.params["project_id"], "get")
    if auto_topology.DRY_RUN in fields:
        return Response(200, auto_topology.check(call.read(), call.ctx, project))
    if fields:
        raise BadRequest("Unrecognized field")
    return Response(200, call.write(lambda repo: auto_topology.ensure(repo, call.ctx, project)))


def delete_auto_topology(call: Call) -> Response:
    project = auto_topology.project_of(call.ctx, call.params["project_id"], "delete")
    call.write(lambda repo: auto_topology.delete(repo, call.ctx, project))
    return Response(204)


# QoS rules (each type below its policy: bandwidth_limit_rules, dscp_marking_rules, ...) --
def _policy(call: Call, repo: Repo) -> QosPolicy:
    return repo.must(QosPolicy, call.params["id"], qos.POLICY_SCHEMA.visible(call.ctx, repo))


def _rule(kind: qos.RuleKind, call: Call, repo: Repo, action: str | None = None,
          body: dict[str, Any] | None = None) -> Any:
    """The rule of the path's policy; with ``action``, one the caller may change."""
    policy_id, rule_id = call.params["id"], call.params["rule_id"]
    _policy(call, repo)
    rule = repo.get(kind.cls, rule_id)
    if rule is None or getattr(rule, "policy_id", None) != policy_id:  # one answer: not here
        raise NotFound(f"QoS rule {rule_id} for policy {policy_id} could not be found.",
                       type="QosRuleNotFound")
    if action is not None:
        member = kind.schema.member
        policy.authorize(call.ctx, action, member, policy.target(member, rule, repo.get), body)
    return rule


def list_rules(kind: qos.RuleKind, call: Call) -> Response:
    repo = call.read()
    _policy(call, repo)
    return Response(200, listing.page(call.ctx, call.req, kind.schema, repo,
                                      ("policy_id", call.params["id"])))


def create_rule(kind: qos.RuleKind, call: Call) -> Response:
    schema = kind.schema
    item = call.member_body(schema.member)
    fields = schema.parse(call.ctx, item, True)
    fields.setdefault("id", call.session.seams.new_id())

    def apply(repo: Repo) -> dict[str, Any]:
        # Neutron's policy hook judges a create before the plugin looks the
        # parent up: a member is refused (403) whether or not it sees the policy
        fields["policy_id"] = call.params["id"]
        policy.authorize(call.ctx, "create", schema.member,
                         policy.target(schema.member, fields, repo.get), item)
        parent = _policy(call, repo)
        return schema.render(repo, qos.create_rule(repo, call.ctx, kind, parent, fields))
    return Response(201, {schema.member: call.write(apply)})


def show_rule(kind: qos.RuleKind, call: Call) -> Response:
    repo = call.read()
    schema = kind.schema
    q = query.parse(schema, [(k, v) for k, v in call.req.params if k == "fields"], set())
    return Response(200, {schema.member: query.select(q, schema.render(repo,
                                                                         _rule(kind, call, repo)))})


def update_rule(kind: qos.RuleKind, call: Call) -> Response:
    schema = kind.schema
    item = call.member_body(schema.member)
    fields = schema.parse(call.ctx, item, False)
    return Response(200, {schema.member: call.write(lambda repo: schema.render(
        repo, qos.update_rule(repo, call.ctx, kind, _rule(kind, call, repo, "update", item),
                              fields)))})


def delete_rule(kind: qos.RuleKind, call: Call) -> Response:
    call.write(lambda repo: qos.delete_rule(repo, call.ctx, kind,
                                            _rule(kind, call, repo, "delete")))
    return Response(204)
