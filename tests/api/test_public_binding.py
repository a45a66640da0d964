"""The dynamic public binding's controller (``publicdns.Binder``) against
the API in process: boots take addresses from the pool, releases and long
DOWNs give them back, an empty pool is said on the port, a name removed or
a port deleted unbinds; and the public zone serves what is bound."""

from __future__ import annotations

import json
from typing import Any

from overcast.api import Api
from overcast.model import keys
from overcast.publicdns import Binder, PublicZone
from overcast.services import dns
from overcast.store import MemoryStore

from .helpers import Direct


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def world() -> tuple[MemoryStore, Direct, Binder, Clock, list[dict[str, Any]]]:
    store = MemoryStore()
    api = Api(store)
    client = Direct(api)
    public = client.network(name="public", **{"router:external": True})
    client.subnet(public["id"], "203.0.113.0/24")
    net = client.network(name="net")
    sub = client.subnet(net["id"], "10.0.0.0/24")
    router = client.create("router", "routers", name="r",
                           external_gateway_info={"network_id": public["id"]})
    r = client.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status == 200, r.body
    # the pool, after the router's gateway took its address from the first subnet
    client.subnet(public["id"], "198.51.100.0/24", gateway_ip=None, tags=["public-pool"],
                  allocation_pools=[{"start": "198.51.100.10", "end": "198.51.100.11"}])
    ports = [client.port(net["id"], **{"overcast:public_hostname": f"vm{i}.cloud.example"})
             for i in range(3)]
    clock = Clock()
    return store, client, Binder(store, api, "public", grace=5.0, clock=clock), clock, ports


def boot(store: MemoryStore, port: dict[str, Any], event: str = "boot",
         status: str = "ACTIVE") -> None:
    store.put(keys.boot(port["id"]), json.dumps({"host": "h1", "event": event}).encode())
    store.put(keys.port_status(port["id"]), json.dumps({"status": status, "host": "h1"}).encode())


