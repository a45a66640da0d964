"""QoS policies and their rules: bandwidth limits and minimum bandwidths (one
per direction) and DSCP marking (one per policy), with Neutron's checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overcast.api import convert as cv
from overcast.api import grants
from overcast.api import policy as policies
from overcast.api.auth import Context
from overcast.api.errors import Conflict
from overcast.api.kinds import rbac
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model.types import (
    BandwidthLimitRule,
    DscpMarkingRule,
    MinimumBandwidthRule,
    Network,
    Port,
    QosPolicy,
    Resource,
)

KBPS = (0, 2**31 - 1)  # Neutron's DB_INTEGER_MAX_VALUE
DIRECTIONS = ("egress", "ingress")
# Neutron's VALID_DSCP_MARKS: 0 and the even marks from 8 to 56 but 42, 44, 50, 52, 54
DSCP_MARKS = (0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 46, 48, 56)
_one_mark = cv.one_of(*DSCP_MARKS)


def _dscp_mark(value: Any) -> int:
    mark: int = _one_mark(cv.to_int(value))
    return mark


def _rule_extra(rule_type: str) -> Callable[[Repo, Any, dict[str, Any]], None]:
    def extra(repo: Repo, rule: Any, out: dict[str, Any]) -> None:
        out["type"] = rule_type
        out["qos_policy_id"] = rule.policy_id
    return extra


def _rule_schema(cls: type[Resource], rule_type: str, attrs: tuple[Attr, ...]) -> Schema:
    return Schema(cls, f"{rule_type}_rule", f"{rule_type}_rules",
                  f"/v2.0/qos/policies/{{parent_id}}/{rule_type}_rules", attrs,
                  extra=_rule_extra(rule_type))


RULE_SCHEMA = _rule_schema(BandwidthLimitRule, "bandwidth_limit", (
    Attr("max_kbps", "max_kbps", cv.int_range(*KBPS), required=True),
    Attr("max_burst_kbps", "max_burst_kbps", cv.int_range(*KBPS)),
    Attr("direction", "direction", cv.one_of(*DIRECTIONS)),
))
DSCP_SCHEMA = _rule_schema(DscpMarkingRule, "dscp_marking", (
    Attr("dscp_mark", "dscp_mark", _dscp_mark, required=True),
))
MIN_BW_SCHEMA = _rule_schema(MinimumBandwidthRule, "minimum_bandwidth", (
    Attr("min_kbps", "min_kbps", cv.int_range(*KBPS), required=True),
    Attr("direction", "direction", cv.one_of(*DIRECTIONS)),
))


@dataclass(frozen=True)
class RuleKind:
    """One type of QoS rule: its schema, and the fields two rules of one
    policy may not share (Neutron's ``duplicates``: none for DSCP, so one
    such rule per policy)."""

    rule_type: str  # "bandwidth_limit"
    schema: Schema
    unique_by: tuple[str, ...]

    @property
    def cls(self) -> type[Any]:
        return self.schema.cls


RULE_KINDS: tuple[RuleKind, ...] = (
    RuleKind("bandwidth_limit", RULE_SCHEMA, ("direction",)),
    RuleKind("dscp_marking", DSCP_SCHEMA, ()),
    RuleKind("minimum_bandwidth", MIN_BW_SCHEMA, ("direction",)),
)
RULE_TYPES = tuple(k.rule_type for k in RULE_KINDS)
RULE_KIND = {k.rule_type: k for k in RULE_KINDS}


def rules_of(repo: Repo, policy_id: str) -> list[Any]:
    """Every rule of a policy, of every type, type by type."""
    return [r for kind in RULE_KINDS for r in repo.all(kind.cls) if r.policy_id == policy_id]


def _policy_extra(repo: Repo, policy: QosPolicy, out: dict[str, Any]) -> None:
    if repo.bulk:  # a listing: every policy's rules from one pass over the rules
        by_policy: dict[str, list[Any]] = repo.memo("qos_rules", lambda: _by_policy(repo))
        rules = by_policy.get(policy.id, [])
    else:
        rules = rules_of(repo, policy.id)
    out["rules"] = [RULE_KIND[_type_of(r)].schema.render(repo, r) for r in rules]


def _by_policy(repo: Repo) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for kind in RULE_KINDS:
        for rule in repo.all(kind.cls):
            out.setdefault(rule.policy_id, []).append(rule)
    return out


def _type_of(rule: Resource) -> str:
    return next(k.rule_type for k in RULE_KINDS if isinstance(rule, k.cls))


POLICY_SCHEMA = Schema(
    QosPolicy, "policy", "policies", "/v2.0/qos/policies",
    (stored("shared", cv.to_bool), stored("is_default", cv.to_bool)),
    extra=_policy_extra,
    caller=grants.render_shared,
    caller_attrs=frozenset({"shared"}),
)


def check_usable(repo: Repo, ctx: Context, policy_id: str | None) -> None:
    """A network or port may name a QoS policy the caller may see (its own or
    a shared one); another project's private policy is as if there were none."""
    if policy_id is not None:
        repo.must(QosPolicy, policy_id, POLICY_SCHEMA.visible(ctx, repo))


