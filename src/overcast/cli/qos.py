"""``overcast network qos policy create|list|show|set|delete`` and
``overcast network qos rule create|list|show|set|delete`` (bandwidth limits,
DSCP marking, minimum bandwidth: ``openstack network qos rule``'s options)."""

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
    Column("Min Kbps", "min_kbps"),
    Column("DSCP mark", "dscp_mark"),
    Column("Direction", "direction"),
)
# --type value -> API rule type (path segment is "<type>_rules", body key "<type>_rule")
RULE_TYPES = {"bandwidth-limit": "bandwidth_limit", "dscp-marking": "dscp_marking",
              "minimum-bandwidth": "minimum_bandwidth"}
# each type's options (argparse dest -> API attribute) and those a create needs
RULE_FIELDS = {
    "bandwidth_limit": {"max_kbps": "max_kbps", "max_burst": "max_burst_kbps",
                        "direction": "direction"},
    "dscp_marking": {"dscp_mark": "dscp_mark"},
    "minimum_bandwidth": {"min_kbps": "min_kbps", "direction": "direction"},
}
REQUIRED = {"bandwidth_limit": ("max_kbps",), "dscp_marking": ("dscp_mark",),
            "minimum_bandwidth": ("min_kbps",)}
OPTION = {"max_kbps": "--max-kbps", "max_burst": "--max-burst-kbits", "dscp_mark": "--dscp-mark",
          "min_kbps": "--min-kbps", "direction": "--ingress/--egress"}
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


def _rule_body(args: argparse.Namespace, rule_type: str, creating: bool) -> Body:
    """The options of ``rule_type`` that were given; any other rule option is
    an error (as ``openstack network qos rule`` says), and so is a missing one
    a create needs."""
    fields = RULE_FIELDS[rule_type]
    given = [d for d in OPTION if getattr(args, d, None) is not None]
    unexpected = [OPTION[d] for d in given if d not in fields]
    if unexpected:
        raise CliError(f"{', '.join(unexpected)} not valid for a {_type_word(rule_type)} rule")
    missing = [OPTION[d] for d in REQUIRED[rule_type] if creating and d not in given]
    if missing:
        raise CliError(f"a {_type_word(rule_type)} rule needs {', '.join(missing)}")
    return copy_given(args, {}, fields)


def _type_word(rule_type: str) -> str:
    return rule_type.replace("_", "-")


def _create_rule(client: Client, args: argparse.Namespace) -> Result:
    rule_type = RULE_TYPES[args.type]
    body = _rule_body(args, rule_type, creating=True)
    policy_id = POLICY.find_id(client, args.policy)
    created = client.post(_rules_path(policy_id, rule_type), {f"{rule_type}_rule": body})
    return Record(_with_context(created.get(f"{rule_type}_rule") or {}, policy_id, rule_type))


def _list_rules(client: Client, args: argparse.Namespace) -> Result:
    policy = POLICY.find(client, args.policy)
    rules = policy.get("rules")
    if isinstance(rules, list):  # the policy lists its rules of every type, with their type
        rows = [_with_context(r, str(policy["id"]), str(r.get("type", ""))) for r in rules]
        return Listing(RULE_COLUMNS, rows)
    rows = []
    for rule_type in RULE_TYPES.values():
        data = client.get(_rules_path(str(policy["id"]), rule_type))
        rows += [_with_context(r, str(policy["id"]), rule_type)
                 for r in data.get(f"{rule_type}_rules", [])]
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
    body = _rule_body(args, rule_type, creating=False)
    if body:
        client.put(f"{_rules_path(policy_id, rule_type)}/{rule['id']}", {f"{rule_type}_rule": body})
    return None


def _rule_options(parser: argparse.ArgumentParser, creating: bool) -> None:
    parser.add_argument("--max-kbps", type=int, help="bandwidth-limit: rate limit in kbit/s")
    parser.add_argument("--max-burst-kbits", dest="max_burst", type=int,
                        help="bandwidth-limit: burst size in kbit")
    parser.add_argument("--dscp-mark", type=int,
                        help="dscp-marking: DSCP mark (0, or an even number from 8 to 56 "
                             "but 42, 44, 50, 52 and 54)")
    parser.add_argument("--min-kbps", type=int,
                        help="minimum-bandwidth: guaranteed bandwidth in kbit/s")
    flags(parser, "direction", {"--egress": "egress", "--ingress": "ingress"},
          "bandwidth-limit, minimum-bandwidth: direction, as seen from the VM"
          + (" (default: egress)" if creating else ""))


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
    qos = group(network, "qos", "manage QoS policies and their rules")
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
    _register_rules(group(qos, "rule", "manage the rules of a QoS policy (bandwidth-limit, "
                                       "dscp-marking, minimum-bandwidth)"))