def bound(client: Direct, port: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = client.get(f"/v2.0/ports/{port['id']}").body["port"][
        "overcast:public_binding"]
    return value


def test_vms_take_turns_on_a_pool_smaller_than_them() -> None:
    store, client, binder, clock, ports = world()
    binder.step()
    assert [bound(client, p)["address"] for p in ports] == [None, None, None]  # none booted
    for p in ports:
        boot(store, p)
    binder.step()
    got = {p["id"]: bound(client, p) for p in ports}
    holders = [p for p in ports if got[p["id"]]["address"]]
    (waiting,) = [p for p in ports if not got[p["id"]]["address"]]
    assert sorted(got[p["id"]]["address"] for p in holders) == ["198.51.100.10", "198.51.100.11"]
    assert "public pool empty" in got[waiting["id"]]["problem"]
    first, second = holders
    address = got[first["id"]]["address"]
    zone = PublicZone(store, "cloud.example", "203.0.113.1")
    zone.refresh()
    fqdn = first["overcast:public_hostname"]
    reply = dns.parse(dns.answer(dns.build_query(fqdn, dns.A), zone.current).reply or b"")
    assert [a.value for a in reply.answers] == [address]
    # the first releases: its address goes to the one waiting
    boot(store, first, "release")
    binder.step()
    binder.step()
    assert bound(client, first) == {"hostname": fqdn, "address": None}
    assert bound(client, waiting)["address"] == address
    # the second's port is DOWN: bound through the grace, given back after it
    boot(store, second, status="DOWN")
    binder.step()
    assert bound(client, second)["address"] == got[second["id"]]["address"]
    clock.now += 6
    binder.step()
    assert bound(client, second)["address"] is None
    fips = client.get("/v2.0/floatingips").body["floatingips"]
    assert [f["port_id"] for f in fips] == [waiting["id"]]


def test_a_name_taken_away_or_a_port_deleted_unbinds() -> None:
    store, client, binder, _, ports = world()
    for p in ports[:2]:
        boot(store, p)
    binder.step()
    r = client.put(f"/v2.0/ports/{ports[0]['id']}", {"port": {"overcast:public_hostname": ""}})
    assert r.status == 200 and r.body["port"]["overcast:public_binding"] is None
    assert client.delete(f"/v2.0/ports/{ports[1]['id']}").status == 204
    binder.step()
    assert client.get("/v2.0/floatingips").body["floatingips"] == []
    assert store.range(keys.public()).kvs == []


def test_a_public_hostname_must_be_fully_qualified() -> None:
    _, client, _, _, ports = world()
    for bad in ("www", "-x.cloud.example", "a..b", "x" * 64 + ".example"):
        r = client.put(f"/v2.0/ports/{ports[0]['id']}", {"port": {"overcast:public_hostname": bad}})
        assert r.status == 400, (bad, r.body)


def test_a_subnet_for_floating_ips_only_keeps_routers_off_it() -> None:
    """Neutron's subnet service types: a router's gateway takes its address
    from the subnet for no particular owner, a floating IP from its own."""
    client = Direct(Api(MemoryStore()))
    public = client.network(name="public", **{"router:external": True})
    client.subnet(public["id"], "203.0.113.0/24")
    pool = client.subnet(public["id"], "198.51.100.0/24", service_types=["network:floatingip"])
    assert pool["service_types"] == ["network:floatingip"]
    for _ in range(3):
        router = client.create("router", "routers", external_gateway_info={
            "network_id": public["id"]})
        (fixed,) = router["external_gateway_info"]["external_fixed_ips"]
        assert fixed["ip_address"].startswith("203.0.113.")
    fip = client.create("floatingip", "floatingips", floating_network_id=public["id"])
    assert fip["floating_ip_address"].startswith("198.51.100.")
    bad = client.post("/v2.0/subnets", {"subnet": {"network_id": public["id"], "cidr": "192.0.2.0/24",
                                                   "ip_version": 4, "service_types": ["bogus"]}})
    assert bad.status == 400 and "bogus" in str(bad.body)


def test_a_moved_or_unrecorded_floating_ip_of_the_binder_is_not_leaked() -> None:
    store, client, binder, _, ports = world()
    boot(store, ports[0])
    binder.step()
    fip_id = bound(client, ports[0])
    fips = client.get("/v2.0/floatingips").body["floatingips"]
    assert len(fips) == 1
    # the user unhooks it: the binder gives it back and binds anew
    r = client.put(f"/v2.0/floatingips/{fips[0]['id']}", {"floatingip": {"port_id": None}})
    assert r.status == 200, r.body
    binder.step()
    binder.step()
    fips = client.get("/v2.0/floatingips").body["floatingips"]
    assert [f["port_id"] for f in fips] == [ports[0]["id"]] and fip_id
    # the record is lost (a crash after the POST): the floating IP is adopted, not doubled
    store.delete(keys.public(ports[0]["id"]))
    binder.step()
    assert len(client.get("/v2.0/floatingips").body["floatingips"]) == 1
    assert bound(client, ports[0])["address"] == fips[0]["floating_ip_address"]


def test_a_port_long_down_is_not_bound_by_a_new_binder() -> None:
    store, client, binder, _, ports = world()
    boot(store, ports[0], status="DOWN")
    binder.step()  # a new binder's first step: the grace is over for a port already DOWN
    assert bound(client, ports[0])["address"] is None


def test_a_claimed_name_is_only_its_ports_binding() -> None:
    store, client, binder, _, ports = world()
    boot(store, ports[0])
    binder.step()
    address = bound(client, ports[0])["address"]
    public = client.get("/v2.0/networks", params={"name": "public"}).body["networks"][0]
    (usual,) = [s["id"] for s in client.get("/v2.0/subnets").body["subnets"]
                if s["cidr"] == "203.0.113.0/24"]
    # someone else's floating IP with the same name, and one naming the zone's server
    for name in ("vm0", "ns1"):
        r = client.post("/v2.0/floatingips", {"floatingip": {
            "floating_network_id": public["id"], "subnet_id": usual, "dns_name": name,
            "dns_domain": "cloud.example.", "project_id": "other"}})
        assert r.status == 201, r.body
    zone = PublicZone(store, "cloud.example", "203.0.113.1")
    zone.refresh()
    assert zone.what is not None and dict(zone.what.hosts) == {"vm0.cloud.example": (address,)}
