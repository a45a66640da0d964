"""``overcast network qos policy create|list|show|set|delete`` and
``overcast network qos rule create|list|show|delete`` (bandwidth limits)."""

from __future__ import annotations

import argparse
from typing import Any

from overcast.cli.client import ApiError, Client, CliError
from overcast.cli.output import Column, Listing, Record
from overcast.cli.resource import (
    Body,
    Result,
    Spec,
    Subparsers,
    add_create,
    add_crud,
    add_set,
    command,
    copy_given,
    flags,
    group,
    toggle,
)

POLICY = Spec(
    kind="qos policy",
    key="policy",
    path="/v2.0/qos/policies",
    columns=(
        Column("ID", "id"),
        Column("Name", "name"),
        Column("Shared", "shared"),
        Column("Default", "is_default"),
        Column("Project", "project_id"),
    ),
    tags=True,
)

RULE_COLUMNS = (
    Column("ID", "id"),
    Column("QoS Policy ID", "qos_policy_id"),
    Column("Type", "type"),
    Column("Max Kbps", "max_kbps"),
    Column("Max Burst Kbits", "max_burst_kbps"),
    Column("Direction", "direction"),
)
# --type value -> API rule type (path segment is "<type>_rules", body key "<type>_rule")
RULE_TYPES = {"bandwidth-limit": "bandwidth_limit"}
POLICY_FIELDS = {
    "name": "name",
    "description": "description",
    "share": "shared",
    "default": "is_default",
}


def _policy_body(client: Client, args: argparse.Namespace, current: Body | None = None) -> Body:
    return copy_given(args, {}, POLICY_FIELDS)


def _rules_path(policy_id: str, rule_type: str) -> str:
    return f"{POLICY.item(policy_id)}/{rule_type}_rules"


def _with_context(rule: dict[str, Any], policy_id: str, rule_type: str) -> dict[str, Any]:
    return {"qos_policy_id": policy_id, "type": rule_type, **rule}


RULE_FIELDS = {"max_kbps": "max_kbps", "max_burst": "max_burst_kbps", "direction": "direction"}


def _create_rule(client: Client, args: argparse.Namespace) -> Result:
    policy_id = POLICY.find_id(client, args.policy)
    rule_type = RULE_TYPES[args.type]
    body = copy_given(args, {}, RULE_FIELDS)
    created = client.post(_rules_path(policy_id, rule_type), {f"{rule_type}_rule": body})
    return Record(_with_context(created.get(f"{rule_type}_rule") or {}, policy_id, rule_type))


def _list_rules(client: Client, args: argparse.Namespace) -> Result:
    policy_id = POLICY.find_id(client, args.policy)
    rows = []
    for rule_type in RULE_TYPES.values():
        data = client.get(_rules_path(policy_id, rule_type))
        rows += [_with_context(r, policy_id, rule_type) for r in data.get(f"{rule_type}_rules", [])]
    return Listing(RULE_COLUMNS, rows)


def _find_rule(client: Client, policy_id: str, rule_id: str) -> tuple[str, dict[str, Any]]:
    for rule_type in RULE_TYPES.values():
        try:
            data = client.get(f"{_rules_path(policy_id, rule_type)}/{rule_id}")
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        return rule_type, _with_context(data.get(f"{rule_type}_rule") or {}, policy_id, rule_type)
    raise CliError(f"No qos rule found for '{rule_id}' in policy {policy_id}")


def _show_rule(client: Client, args: argparse.Namespace) -> Result:
    policy_id = POLICY.find_id(client, args.policy)
    return Record(_find_rule(client, policy_id, args.rule)[1])


def _delete_rule(client: Client, args: argparse.Namespace) -> Result:
    policy_id = POLICY.find_id(client, args.policy)
    rule_type, rule = _find_rule(client, policy_id, args.rule)
    client.delete(f"{_rules_path(policy_id, rule_type)}/{rule['id']}")
    return None


def _set_rule(client: Client, args: argparse.Namespace) -> Result:
    policy_id = POLICY.find_id(client, args.policy)
    rule_type, rule = _find_rule(client, policy_id, args.rule)
    body = copy_given(args, {}, RULE_FIELDS)
    if body:
        client.put(f"{_rules_path(policy_id, rule_type)}/{rule['id']}", {f"{rule_type}_rule": body})
    return None


def _rule_options(parser: argparse.ArgumentParser, creating: bool) -> None:
    parser.add_argument("--max-kbps", type=int, required=creating, help="rate limit in kbit/s")
    parser.add_argument("--max-burst-kbits", dest="max_burst", type=int,
                        help="burst size in kbit")
    flags(parser, "direction", {"--egress": "egress", "--ingress": "ingress"},
          "direction, as seen from the VM" + (" (default: egress)" if creating else ""))


def _register_rules(sub: Subparsers) -> None:
    create = command(sub, "create", _create_rule, "Create a QoS rule")
    create.add_argument("policy", metavar="POLICY", help="QoS policy (name or id)")
    create.add_argument("--type", required=True, choices=tuple(RULE_TYPES))
    _rule_options(create, creating=True)
    listing = command(sub, "list", _list_rules, "List the rules of a QoS policy")
    listing.add_argument("policy", metavar="POLICY", help="QoS policy (name or id)")
    verbs = (("show", _show_rule, True), ("set", _set_rule, False), ("delete", _delete_rule, False))
    for verb, handler, output in verbs:
        parser = command(sub, verb, handler, f"{verb.capitalize()} a QoS rule", output=output)
        parser.add_argument("policy", metavar="POLICY", help="QoS policy (name or id)")
        parser.add_argument("rule", metavar="RULE_ID", help="rule id")
        if verb == "set":
            _rule_options(parser, creating=False)


def register(network: Subparsers) -> None:
    qos = group(network, "qos", "manage QoS policies and their bandwidth-limit rules")
    sub = group(qos, "policy", "manage QoS policies (sets of rules attached to ports)")
    create = add_create(sub, POLICY, _policy_body)
    create.add_argument("name", metavar="NAME", help="name of the new policy")
    create.add_argument("--description")
    toggle(create, "share", "--share", "--no-share", "shared between projects")
    toggle(create, "default", "--default", "--no-default", "project default policy")
    add_crud(sub, POLICY)
    setter = add_set(sub, POLICY, _policy_body)
    setter.add_argument("--name")
    setter.add_argument("--description")
    toggle(setter, "share", "--share", "--no-share", "shared between projects")
    toggle(setter, "default", "--default", "--no-default", "project default policy")
    _register_rules(group(qos, "rule", "manage the bandwidth-limit rules of a QoS policy"))
