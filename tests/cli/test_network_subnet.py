"""What ``overcast network ...`` and ``overcast subnet ...`` send, and show."""

from __future__ import annotations

from .conftest import Run
from .fake_neutron import FakeNeutron


def test_network_create_maps_every_option(overcast: Run, fake: FakeNeutron) -> None:
    result = overcast(
        "network", "create", "blue", "--mtu", "1400", "--external", "--share",
        "--provider-network-type", "vxlan", "--provider-segment", "42",
        "--disable-port-security", "--dns-domain", "blue.example.", "--description", "d",
        "--tag", "a", "--tag", "b", "-f", "json",
    )
    assert result.code == 0, result.err
    assert fake.writes()[0].body == {"network": {
        "name": "blue", "mtu": 1400, "router:external": True, "shared": True,
        "provider:network_type": "vxlan", "provider:segmentation_id": 42,
        "port_security_enabled": False, "dns_domain": "blue.example.", "description": "d",
        "tags": ["a", "b"],
    }}
    assert result.json()["name"] == "blue"


def test_network_create_minimal_sends_only_the_name(overcast: Run, fake: FakeNeutron) -> None:
    result = overcast("network", "create", "blue")
    assert result.code == 0
    assert fake.writes()[0].body == {"network": {"name": "blue"}}
    assert "| name " in result.out and "| Field " in result.out


def test_network_list_filters_and_long(overcast: Run, fake: FakeNeutron) -> None:
    blue = fake.add("networks", name="blue", tags=["x"], subnets=["s1"])
    fake.add("networks", name="red", tags=[], subnets=[])
    result = overcast("network", "list", "--name", "blue", "--tag", "x", "-f", "json")
    assert fake.sent[-1].params == {"name": "blue", "tags": "x"}
    assert result.json() == [{"ID": blue["id"], "Name": "blue", "Subnets": ["s1"]}]
    long = overcast("network", "list", "--long")
    assert "Network Type" in long.out and "Router Type" in long.out
    assert "red" in long.out


def test_network_set_by_name_and_tags(overcast: Run, fake: FakeNeutron) -> None:
    net = fake.add("networks", name="blue", tags=["old"])
    result = overcast("network", "set", "blue", "--name", "navy", "--mtu", "1300",
                      "--disable", "--internal", "--no-share", "--tag", "new")
    assert result.code == 0, result.err
    put, tags = fake.writes()
    assert put.path == f"/v2.0/networks/{net['id']}"
    assert put.body == {"network": {"name": "navy", "mtu": 1300, "admin_state_up": False,
                                    "router:external": False, "shared": False}}
    assert (tags.path, tags.body) == (f"/v2.0/networks/{net['id']}/tags",
                                      {"tags": ["old", "new"]})
    overcast("network", "set", "navy", "--no-tag")
    assert fake.writes()[-1].body == {"tags": []}


def test_network_delete_several(overcast: Run, fake: FakeNeutron) -> None:
    a, b = fake.add("networks", name="a"), fake.add("networks", name="b")
    assert overcast("network", "delete", "a", b["id"]).code == 0
    assert [s.path for s in fake.writes()] == [f"/v2.0/networks/{a['id']}",
                                               f"/v2.0/networks/{b['id']}"]
    assert fake.objects["networks"] == {}


def test_network_delete_reports_each_failure(overcast: Run, fake: FakeNeutron) -> None:
    fake.add("networks", name="a")
    result = overcast("network", "delete", "a", "ghost")
    assert result.code == 1
    assert "No network found for 'ghost'" in result.err
    assert "1 of 2 networks failed to delete" in result.err
    assert fake.objects["networks"] == {}


def test_subnet_create_with_pools_dns_routes(overcast: Run, fake: FakeNeutron) -> None:
    net = fake.add("networks", name="blue")
    result = overcast(
        "subnet", "create", "blue-v4", "--network", "blue", "--subnet-range", "10.0.0.0/24",
        "--gateway", "10.0.0.1", "--allocation-pool", "start=10.0.0.10,end=10.0.0.20",
        "--allocation-pool", "start=10.0.0.30,end=10.0.0.40", "--dns-nameserver", "1.1.1.1",
        "--host-route", "destination=192.168.0.0/16,gateway=10.0.0.254", "--no-dhcp",
    )
    assert result.code == 0, result.err
    assert fake.writes()[0].body == {"subnet": {
        "network_id": net["id"], "name": "blue-v4", "cidr": "10.0.0.0/24", "ip_version": 4,
        "gateway_ip": "10.0.0.1", "enable_dhcp": False,
        "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.20"},
                             {"start": "10.0.0.30", "end": "10.0.0.40"}],
        "dns_nameservers": ["1.1.1.1"],
        "host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}],
    }}


def test_subnet_gateway_none_and_v6(overcast: Run, fake: FakeNeutron) -> None:
    fake.add("networks", name="blue")
    overcast("subnet", "create", "s6", "--network", "blue", "--subnet-range", "fd00::/64",
             "--ip-version", "6", "--gateway", "none")
    body = fake.writes()[0].body["subnet"]
    assert body["gateway_ip"] is None and body["ip_version"] == 6


def test_subnet_bad_pool_is_a_usage_error(overcast: Run, fake: FakeNeutron) -> None:
    result = overcast("subnet", "create", "s", "--network", "n", "--subnet-range", "10.0.0.0/24",
                      "--allocation-pool", "start=10.0.0.5")
    assert result.code == 2
    assert "missing end" in result.err
    assert fake.sent == []


def test_subnet_list_by_network_and_set(overcast: Run, fake: FakeNeutron) -> None:
    net = fake.add("networks", name="blue")
    sub = fake.add("subnets", name="s", network_id=net["id"], cidr="10.0.0.0/24",
                   dns_nameservers=["1.1.1.1"])
    listing = overcast("subnet", "list", "--network", "blue", "-f", "value", "-c", "Subnet")
    assert listing.out.strip() == "10.0.0.0/24"
    assert fake.sent[-1].params == {"network_id": net["id"]}
    overcast("subnet", "set", "s", "--dns-nameserver", "9.9.9.9", "--gateway", "none")
    assert fake.writes()[-1].path == f"/v2.0/subnets/{sub['id']}"
    assert fake.writes()[-1].body == {"subnet": {"gateway_ip": None,
                                                 "dns_nameservers": ["1.1.1.1", "9.9.9.9"]}}
    overcast("subnet", "set", "s", "--no-dns-nameservers")
    assert fake.writes()[-1].body == {"subnet": {"dns_nameservers": []}}


def test_unset_tags_and_subnet_lists(overcast: Run, fake: FakeNeutron) -> None:
    net = fake.add("networks", name="blue", tags=["a", "b"])
    assert overcast("network", "unset", "blue", "--tag", "b").code == 0
    assert fake.writes()[-1].body == {"tags": ["a"]}
    overcast("network", "unset", "blue", "--all-tag")
    assert (fake.writes()[-1].path, fake.writes()[-1].body) == (
        f"/v2.0/networks/{net['id']}/tags", {"tags": []})
    fake.add("subnets", name="s", dns_nameservers=["1.1.1.1", "9.9.9.9"],
             allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.9"},
                               {"start": "10.0.0.20", "end": "10.0.0.29"}])
    overcast("subnet", "unset", "s", "--dns-nameserver", "1.1.1.1",
             "--allocation-pool", "start=10.0.0.2,end=10.0.0.9")
    assert fake.writes()[-1].body == {"subnet": {
        "allocation_pools": [{"start": "10.0.0.20", "end": "10.0.0.29"}],
        "dns_nameservers": ["9.9.9.9"],
    }}
