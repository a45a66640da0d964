"""QoS policies and their bandwidth limit rules (one per direction)."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api import policy as policies
from overcast.api.auth import Context
from overcast.api.errors import Conflict
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
)


def check_usable(repo: Repo, ctx: Context, policy_id: str | None) -> None:
    """A network or port may name a QoS policy the caller may see (its own or
    a shared one); another project's private policy is as if there were none."""
    if policy_id is not None:
        repo.must(QosPolicy, policy_id, POLICY_SCHEMA.visible(ctx))


def create_policy(repo: Repo, ctx: Context, fields: dict[str, Any]) -> QosPolicy:
    return repo.save(QosPolicy(**fields), new=True)


def update_policy(repo: Repo, ctx: Context, policy: QosPolicy,
                  fields: dict[str, Any]) -> QosPolicy:
    return repo.save(policy.replace(**fields))


def delete_policy(repo: Repo, ctx: Context, policy: QosPolicy) -> None:
    ports = [p for p in repo.all(Port) if p.qos_policy_id == policy.id]
    nets = [n for n in repo.all(Network) if n.qos_policy_id == policy.id]
    if ports or nets:
        seen = [*policies.named(ctx, "port", ports), *policies.named(ctx, "network", nets)]
        named = f" by {', '.join(seen[:5])}" if seen else ""
        raise Conflict(f"QoS Policy {policy.id} is in use{named}.", type="QosPolicyInUse")
    for rule in repo.where(BandwidthLimitRule, policy_id=policy.id):
        repo.remove(rule)
    repo.remove(policy)


def create_rule(repo: Repo, ctx: Context, policy: QosPolicy,
                fields: dict[str, Any]) -> BandwidthLimitRule:
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
    new = rule.replace(**fields)
    _check_direction(repo, new)
    return repo.save(new)


def delete_rule(repo: Repo, ctx: Context, rule: BandwidthLimitRule) -> None:
    repo.remove(rule)
