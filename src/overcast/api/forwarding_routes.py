"""Route handlers of the kinds below another object or with actions of
their own: a floating IP's port forwardings
(``/v2.0/floatingips/{id}/port_forwardings``), a trunk's subport actions and
the loggable resource types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from overcast.api import listing, policy, query
from overcast.api.errors import Forbidden
from overcast.api.kinds import logging, trunk
from overcast.api.kinds import port_forwarding as pfs
from overcast.api.repo import Repo
from overcast.api.session import Call
from overcast.api.wire import Response
from overcast.model.types import SubPort, Trunk

SCHEMA = pfs.SCHEMA


# port forwardings ----------------------------------------------------------------
def list_forwardings(call: Call) -> Response:
    repo = call.read()
    fip = pfs.fip_of(repo, call.ctx, call.params["id"])
    return Response(200, listing.page(call.ctx, call.req, SCHEMA, repo,
                                      ("floatingip_id", fip.id)))


def show_forwarding(call: Call) -> Response:
    repo = call.read()
    fip = pfs.fip_of(repo, call.ctx, call.params["id"])
    found = pfs.find(repo, fip, call.params["pf_id"])
    policy.authorize(call.ctx, "get", pfs.MEMBER, pfs.target(fip))
    q = query.parse(SCHEMA, [(k, v) for k, v in call.req.params if k == "fields"], set())
    return Response(200, {SCHEMA.member: query.select(q, SCHEMA.render(repo, found))})


def create_forwarding(call: Call) -> Response:
    item = call.member_body(SCHEMA.member)
    fields = SCHEMA.parse(call.ctx, item, True)
    fields.setdefault("id", call.session.seams.new_id())

    def apply(repo: Repo) -> dict[str, Any]:
        fip = pfs.fip_of(repo, call.ctx, call.params["id"])
        policy.authorize(call.ctx, "create", pfs.MEMBER, pfs.target(fip),
                         SCHEMA.explicit(item, fields), f"floatingip {fip.id}")
        return SCHEMA.render(repo, pfs.create(repo, call.ctx, fip, fields))
    return Response(201, {SCHEMA.member: call.write(apply)})


def update_forwarding(call: Call) -> Response:
    item = call.member_body(SCHEMA.member)
    fields = SCHEMA.parse(call.ctx, item, False)

    def apply(repo: Repo) -> dict[str, Any]:
        fip = pfs.fip_of(repo, call.ctx, call.params["id"])
        found = pfs.find(repo, fip, call.params["pf_id"])
        policy.authorize(call.ctx, "update", pfs.MEMBER, pfs.target(fip), item,
                         f"floatingip {fip.id}")
        return SCHEMA.render(repo, pfs.update(repo, call.ctx, fip, found, fields))
    return Response(200, {SCHEMA.member: call.write(apply)})


def delete_forwarding(call: Call) -> Response:
    def apply(repo: Repo) -> None:
        fip = pfs.fip_of(repo, call.ctx, call.params["id"])
        found = pfs.find(repo, fip, call.params["pf_id"])
        policy.authorize(call.ctx, "delete", pfs.MEMBER, pfs.target(fip),
                         what=f"floatingip {fip.id}")
        pfs.delete(repo, fip, found)
    call.write(apply)
    return Response(204)


# trunk actions -------------------------------------------------------------------
TrunkAction = Callable[[Repo, Any, Trunk, tuple[SubPort, ...]], Trunk]


def add_subports(call: Call) -> Response:
    return _trunk_action(call, "add_subports", trunk.add_subports, False)


def remove_subports(call: Call) -> Response:
    return _trunk_action(call, "remove_subports", trunk.remove_subports, True)


def _trunk_action(call: Call, rule: str, action: TrunkAction, removing: bool) -> Response:
    """The trunk as it is after, unwrapped (Neutron's answer to a member action)."""
    def apply(repo: Repo) -> dict[str, Any]:
        # Neutron's order: the trunk (404), the policy (403), a disabled trunk
        # (409), then the body (400)
        found = repo.must(Trunk, call.params["id"], trunk.SCHEMA.visible(call.ctx))
        _authorize(call, rule, found)
        trunk.managed(found)
        subs = trunk.requested(call.body(), removing)
        return trunk.SCHEMA.render_for(call.ctx, repo, action(repo, call.ctx, found, subs))
    return Response(200, call.write(apply))


def get_subports(call: Call) -> Response:
    repo = call.read()
    found = repo.must(Trunk, call.params["id"], trunk.SCHEMA.visible(call.ctx))
    _authorize(call, "get_subports", found)
    return Response(200, trunk.subports_body(found))


def _authorize(call: Call, rule: str, found: Trunk) -> None:
    tgt = policy.target("trunk", found)
    if call.ctx.read_only and rule != "get_subports":  # Keystone's reader only reads
        raise Forbidden(f"rule:{rule} is disallowed by policy on trunk {found.id} "
                        "(allowed: admin or member; the reader role only reads)")
    if not policy.allowed(rule, call.ctx, tgt):
        raise Forbidden(f"rule:{rule} is disallowed by policy on trunk {found.id} "
                        f"(allowed: {policy.RULES[rule].name})")


# loggable resources --------------------------------------------------------------
def loggable_resources(call: Call) -> Response:
    if not policy.allowed("get_loggable_resource", call.ctx, policy.Target(owner="")):
        raise Forbidden("rule:get_loggable_resource is disallowed by policy (allowed: "
                        f"{policy.RULES['get_loggable_resource'].name})")
    return Response(200, logging.loggable_resources())
