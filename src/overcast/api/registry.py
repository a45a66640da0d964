"""Which kinds the API serves as collections, and the functions that change them.
``routes`` turns each entry into its collection, member and tag routes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overcast.api.auth import Context
from overcast.api.kinds import (
    address_group,
    address_scope,
    agent,
    default_sg_rule,
    floatingip,
    logging,
    metering,
    network,
    port,
    qos,
    rbac,
    router,
    security,
    segment_range,
    subnet,
    subnetpool,
    trunk,
)
from overcast.api.repo import Repo
from overcast.api.resource import Schema

# each runs inside one transaction, on fields the schema parsed
Create = Callable[[Repo, Context, dict[str, Any]], Any]
Update = Callable[[Repo, Context, Any, dict[str, Any]], Any]
Delete = Callable[[Repo, Context, Any], None]
Parse = Callable[[Context, Any, bool], dict[str, Any]]


@dataclass(frozen=True)
class Handlers:
    schema: Schema
    create: Create | None
    update: Update | None
    delete: Delete | None
    parse: Parse | None = None  # instead of the schema's (a body that differs from the model)
    tags: bool = True
    slow_delete: bool = False  # a delete that looks at every port (see ``routes``)
    slow_update: bool = False  # an update that may look at every port

    def parse_body(self, ctx: Context, body: Any, creating: bool) -> dict[str, Any]:
        if self.parse is not None:
            return self.parse(ctx, body, creating)
        return self.schema.parse(ctx, body, creating)

    @property
    def segment(self) -> str:
        """The collection's URL below /v2.0, e.g. ``security-groups``."""
        return self.schema.path.removeprefix("/v2.0/")


HANDLERS: dict[str, Handlers] = {h.schema.collection: h for h in (
    Handlers(network.SCHEMA, network.create, network.update, network.delete),
    Handlers(subnet.SCHEMA, subnet.create, subnet.update, subnet.delete),
    Handlers(port.SCHEMA, port.create, port.update, port.delete, parse=port.parse),
    Handlers(security.GROUP_SCHEMA, security.create_group, security.update_group,
             security.delete_group, slow_delete=True),
    Handlers(security.RULE_SCHEMA, security.create_rule, None, security.delete_rule),
    Handlers(router.SCHEMA, router.create, router.update, router.delete),
    Handlers(floatingip.SCHEMA, floatingip.create, floatingip.update, floatingip.delete),
    Handlers(qos.POLICY_SCHEMA, qos.create_policy, qos.update_policy, qos.delete_policy,
             slow_delete=True, slow_update=True),  # unsharing looks at every port
    Handlers(agent.SCHEMA, None, agent.update, agent.delete, tags=False),
    Handlers(address_group.SCHEMA, address_group.create, address_group.update,
             address_group.delete, slow_delete=True),  # its delete looks at every rule
    Handlers(address_scope.SCHEMA, address_scope.create, address_scope.update,
             address_scope.delete),
    Handlers(subnetpool.SCHEMA, subnetpool.create, subnetpool.update, subnetpool.delete),
    Handlers(segment_range.SCHEMA, segment_range.create, segment_range.update,
             segment_range.delete),
    Handlers(default_sg_rule.SCHEMA, default_sg_rule.create, None, default_sg_rule.delete,
             tags=False),
    Handlers(trunk.SCHEMA, trunk.create, trunk.update, trunk.delete),
    Handlers(metering.LABEL_SCHEMA, metering.create_label, None, metering.delete_label,
             tags=False),
    Handlers(metering.RULE_SCHEMA, metering.create_rule, None, metering.delete_rule,
             tags=False),
    Handlers(logging.SCHEMA, logging.create, logging.update, logging.delete, tags=False),
    Handlers(rbac.SCHEMA, rbac.create, rbac.update, rbac.delete, tags=False,
             slow_delete=True, slow_update=True),  # its in-use checks may look at every port
)}