def project_default(repo: Repo, project_id: str) -> str | None:
    """Neutron's qos-default: the policy (``is_default``) a project's new
    network takes when it names none."""
    return next((p.id for p in repo.all(QosPolicy)
                 if p.is_default and p.project_id == project_id), None)


def _one_default(repo: Repo, policy: QosPolicy) -> None:
    """A project has one default policy at most (QoSPolicyDefaultAlreadyExists)."""
    if policy.is_default and project_default(repo, policy.project_id) not in (None, policy.id):
        raise Conflict(f"A default QoS policy exists for project {policy.project_id}.",
                       type="QoSPolicyDefaultAlreadyExists")


def create_policy(repo: Repo, ctx: Context, fields: dict[str, Any]) -> QosPolicy:
    policy = QosPolicy(**fields)
    _one_default(repo, policy)
    made = repo.save(policy, new=True)
    if made.shared:  # Neutron's: shared is a wildcard RBAC policy
        rbac.grant_all(repo, made, rbac.SHARED)
    return made


def update_policy(repo: Repo, ctx: Context, policy: QosPolicy,
                  fields: dict[str, Any]) -> QosPolicy:
    new = policy.replace(**fields)
    _one_default(repo, new)
    if new.shared and not policy.shared:
        rbac.grant_all(repo, policy, rbac.SHARED)
    elif policy.shared and not new.shared:
        rbac.revoke_all(repo, policy, rbac.SHARED)
    return repo.save(new)


def delete_policy(repo: Repo, ctx: Context, policy: QosPolicy) -> None:
    ports = [p for p in repo.all(Port) if p.qos_policy_id == policy.id]
    nets = [n for n in repo.all(Network) if n.qos_policy_id == policy.id]
    if ports or nets:
        seen = [*policies.named(ctx, "port", ports), *policies.named(ctx, "network", nets)]
        named = f" by {', '.join(seen[:5])}" if seen else ""
        raise Conflict(f"QoS Policy {policy.id} is in use{named}.", type="QosPolicyInUse")
    for rule in rules_of(repo, policy.id):
        repo.remove(rule)
    rbac.forget(repo, policy)
    repo.remove(policy)


# rules ---------------------------------------------------------------------------
# A rule's change is a change of its policy (Neutron's rule models revise
# their policy on change): the policy's revision_number and updated_at move.
def create_rule(repo: Repo, ctx: Context, kind: RuleKind, policy: QosPolicy,
                fields: dict[str, Any]) -> Any:
    fields = {**fields, "policy_id": policy.id, "project_id": policy.project_id}
    rule = kind.cls(**fields)
    _check(repo, kind, rule)
    made = repo.save(rule, new=True)
    repo.save(policy)
    return made


def update_rule(repo: Repo, ctx: Context, kind: RuleKind, rule: Any,
                fields: dict[str, Any]) -> Any:
    new = rule.replace(**fields)
    _check(repo, kind, new)
    saved = repo.save(new)
    _revise(repo, rule.policy_id)
    return saved


def delete_rule(repo: Repo, ctx: Context, kind: RuleKind, rule: Any) -> None:
    repo.remove(rule)
    _revise(repo, rule.policy_id)


def _revise(repo: Repo, policy_id: str) -> None:
    policy = repo.get(QosPolicy, policy_id)
    if policy is not None:
        repo.save(policy)


