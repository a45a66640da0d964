"""The unmodified `openstack` CLI's address group commands against
Overcast, and a security group rule naming a group
(``--remote-address-group``): what each command prints (`-f json`), its
exit status, and for a refusal the error text.  One test, its independent
commands side by side (``batch``): each call costs a second or two."""

from __future__ import annotations

import pytest

from .conftest import OSC
from .test_openstack_security import batch, ok

pytestmark = pytest.mark.slow


def test_address_groups_and_a_rule_from_one(osc: OSC, uniq: str) -> None:
    office, lab, web = f"office-{uniq}", f"lab-{uniq}", f"web-{uniq}"
    made, other, sg = ok(
        osc,
        f"address group create --address 10.0.0.0/24 --address 10.1.0.1 "
        f"--description 'the office' {office} -f json",
        f"address group create --address 2001:db8::/64 {lab} -f json",
        f"security group create {web} -f json")
    # the CLI sends a bare address as its host prefix; each is the network of its prefix
    assert made["addresses"] == ["10.0.0.0/24", "10.1.0.1/32"]
    assert (made["name"], made["description"]) == (office, "the office")
    assert other["addresses"] == ["2001:db8::/64"]

    ran = batch(
        osc,
        f"address group set --address 10.2.0.5/16 {office}",
        f"address group set --name {lab}-2 --description 'a lab' --address 2001:db8:1::1 "
        f"{other['id']}",
        f"address group unset --address 2001:db8::/64 {other['id']}",
        f"security group rule create --remote-address-group {office} --protocol tcp "
        f"--dst-port 22 {web} -f json",
        f"address group unset --address 10.9.0.0/16 {office}",
        f"address group create --address 10.0.0.0/33 bad-{uniq}")
    assert [r.rc for r in ran[:3]] == [0, 0, 0], [r.err for r in ran[:3]]
    rule = ran[3].json()
    assert rule["remote_address_group_id"] == made["id"]
    assert (rule["remote_ip_prefix"], rule["remote_group_id"], rule["port_range_min"]) == (
        None, None, 22)
    assert "10.9.0.0/16" in ran[4].error() and "not found" in ran[4].error()
    assert "10.0.0.0/33" in ran[5].error()

    shown, listed, rules = ok(
        osc, f"address group show {office} -f json", "address group list -f json",
        f"security group rule list {web} --long -f json")
    assert shown["addresses"] == ["10.0.0.0/24", "10.1.0.1/32", "10.2.0.0/16"]
    mine = {g["ID"]: g for g in listed if g["ID"] in (made["id"], other["id"])}
    assert (mine[other["id"]]["Name"], mine[other["id"]]["Description"],
            mine[other["id"]]["Addresses"]) == (f"{lab}-2", "a lab", ["2001:db8:1::1/128"])
    assert mine[made["id"]]["Addresses"] == shown["addresses"]
    assert [r["ID"] for r in rules if r.get("Remote Address Group") == made["id"]] == [rule["id"]]

    # a group a rule uses cannot go; once the rule is gone it can
    in_use, gone = batch(osc, f"address group delete {made['id']}",
                         f"address group delete {other['id']}")
    assert "in use" in in_use.error()
    assert gone.rc == 0, gone.err
    ok(osc, f"security group rule delete {rule['id']}")
    ok(osc, f"address group delete {made['id']}")
