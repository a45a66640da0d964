"""Metering labels and their rules (Neutron's metering): what traffic of a
project's routers to count, by direction and remote prefix, or not to count
(``excluded``).  A shared label counts on every project's routers.  Labels
and rules are the operator's to make (Neutron's policy); neither changes
once made.

What the routers counted is shown on each rule and label as
``overcast:packets`` and ``overcast:bytes``: the sums of what every host's
agent wrote (``keys.metering_counters``; a label's: of its rules).
Neutron's metering agent sends its counts as notifications instead; a
client that does not know the attributes ignores them."""

from __future__ import annotations

import ipaddress
from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.errors import Conflict
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import keys
from overcast.model.counters import HostCounters, summed
from overcast.model.types import MeteringLabel, MeteringLabelRule

DIRECTIONS = ("ingress", "egress")
_OWNER = (
    Attr("id", "id", cv.to_uuid, put=False),
    Attr("project_id", "project_id", cv.to_str(255), put=False),
    Attr("tenant_id", "project_id", cv.to_str(255), put=False),
)


COUNTERS = HostCounters()


def _counted(repo: Repo) -> list[dict[str, tuple[int, int]]]:
    return repo.memo("metering_counters",  # type: ignore[no-any-return]
                     lambda: COUNTERS.read(repo.peek(keys.metering_counters())))


def _rule_extra(repo: Repo, rule: MeteringLabelRule, out: dict[str, Any]) -> None:
    out["overcast:packets"], out["overcast:bytes"] = summed(_counted(repo), {rule.id})


def _label_extra(repo: Repo, label: MeteringLabel, out: dict[str, Any]) -> None:
    hosts = _counted(repo)
    rules = {r.id for r in repo.all(MeteringLabelRule) if r.metering_label_id == label.id} \
        if any(hosts) else set()
    out["overcast:packets"], out["overcast:bytes"] = summed(hosts, rules)


def _shared_label(repo: Repo, label_id: str) -> bool:
    found = repo.get(MeteringLabel, label_id)
    return found is not None and found.shared


def _label_caller(ctx: Context, repo: Repo, label: MeteringLabel, out: dict[str, Any]) -> None:
    """A shared label counts every project's routers: its counts are an
    admin's to read (its own project's members see the label, not them)."""
    if label.shared and not ctx.is_admin:
        out.pop("overcast:packets", None)
        out.pop("overcast:bytes", None)


def _rule_caller(ctx: Context, repo: Repo, rule: MeteringLabelRule, out: dict[str, Any]) -> None:
    if not ctx.is_admin and _shared_label(repo, rule.metering_label_id):
        out.pop("overcast:packets", None)
        out.pop("overcast:bytes", None)


LABEL_SCHEMA = Schema(
    MeteringLabel, "metering_label", "metering_labels", "/v2.0/metering/metering-labels",
    (
        stored("name", cv.to_str(255), put=False),
        stored("description", cv.to_str(255), put=False),
        stored("shared", cv.to_bool, put=False),
    ),
    extra=_label_extra,
    caller=_label_caller,
    common=_OWNER,
)
RULE_SCHEMA = Schema(
    MeteringLabelRule, "metering_label_rule", "metering_label_rules",
    "/v2.0/metering/metering-label-rules",
    (
        Attr("metering_label_id", "metering_label_id", cv.to_uuidish, put=False,
             required=True),
        Attr("direction", "direction", cv.one_of(*DIRECTIONS), put=False, required=True),
        Attr("excluded", "excluded", cv.to_bool, put=False),
        Attr("remote_ip_prefix", "remote_ip_prefix", cv.to_cidr, put=False, required=True),
    ),
    extra=_rule_extra,
    caller=_rule_caller,
    common=_OWNER,
)


def create_label(repo: Repo, ctx: Context, fields: dict[str, Any]) -> MeteringLabel:
    return repo.save(MeteringLabel(**fields), new=True)


def delete_label(repo: Repo, ctx: Context, label: MeteringLabel) -> None:
    """A label goes with its rules."""
    for rule in repo.all(MeteringLabelRule):
        if rule.metering_label_id == label.id:
            repo.remove(rule)
    repo.remove(label)


def create_rule(repo: Repo, ctx: Context, fields: dict[str, Any]) -> MeteringLabelRule:
    """A rule of a label, its project's; no two rules of a label with the same
    direction and ``excluded`` may overlap (Neutron's MeteringLabelRuleOverlaps)."""
    label = repo.must(MeteringLabel, fields["metering_label_id"])
    rule = MeteringLabelRule(**{**fields, "project_id": label.project_id})
    mine = ipaddress.ip_network(rule.remote_ip_prefix)
    for other in repo.all(MeteringLabelRule):
        if (other.metering_label_id, other.direction, other.excluded) != (
                rule.metering_label_id, rule.direction, rule.excluded):
            continue
        theirs = ipaddress.ip_network(other.remote_ip_prefix)
        if theirs.version == mine.version and theirs.overlaps(mine):
            raise Conflict(f"Metering label rule with remote_ip_prefix "
                           f"'{rule.remote_ip_prefix}' overlaps another.",
                           type="MeteringLabelRuleOverlaps")
    return repo.save(rule, new=True)


def delete_rule(repo: Repo, ctx: Context, rule: MeteringLabelRule) -> None:
    repo.remove(rule)
