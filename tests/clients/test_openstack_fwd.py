"""The unmodified `openstack` CLI's port forwarding and trunk commands
against Overcast: `floating ip port forwarding create/list/show/set/delete`
and `network trunk create/show/set/unset`, `network subport list`: what
each prints (`-f json`), and for a refusal the error text."""

from __future__ import annotations

import pytest

from .conftest import OSC
from .test_openstack_security import batch, ok

pytestmark = pytest.mark.slow


def test_floating_ip_port_forwarding(osc: OSC, uniq: str) -> None:
    ext, net, rtr = f"ext-{uniq}", f"net-{uniq}", f"r-{uniq}"
    ok(osc, f"network create --external {ext} -f json", f"network create {net} -f json",
       f"router create {rtr} -f json")
    ok(osc, f"subnet create --network {ext} --subnet-range 203.0.113.0/24 {ext}-s -f json",
       f"subnet create --network {net} --subnet-range 10.0.0.0/24 {net}-s -f json")
    vm, fip, _ = ok(osc, f"port create --network {net} vm-{uniq} -f json",
                    f"floating ip create {ext} -f json",
                    f"router set --external-gateway {ext} {rtr}")
    osc.run(f"router add subnet {rtr} {net}-s")
    ip = vm["fixed_ips"][0]["ip_address"]
    made = osc.json(f"floating ip port forwarding create --internal-ip-address {ip} "
                    f"--port {vm['id']} --internal-protocol-port 22 "
                    f"--external-protocol-port 2222 --protocol tcp --description ssh "
                    f"{fip['id']}")
    assert (made["internal_ip_address"], made["internal_port"], made["external_port"],
            made["protocol"], made["description"], made["internal_port_id"]) == (
        ip, 22, 2222, "tcp", "ssh", vm["id"])
    ran = batch(
        osc,
        f"floating ip port forwarding list {fip['id']} -f json",
        f"floating ip port forwarding show {fip['id']} {made['id']} -f json",
        f"floating ip port forwarding create --internal-ip-address {ip} --port {vm['id']} "
        f"--internal-protocol-port 23 --external-protocol-port 2222 --protocol tcp "
        f"{fip['id']}",
        f"floating ip set --port {vm['id']} {fip['id']}",
        f"floating ip port forwarding create --internal-ip-address {ip} --port {vm['id']} "
        f"--internal-protocol-port 8000:8009 --external-protocol-port 9000:9009 "
        f"--protocol udp {fip['id']} -f json")
    listed = ran[0].json()
    assert [(p["ID"], p["External Port"], p["Internal Port"]) for p in listed
            if p["ID"] == made["id"]] == [(made["id"], 2222, 22)]
    assert ran[1].json()["id"] == made["id"]
    assert "port collision" in ran[2].error()
    assert "in use by Port Forwarding" in ran[3].error()
    ranged = ran[4].json()
    assert (ranged["internal_port_range"], ranged["external_port_range"]) == ("8000:8009",
                                                                              "9000:9009")
    osc.run(f"floating ip port forwarding set --external-protocol-port 2200 "
            f"{fip['id']} {made['id']}")
    shown = osc.json(f"floating ip show {fip['id']}")
    # Neutron's summary: external_port for a single port, no key for a range
    assert sorted(p.get("external_port", 0) for p in shown["port_forwardings"]) == [0, 2200]
    osc.run(f"floating ip port forwarding delete {fip['id']} {made['id']} {ranged['id']}")
    assert osc.json(f"floating ip port forwarding list {fip['id']}") == []


def test_network_trunk(osc: OSC, uniq: str) -> None:
    net = f"tnet-{uniq}"
    osc.json(f"network create {net}")
    osc.json(f"subnet create --network {net} --subnet-range 10.1.0.0/24 {net}-s")
    parent, sub1, sub2 = ok(osc, *(f"port create --network {net} {n}-{uniq} -f json"
                                   for n in ("parent", "sub1", "sub2")))
    trunk = osc.json(f"network trunk create --parent-port {parent['id']} --subport "
                     f"port={sub1['id']},segmentation-type=vlan,segmentation-id=100 "
                     f"--description vlans t-{uniq}")
    assert (trunk["port_id"], trunk["description"], trunk["status"]) == (
        parent["id"], "vlans", "DOWN")
    assert trunk["sub_ports"] == [{"port_id": sub1["id"], "segmentation_type": "vlan",
                                   "segmentation_id": 100}]
    ran = batch(
        osc,
        f"network trunk set --subport port={sub2['id']},segmentation-type=vlan,"
        f"segmentation-id=200 t-{uniq}",
        f"network trunk create --parent-port {sub1['id']} bad-{uniq}",
        f"network trunk create --parent-port {sub2['id']} --subport "
        f"port={sub1['id']},segmentation-type=vlan,segmentation-id=4095 bad2-{uniq}")
    assert ran[0].rc == 0, ran[0].err
    assert sub1["id"] in ran[1].error() and "in use" in ran[1].error()
    assert "4095" in ran[2].error()
    subs = osc.json(f"network subport list --trunk t-{uniq}")
    assert sorted((s["Port"], s["Segmentation ID"]) for s in subs) == sorted(
        [(sub1["id"], 100), (sub2["id"], 200)])
    osc.run(f"network trunk unset --subport {sub1['id']} t-{uniq}")
    shown, port = ok(osc, f"network trunk show t-{uniq} -f json",
                     f"port show {parent['id']} -f json")
    assert [s["port_id"] for s in shown["sub_ports"]] == [sub2["id"]]
    assert port["trunk_details"]["trunk_id"] == trunk["id"]
    osc.run(f"network trunk delete t-{uniq}")
    assert "t-" + uniq not in {t["Name"] for t in osc.json("network trunk list")}
