"""Security groups and their rules, including each project's default group."""

from __future__ import annotations

import uuid
from typing import Any

from overcast.api import convert as cv
from overcast.api import grants, policy, quotas
from overcast.api.auth import Context
from overcast.api.errors import ApiError, Conflict, from_model_error
from overcast.api.kinds import address_group, rbac
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import keys, validate
from overcast.model.counters import HostCounters, summed
from overcast.model.problems import ModelError, Problem
from overcast.model.types import (
    DefaultSecurityGroupRule,
    NetworkLog,
    Port,
    SecurityGroup,
    SecurityGroupRule,
)


def _protocol(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"protocol '{value}' is not a string or number")
    value = value.lower()
    return None if value in ("any", "") else value


protocol = _protocol  # the template's rules take the same values


def _rule_extra(repo: Repo, rule: SecurityGroupRule, out: dict[str, Any]) -> None:
    net = (validate.normalized_prefix(rule.remote_ip_prefix)
           if rule.remote_ip_prefix is not None else None)
    out["normalized_cidr"] = str(net) if net is not None else None
    group = repo.get(SecurityGroup, rule.security_group_id)
    out["belongs_to_default_sg"] = group is not None and group.name == "default"
    hosts: list[dict[str, tuple[int, int]]] = repo.memo(
        "firewall_counters", lambda: HOST_COUNTERS.read(repo.peek(keys.firewall_counters())))
    out["overcast:packets"], out["overcast:bytes"] = summed(hosts, {rule.id})


HOST_COUNTERS = HostCounters()  # the firewall's


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
        Attr("remote_address_group_id", "remote_address_group_id", cv.optional(cv.to_uuidish),
             put=False),
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
    caller=grants.render_shared,
    caller_attrs=frozenset({"shared"}),
)


def ensure_default(repo: Repo, project_id: str) -> SecurityGroup:
    """The project's default group, made on first need with the template's
    rules for default groups (``default_sg_rule``; at first Neutron's four)."""
    for group in repo.where(SecurityGroup, project_id=project_id, name="default"):
        return group
    group = repo.save(SecurityGroup(id=repo.new_id(), project_id=project_id, name="default",
                                    description="Default security group"), new=True)
    _from_template(repo, group, default=True)
    return group


PARENT = "PARENT"  # a template rule's remote_group_id: the group being made
LEGACY_RULES = 4  # the template's first rules (``default_sg_rule.LEGACY``)


def legacy_id(index: int) -> str:
    """The id of one of the template's first rules (the same on every server)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"overcast.default-sg-rule.{index}"))


def _template_order(t: DefaultSecurityGroupRule) -> tuple[str, int, str]:
    """As made; the legacy rules in Neutron's order."""
    legacy = {legacy_id(i): i for i in range(LEGACY_RULES)}
    return (t.created_at, legacy.get(t.id, LEGACY_RULES), t.id)


def _from_template(repo: Repo, group: SecurityGroup, default: bool) -> None:
    """Neutron's _create_rules_from_template: the template's rules for this
    kind of group, "PARENT" naming the group itself."""
    for t in sorted(repo.all(DefaultSecurityGroupRule), key=_template_order):
        if not (t.used_in_default_sg if default else t.used_in_non_default_sg):
            continue
        remote = group.id if t.remote_group_id == PARENT else t.remote_group_id
        _add_rule(repo, group, t.direction, t.ethertype, protocol=t.protocol,
                  port_range_min=t.port_range_min, port_range_max=t.port_range_max,
                  remote_ip_prefix=t.remote_ip_prefix, remote_group_id=remote,
                  remote_address_group_id=t.remote_address_group_id)


def check_template_rule(rule: SecurityGroupRule) -> SecurityGroupRule:
    """A template rule as a rule of a group (canonical ICMP), or the 400 a
    rule like it gets (Neutron's _validate_base_security_group_rule_attributes)."""
    rule = _canonical_icmp(rule)
    invalid = [p for p in validate.check_rule(rule, ()) if p.kind != "conflict"]
    invalid += _neutron_problems(rule)
    if invalid:
        raise _refused(invalid, rule)
    return rule


def _add_rule(repo: Repo, group: SecurityGroup, direction: str, ethertype: str,
              **extra: Any) -> None:
    repo.save(SecurityGroupRule(id=repo.new_id(), project_id=group.project_id,
                                security_group_id=group.id, direction=direction,
                                ethertype=ethertype, **extra), new=True)


