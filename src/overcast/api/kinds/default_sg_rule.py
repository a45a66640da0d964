"""The template of security group rules (Neutron's
security-groups-default-rules, /v2.0/default-security-group-rules): the rules
every new security group starts with, the operator's to change.  A template
rule is for the projects' default groups (``used_in_default_sg``), for the
groups projects make (``used_in_non_default_sg``), or both; its
``remote_group_id`` may be "PARENT", the group being made.

At first the template holds Neutron's four legacy rules (the rules groups
had before there was a template): egress IPv4 and IPv6 for every group,
ingress IPv4 and IPv6 from the group itself for default groups.  An operator
who deletes them all gets groups without rules, as in Neutron.  Changing the
template changes only the groups made afterwards."""

from __future__ import annotations

import uuid
from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import Conflict
from overcast.api.kinds import security
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import keys, validate
from overcast.model.types import DefaultSecurityGroupRule, SecurityGroupRule

PARENT = security.PARENT
legacy_id = security.legacy_id
LEGACY = (  # (direction, ethertype, remote_group_id, used in default groups only)
    ("egress", "IPv4", None, False),
    ("ingress", "IPv4", PARENT, True),
    ("egress", "IPv6", None, False),
    ("ingress", "IPv6", PARENT, True),
)
assert len(LEGACY) == security.LEGACY_RULES
DESCRIPTIONS = {"ingress": "Legacy default SG rule for ingress traffic",
                "egress": "Legacy default SG rule for egress traffic"}


def _remote_group(value: Any) -> str | None:
    """"PARENT" or a group's UUID (Neutron takes anything; a new group's rule
    needs a group)."""
    if value is None or value == PARENT:
        return value  # type: ignore[no-any-return]
    return cv.to_uuid(value)


SCHEMA = Schema(
    DefaultSecurityGroupRule, "default_security_group_rule", "default_security_group_rules",
    "/v2.0/default-security-group-rules",
    (
        stored("description", cv.to_str(255), put=False),
        Attr("remote_group_id", "remote_group_id", _remote_group, put=False),
        Attr("remote_address_group_id", "remote_address_group_id",
             cv.optional(cv.to_uuidish), put=False),
        Attr("direction", "direction", cv.one_of("ingress", "egress"), put=False,
             required=True),
        Attr("protocol", "protocol", security.protocol, put=False),
        Attr("port_range_min", "port_range_min", cv.optional(cv.to_int), put=False),
        Attr("port_range_max", "port_range_max", cv.optional(cv.to_int), put=False),
        Attr("ethertype", "ethertype", cv.one_of("IPv4", "IPv6"), put=False),
        Attr("remote_ip_prefix", "remote_ip_prefix", cv.optional(cv.to_str(64)), put=False),
        stored("used_in_default_sg", cv.to_bool, put=False, required=True),
        stored("used_in_non_default_sg", cv.to_bool, put=False, required=True),
    ),
    # not a project's: no project_id shown (tenant_id is accepted, as Neutron's, and kept)
    common=(Attr("id", "id", cv.to_uuid, post=False, put=False),
            Attr("tenant_id", "project_id", cv.to_str(255), put=False, render=False),
            Attr("created_at", "created_at", post=False, put=False),
            Attr("updated_at", "updated_at", post=False, put=False),
            Attr("revision_number", "revision_number", post=False, put=False)),
)


def _as_rule(t: DefaultSecurityGroupRule) -> SecurityGroupRule:
    """The rule a template rule makes (in no group; "PARENT" as a group of its own)."""
    return SecurityGroupRule(
        id=t.id, direction=t.direction, ethertype=t.ethertype, protocol=t.protocol,
        port_range_min=t.port_range_min, port_range_max=t.port_range_max,
        remote_ip_prefix=t.remote_ip_prefix,
        remote_group_id=(str(uuid.UUID(int=0)) if t.remote_group_id == PARENT
                         else t.remote_group_id),
        remote_address_group_id=t.remote_address_group_id)


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> DefaultSecurityGroupRule:
    fields.setdefault("ethertype", "IPv4")
    made = DefaultSecurityGroupRule(**fields)
    rule = security.check_template_rule(_as_rule(made))
    made = made.replace(protocol=rule.protocol)
    key = validate.rule_key(_as_rule(made))
    for other in repo.all(DefaultSecurityGroupRule):
        both = ((made.used_in_default_sg and other.used_in_default_sg)
                or (made.used_in_non_default_sg and other.used_in_non_default_sg))
        if both and validate.rule_key(_as_rule(other)) == key:
            raise Conflict(f"Default Security group rule already exists. Rule id is "
                           f"{other.id}.", type="DefaultSecurityGroupRuleExists")
    return repo.save(made, new=True)


def delete(repo: Repo, ctx: Context, rule: DefaultSecurityGroupRule) -> None:
    repo.remove(rule)


def ensure_template(repo: Repo) -> None:
    """Neutron's legacy rules, once for a store that never had a template."""
    if repo.get_json(keys.DEFAULT_SG_TEMPLATE) is not None:
        return
    for i, (direction, ethertype, remote, default_only) in enumerate(LEGACY):
        repo.save(DefaultSecurityGroupRule(
            id=legacy_id(i), direction=direction, ethertype=ethertype, remote_group_id=remote,
            description=DESCRIPTIONS[direction], used_in_default_sg=True,
            used_in_non_default_sg=not default_only), new=True)
    repo.put_json(keys.DEFAULT_SG_TEMPLATE, True)
