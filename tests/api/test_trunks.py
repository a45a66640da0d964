"""Trunks as Neutron serves them: CRUD, add_subports, remove_subports and
get_subports, the parent port's trunk_details, Neutron's refusals (nothing
written), the policy (the owner's), and the status: DOWN until the parent is
bound; DEGRADED, with ``overcast:status_reason``, on a host without 802.1Q."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.model import keys
from overcast.model.types import Host
from overcast.store import MemoryStore

from .helpers import CountingStore, Direct, assert_error, dump

TOKENS = {"t-admin": Context("ops", True), "t-alice": Context("alice", False),
          "t-bob": Context("bob", False)}
PATH = "/v2.0/trunks"


class World:
    def __init__(self) -> None:
        self.store = MemoryStore()
        api = Api(self.store, auth=Auth(dict(TOKENS)))
        self.admin, self.alice, self.bob = (Direct(api, t) for t in TOKENS)
        net = self.alice.network(name="net")
        self.alice.subnet(net["id"], "10.0.0.0/24")
        self.parent = self.alice.port(net["id"], name="parent")
        self.subs = [self.alice.port(net["id"], name=f"sub{i}") for i in range(3)]

    def make(self, **attrs: Any) -> dict[str, Any]:
        return self.alice.create("trunk", "trunks", port_id=self.parent["id"], **attrs)

    def host(self, name: str, vlan: bool) -> None:
        host = Host(id=name, host=name, underlay_ip="198.18.0.1",
                    features={"vlan": {"available": vlan}})
        self.store.put(keys.host(name), json.dumps(host.to_stored()).encode())


def sub(port: dict[str, Any], vid: int) -> dict[str, Any]:
    return {"port_id": port["id"], "segmentation_type": "vlan", "segmentation_id": vid}


@pytest.fixture
def w() -> World:
    return World()


def test_create_show_list_update_delete(w: World) -> None:
    made = w.make(name="t", description="vlan-aware", sub_ports=[sub(w.subs[0], 100)])
    assert {k: made[k] for k in ("name", "description", "port_id", "admin_state_up", "status",
                                 "project_id", "tenant_id", "sub_ports")} == {
        "name": "t", "description": "vlan-aware", "port_id": w.parent["id"],
        "admin_state_up": True, "status": "DOWN", "project_id": "alice", "tenant_id": "alice",
        "sub_ports": [sub(w.subs[0], 100)]}
    assert made["overcast:status_reason"] is None
    assert w.alice.get(f"{PATH}/{made['id']}")["trunk"] == made
    assert [t["id"] for t in w.alice.get(PATH, params={"name": "t"})["trunks"]] == [made["id"]]
    r = w.alice.put(f"{PATH}/{made['id']}", {"trunk": {"name": "t2", "admin_state_up": False}})
    assert r.status == 200 and (r["trunk"]["name"], r["trunk"]["admin_state_up"]) == ("t2", False)
    assert_error(w.alice.put(f"{PATH}/{made['id']}", {"trunk": {"port_id": w.subs[1]["id"]}}),
                 400, "port_id")
    # a disabled trunk cannot be managed
    assert_error(w.alice.delete(f"{PATH}/{made['id']}"), 409, type="TrunkDisabled")
    w.alice.put(f"{PATH}/{made['id']}", {"trunk": {"admin_state_up": True}})
    assert w.alice.delete(f"{PATH}/{made['id']}").status == 204
    assert_error(w.alice.get(f"{PATH}/{made['id']}"), 404, made["id"], type="TrunkNotFound")


def test_subport_actions_and_trunk_details(w: World) -> None:
    made = w.make()
    base = f"{PATH}/{made['id']}"
    r = w.alice.put(base + "/add_subports", {"sub_ports": [sub(w.subs[0], 10),
                                                           sub(w.subs[1], 20)]})
    assert r.status == 200, r.body
    assert r.body["id"] == made["id"]  # the trunk, unwrapped, as Neutron answers an action
    assert r.body["sub_ports"] == [sub(w.subs[0], 10), sub(w.subs[1], 20)]
    assert w.alice.get(base + "/get_subports").body == {"sub_ports": r.body["sub_ports"]}
    details = w.alice.get(f"/v2.0/ports/{w.parent['id']}")["port"]["trunk_details"]
    assert details == {"trunk_id": made["id"], "sub_ports": [
        {**sub(w.subs[0], 10), "mac_address": w.subs[0]["mac_address"]},
        {**sub(w.subs[1], 20), "mac_address": w.subs[1]["mac_address"]}]}
    assert "trunk_details" not in w.alice.get(f"/v2.0/ports/{w.subs[0]['id']}")["port"]
    listed = {p["id"]: p for p in w.alice.get("/v2.0/ports")["ports"]}  # a listing too
    assert listed[w.parent["id"]]["trunk_details"] == details
    assert "trunk_details" not in listed[w.subs[0]["id"]]
    r = w.alice.put(base + "/remove_subports", {"sub_ports": [{"port_id": w.subs[0]["id"]}]})
    assert r.status == 200 and r.body["sub_ports"] == [sub(w.subs[1], 20)]
    assert_error(w.alice.put(base + "/remove_subports",
                             {"sub_ports": [{"port_id": w.subs[0]["id"]}]}),
                 404, w.subs[0]["id"], type="SubPortNotFound")


def test_remove_subports_takes_what_get_subports_gives(w: World) -> None:
    """A client removes the subports it was given back, segmentation details
    and all (tempest's cleanup does); removal is by port, as Neutron's."""
    made = w.make(sub_ports=[sub(w.subs[0], 10), sub(w.subs[1], 20)])
    base = f"{PATH}/{made['id']}"
    echoed = w.alice.get(base + "/get_subports").body["sub_ports"]
    assert echoed == [sub(w.subs[0], 10), sub(w.subs[1], 20)]
    r = w.alice.put(base + "/remove_subports", {"sub_ports": echoed[1:]})
    assert r.status == 200, r.body
    assert r.body["sub_ports"] == [sub(w.subs[0], 10)]
    # the details are not matched against the trunk's: only the port counts
    before = dump(w.store)
    assert_error(w.alice.put(base + "/remove_subports", {"sub_ports": [sub(w.subs[2], 10)]}),
                 404, w.subs[2]["id"], made["id"], type="SubPortNotFound")
    # one detail without the other, a dict for the list: 400s
    half = {"port_id": w.subs[0]["id"], "segmentation_type": "vlan"}
    assert_error(w.alice.put(base + "/remove_subports", {"sub_ports": [half]}), 400,
                 "missing segmentation", type="InvalidInput")
    assert_error(w.alice.put(base + "/remove_subports", {"sub_ports": sub(w.subs[0], 10)}),
                 400, "not a list", type="InvalidInput")
    assert dump(w.store) == before
    # a disabled trunk refuses first, whatever the port
    w.alice.put(base, {"trunk": {"admin_state_up": False}})
    disabled = dump(w.store)
    assert_error(w.alice.put(base + "/remove_subports", {"sub_ports": [sub(w.parent, 2)]}),
                 409, made["id"], type="TrunkDisabled")
    assert dump(w.store) == disabled
    w.alice.put(base, {"trunk": {"admin_state_up": True}})
    assert w.alice.get(base)["trunk"]["sub_ports"] == [sub(w.subs[0], 10)]
    # the trunk and its state are judged before the body, as in Neutron
    repeated = {"sub_ports": [{"port_id": w.subs[0]["id"]}] * 2}
    assert_error(w.alice.put(f"{PATH}/{'0' * 8}-0000-4000-8000-{'0' * 12}/remove_subports",
                             repeated), 404, type="TrunkNotFound")
    w.alice.put(base, {"trunk": {"admin_state_up": False}})
    assert_error(w.alice.put(base + "/remove_subports", repeated), 409, type="TrunkDisabled")
    w.alice.put(base, {"trunk": {"admin_state_up": True}})
    # other keys are ignored, as Neutron's validate_subports does (a client may
    # send back what trunk_details showed, mac_address and all)
    shown = {**sub(w.subs[0], 10), "mac_address": w.subs[0]["mac_address"]}
    r = w.alice.put(base + "/remove_subports", {"sub_ports": [shown]})
    assert r.status == 200 and r.body["sub_ports"] == [], r.body


def test_conflicts_write_nothing(w: World) -> None:
    made = w.make(sub_ports=[sub(w.subs[0], 10)])
    base = f"{PATH}/{made['id']}"
    busy = w.alice.port(w.parent["network_id"], device_id="vm-1")  # a port with a device
    before = dump(w.store)
    # the VLAN id is taken on the trunk
    assert_error(w.alice.put(base + "/add_subports", {"sub_ports": [sub(w.subs[1], 10)]}),
                 409, "segmentation_id 10", type="DuplicateSubPort")
    # a port is in one trunk at most, as parent or subport
    assert_error(w.alice.put(base + "/add_subports", {"sub_ports": [sub(w.subs[0], 11)]}),
                 409, type="TrunkPortInUse")
    assert_error(w.alice.put(base + "/add_subports", {"sub_ports": [sub(w.parent, 12)]}),
                 409, type="ParentPortInUse")
    assert_error(w.alice.post(PATH, {"trunk": {"port_id": w.parent["id"]}}), 409,
                 type="ParentPortInUse")
    assert_error(w.alice.post(PATH, {"trunk": {"port_id": w.subs[0]["id"]}}), 409,
                 type="TrunkPortInUse")
    # a port with a device is in use
    assert_error(w.alice.put(base + "/add_subports", {"sub_ports": [sub(busy, 13)]}), 409,
                 "vm-1", type="PortInUse")
    # a port of a trunk cannot go
    assert_error(w.alice.delete(f"/v2.0/ports/{w.parent['id']}"), 409, made["id"],
                 type="PortInUseAsTrunkParent")
    assert_error(w.alice.delete(f"/v2.0/ports/{w.subs[0]['id']}"), 409, made["id"],
                 type="PortInUseAsSubPort")
    # all or nothing: one bad subport of two adds neither
    both = {"sub_ports": [sub(w.subs[1], 30), sub(w.subs[0], 31)]}
    assert_error(w.alice.put(base + "/add_subports", both), 409, type="TrunkPortInUse")
    assert dump(w.store) == before
    assert w.alice.get(base)["trunk"]["sub_ports"] == [sub(w.subs[0], 10)]


@pytest.mark.parametrize("subport,words", [
    ({"segmentation_type": "vlan", "segmentation_id": 0}, ("Segmentation ID '0'",)),
    ({"segmentation_type": "vlan", "segmentation_id": 4095}, ("Segmentation ID '4095'",)),
    ({"segmentation_type": "vlan", "segmentation_id": "ten"}, ("not an integer",)),
    ({"segmentation_type": "vxlan", "segmentation_id": 5}, ("segmentation_type 'vxlan'",)),
    ({"segmentation_type": "vlan"}, ("missing segmentation",)),
    ({"segmentation_id": 5}, ("missing segmentation",)),
])
def test_bad_subports(w: World, subport: dict[str, Any], words: tuple[str, ...]) -> None:
    made = w.make()
    before = dump(w.store)
    body = {"sub_ports": [{"port_id": w.subs[0]["id"], **subport}]}
    assert_error(w.alice.put(f"{PATH}/{made['id']}/add_subports", body), 400, *words)
    assert_error(w.alice.post(PATH, {"trunk": {"port_id": w.subs[1]["id"], **body}}), 400,
                 "sub_ports", *words)
    assert dump(w.store) == before


def test_bad_bodies(w: World) -> None:
    made = w.make()
    base = f"{PATH}/{made['id']}"
    assert_error(w.alice.post(PATH, {"trunk": {}}), 400, "port_id")
    assert_error(w.alice.post(PATH, {"trunk": {"port_id": "a/b"}}), 400, "port_id")
    assert_error(w.alice.post(PATH, {"trunk": {"port_id": "nope"}}), 404, type="PortNotFound")
    assert_error(w.alice.put(base + "/add_subports", {"subports": []}), 400, "sub_ports")
    twice = {"sub_ports": [sub(w.subs[0], 5), sub(w.subs[1], 5)]}
    assert_error(w.alice.put(base + "/add_subports", twice), 400,
                 f"Segmentation ID '5' for '{w.subs[1]['id']}' is not unique")
    same = {"sub_ports": [sub(w.subs[0], 5), sub(w.subs[0], 6)]}
    assert_error(w.alice.put(base + "/add_subports", same), 400,
                 f"Non unique UUID for subport: '{w.subs[0]['id']}'")
    nulls = {"sub_ports": [{**sub(w.subs[0], 5), "segmentation_id": None}]}
    assert_error(w.alice.put(base + "/add_subports", nulls), 400, "missing segmentation")


def test_remove_subports_refuses_nulls_and_repeats(w: World) -> None:
    """Neutron's remove_subports runs validate_subports on the body: null
    entries or details and a port or segmentation given twice are a 400
    InvalidInput naming the fault, and nothing is removed."""
    made = w.make(sub_ports=[sub(w.subs[0], 10), sub(w.subs[1], 20)])
    base = f"{PATH}/{made['id']}/remove_subports"
    one, two = w.subs[0]["id"], w.subs[1]["id"]
    before = dump(w.store)
    cases: list[tuple[Any, str]] = [
        (None, "not a list"),
        ([None], "Invalid data format for subport: 'None' is not a dict"),
        ([{"port_id": None}], "A valid port UUID must be specified"),
        ([{"port_id": one, "segmentation_type": None, "segmentation_id": None}],
         "missing segmentation information"),
        ([{"port_id": one, "segmentation_type": "vlan", "segmentation_id": None}],
         "missing segmentation information"),
        ([{"port_id": one, "segmentation_type": None, "segmentation_id": 10}],
         "missing segmentation information"),
        ([{"port_id": one, "segmentation_type": None}], "missing segmentation information"),
        ([{"port_id": one}, {"port_id": one}], f"Non unique UUID for subport: '{one}'"),
        ([sub(w.subs[0], 10), sub(w.subs[0], 10)], f"Non unique UUID for subport: '{one}'"),
        ([sub(w.subs[0], 10), sub(w.subs[1], 10)],
         f"Segmentation ID '10' for '{two}' is not unique"),
    ]
    for subs, words in cases:
        assert_error(w.alice.put(base, {"sub_ports": subs}), 400, words, type="InvalidInput")
    assert dump(w.store) == before
    r = w.alice.put(base, {"sub_ports": [{"port_id": one}, sub(w.subs[1], 20)]})
    assert r.status == 200 and r.body["sub_ports"] == [], r.body


def test_policy_is_the_owners(w: World) -> None:
    made = w.make(sub_ports=[sub(w.subs[0], 10)])
    base = f"{PATH}/{made['id']}"
    before = dump(w.store)
    assert_error(w.bob.get(base), 404)
    assert w.bob.get(PATH)["trunks"] == []
    assert_error(w.bob.put(base, {"trunk": {"name": "x"}}), 404)
    assert_error(w.bob.delete(base), 404)
    assert_error(w.bob.get(base + "/get_subports"), 404)
    assert_error(w.bob.put(base + "/add_subports", {"sub_ports": [sub(w.subs[1], 11)]}), 404)
    # bob's trunk on alice's port, or with her port as a subport: no such port for him
    bob_net = w.bob.network(name="b")
    w.bob.subnet(bob_net["id"], "10.9.0.0/24")
    mine = w.bob.port(bob_net["id"])
    assert_error(w.bob.post(PATH, {"trunk": {"port_id": w.subs[1]["id"]}}), 404,
                 type="PortNotFound")
    assert_error(w.bob.post(PATH, {"trunk": {"port_id": mine["id"],
                                             "sub_ports": [sub(w.subs[1], 5)]}}),
                 404, type="PortNotFound")
    assert dump(w.store) == {**before, **{k: v for k, v in dump(w.store).items()
                                           if k not in before}}
    assert w.admin.get(base).status == 200


def test_status_on_a_host_without_8021q(w: World) -> None:
    made = w.make(sub_ports=[sub(w.subs[0], 10)])
    base = f"{PATH}/{made['id']}"
    w.host("h1", vlan=False)
    w.host("h2", vlan=True)
    r = w.admin.put(f"/v2.0/ports/{w.parent['id']}", {"port": {"binding:host_id": "h1"}})
    assert r.status == 200, r.body
    shown = w.alice.get(base)["trunk"]
    assert shown["status"] == "DEGRADED"
    assert "802.1Q" in shown["overcast:status_reason"] and "h1" in shown["overcast:status_reason"]
    assert [t["id"] for t in w.alice.get(PATH, params={"status": "DEGRADED"})["trunks"]] == [
        made["id"]]
    # the parent port says so too
    parent = w.alice.get(f"/v2.0/ports/{w.parent['id']}")["port"]
    assert parent["overcast:trunk_status_reason"] == shown["overcast:status_reason"].replace(
        "host h1", "the parent port's host")
    assert "overcast:trunk_status_reason" not in w.alice.get(
        f"/v2.0/ports/{w.subs[1]['id']}")["port"]
    # without subports there is nothing tagged to carry
    w.alice.put(base + "/remove_subports", {"sub_ports": [{"port_id": w.subs[0]["id"]}]})
    assert (w.alice.get(base)["trunk"]["status"]) == "DOWN"
    w.alice.put(base + "/add_subports", {"sub_ports": [sub(w.subs[0], 10)]})
    # a host with 802.1Q: what its agent reports, DOWN until it does
    w.admin.put(f"/v2.0/ports/{w.parent['id']}", {"port": {"binding:host_id": "h2"}})
    assert (w.alice.get(base)["trunk"]["status"], w.alice.get(base)["trunk"][
        "overcast:status_reason"]) == ("DOWN", None)
    w.store.put(keys.trunk_status(made["id"]),
                json.dumps({"status": "ACTIVE", "host": "h2"}).encode())
    assert w.alice.get(base)["trunk"]["status"] == "ACTIVE"
    w.admin.put(f"/v2.0/ports/{w.parent['id']}", {"port": {"binding:host_id": "h1"}})
    assert w.alice.get(base)["trunk"]["status"] == "DEGRADED"  # h2's report holds no more


def test_extensions_advertised(w: World) -> None:
    for alias, name in (("trunk", "Trunk Extension"), ("trunk-details", "Trunk port details")):
        r = w.alice.get(f"/v2.0/extensions/{alias}")
        assert r.status == 200 and r["extension"]["name"] == name, r.body


def test_trunk_lookups_cost_the_same_with_5_or_60_trunks() -> None:
    """Whether a port is a trunk's subport (a port's delete, a new trunk's and
    a new subport's checks) is read from the trunks' subport index, as a
    trunk's parent is: as many store reads with 60 other trunks as with 5."""
    reads = [_trunk_reads(n) for n in (5, 60)]
    assert reads[0] == reads[1], reads


def _trunk_reads(others: int) -> dict[str, int]:
    store = CountingStore()
    c = Direct(Api(store))
    busy, quiet = c.network(name="busy"), c.network(name="quiet")
    c.subnet(busy["id"], "10.0.0.0/16")
    c.subnet(quiet["id"], "10.9.0.0/24")
    for _ in range(others):
        c.create("trunk", "trunks", port_id=c.port(busy["id"])["id"],
                 sub_ports=[sub(c.port(busy["id"]), 100)])
    held = c.port(quiet["id"])
    trunk = c.create("trunk", "trunks", port_id=c.port(quiet["id"])["id"],
                     sub_ports=[sub(held, 100)])
    fresh = [c.port(quiet["id"]) for _ in range(3)]
    acts: dict[str, Callable[[], bool]] = {
        "delete a subport": lambda: c.delete(f"/v2.0/ports/{held['id']}").status == 409,
        "add a subport": lambda: c.put(f"{PATH}/{trunk['id']}/add_subports", {
            "sub_ports": [sub(fresh[0], 200)]}).status == 200,
        "make a trunk": lambda: c.post(PATH, {"trunk": {
            "port_id": fresh[1]["id"], "sub_ports": [sub(fresh[2], 100)]}}).status == 201,
        "a subport as a parent": lambda: c.post(PATH, {"trunk": {
            "port_id": held["id"]}}).status == 409,
    }
    out = {}
    for what, act in acts.items():
        store.reads = 0
        assert act(), what
        out[what] = store.reads
    return out
