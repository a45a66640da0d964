"""Keystone's reader role (``Context.read_only``) reads and never writes, on
the member actions of the kinds added with issue 11 too: a trunk's subports,
a floating IP's port forwardings."""

from __future__ import annotations

from typing import Any

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error


def callers() -> tuple[Direct, Direct, Direct]:
    api = Api(MemoryStore(), auth=Auth({"t-alice": Context("alice", False),
                                        "t-ops": Context("ops", True),
                                        "t-rita": Context("alice", False, read_only=True)}))
    return Direct(api, "t-alice"), Direct(api, "t-rita"), Direct(api, "t-ops")


def test_a_reader_cannot_change_a_trunks_subports() -> None:
    alice, rita, _ = callers()
    net = alice.network(name="n")
    alice.subnet(net["id"], "10.0.0.0/24")
    parent, sub = alice.port(net["id"]), alice.port(net["id"])
    trunk = alice.create("trunk", "trunks", port_id=parent["id"])
    where = f"/v2.0/trunks/{trunk['id']}"
    one = {"sub_ports": [{"port_id": sub["id"], "segmentation_type": "vlan",
                          "segmentation_id": 10}]}
    assert_error(rita.put(f"{where}/add_subports", one), 403, "reader")
    assert alice.get(where)["trunk"]["sub_ports"] == []
    assert alice.put(f"{where}/add_subports", one).status == 200
    assert_error(rita.put(f"{where}/remove_subports", {"sub_ports": [{"port_id": sub["id"]}]}),
                 403, "reader")
    assert rita.get(f"{where}/get_subports").status == 200
    assert len(alice.get(where)["trunk"]["sub_ports"]) == 1


def test_a_reader_shows_the_port_forwardings_it_lists() -> None:
    alice, rita, ops = callers()
    ext = ops.network(name="ext", **{"router:external": True})
    ops.subnet(ext["id"], "203.0.113.0/24")
    net = alice.network(name="n")
    sub = alice.subnet(net["id"], "10.0.0.0/24")
    router = alice.create("router", "routers", name="r",
                          external_gateway_info={"network_id": ext["id"]})
    r = alice.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status == 200, r.body
    port = alice.port(net["id"])
    fip = alice.create("floatingip", "floatingips", floating_network_id=ext["id"])
    base = f"/v2.0/floatingips/{fip['id']}/port_forwardings"
    made: Any = alice.post(base, {"port_forwarding": {
        "protocol": "tcp", "internal_port_id": port["id"],
        "internal_ip_address": port["fixed_ips"][0]["ip_address"], "internal_port": 22,
        "external_port": 2222}})
    assert made.status == 201, made.body
    pf = made.body["port_forwarding"]["id"]
    assert rita.get(base).status == 200
    assert rita.get(f"{base}/{pf}")["port_forwarding"]["external_port"] == 2222
    assert_error(rita.put(f"{base}/{pf}", {"port_forwarding": {"external_port": 2223}}),
                 403, "reader")
    assert_error(rita.delete(f"{base}/{pf}"), 403, "reader")
