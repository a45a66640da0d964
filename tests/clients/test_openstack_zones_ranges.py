"""The unmodified `openstack` CLI's availability zone list (network zones) and
network segment range commands against Overcast: what each prints
(`-f json`), and for a refusal the error text."""

from __future__ import annotations

import json

import pytest

from overcast.api.embedded import EmbeddedServer
from overcast.model import keys
from overcast.model.types import Host

from .conftest import OSC
from .test_openstack_security import batch, ok

pytestmark = pytest.mark.slow


def test_availability_zone_list_network(osc: OSC, api_server: EmbeddedServer) -> None:
    store = api_server.api.store
    for name, zone, alive in (("h1", "az1", True), ("h2", "az2", False)):
        record = Host(id=f"id-{name}", host=name, underlay_ip="198.18.0.1",
                      availability_zone=zone)
        store.put(keys.host(name), json.dumps(record.to_stored()).encode())
        if alive:
            store.put(keys.alive(name), b"{}")
    zones = osc.json("availability zone list --network --long")
    assert sorted((z["Zone Name"], z["Zone Status"], z["Zone Resource"]) for z in zones) == [
        ("az1", "available", "network"), ("az1", "available", "router"),
        ("az2", "not available", "network"), ("az2", "not available", "router")]
    net, missing = batch(osc, "network create --availability-zone-hint az1 n1 -f json",
                         "network create --availability-zone-hint az9 n2 -f json")
    assert net.rc == 0, net.err
    assert json.loads(net.out)["availability_zone_hints"] == ["az1"]
    assert missing.rc == 1 and "AvailabilityZone az9 could not be found." in missing.err


def test_network_segment_range_commands(osc: OSC, uniq: str) -> None:
    made, = ok(osc, f"network segment range create --network-type vxlan --minimum 5000 "
                    f"--maximum 5009 r-{uniq} -f json")
    assert (made["name"], made["network_type"], made["minimum"], made["maximum"],
            made["shared"], made["default"]) == (f"r-{uniq}", "vxlan", 5000, 5009, True, False)
    listed, vlan, overlap = batch(
        osc, "network segment range list -f json",
        "network segment range create --network-type vlan --physical-network p --minimum 1 "
        "--maximum 9 v -f json",
        "network segment range create --network-type vxlan --minimum 5005 --maximum 5020 o")
    assert listed.rc == 0, listed.err
    rows = {r["Name"]: r for r in json.loads(listed.out)}
    assert (rows[f"r-{uniq}"]["Minimum ID"], rows[f"r-{uniq}"]["Maximum ID"]) == (5000, 5009)
    assert any(r["Default"] for r in rows.values())
    assert vlan.rc == 1 and "Network type vlan does not support network segment ranges" in vlan.err
    assert overlap.rc == 1 and "overlaps with range(s)" in overlap.err
    shown = osc.json(f"network segment range show r-{uniq}")
    assert shown["available"] == ["5000-5009"]
    osc.run(f"network segment range set --minimum 5000 --maximum 5004 r-{uniq}")
    assert osc.json(f"network segment range show r-{uniq}")["maximum"] == 5004
    osc.run(f"network segment range delete r-{uniq}")
    assert f"r-{uniq}" not in {r["Name"] for r in osc.json("network segment range list")}


def test_default_security_group_rule_commands(osc: OSC) -> None:
    listed = osc.json("default security group rule list")
    assert sorted((r["Direction"], r["Ethertype"], r["Remote Security Group"],
                   r["Used in default Security Group"], r["Used in custom Security Group"])
                  for r in listed) == [
        ("egress", "IPv4", None, True, True), ("egress", "IPv6", None, True, True),
        ("ingress", "IPv4", "PARENT", True, False), ("ingress", "IPv6", "PARENT", True, False)]
    cmd = "default security group rule create --protocol tcp --dst-port 22 --ingress --for-custom-sg"
    made = osc.json(cmd)
    assert (made["protocol"], made["port_range_min"], made["used_in_default_sg"],
            made["used_in_non_default_sg"]) == ("tcp", 22, False, True)
    again, group = batch(osc, cmd, "security group create web -f json")
    assert again.rc == 1 and f"Rule id is {made['id']}." in again.err
    rules = json.loads(group.out)["rules"]
    assert any(r["protocol"] == "tcp" and r["port_range_min"] == 22 for r in rules), rules
    osc.run(f"default security group rule delete {made['id']}")
    assert len(osc.json("default security group rule list")) == 4
