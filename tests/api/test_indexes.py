"""Secondary indexes: always equal to what the objects say, rebuilt for a
store written without them, and used by the checks that depend on them."""

from __future__ import annotations

import random
from typing import Any

import pytest

from overcast.api import Api
from overcast.api.repo import build_indexes
from overcast.model import keys
from overcast.store import MemoryStore, transact

from .helpers import Direct, assert_error


def index_entries(store: MemoryStore) -> set[str]:
    return {kv.key for kv in store.range(keys.IDX).kvs}


def rebuilt(store: MemoryStore) -> set[str]:
    """The entries ``build_indexes`` derives from the objects alone (on a copy)."""
    copy = MemoryStore()
    for kv in store.range("/oc/").kvs:
        copy.put(kv.key, kv.value)
    transact(copy, build_indexes)
    return index_entries(copy)


def test_random_changes_keep_indexes_equal_to_the_objects() -> None:
    rng = random.Random(7)
    store = MemoryStore()
    client = Direct(Api(store))
    nets = [client.network(name=f"n{i}") for i in range(3)]
    for i, n in enumerate(nets):
        client.subnet(n["id"], f"10.{i}.0.0/24")
    ports: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for _ in range(150):
        action = rng.choice(["port", "port", "move", "delete", "group", "rule", "ungroup", "subnet"])
        if action == "port":
            ports.append(client.port(rng.choice(nets)["id"], device_id=rng.choice(["", "vm-a", "vm/b"])))
        elif action == "move" and ports:
            p = rng.choice(ports)
            r = client.put(f"/v2.0/ports/{p['id']}", {"port": {"device_id": rng.choice(["", "vm-c", "r 1"])}})
            assert r.status == 200, r.body
        elif action == "delete" and ports:
            p = ports.pop(rng.randrange(len(ports)))
            assert client.delete(f"/v2.0/ports/{p['id']}").status == 204
        elif action == "group":
            groups.append(client.create("security_group", "security-groups", name=f"g{len(groups)}"))
        elif action == "rule" and groups:
            g = rng.choice(groups)
            client.post("/v2.0/security-group-rules", {"security_group_rule": {
                "security_group_id": g["id"], "direction": "ingress", "protocol": "tcp",
                "port_range_min": rng.randrange(1, 1000), "port_range_max": 1000}})
        elif action == "ungroup" and groups:
            g = groups.pop(rng.randrange(len(groups)))
            assert client.delete(f"/v2.0/security-groups/{g['id']}").status == 204
        elif action == "subnet":
            n = rng.choice(nets)
            client.post("/v2.0/subnets", {"subnet": {
                "network_id": n["id"], "cidr": f"172.16.{rng.randrange(256)}.0/24", "ip_version": 4}})
        assert index_entries(store) == rebuilt(store)
    slash = client.port(nets[0]["id"], device_id="vm/b")
    assert keys.index("port", "device_id", "vm/b", slash["id"]) in index_entries(store)
    assert "/device_id/vm%2Fb/" in keys.index("port", "device_id", "vm/b", slash["id"])


def test_a_trunks_subports_are_indexed_by_port() -> None:
    """One entry per subport (``sub_ports.port_id``), kept equal to the trunks
    through adds, removals and deletes, and rebuilt from them."""
    store = MemoryStore()
    client = Direct(Api(store))
    net = client.network(name="n")
    client.subnet(net["id"], "10.0.0.0/24")
    ports = [client.port(net["id"]) for _ in range(4)]

    def subs(*which: int) -> list[dict[str, Any]]:
        return [{"port_id": ports[i]["id"], "segmentation_type": "vlan",
                 "segmentation_id": 10 + i} for i in which]

    def entries() -> set[str]:
        return {k for k in index_entries(store) if "/sub_ports.port_id/" in k}
    trunk = client.create("trunk", "trunks", port_id=ports[0]["id"], sub_ports=subs(1, 2))
    assert entries() == {keys.index("trunk", "sub_ports.port_id", ports[i]["id"], trunk["id"])
                         for i in (1, 2)}
    base = f"/v2.0/trunks/{trunk['id']}"
    for action, which in (("add_subports", (3,)), ("remove_subports", (1, 2))):
        assert client.put(f"{base}/{action}", {"sub_ports": subs(*which)}).status == 200
        assert index_entries(store) == rebuilt(store)
    assert entries() == {keys.index("trunk", "sub_ports.port_id", ports[3]["id"], trunk["id"])}
    assert_error(client.delete(f"/v2.0/ports/{ports[3]['id']}"), 409, type="PortInUseAsSubPort")
    assert client.delete(f"/v2.0/ports/{ports[1]['id']}").status == 204  # no longer one
    assert client.delete(base).status == 204
    assert entries() == set() and index_entries(store) == rebuilt(store)


def test_a_store_without_indexes_gets_them_at_start() -> None:
    store = MemoryStore()
    client = Direct(Api(store))
    net = client.network(name="n")
    client.subnet(net["id"], "10.0.0.0/24")
    port = client.port(net["id"])
    before = index_entries(store)
    assert before
    for key in [*before, keys.INDEX_META]:
        store.delete(key)
    fresh = Direct(Api(store))  # a server started on a store written without indexes
    assert index_entries(store) == before
    assert_error(fresh.delete(f"/v2.0/networks/{net['id']}"), 409, net["id"], type="NetworkInUse")
    got = fresh.get(f"/v2.0/networks/{net['id']}")
    assert len(got["network"]["subnets"]) == 1
    assert fresh.delete(f"/v2.0/ports/{port['id']}").status == 204
    assert fresh.delete(f"/v2.0/networks/{net['id']}").status == 204


def test_a_store_whose_indexes_a_newer_server_wrote_is_refused_at_start() -> None:
    """An older server would rebuild the indexes without the entries the newer
    one reads (a trunk's subports): it refuses to start, naming both layouts."""
    store = MemoryStore()
    client = Direct(Api(store))
    client.subnet(client.network(name="n")["id"], "10.0.0.0/24")
    newer = str(int(keys.INDEX_VERSION) + 1)
    store.put(keys.INDEX_META, newer.encode())
    before = index_entries(store)
    with pytest.raises(RuntimeError, match=f"layout {newer}, newer than this server's"):
        Api(store)
    meta = store.get(keys.INDEX_META)
    assert before and index_entries(store) == before
    assert meta is not None and meta.value == newer.encode()


def test_freed_address_is_the_next_one_handed_out() -> None:
    """Allocation reads the subnet's addresses only as a hint; it still hands out
    the lowest free one."""
    client = Direct(Api(MemoryStore()))
    net = client.network(name="n")
    sub = client.subnet(net["id"], "10.0.0.0/29")  # .2 .. .6 usable after the gateway
    ports = [client.port(net["id"]) for _ in range(5)]
    assert [p["fixed_ips"][0]["ip_address"] for p in ports] == [f"10.0.0.{i}" for i in range(2, 7)]
    assert_error(client.post("/v2.0/ports", {"port": {"network_id": net["id"]}}), 409,
                 net["id"], type="IpAddressGenerationFailure")
    assert client.delete(f"/v2.0/ports/{ports[2]['id']}").status == 204
    again = client.port(net["id"])
    assert again["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.4"}]
