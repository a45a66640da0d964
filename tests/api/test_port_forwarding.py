"""Port forwardings of a floating IP as Neutron serves them: CRUD below the
floating IP, single ports and ranges, Neutron's checks and refusals (nothing
written), the floating IP's ``port_forwardings``, the floating IP and the port
that cannot have both, and the policy (the floating IP's owner)."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump

TOKENS = {"t-admin": Context("ops", True), "t-alice": Context("alice", False),
          "t-bob": Context("bob", False)}


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        api = Api(self.store, auth=Auth(dict(TOKENS)))
        self.admin, self.alice, self.bob = (Direct(api, t) for t in TOKENS)
        ext = self.admin.network(name="ext", **{"router:external": True})
        self.admin.subnet(ext["id"], "203.0.113.0/24")
        net = self.alice.network(name="net")
        self.sub = self.alice.subnet(net["id"], "10.0.0.0/24")
        self.sub2 = self.alice.subnet(net["id"], "10.0.1.0/24")
        self.router = self.alice.create("router", "routers", name="r",
                                        external_gateway_info={"network_id": ext["id"]})
        r = self.alice.put(f"/v2.0/routers/{self.router['id']}/add_router_interface",
                           {"subnet_id": self.sub["id"]})
        assert r.status == 200, r.body
        self.ext = ext
        on_sub = [{"subnet_id": self.sub["id"]}]
        self.vm = self.alice.port(net["id"], name="vm", fixed_ips=on_sub)
        self.vm2 = self.alice.port(net["id"], name="vm2", fixed_ips=on_sub)
        self.fip = self.alice.create("floatingip", "floatingips", floating_network_id=ext["id"])
        self.path = f"/v2.0/floatingips/{self.fip['id']}/port_forwardings"

    def body(self, port: dict[str, Any] | None = None, **attrs: Any) -> dict[str, Any]:
        port = port or self.vm
        return {"port_forwarding": {
            "protocol": "tcp", "internal_port_id": port["id"],
            "internal_ip_address": port["fixed_ips"][0]["ip_address"], **attrs}}

    def make(self, **attrs: Any) -> dict[str, Any]:
        r = self.alice.post(self.path, self.body(**attrs))
        assert r.status == 201, r.body
        return r.body["port_forwarding"]  # type: ignore[no-any-return]


@pytest.fixture
def w() -> World:
    return World()


def test_create_show_list_update_delete(w: World) -> None:
    made = w.make(external_port=2222, internal_port=22, description="ssh")
    ip = w.vm["fixed_ips"][0]["ip_address"]
    assert made == {
        "id": made["id"], "protocol": "tcp", "internal_port_id": w.vm["id"],
        "internal_ip_address": ip, "external_port": 2222, "internal_port": 22,
        "external_port_range": "2222:2222", "internal_port_range": "22:22",
        "description": "ssh"}
    assert w.alice.get(f"{w.path}/{made['id']}")["port_forwarding"] == made
    listed = w.alice.get(w.path)["port_forwardings"]
    assert listed == [made]
    assert w.alice.get(w.path, params={"external_port": "2222"})["port_forwardings"] == [made]
    assert w.alice.get(w.path, params={"protocol": "udp"})["port_forwardings"] == []
    fip = w.alice.get(f"/v2.0/floatingips/{w.fip['id']}")["floatingip"]
    assert fip["port_forwardings"] == [{
        "id": made["id"], "internal_ip_address": ip, "protocol": "tcp", "internal_port": 22,
        "external_port": 2222, "internal_port_id": w.vm["id"]}]
    assert fip["port_id"] is None  # a port forwarding is no association
    assert fip["router_id"] == w.router["id"]  # but the IP goes through its router
    r = w.alice.put(f"{w.path}/{made['id']}", {"port_forwarding": {
        "external_port": 2200, "protocol": "udp", "description": ""}})
    assert r.status == 200, r.body
    assert (r["port_forwarding"]["external_port"], r["port_forwarding"]["protocol"],
            r["port_forwarding"]["internal_port"]) == (2200, "udp", 22)
    assert w.alice.delete(f"{w.path}/{made['id']}").status == 204
    assert_error(w.alice.get(f"{w.path}/{made['id']}"), 404, made["id"],
                 type="PortForwardingNotFound")
    fip = w.alice.get(f"/v2.0/floatingips/{w.fip['id']}")["floatingip"]
    assert (fip["port_forwardings"], fip["router_id"]) == ([], None)


def test_ranges_n_to_n_and_1_to_n(w: World) -> None:
    many = w.make(external_port_range="8000:8010", internal_port_range="9000:9010")
    assert (many["external_port"], many["internal_port"]) == (None, None)
    assert (many["external_port_range"], many["internal_port_range"]) == ("8000:8010",
                                                                          "9000:9010")
    one = w.make(external_port_range="7000:7005", internal_port=80)
    assert (one["internal_port"], one["internal_port_range"]) == (80, "80:80")
    r = w.alice.post(w.path, w.body(external_port_range="6000:6005",
                                    internal_port_range="6000:6001"))
    assert_error(r, 400, "N-N or 1-N")
    # the floating IP shows a port only where it is one (Neutron's
    # _modify_single_ports_from_db: no key for a range), never the ranges
    fip = w.alice.get(f"/v2.0/floatingips/{w.fip['id']}")["floatingip"]
    ip = w.vm["fixed_ips"][0]["ip_address"]
    common = {"internal_ip_address": ip, "protocol": "tcp", "internal_port_id": w.vm["id"]}
    assert sorted(fip["port_forwardings"], key=lambda pf: pf["id"]) == sorted(
        [{"id": many["id"], **common}, {"id": one["id"], "internal_port": 80, **common}],
        key=lambda pf: pf["id"])


def test_collisions_are_refused(w: World) -> None:
    w.make(external_port=80, internal_port=8080)
    before = dump(w.store)
    # the same external port and protocol on the floating IP
    assert_error(w.alice.post(w.path, w.body(w.vm2, external_port=80, internal_port=80)), 400,
                 "port collision", "external_port_range", "80:80")
    assert_error(w.alice.post(w.path, w.body(w.vm2, external_port_range="70:90",
                                             internal_port=80)), 400, "70:90")
    # the same internal socket
    assert_error(w.alice.post(w.path, w.body(external_port=81, internal_port=8080)), 400,
                 "internal_port_range")
    assert dump(w.store) == before
    # another protocol is another socket
    udp = w.make(protocol="udp", external_port=80, internal_port=8080)
    assert udp["protocol"] == "udp"
    r = w.alice.put(f"{w.path}/{udp['id']}", {"port_forwarding": {"protocol": "tcp"}})
    assert_error(r, 400, "port collision")


@pytest.mark.parametrize("attrs,words", [
    ({"protocol": "icmp", "external_port": 1, "internal_port": 1}, ("protocol", "icmp")),
    ({"external_port": 0, "internal_port": 1}, ("external_port", "0")),
    ({"external_port": 65536, "internal_port": 1}, ("external_port", "65536")),
    ({"external_port": "x", "internal_port": 1}, ("external_port",)),
    ({"external_port_range": "90:80", "internal_port": 1}, ("external_port_range", "90:80")),
    ({"external_port_range": "1:2:3", "internal_port": 1}, ("external_port_range",)),
    ({"internal_port": 1}, ("external_port",)),
    ({"external_port": 1}, ("internal_port",)),
    ({"external_port": 1, "external_port_range": "1:1", "internal_port": 1},
     ("external_port", "together")),
    ({"external_port": 1, "internal_port": 1, "internal_ip_address": "10.9.9.9"},
     ("10.9.9.9", "not suitable")),
    ({"external_port": 1, "internal_port": 1, "internal_ip_address": "nope"},
     ("internal_ip_address",)),
    ({"external_port": 1, "internal_port": 1, "colour": "red"}, ("colour",)),
])
def test_bad_input(w: World, attrs: dict[str, Any], words: tuple[str, ...]) -> None:
    before = dump(w.store)
    assert_error(w.alice.post(w.path, w.body(**attrs)), 400, *words)
    assert dump(w.store) == before


def test_required_attributes(w: World) -> None:
    for name in ("protocol", "internal_port_id", "internal_ip_address"):
        body = w.body(external_port=1, internal_port=1)
        del body["port_forwarding"][name]
        assert_error(w.alice.post(w.path, body), 400, name)


def test_unreachable_subnet_and_unknown_port(w: World) -> None:
    far = w.alice.port(w.vm["network_id"], fixed_ips=[{"subnet_id": w.sub2["id"]}])
    assert_error(w.alice.post(w.path, w.body(far, external_port=1, internal_port=1)), 400,
                 "not reachable", w.sub2["id"])
    body = w.body(external_port=1, internal_port=1)
    body["port_forwarding"]["internal_port_id"] = "6f0e7a9c-0000-4000-8000-0000000000aa"
    assert_error(w.alice.post(w.path, body), 404, type="PortNotFound")


def test_floating_ip_and_port_forwarding_exclude_each_other(w: World) -> None:
    fip_path = f"/v2.0/floatingips/{w.fip['id']}"
    pf = w.make(external_port=80, internal_port=80)
    before = dump(w.store)
    # a floating IP with port forwardings is associated with no port
    assert_error(w.alice.put(fip_path, {"floatingip": {"port_id": w.vm2["id"]}}), 409,
                 w.fip["id"], "Port Forwarding", type="FipInUseByPortForwarding")
    # and cannot go while it has them
    assert_error(w.alice.delete(fip_path), 409, type="FipInUseByPortForwarding")
    # a port with port forwardings gets no floating IP
    r = w.alice.post("/v2.0/floatingips", {"floatingip": {
        "floating_network_id": w.ext["id"], "port_id": w.vm["id"]}})
    assert_error(r, 400, w.vm["id"], type="PortHasPortForwarding")
    assert dump(w.store) == before
    # a port with a floating IP gets no port forwarding; an associated IP has none
    other = w.alice.create("floatingip", "floatingips", floating_network_id=w.ext["id"],
                           port_id=w.vm2["id"])
    assert_error(w.alice.post(w.path, w.body(w.vm2, external_port=81, internal_port=81)),
                 409, type="PortHasBindingFloatingIP")
    other_path = f"/v2.0/floatingips/{other['id']}/port_forwardings"
    assert_error(w.alice.post(other_path, w.body(external_port=1, internal_port=1)), 409,
                 type="FloatingIPPortAlreadyAssociated")
    # once the forwarding goes, the floating IP may be associated
    assert w.alice.delete(f"{w.path}/{pf['id']}").status == 204
    r = w.alice.put(fip_path, {"floatingip": {"port_id": w.vm["id"]}})
    assert r.status == 200, r.body


def test_the_port_takes_its_forwardings_along(w: World) -> None:
    pf = w.make(external_port=80, internal_port=80)
    assert w.alice.delete(f"/v2.0/ports/{w.vm['id']}").status == 204
    assert_error(w.alice.get(f"{w.path}/{pf['id']}"), 404, type="PortForwardingNotFound")
    pf2 = w.make(port=w.vm2, external_port=81, internal_port=81)
    # an address the port no longer has takes its forwarding along too
    r = w.alice.put(f"/v2.0/ports/{w.vm2['id']}", {"port": {"fixed_ips": [
        {"subnet_id": w.sub["id"], "ip_address": "10.0.0.250"}]}})
    assert r.status == 200, r.body
    assert w.alice.get(f"{w.path}/{pf2['id']}").status == 404


def test_policy_is_the_floating_ips_owner(w: World) -> None:
    pf = w.make(external_port=80, internal_port=80)
    before = dump(w.store)
    # bob cannot see alice's floating IP: as if there were none
    assert_error(w.bob.get(w.path), 404, type="FloatingipNotFound")
    assert_error(w.bob.get(f"{w.path}/{pf['id']}"), 404)
    assert_error(w.bob.post(w.path, w.body(external_port=1, internal_port=1)), 404)
    assert_error(w.bob.put(f"{w.path}/{pf['id']}", {"port_forwarding": {"description": "x"}}),
                 404)
    assert_error(w.bob.delete(f"{w.path}/{pf['id']}"), 404)
    assert dump(w.store) == before
    # the admin may do anything
    assert w.admin.get(f"{w.path}/{pf['id']}").status == 200
    r = w.admin.put(f"{w.path}/{pf['id']}", {"port_forwarding": {"description": "ops"}})
    assert r.status == 200 and r["port_forwarding"]["description"] == "ops"
    # a forwarding of another floating IP is not below this one
    fip2 = w.alice.create("floatingip", "floatingips", floating_network_id=w.ext["id"])
    assert_error(w.alice.get(f"/v2.0/floatingips/{fip2['id']}/port_forwardings/{pf['id']}"),
                 404, type="PortForwardingNotFound")


def test_one_router_per_floating_ip(w: World) -> None:
    """Every forwarding of a floating IP goes through the same router."""
    w.make(external_port=80, internal_port=80)
    r2 = w.alice.create("router", "routers", name="r2",
                        external_gateway_info={"network_id": w.ext["id"]})
    r = w.alice.put(f"/v2.0/routers/{r2['id']}/add_router_interface",
                    {"subnet_id": w.sub2["id"]})
    assert r.status == 200, r.body
    far = w.alice.port(w.vm["network_id"], fixed_ips=[{"subnet_id": w.sub2["id"]}])
    assert_error(w.alice.post(w.path, w.body(far, external_port=81, internal_port=81)), 400,
                 w.router["id"], "can not reach it")


def test_extensions_advertised(w: World) -> None:
    for alias, name in (("floating-ip-port-forwarding", "Floating IP Port Forwarding"),
                        ("floating-ip-port-forwarding-description",
                         "Floating IP Port Forwarding new attribute description"),
                        ("floating-ip-port-forwarding-port-ranges",
                         "Floating IP Port Forwarding support port ranges"),
                        # the floating IP's port_forwardings name their id and port
                        ("floating-ip-port-forwarding-detail",
                         "Floating IP port forwarding detail")):
        r = w.alice.get(f"/v2.0/extensions/{alias}")
        assert r.status == 200 and r["extension"]["name"] == name, r.body


def test_without_auth(store: MemoryStore) -> None:
    """The no-auth API (everyone an admin) serves them too."""
    c = Direct(Api(store))
    r = c.get("/v2.0/floatingips/6f0e7a9c-0000-4000-8000-0000000000aa/port_forwardings")
    assert_error(r, 404, type="FloatingipNotFound")