def _not_default(name: Any) -> None:
    """Neutron reserves the name 'default' (in any case) for the group it makes itself."""
    if isinstance(name, str) and name.lower() == "default":
        raise Conflict(f"Default security group already exists: name '{name}' is reserved "
                       "for the project's default group.",
                       type="SecurityGroupDefaultAlreadyExists")


def create_group(repo: Repo, ctx: Context, fields: dict[str, Any]) -> SecurityGroup:
    _not_default(fields.get("name"))
    group = repo.save(SecurityGroup(**fields), new=True)
    _from_template(repo, group, default=False)
    quotas.within(repo, group.project_id, "security_group_rule")  # its rules count too
    return group


def update_group(repo: Repo, ctx: Context, group: SecurityGroup,
                 fields: dict[str, Any]) -> SecurityGroup:
    if group.name == "default" and fields.get("name", "default") != "default":
        raise Conflict("Changing the name of the default security group is not allowed",
                       type="SecurityGroupCannotUpdateDefault")
    if group.name != "default":
        _not_default(fields.get("name"))
    if fields.get("stateful", group.stateful) != group.stateful and any(
            group.id in p.security_groups for p in repo.all(Port)):
        # Neutron's update_security_group: a port's groups are all stateful or none
        raise Conflict(f"Security Group {group.id} in use.", type="SecurityGroupInUse")
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
    for log in repo.where(NetworkLog, resource_id=group.id):  # Neutron's _clean_logs_by_resource_id
        repo.remove(log)
    rbac.forget(repo, group)
    repo.remove(group)


def create_rule(repo: Repo, ctx: Context, fields: dict[str, Any]) -> SecurityGroupRule:
    group = repo.must(SecurityGroup, fields["security_group_id"], GROUP_SCHEMA.visible(ctx, repo))
    fields.setdefault("ethertype", "IPv4")
    rule = _canonical_icmp(SecurityGroupRule(**fields))
    if rule.remote_group_id is not None:
        repo.must(SecurityGroup, rule.remote_group_id, GROUP_SCHEMA.visible(ctx, repo))
    address_group.check_usable(repo, ctx, rule.remote_address_group_id)
    alike = repo.view(SecurityGroupRule, "security_group_id", group.id, "by_key", RulesByKey)
    problems = validate.check_rule(rule, alike.like(rule))
    invalid = [p for p in problems if p.kind != "conflict"] + _neutron_problems(rule)
    if invalid:
        raise _refused(invalid, rule)
    if problems:
        raise Conflict(f"Security group rule already exists. Rule id is "
                       f"{problems[0].message.rsplit(' ', 1)[-1]}.",
                       type="SecurityGroupRuleExists")
    repo.save(group)  # Neutron's revises_on_change: a rule revises its group
    return repo.save(rule, new=True)


IPV6_PROTOCOLS = validate.IPV6_PROTOCOLS  # Neutron refuses them with ethertype IPv4


def _canonical_icmp(rule: SecurityGroupRule) -> SecurityGroupRule:
    """As Neutron: with ethertype IPv6, 'icmp' and 'icmpv6' are 'ipv6-icmp', 1 is 58
    (its securitygroups_db ``_make_canonical_ipv6_icmp_protocol``, which runs
    before every other check of the rule)."""
    if rule.ethertype != "IPv6" or rule.protocol not in ("icmp", "icmpv6", "1"):
        return rule
    return rule.replace(protocol="58" if rule.protocol == "1" else "ipv6-icmp")


def _neutron_problems(rule: SecurityGroupRule) -> list[Problem]:
    """What Neutron refuses beyond ``validate.check_rule``."""
    out = []
    if (rule.protocol in validate.ICMP_PROTOCOLS and rule.port_range_min is None
            and rule.port_range_max is not None):
        out.append(Problem("security_group_rule.port_range_min",
                           f"ICMP code (port_range_max) {rule.port_range_max} is given "
                           "without an ICMP type (port_range_min)"))
    if rule.protocol in validate.PORT_PROTOCOLS and (rule.port_range_min is None) != (
            rule.port_range_max is None):
        given, missing = (("port_range_min", "port_range_max") if rule.port_range_max is None
                          else ("port_range_max", "port_range_min"))
        out.append(Problem(f"security_group_rule.{missing}",
                           f"a {rule.protocol} port range needs both port_range_min and "
                           f"port_range_max ({given} is given alone)"))
    if rule.ethertype == "IPv4" and rule.protocol in IPV6_PROTOCOLS:
        out.append(Problem("security_group_rule.ethertype",
                           f"protocol {rule.protocol} is IPv6 only: ethertype IPv4 "
                           "does not fit it"))
    return out


