"""Neutron's auto-allocated-topology: a project's network, subnet from the
default pool and router to the default external network, made once by a GET
(the same answer each time after), checked by ``?fields=dry-run``, taken
away by DELETE; each project its own, an admin's for any."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump

PATH = "/v2.0/auto-allocated-topology"


class Cloud:
    """ops (admin), alice and bob; with ``ready``, the default external network
    and a shared default IPv4 pool."""

    def __init__(self, ready: bool = True) -> None:
        self.store = MemoryStore()
        api = Api(self.store, auth=Auth({"t-ops": Context("ops", True),
                                         "t-alice": Context("alice", False),
                                         "t-bob": Context("bob", False)}))
        self.ops, self.alice, self.bob = (Direct(api, f"t-{n}") for n in ("ops", "alice", "bob"))
        if ready:
            self.external = self.ops.network(name="public", is_default=True,
                                             **{"router:external": True})
            self.ops.subnet(self.external["id"], "203.0.113.0/24")
            self.pool = self.ops.create("subnetpool", "subnetpools", name="default",
                                        prefixes=["10.128.0.0/16"], default_prefixlen=24,
                                        shared=True, is_default=True)


def test_made_once_then_the_same() -> None:
    w = Cloud()
    r = w.alice.get(f"{PATH}/alice")
    assert r.status == 200, r.body
    topology = r["auto_allocated_topology"]
    assert set(topology) == {"id", "project_id", "tenant_id"}
    assert (topology["project_id"], topology["tenant_id"]) == ("alice", "alice")
    net = w.alice.get(f"/v2.0/networks/{topology['id']}")["network"]
    assert (net["name"], net["project_id"], net["admin_state_up"]) == (
        "auto_allocated_network", "alice", True)
    [sub] = w.alice.get("/v2.0/subnets", params={"network_id": net["id"]})["subnets"]
    assert (sub["name"], sub["cidr"], sub["subnetpool_id"]) == (
        "auto_allocated_subnet_v4", "10.128.0.0/24", w.pool["id"])
    [router] = w.alice.get("/v2.0/routers")["routers"]
    assert router["name"] == "auto_allocated_router"
    assert router["external_gateway_info"]["network_id"] == w.external["id"]
    ports = w.alice.get("/v2.0/ports", params={"device_id": router["id"],
                                               "device_owner": "network:router_interface"})
    assert [p["fixed_ips"][0]["ip_address"] for p in ports["ports"]] == ["10.128.0.1"]
    # again: the same network, nothing new; "None" is the caller's project
    before = dump(w.store)
    assert w.alice.get(f"{PATH}/alice")["auto_allocated_topology"] == topology
    assert w.alice.get(f"{PATH}/None")["auto_allocated_topology"] == topology
    assert dump(w.store) == before
    # bob gets his own, from the next prefix
    theirs = w.bob.get(f"{PATH}/bob")["auto_allocated_topology"]
    assert theirs["id"] != topology["id"]
    [bobs] = w.bob.get("/v2.0/subnets")["subnets"]
    assert bobs["cidr"] == "10.128.1.0/24"


def test_each_project_its_own() -> None:
    w = Cloud()
    before = dump(w.store)
    assert_error(w.bob.get(f"{PATH}/alice"), 403, "get_auto_allocated_topology")
    assert_error(w.bob.delete(f"{PATH}/alice"), 403, "delete_auto_allocated_topology")
    assert dump(w.store) == before
    made = w.ops.get(f"{PATH}/alice")["auto_allocated_topology"]
    assert made["project_id"] == "alice"
    assert w.alice.get(f"{PATH}/alice")["auto_allocated_topology"] == made


def test_dry_run_says_what_is_missing() -> None:
    w = Cloud(ready=False)
    before = dump(w.store)
    err = assert_error(w.alice.get(f"{PATH}/alice", params={"fields": "dry-run"}), 409,
                       type="AutoAllocationFailure")
    assert err["message"] == "Deployment error: No default router:external network."
    assert_error(w.alice.get(f"{PATH}/alice"), 409, "No default router:external network")
    assert dump(w.store) == before
    external = w.ops.network(name="public", is_default=True, **{"router:external": True})
    w.ops.subnet(external["id"], "203.0.113.0/24")
    before = dump(w.store)
    assert_error(w.alice.get(f"{PATH}/alice", params={"fields": "dry-run"}), 409,
                 "Deployment error: No default subnetpools defined.")
    assert_error(w.alice.get(f"{PATH}/alice"), 409, "No default subnetpools defined")
    assert dump(w.store) == before
    w.ops.create("subnetpool", "subnetpools", name="d", prefixes=["10.0.0.0/24"],
                 default_prefixlen=24, shared=True, is_default=True)
    r = w.alice.get(f"{PATH}/alice", params={"fields": "dry-run"})
    assert r.status == 200 and r["auto_allocated_topology"]["id"] == "dry-run=pass"
    assert_error(w.alice.get(f"{PATH}/alice", params={"fields": "id"}), 400,
                 "Unrecognized field")
    # the pool holds one /24: bob's topology cannot be made, and nothing of it stays
    assert w.alice.get(f"{PATH}/alice").status == 200
    before = dump(w.store)
    assert_error(w.bob.get(f"{PATH}/bob"), 409,
                 "Deployment error: Unable to provide project private network.")
    assert dump(w.store) == before


def test_it_counts_but_is_not_refused_by_quotas() -> None:
    """Neutron enforces quotas in the API's create (its controller's
    reservation), and its auto-allocation makes the topology by plugin calls
    (create_network, create_subnet, create_router): a project at its limits
    still gets its topology, which counts, so its next POST is refused."""
    w = Cloud()
    r = w.ops.put("/v2.0/quotas/alice", {"quota": {"network": 0, "subnet": 0, "router": 0}})
    assert r.status == 200, r.body
    made = w.alice.get(f"{PATH}/alice")
    assert made.status == 200, made.body
    used = {k: v["used"] for k, v in w.alice.get("/v2.0/quotas/alice/details")["quota"].items()}
    assert (used["network"], used["subnet"], used["router"]) == (1, 1, 1)
    assert_error(w.alice.post("/v2.0/networks", {"network": {"name": "n"}}), 409,
                 type="OverQuota")


def test_delete_takes_it_away() -> None:
    w = Cloud()
    assert w.alice.delete(f"{PATH}/alice").status == 204  # nothing yet: nothing to do
    made = w.alice.get(f"{PATH}/alice")["auto_allocated_topology"]
    assert w.alice.delete(f"{PATH}/alice").status == 204
    assert_error(w.alice.get(f"/v2.0/networks/{made['id']}"), 404)
    assert w.alice.get("/v2.0/routers")["routers"] == []
    assert w.ops.get("/v2.0/subnets", params={"subnetpool_id": w.pool["id"]})["subnets"] == []
    again = w.alice.get(f"{PATH}/alice")["auto_allocated_topology"]
    assert again["id"] != made["id"]


@pytest.mark.parametrize("alias", ["auto-allocated-topology"])
def test_it_is_advertised(alias: str) -> None:
    ext: dict[str, Any] = Cloud(ready=False).alice.get(f"/v2.0/extensions/{alias}")["extension"]
    assert (ext["name"], ext["description"]) == ("Auto Allocated Topology Services",
                                                 "Auto Allocated Topology Services.")
