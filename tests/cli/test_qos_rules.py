"""What ``overcast network qos rule ...`` sends for DSCP marking and minimum
bandwidth rules, and how it shows a policy's rules of every type."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Run
from .fake_neutron import FakeNeutron


@pytest.fixture
def pid(fake: FakeNeutron) -> str:
    return str(fake.add("qos/policies", name="gold")["id"])


def _rule(overcast: Run, *argv: str) -> dict[str, Any]:
    made = overcast("network", "qos", "rule", "create", *argv, "gold", "-f", "json")
    assert made.code == 0, made.err
    rule: dict[str, Any] = made.json()
    return rule


def test_dscp_marking_rule(overcast: Run, fake: FakeNeutron, pid: str) -> None:
    rule = _rule(overcast, "--type", "dscp-marking", "--dscp-mark", "26")
    assert fake.writes()[-1].path == f"/v2.0/qos/policies/{pid}/dscp_marking_rules"
    assert fake.writes()[-1].body == {"dscp_marking_rule": {"dscp_mark": 26}}
    assert (rule["type"], rule["qos_policy_id"], rule["dscp_mark"]) == ("dscp_marking", pid, 26)
    rid = rule["id"]
    shown = overcast("network", "qos", "rule", "show", "gold", rid, "-f", "json")
    assert shown.code == 0 and shown.json()["dscp_mark"] == 26
    assert overcast("network", "qos", "rule", "set", "gold", rid, "--dscp-mark", "46").code == 0
    assert fake.writes()[-1].method == "PUT"
    assert fake.writes()[-1].path == f"/v2.0/qos/policies/{pid}/dscp_marking_rules/{rid}"
    assert fake.writes()[-1].body == {"dscp_marking_rule": {"dscp_mark": 46}}
    assert overcast("network", "qos", "rule", "delete", "gold", rid).code == 0
    assert fake.writes()[-1].method == "DELETE"
    assert fake.writes()[-1].path.endswith(f"/dscp_marking_rules/{rid}")


def test_minimum_bandwidth_rule(overcast: Run, fake: FakeNeutron, pid: str) -> None:
    rule = _rule(overcast, "--type", "minimum-bandwidth", "--min-kbps", "1000", "--ingress")
    assert fake.writes()[-1].path == f"/v2.0/qos/policies/{pid}/minimum_bandwidth_rules"
    assert fake.writes()[-1].body == {"minimum_bandwidth_rule": {"min_kbps": 1000,
                                                                 "direction": "ingress"}}
    _rule(overcast, "--type", "minimum-bandwidth", "--min-kbps", "10")
    assert fake.writes()[-1].body == {"minimum_bandwidth_rule": {"min_kbps": 10}}
    rid = rule["id"]
    assert overcast("network", "qos", "rule", "set", "gold", rid, "--min-kbps", "5",
                    "--egress").code == 0
    assert fake.writes()[-1].path == f"/v2.0/qos/policies/{pid}/minimum_bandwidth_rules/{rid}"
    assert fake.writes()[-1].body == {"minimum_bandwidth_rule": {"min_kbps": 5,
                                                                 "direction": "egress"}}


@pytest.mark.parametrize(("argv", "says"), [
    (["--type", "dscp-marking"], "needs --dscp-mark"),
    (["--type", "minimum-bandwidth", "--egress"], "needs --min-kbps"),
    (["--type", "bandwidth-limit"], "needs --max-kbps"),
    (["--type", "dscp-marking", "--dscp-mark", "8", "--max-kbps", "5"], "--max-kbps not valid"),
    (["--type", "dscp-marking", "--dscp-mark", "8", "--ingress"], "--ingress/--egress not valid"),
    (["--type", "minimum-bandwidth", "--min-kbps", "8", "--max-burst-kbits", "5"],
     "--max-burst-kbits not valid"),
    (["--type", "bandwidth-limit", "--max-kbps", "8", "--min-kbps", "5"], "--min-kbps not valid"),
])
def test_options_of_another_type_are_refused(overcast: Run, fake: FakeNeutron, pid: str,
                                             argv: list[str], says: str) -> None:
    result = overcast("network", "qos", "rule", "create", *argv, "gold")
    assert result.code == 1 and says in result.err, result.err
    assert fake.writes() == []


def test_set_takes_only_the_rules_own_options(overcast: Run, fake: FakeNeutron,
                                              pid: str) -> None:
    rid = _rule(overcast, "--type", "dscp-marking", "--dscp-mark", "8")["id"]
    before = len(fake.writes())
    result = overcast("network", "qos", "rule", "set", "gold", rid, "--min-kbps", "5")
    assert result.code == 1 and "--min-kbps not valid for a dscp-marking rule" in result.err
    assert len(fake.writes()) == before


def test_bad_type_is_a_usage_error(overcast: Run, fake: FakeNeutron, pid: str) -> None:
    result = overcast("network", "qos", "rule", "create", "--type", "packet-rate-limit", "gold")
    assert result.code == 2 and "dscp-marking" in result.err, result
    assert fake.writes() == []


def test_list_shows_every_type_from_the_policy(overcast: Run, fake: FakeNeutron) -> None:
    """As ``openstack network qos rule list``: the policy's ``rules``, one GET."""
    fake.add("qos/policies", name="gold", rules=[
        {"id": "r1", "type": "bandwidth_limit", "max_kbps": 100, "max_burst_kbps": 10,
         "direction": "egress", "qos_policy_id": "p"},
        {"id": "r2", "type": "dscp_marking", "dscp_mark": 26, "qos_policy_id": "p"},
        {"id": "r3", "type": "minimum_bandwidth", "min_kbps": 50, "direction": "ingress",
         "qos_policy_id": "p"}])
    listing = overcast("network", "qos", "rule", "list", "gold", "-f", "json")
    assert listing.code == 0, listing.err
    rows = listing.json()
    assert [(r["ID"], r["Type"], r["Max Kbps"], r["Min Kbps"], r["DSCP mark"], r["Direction"])
            for r in rows] == [("r1", "bandwidth_limit", 100, None, None, "egress"),
                               ("r2", "dscp_marking", None, None, 26, None),
                               ("r3", "minimum_bandwidth", None, 50, None, "ingress")]
    assert not [s for s in fake.sent if "_rules" in s.path]
    assert {r["QoS Policy ID"] for r in rows} == {"p"}
    table = overcast("network", "qos", "rule", "list", "gold")
    assert "DSCP mark" in table.out and "Min Kbps" in table.out
