"""QoS policies and their bandwidth limit rules (one per direction)."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import Conflict, Forbidden
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model.types import BandwidthLimitRule, Network, Port, QosPolicy


def _rule_extra(repo: Repo, rule: BandwidthLimitRule, out: dict[str, Any]) -> None:
    out["type"] = "bandwidth_limit"
    out["qos_policy_id"] = rule.policy_id


RULE_SCHEMA = Schema(
    BandwidthLimitRule, "bandwidth_limit_rule", "bandwidth_limit_rules",
    "/v2.0/qos/policies/{parent_id}/bandwidth_limit_rules",
    (
        Attr("max_kbps", "max_kbps", cv.int_range(0, 2**31 - 1), required=True),
        Attr("max_burst_kbps", "max_burst_kbps", cv.int_range(0, 2**31 - 1)),
        Attr("direction", "direction", cv.one_of("egress", "ingress")),
    ),
    extra=_rule_extra,
)


def _policy_extra(repo: Repo, policy: QosPolicy, out: dict[str, Any]) -> None:
    out["rules"] = [RULE_SCHEMA.render(repo, r) for r in repo.all(BandwidthLimitRule)
                    if r.policy_id == policy.id]


POLICY_SCHEMA = Schema(
    QosPolicy, "policy", "policies", "/v2.0/qos/policies",
    (stored("shared", cv.to_bool), stored("is_default", cv.to_bool)),
    extra=_policy_extra,
    shared_field="shared",
)


def create_policy(repo: Repo, ctx: Context, fields: dict[str, Any]) -> QosPolicy:
    return repo.save(QosPolicy(**fields), new=True)


def update_policy(repo: Repo, ctx: Context, policy: QosPolicy,
                  fields: dict[str, Any]) -> QosPolicy:
    if not ctx.owns(policy.project_id):
        raise Forbidden(f"Only the owner of QoS policy {policy.id} may change it")
    return repo.save(policy.replace(**fields))


def delete_policy(repo: Repo, ctx: Context, policy: QosPolicy) -> None:
    if not ctx.owns(policy.project_id):
        raise Forbidden(f"Only the owner of QoS policy {policy.id} may delete it")
    users = ([p.id for p in repo.all(Port) if p.qos_policy_id == policy.id]
             + [n.id for n in repo.all(Network) if n.qos_policy_id == policy.id])
    if users:
        raise Conflict(f"QoS Policy {policy.id} is used by {', '.join(sorted(users)[:5])}.",
                       type="QosPolicyInUse")
    for rule in repo.where(BandwidthLimitRule, policy_id=policy.id):
        repo.remove(rule)
    repo.remove(policy)


def create_rule(repo: Repo, ctx: Context, policy: QosPolicy,
                fields: dict[str, Any]) -> BandwidthLimitRule:
    if not ctx.owns(policy.project_id):
        raise Forbidden(f"Only the owner of QoS policy {policy.id} may add rules")
    fields = {**fields, "policy_id": policy.id, "project_id": policy.project_id}
    rule = BandwidthLimitRule(**fields)
    _check_direction(repo, rule)
    return repo.save(rule, new=True)


def _check_direction(repo: Repo, rule: BandwidthLimitRule) -> None:
    for other in repo.where(BandwidthLimitRule, policy_id=rule.policy_id):
        if other.id != rule.id and other.direction == rule.direction:
            raise Conflict(f"Rule bandwidth_limit already exists for direction "
                           f"{rule.direction} in QoS policy {rule.policy_id}.",
                           type="QoSRulesConflict")


def update_rule(repo: Repo, ctx: Context, rule: BandwidthLimitRule,
                fields: dict[str, Any]) -> BandwidthLimitRule:
    if not ctx.owns(rule.project_id):
        raise Forbidden(f"Only the owner of QoS rule {rule.id} may change it")
    new = rule.replace(**fields)
    _check_direction(repo, new)
    return repo.save(new)


def delete_rule(repo: Repo, ctx: Context, rule: BandwidthLimitRule) -> None:
    if not ctx.owns(rule.project_id):
        raise Forbidden(f"Only the owner of QoS rule {rule.id} may delete it")
    repo.remove(rule)
