"""Which kinds the API serves and the functions that change them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overcast.api.auth import Context
from overcast.api.config import ApiConfig
from overcast.api.kinds import agent, floatingip, network, port, qos, router, security, subnet
from overcast.api.repo import Repo
from overcast.api.resource import Kind

Create = Callable[[Repo, Context, ApiConfig, dict[str, Any]], Any]
Update = Callable[[Repo, Context, ApiConfig, Any, dict[str, Any]], Any]
Delete = Callable[[Repo, Context, Any], None]
Parse = Callable[[Context, Any, bool], dict[str, Any]]


@dataclass(frozen=True)
class Handlers:
    kind: Kind
    create: Create | None
    update: Update | None
    delete: Delete | None
    parse: Parse | None = None
    tags: bool = True

    def parse_body(self, ctx: Context, body: Any, creating: bool) -> dict[str, Any]:
        if self.parse is not None:
            return self.parse(ctx, body, creating)
        return self.kind.parse(ctx, body, creating)


def _no_cfg_create(fn: Callable[[Repo, Context, dict[str, Any]], Any]) -> Create:
    return lambda repo, ctx, cfg, fields: fn(repo, ctx, fields)


def _no_cfg_update(fn: Callable[[Repo, Context, Any, dict[str, Any]], Any]) -> Update:
    return lambda repo, ctx, cfg, obj, fields: fn(repo, ctx, obj, fields)


HANDLERS: dict[str, Handlers] = {h.kind.collection: h for h in (
    Handlers(network.KIND, network.create, network.update, network.delete),
    Handlers(subnet.KIND, _no_cfg_create(subnet.create), _no_cfg_update(subnet.update),
             subnet.delete),
    Handlers(port.KIND, _no_cfg_create(port.create), _no_cfg_update(port.update), port.delete,
             parse=port.parse),
    Handlers(security.GROUP_KIND, _no_cfg_create(security.create_group),
             _no_cfg_update(security.update_group), security.delete_group),
    Handlers(security.RULE_KIND, _no_cfg_create(security.create_rule), None,
             security.delete_rule),
    Handlers(router.KIND, _no_cfg_create(router.create), _no_cfg_update(router.update),
             router.delete),
    Handlers(floatingip.KIND, _no_cfg_create(floatingip.create),
             _no_cfg_update(floatingip.update), floatingip.delete),
    Handlers(qos.POLICY_KIND, _no_cfg_create(qos.create_policy),
             _no_cfg_update(qos.update_policy), qos.delete_policy),
    Handlers(agent.KIND, None, _no_cfg_update(lambda repo, ctx, h, f: repo.save(h.replace(**f))),
             None, tags=False),
)}

# URL segment of each top-level collection
COLLECTION_PATHS: dict[str, str] = {h.kind.path.removeprefix("/v2.0/"): name
                                    for name, h in HANDLERS.items()}
