"""openstacksdk against Overcast: bulk create and pagination.

The connection uses auth_type none and the unversioned endpoint (see
docs/openstack-clients.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from openstack import exceptions
from openstack.connection import Connection
from openstack.network.v2.network import Network


def _net_with_subnet(conn: Connection, u: str, cidr: str = "10.0.0.0/24") -> tuple[Any, Any]:
    net = conn.network.create_network(name=f"net-{u}")
    sub = conn.network.create_subnet(network_id=net.id, cidr=cidr, ip_version=4, name=f"sub-{u}")
    return net, sub


def test_connection_discovers_network_v2(conn: Connection) -> None:
    ep = conn.network.get_endpoint()
    assert ep is not None
    assert ep.rstrip("/").endswith("/v2.0")
    assert list(conn.network.networks(name="does-not-exist")) == []


def test_bulk_create_ports(conn: Connection, uniq: str) -> None:
    net, sub = _net_with_subnet(conn, uniq)
    ports = list(
        conn.network.create_ports(
            [
                {"network_id": net.id, "name": f"p0-{uniq}"},
                {
                    "network_id": net.id,
                    "name": f"p1-{uniq}",
                    "fixed_ips": [{"subnet_id": sub.id, "ip_address": "10.0.0.77"}],
                },
                {"network_id": net.id, "name": f"p2-{uniq}"},
            ]
        )
    )
    assert [p.name for p in ports] == [f"p0-{uniq}", f"p1-{uniq}", f"p2-{uniq}"]
    assert all(p.id for p in ports)
    assert ports[1].fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.0.0.77"}]
    ips = [p.fixed_ips[0]["ip_address"] for p in ports]
    macs = [p.mac_address for p in ports]
    assert len(set(ips)) == 3 and len(set(macs)) == 3
    listed = {p.id for p in conn.network.ports(network_id=net.id)}
    assert listed == {p.id for p in ports}


def test_bulk_create_is_all_or_nothing(conn: Connection, uniq: str) -> None:
    net, sub = _net_with_subnet(conn, uniq)
    with pytest.raises(exceptions.HttpException) as ei:
        list(
            conn.network.create_ports(
                [
                    {"network_id": net.id, "name": f"ok-{uniq}"},
                    {
                        "network_id": net.id,
                        "name": f"bad-{uniq}",
                        "fixed_ips": [{"subnet_id": sub.id, "ip_address": "192.168.99.1"}],
                    },
                ]
            )
        )
    status = ei.value.status_code
    assert status is not None and 400 <= status < 500
    assert list(conn.network.ports(network_id=net.id)) == []


def test_bulk_create_networks(conn: Connection, uniq: str) -> None:
    names = [f"b{i}-{uniq}" for i in range(3)]
    nets = list(conn.network._bulk_create(Network, [{"name": n} for n in names]))
    assert [n.name for n in nets] == names
    assert len({n.id for n in nets}) == 3
    for n in nets:
        assert conn.network.get_network(n.id).name == n.name


def test_bulk_create_security_group_rules(conn: Connection, uniq: str) -> None:
    sg = conn.network.create_security_group(name=f"sg-{uniq}")
    rules = list(
        conn.network.create_security_group_rules(
            [
                {
                    "security_group_id": sg.id,
                    "direction": "ingress",
                    "ethertype": "IPv4",
                    "protocol": "tcp",
                    "port_range_min": port,
                    "port_range_max": port,
                    "remote_ip_prefix": "0.0.0.0/0",
                }
                for port in (22, 80, 443)
            ]
        )
    )
    assert [r.port_range_min for r in rules] == [22, 80, 443]
    got = conn.network.get_security_group(sg.id)
    assert {r["id"] for r in got.security_group_rules} >= {r.id for r in rules}


def test_pagination_ports(conn: Connection, uniq: str) -> None:
    net, _ = _net_with_subnet(conn, uniq)
    made = list(
        conn.network.create_ports(
            [{"network_id": net.id, "name": f"pg{i}-{uniq}"} for i in range(7)]
        )
    )
    want = {p.id for p in made}

    # the SDK follows `ports_links` / markers until the last page
    seen = [p.id for p in conn.network.ports(network_id=net.id, limit=3)]
    assert len(seen) == len(set(seen)), "a port was returned on two pages"
    assert set(seen) == want

    # one page only
    first = list(conn.network.ports(network_id=net.id, limit=3, paginated=False))
    assert len(first) == 3

    # explicit marker: the page after the first three
    rest = list(
        conn.network.ports(network_id=net.id, limit=10, marker=first[-1].id, paginated=False)
    )
    assert {p.id for p in first} | {p.id for p in rest} == want
    assert not ({p.id for p in first} & {p.id for p in rest})


def test_pagination_with_sort(conn: Connection, uniq: str) -> None:
    names = [f"s{i}-{uniq}" for i in (4, 1, 3, 0, 2)]
    list(conn.network._bulk_create(Network, [{"name": n} for n in names]))
    got = [
        n.name
        for n in conn.network.networks(limit=2, sort_key="name", sort_dir="asc")
        if n.name.endswith(uniq)
    ]
    assert got == sorted(names)
    got = [
        n.name
        for n in conn.network.networks(limit=2, sort_key="name", sort_dir="desc")
        if n.name.endswith(uniq)
    ]
    assert got == sorted(names, reverse=True)


def test_find_by_name_and_duplicate_names(conn: Connection, uniq: str) -> None:
    a = conn.network.create_network(name=f"dup-{uniq}")
    found = conn.network.find_network(f"dup-{uniq}")
    assert found is not None and found.id == a.id
    conn.network.create_network(name=f"dup-{uniq}")
    with pytest.raises(exceptions.DuplicateResource):
        conn.network.find_network(f"dup-{uniq}")
    assert conn.network.find_network(f"nope-{uniq}") is None


def test_update_and_delete_via_sdk(conn: Connection, uniq: str) -> None:
    net = conn.network.create_network(name=f"u-{uniq}")
    rev = net.revision_number
    upd = conn.network.update_network(net, name=f"u2-{uniq}", description="d")
    assert (upd.name, upd.description) == (f"u2-{uniq}", "d")
    assert upd.revision_number > rev
    conn.network.delete_network(net, ignore_missing=False)
    with pytest.raises(exceptions.NotFoundException):
        conn.network.get_network(net.id)
