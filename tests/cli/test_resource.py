"""The small pieces every resource shares: key=value options, list edits, specs."""

from __future__ import annotations

import argparse

import pytest

from overcast.cli.port import PORT
from overcast.cli.qos import POLICY
from overcast.cli.resource import kv, merged, removed
from overcast.cli.security import GROUP, RULE


def test_kv_maps_user_keys_to_api_keys() -> None:
    parse = kv({"destination": "destination", "gateway": "nexthop"}, ("destination",))
    assert parse("destination=10.0.0.0/8,gateway=10.0.0.1") == {
        "destination": "10.0.0.0/8", "nexthop": "10.0.0.1"}
    with pytest.raises(argparse.ArgumentTypeError, match="KEY in destination, gateway"):
        parse("dest=10.0.0.0/8")
    with pytest.raises(argparse.ArgumentTypeError, match="missing destination"):
        parse("gateway=10.0.0.1")


def test_merged_adds_clears_or_leaves_alone() -> None:
    assert merged(["a"], None, False) is None
    assert merged(["a"], ["b", "a"], False) == ["a", "b"]
    assert merged(["a"], ["b"], True) == ["b"]
    assert merged(None, [], True) == []


def test_removed_matches_dicts_by_the_keys_given() -> None:
    ips = [{"subnet_id": "s1", "ip_address": "10.0.0.5"},
           {"subnet_id": "s2", "ip_address": "10.1.0.5"}]
    assert removed(ips, None) is None
    assert removed(ips, [{"ip_address": "10.0.0.5"}]) == ips[1:]
    assert removed(ips, [{"subnet_id": "s2"}]) == ips[:1]
    assert removed(["a", "b"], ["a"]) == ["b"]


@pytest.mark.parametrize(
    ("spec", "plural"),
    [(GROUP, "security_groups"), (RULE, "security_group_rules"), (POLICY, "policies"),
     (PORT, "ports")],
)
def test_list_body_keys(spec: object, plural: str) -> None:
    assert spec.plural == plural  # type: ignore[attr-defined]
