"""Security groups and their rules, including each project's default group."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api import policy
from overcast.api.auth import Context
from overcast.api.errors import Conflict
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import validate
from overcast.model.problems import ModelError
from overcast.model.types import Port, SecurityGroup, SecurityGroupRule


def _protocol(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"protocol '{value}' is not a string or number")
    value = value.lower()
    return None if value in ("any", "") else value


def _rule_extra(repo: Repo, rule: SecurityGroupRule, out: dict[str, Any]) -> None:
    out["remote_address_group_id"] = None
    net = (validate.normalized_prefix(rule.remote_ip_prefix)
           if rule.remote_ip_prefix is not None else None)
    out["normalized_cidr"] = str(net) if net is not None else None
    group = repo.get(SecurityGroup, rule.security_group_id)
    out["belongs_to_default_sg"] = group is not None and group.name == "default"


RULE_SCHEMA = Schema(
    SecurityGroupRule, "security_group_rule", "security_group_rules",
    "/v2.0/security-group-rules",
    (
        Attr("security_group_id", "security_group_id", cv.to_uuidish, put=False, required=True),
        Attr("direction", "direction", cv.one_of("ingress", "egress"), put=False, required=True),
        Attr("ethertype", "ethertype", cv.one_of("IPv4", "IPv6"), put=False),
        Attr("protocol", "protocol", _protocol, put=False),
        Attr("port_range_min", "port_range_min", cv.optional(cv.to_int), put=False),
        Attr("port_range_max", "port_range_max", cv.optional(cv.to_int), put=False),
        Attr("remote_ip_prefix", "remote_ip_prefix", cv.optional(cv.to_str(64)), put=False),
        Attr("remote_group_id", "remote_group_id", cv.optional(cv.to_uuidish), put=False),
    ),
    extra=_rule_extra,
)


def _group_extra(repo: Repo, group: SecurityGroup, out: dict[str, Any]) -> None:
    out["security_group_rules"] = [
        RULE_SCHEMA.render(repo, r)
        for r in sorted(repo.where(SecurityGroupRule, security_group_id=group.id), key=_rule_order)]
    out["shared"] = False


def _rule_order(rule: SecurityGroupRule) -> tuple[str, str, str]:
    return (rule.direction, rule.ethertype, rule.id)


GROUP_SCHEMA = Schema(
    SecurityGroup, "security_group", "security_groups", "/v2.0/security-groups",
    (stored("stateful", cv.to_bool),),
    extra=_group_extra,
)


def ensure_default(repo: Repo, project_id: str) -> SecurityGroup:
    """The project's default group, made on first need with Neutron's default rules."""
    for group in repo.where(SecurityGroup, project_id=project_id, name="default"):
        return group
    group = repo.save(SecurityGroup(id=repo.new_id(), project_id=project_id, name="default",
                                    description="Default security group"), new=True)
    for ethertype in ("IPv4", "IPv6"):
        _add_rule(repo, group, "egress", ethertype)
        _add_rule(repo, group, "ingress", ethertype, remote_group_id=group.id)
    return group


def _add_rule(repo: Repo, group: SecurityGroup, direction: str, ethertype: str,
              **extra: Any) -> None:
    repo.save(SecurityGroupRule(id=repo.new_id(), project_id=group.project_id,
                                security_group_id=group.id, direction=direction,
                                ethertype=ethertype, **extra), new=True)


def create_group(repo: Repo, ctx: Context, fields: dict[str, Any]) -> SecurityGroup:
    group = repo.save(SecurityGroup(**fields), new=True)
    for ethertype in ("IPv4", "IPv6"):
        _add_rule(repo, group, "egress", ethertype)
    return group


def update_group(repo: Repo, ctx: Context, group: SecurityGroup,
                 fields: dict[str, Any]) -> SecurityGroup:
    if group.name == "default" and fields.get("name", "default") != "default":
        raise Conflict("Changing the name of the default security group is not allowed",
                       type="SecurityGroupCannotUpdateDefault")
    return repo.save(group.replace(**fields))


def delete_group(repo: Repo, ctx: Context, group: SecurityGroup) -> None:
    if group.name == "default" and not ctx.is_admin:
        raise Conflict("Insufficient rights for removing default security group.",
                       type="SecurityGroupCannotRemoveDefault")
    users = [p for p in repo.all(Port) if group.id in p.security_groups]
    if users:
        seen = policy.named(ctx, "port", users)
        raise Conflict(f"Security Group {group.id} in use"
                       f"{' by port(s) ' + ', '.join(seen) if seen else ''}.",
                       type="SecurityGroupInUse")
    for rule in repo.where(SecurityGroupRule, security_group_id=group.id):
        repo.remove(rule)
    repo.remove(group)


def create_rule(repo: Repo, ctx: Context, fields: dict[str, Any]) -> SecurityGroupRule:
    group = repo.must(SecurityGroup, fields["security_group_id"], GROUP_SCHEMA.visible(ctx))
    fields.setdefault("ethertype", "IPv4")
    rule = SecurityGroupRule(**fields)
    if rule.remote_group_id is not None:
        repo.must(SecurityGroup, rule.remote_group_id, GROUP_SCHEMA.visible(ctx))
    alike = repo.view(SecurityGroupRule, "security_group_id", group.id, "by_key", RulesByKey)
    problems = validate.check_rule(rule, alike.like(rule))
    if problems:
        if any(p.kind == "conflict" for p in problems):
            raise Conflict(f"Security group rule already exists. Rule id is "
                           f"{problems[0].message.rsplit(' ', 1)[-1]}.",
                           type="SecurityGroupRuleExists")
        raise ModelError(problems)
    return repo.save(rule, new=True)


class RulesByKey:
    """A group's rules by what makes two rules the same (``validate.rule_key``),
    kept current by the transaction (``Repo.view``): a bulk create compares
    each new rule with its likes only, not with every rule of the group."""

    def __init__(self, rules: list[SecurityGroupRule]) -> None:
        self._by_key: dict[tuple[object, ...], dict[str, SecurityGroupRule]] = {}
        for rule in rules:
            self.add(rule)

    def like(self, rule: SecurityGroupRule) -> list[SecurityGroupRule]:
        return list(self._by_key.get(validate.rule_key(rule), {}).values())

    def add(self, rule: SecurityGroupRule) -> None:
        self._by_key.setdefault(validate.rule_key(rule), {})[rule.id] = rule

    def discard(self, rule: SecurityGroupRule) -> None:
        self._by_key.get(validate.rule_key(rule), {}).pop(rule.id, None)


def delete_rule(repo: Repo, ctx: Context, rule: SecurityGroupRule) -> None:
    repo.remove(rule)
