"""A floating IP's status: ACTIVE once the agent of its port's host has it in
place (the status of the floating IP's own port, as that host wrote it)."""

from __future__ import annotations

import json
from typing import Any

from overcast.model import keys
from overcast.store import MemoryStore

from .helpers import Direct

Obj = dict[str, Any]


def fip_with_two_ports(client: Direct) -> tuple[Obj, Obj, Obj, str]:
    """A floating IP on a port bound to h1; another port on h2; the
    floating IP's own port."""
    ext = client.network(name="ext", **{"router:external": True})
    client.subnet(ext["id"], "203.0.113.0/24")
    router = client.create("router", "routers", name="r",
                           external_gateway_info={"network_id": ext["id"]})
    net = client.network(name="n")
    sub = client.subnet(net["id"], "10.0.1.0/24")
    client.put(f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    p1 = client.port(net["id"], **{"binding:host_id": "h1"})
    p2 = client.port(net["id"], **{"binding:host_id": "h2"})
    fip = client.create("floatingip", "floatingips", floating_network_id=ext["id"],
                        port_id=p1["id"])
    (own,) = client.get("/v2.0/ports", params={"device_id": fip["id"]}).body["ports"]
    return fip, p1, p2, str(own["id"])


def status(client: Direct, fip: Obj) -> str:
    return str(client.get(f"/v2.0/floatingips/{fip['id']}").body["floatingip"]["status"])


def written(store: MemoryStore, port_id: str, host: str) -> None:
    store.put(keys.port_status(port_id), json.dumps({"status": "ACTIVE", "host": host}).encode())


def test_a_moved_floating_ip_is_active_only_once_its_new_host_says_so(
        client: Direct, store: MemoryStore) -> None:
    fip, _p1, p2, own = fip_with_two_ports(client)
    assert status(client, fip) == "DOWN"  # nobody has it in place yet
    written(store, own, "h1")
    assert status(client, fip) == "ACTIVE"
    client.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": p2["id"]}})
    # h1's status stays until its agent drops it (slow, or gone): not where the FIP is now
    assert status(client, fip) == "DOWN"
    written(store, own, "h2")
    assert status(client, fip) == "ACTIVE"
    client.put(f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    assert status(client, fip) == "DOWN"