def _check(repo: Repo, kind: RuleKind, rule: Any) -> None:
    """Neutron's two checks: no rule of the same type with the same unique
    fields (QoSRulesConflict), and no minimum above a limit in the same
    direction (QoSRuleParameterConflict)."""
    for other in repo.all(kind.cls):
        if other.policy_id == rule.policy_id and other.id != rule.id and all(
                getattr(other, f) == getattr(rule, f) for f in kind.unique_by):
            raise Conflict(f"Rule {kind.rule_type} conflicts with rule {other.id} which already "
                           f"exists in QoS Policy {rule.policy_id}.", type="QoSRulesConflict")
    if isinstance(rule, BandwidthLimitRule):
        for low in repo.all(MinimumBandwidthRule):
            if (low.policy_id == rule.policy_id and low.direction == rule.direction
                    and low.min_kbps > rule.max_kbps):
                raise _parameter_conflict(rule.max_kbps, rule.policy_id, "minimum_bandwidth",
                                          low.min_kbps)
    if isinstance(rule, MinimumBandwidthRule):
        for high in repo.all(BandwidthLimitRule):
            if (high.policy_id == rule.policy_id and high.direction == rule.direction
                    and high.max_kbps < rule.min_kbps):
                raise _parameter_conflict(rule.min_kbps, rule.policy_id, "bandwidth_limit",
                                          high.max_kbps)


def _parameter_conflict(value: int, policy_id: str, existing: str, has: int) -> Conflict:
    return Conflict(f"Unable to add the rule with value {value} to the policy {policy_id} as "
                    f"the existing rule of type {existing} has value {has}.",
                    type="QoSRuleParameterConflict")


# rule types ----------------------------------------------------------------------
# what each type needs of a host's kernel (linux/features.py's names); egress
# (from the VM) goes through the tap's ingress, redirected to an ifb device
# minimum bandwidth: guaranteed shares on the uplink the agent was told of (--qos-uplink)
NEEDS = {"bandwidth_limit": ("tc_htb",), "dscp_marking": ("nft_bridge",),
         "minimum_bandwidth": ("tc_htb", "qos_uplink")}
EGRESS_NEEDS = ("tc_ingress", "ifb", "tc_mirred")


def has_feature(features: dict[str, Any], name: str) -> bool:
    """Whether a host's registered features include ``name``: the agent
    writes ``{name: {"available": bool, ...}}``; a plain bool is read as
    such, and a feature the host does not name (an older agent, a failed
    probe) counts as there."""
    value = features.get(name, True)
    if isinstance(value, dict):
        return bool(value.get("available", True))
    return bool(value)


def _all_have(hosts: list[dict[str, Any]], names: tuple[str, ...]) -> bool:
    return all(has_feature(h, n) for h in hosts for n in names)


def supported_types(hosts: list[dict[str, Any]]) -> list[str]:
    """The rule types every registered host's kernel can realize (every type
    while no host is registered)."""
    return [t for t in RULE_TYPES if _all_have(hosts, NEEDS[t])]


def rule_type_details(rule_type: str, hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """Neutron's qos-rule-type-details body: the one driver (Overcast) with
    the parameters it takes, or no driver where some host cannot realize it."""
    if rule_type not in supported_types(hosts):
        return {"type": rule_type, "drivers": []}
    directions = ["ingress", *(["egress"] if _all_have(hosts, EGRESS_NEEDS) else [])]
    kbps = {"start": KBPS[0], "end": KBPS[1]}
    params: dict[str, list[dict[str, Any]]] = {
        "bandwidth_limit": [_range("max_kbps", kbps), _range("max_burst_kbps", kbps),
                            _choices("direction", directions)],
        "dscp_marking": [_choices("dscp_mark", list(DSCP_MARKS))],
        # only what a VM sends is guaranteed (what it receives is queued elsewhere)
        "minimum_bandwidth": [_range("min_kbps", kbps), _choices("direction", ["egress"])],
    }
    return {"type": rule_type,
            "drivers": [{"name": "overcast", "supported_parameters": params[rule_type]}]}


def _range(name: str, values: dict[str, int]) -> dict[str, Any]:
    return {"parameter_name": name, "parameter_type": "range", "parameter_values": values}


def _choices(name: str, values: list[Any]) -> dict[str, Any]:
    return {"parameter_name": name, "parameter_type": "choices", "parameter_values": values}