def _refused(invalid: list[Problem], rule: SecurityGroupRule) -> ApiError:
    """The 400 for a refused rule: Neutron's error type for the first problem
    and, where Neutron has its own words for it, its text after the field's
    path (clients and tempest match "Invalid value for port -16")."""
    type_ = _neutron_type(invalid[0], rule)
    first = _neutron_text(type_, invalid[0], rule)
    return from_model_error(ModelError([first, *invalid[1:]] if first else invalid), type_)


def _neutron_type(problem: Problem, rule: SecurityGroupRule) -> str:
    """The error type Neutron gives for this refusal of a rule (the first problem's)."""
    field = problem.path.rsplit(".", 1)[-1]
    if field in ("port_range_min", "port_range_max"):
        return _port_type(rule)
    if field == "remote_ip_prefix" and rule.remote_ip_prefix is not None:
        valid = validate.normalized_prefix(rule.remote_ip_prefix) is not None
        return "SecurityGroupRuleParameterConflict" if valid else "InvalidCIDR"
    return {"protocol": "SecurityGroupRuleInvalidProtocol",
            "remote_group_id": "SecurityGroupRemoteGroupAndRemoteIpPrefix",
            "remote_address_group_id": "SecurityGroupMultipleRemoteEntites",
            "ethertype": "SecurityGroupEthertypeConflictWithProtocol"}.get(field,
                                                                            "HTTPBadRequest")


def _port_type(rule: SecurityGroupRule) -> str:
    """The error type of a refused port range, in the order of Neutron's checks."""
    lo, hi, proto = rule.port_range_min, rule.port_range_max, rule.protocol
    if _wild_ports(rule):  # Neutron's converter, before the protocol is looked at
        return "SecurityGroupInvalidPortValue"
    if proto is None:
        return "SecurityGroupProtocolRequiredWithPorts"
    if proto in validate.ICMP_PROTOCOLS:
        return "SecurityGroupMissingIcmpType" if lo is None else "SecurityGroupInvalidIcmpValue"
    if proto not in validate.PORT_PROTOCOLS:
        return "SecurityGroupInvalidProtocolForPort"
    return "SecurityGroupInvalidPortValue" if 0 in (lo, hi) else "SecurityGroupInvalidPortRange"


def _wild_ports(rule: SecurityGroupRule) -> list[tuple[str, int]]:
    """The port fields outside 0-65535, which no protocol takes."""
    return [(name, v) for name, v in (("port_range_min", rule.port_range_min),
                                      ("port_range_max", rule.port_range_max))
            if v is not None and not 0 <= v <= 65535]


def _neutron_text(type_: str, problem: Problem, rule: SecurityGroupRule) -> Problem | None:
    """Neutron's message for this error type of a rule (its securitygroup
    extension's), on the field it is about; None: the model's own words."""
    lo, hi, path = rule.port_range_min, rule.port_range_max, "security_group_rule."
    if type_ == "SecurityGroupInvalidPortValue":
        wild = _wild_ports(rule) or [("port_range_min" if lo == 0 else "port_range_max", 0)]
        return Problem(path + wild[0][0], f"Invalid value for port {wild[0][1]}.")
    if type_ == "SecurityGroupInvalidPortRange":
        return Problem(problem.path,
                       "For TCP/UDP protocols, port_range_min must be <= port_range_max")
    if type_ == "SecurityGroupMissingIcmpType":
        return Problem(problem.path, f"ICMP code (port-range-max) {hi} is provided "
                       "but ICMP type (port-range-min) is missing.")
    if type_ == "SecurityGroupRuleParameterConflict":
        return Problem(problem.path, f"Conflicting value ethertype {rule.ethertype} "
                       f"for CIDR {rule.remote_ip_prefix}")
    for name, field, value in (("port_range_min", "type", lo), ("port_range_max", "code", hi)):
        if type_ == "SecurityGroupInvalidIcmpValue" and value is not None and not 0 <= value <= 255:
            return Problem(path + name, f"Invalid value for ICMP {field} ({name}) {value}. "
                           "It must be 0 to 255.")
    return None


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
    group = repo.get(SecurityGroup, rule.security_group_id)
    if group is not None:
        repo.save(group)
