"""The unmodified `openstack` CLI (python-openstackclient + openstacksdk) against Overcast.

Each test runs the real `openstack` command in a subprocess with
OS_AUTH_TYPE=none and OS_ENDPOINT=<unversioned Overcast endpoint>, and asserts on
what a user sees in its `-f json` output. See docs/openstack-clients.md for the
requests each command makes.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from .conftest import OSC

pytestmark = pytest.mark.slow


def _in_range(ip: str, start: str, end: str) -> bool:
    a, lo, hi = (ipaddress.ip_address(x) for x in (ip, start, end))
    return a.version == lo.version == hi.version and int(lo) <= int(a) <= int(hi)


def _make_net_and_subnet(
    osc: OSC, u: str, cidr: str = "10.0.0.0/24", pool: str | None = None
) -> tuple[Any, Any]:
    net = osc.json(f"network create net-{u}")
    extra = f"--allocation-pool {pool} " if pool else ""
    sub = osc.json(f"subnet create --network net-{u} --subnet-range {cidr} {extra}sub-{u}")
    return net, sub


def _make_external(osc: OSC, u: str) -> tuple[Any, Any]:
    pub = osc.json(f"network create --external public-{u}")
    pubsub = osc.json(
        f"subnet create --network public-{u} --subnet-range 203.0.113.0/24 --no-dhcp pubsub-{u}"
    )
    return pub, pubsub


# --- networks -------------------------------------------------------------------


def test_network_create_list_show_set_delete(osc: OSC, uniq: str) -> None:
    name = f"net-{uniq}"
    net = osc.json(f"network create {name}")
    assert net["name"] == name
    assert net["id"]
    assert net["admin_state_up"] is True
    assert net["subnets"] == []
    assert net["router:external"] is False
    assert isinstance(net["mtu"], int) and net["mtu"] > 0

    listed = osc.json("network list")
    assert {"ID": net["id"], "Name": name, "Subnets": []} in listed

    # by name and by id
    assert osc.json(f"network show {name}")["id"] == net["id"]
    assert osc.json(f"network show {net['id']}")["name"] == name

    osc.run(f"network set --name {name}-b --description hello {name}")
    shown = osc.json(f"network show {net['id']}")
    assert shown["name"] == f"{name}-b"
    assert shown["description"] == "hello"
    assert osc.json(f"network show {name}-b")["id"] == net["id"]
    err = osc.fails(f"network show {name}")
    assert f"No Network found for {name}" in err

    osc.run(f"network delete {name}-b")
    assert net["id"] not in [n["ID"] for n in osc.json("network list")]
    err = osc.fails(f"network show {net['id']}")
    assert net["id"] in err


def test_network_show_unknown_is_a_clear_error(osc: OSC) -> None:
    err = osc.fails("network show no-such-net")
    assert "No Network found for no-such-net" in err


def test_network_create_external_and_tags(osc: OSC, uniq: str) -> None:
    pub = osc.json(f"network create --external --tag red --tag blue public-{uniq}")
    assert pub["router:external"] is True
    assert sorted(pub["tags"]) == ["blue", "red"]
    assert sorted(osc.json(f"network show public-{uniq}")["tags"]) == ["blue", "red"]


# --- subnets --------------------------------------------------------------------


def test_subnet_create_with_pool_and_dns(osc: OSC, uniq: str) -> None:
    net = osc.json(f"network create net-{uniq}")
    sub = osc.json(
        f"subnet create --network net-{uniq} --subnet-range 10.0.0.0/24 "
        "--allocation-pool start=10.0.0.10,end=10.0.0.20 "
        "--dns-nameserver 8.8.8.8 --dns-nameserver 1.1.1.1 "
        f"sub-{uniq}"
    )
    assert sub["name"] == f"sub-{uniq}"
    assert sub["network_id"] == net["id"]
    assert sub["cidr"] == "10.0.0.0/24"
    assert sub["ip_version"] == 4
    assert sub["allocation_pools"] == [{"start": "10.0.0.10", "end": "10.0.0.20"}]
    assert sub["dns_nameservers"] == ["8.8.8.8", "1.1.1.1"]
    assert sub["gateway_ip"] == "10.0.0.1"
    assert sub["enable_dhcp"] is True
    assert sub["host_routes"] == []

    shown = osc.json(f"subnet show sub-{uniq}")
    assert shown["allocation_pools"] == [{"start": "10.0.0.10", "end": "10.0.0.20"}]
    assert shown["dns_nameservers"] == ["8.8.8.8", "1.1.1.1"]
    assert osc.json(f"network show net-{uniq}")["subnets"] == [sub["id"]]
    assert {
        "ID": sub["id"],
        "Name": f"sub-{uniq}",
        "Network": net["id"],
        "Subnet": "10.0.0.0/24",
    } in osc.json("subnet list")


def test_subnet_default_pool_excludes_gateway(osc: OSC, uniq: str) -> None:
    osc.json(f"network create net-{uniq}")
    sub = osc.json(f"subnet create --network net-{uniq} --subnet-range 10.9.0.0/24 sub-{uniq}")
    assert sub["gateway_ip"] == "10.9.0.1"
    assert sub["allocation_pools"] == [{"start": "10.9.0.2", "end": "10.9.0.254"}]


def test_subnet_pool_outside_cidr_is_rejected(osc: OSC, uniq: str) -> None:
    osc.json(f"network create net-{uniq}")
    err = osc.fails(
        f"subnet create --network net-{uniq} --subnet-range 10.0.0.0/24 "
        f"--allocation-pool start=10.1.0.10,end=10.1.0.20 sub-{uniq}"
    )
    assert "BadRequest" in err or "400" in err or "allocation" in err.lower()
    assert osc.json(f"network show net-{uniq}")["subnets"] == []


# --- ports ----------------------------------------------------------------------


def test_port_create_with_fixed_ip(osc: OSC, uniq: str) -> None:
    net, sub = _make_net_and_subnet(osc, uniq, pool="start=10.0.0.10,end=10.0.0.20")
    port = osc.json(
        f"port create --network net-{uniq} --fixed-ip subnet=sub-{uniq},ip-address=10.0.0.15 "
        f"port-{uniq}"
    )
    assert port["name"] == f"port-{uniq}"
    assert port["network_id"] == net["id"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.15"}]
    mac = port["mac_address"]
    assert len(mac.split(":")) == 6 and mac == mac.lower()
    assert port["admin_state_up"] is True

    shown = osc.json(f"port show port-{uniq}")
    assert shown["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.15"}]

    # the address is taken now
    err = osc.fails(
        f"port create --network net-{uniq} --fixed-ip subnet=sub-{uniq},ip-address=10.0.0.15 "
        f"dup-{uniq}"
    )
    assert "10.0.0.15" in err

    # a port without a fixed IP gets one from the pool, not the taken one
    auto = osc.json(f"port create --network net-{uniq} auto-{uniq}")
    assert len(auto["fixed_ips"]) == 1
    ip = auto["fixed_ips"][0]["ip_address"]
    assert auto["fixed_ips"][0]["subnet_id"] == sub["id"]
    assert _in_range(ip, "10.0.0.10", "10.0.0.20") and ip != "10.0.0.15"
    assert auto["mac_address"] != mac

    ports = osc.json(f"port list --network net-{uniq}")
    assert {p["ID"] for p in ports} >= {port["id"], auto["id"]}


def test_port_fixed_ip_outside_subnet_is_rejected(osc: OSC, uniq: str) -> None:
    _make_net_and_subnet(osc, uniq)
    err = osc.fails(
        f"port create --network net-{uniq} --fixed-ip subnet=sub-{uniq},ip-address=10.7.0.5 "
        f"port-{uniq}"
    )
    assert "10.7.0.5" in err
    assert osc.json(f"port list --network net-{uniq}") == []


# --- security groups ------------------------------------------------------------


def test_security_group_and_rule_create_delete(osc: OSC, uniq: str) -> None:
    sg = osc.json(f"security group create sg-{uniq}")
    assert sg["name"] == f"sg-{uniq}"
    assert sg["description"] == f"sg-{uniq}"  # the CLI defaults it to the name

    rule = osc.json(
        f"security group rule create --protocol tcp --dst-port 22 --remote-ip 0.0.0.0/0 sg-{uniq}"
    )
    assert rule["security_group_id"] == sg["id"]
    assert rule["direction"] == "ingress"
    assert rule["ether_type"] == "IPv4"
    assert rule["protocol"] == "tcp"
    assert (rule["port_range_min"], rule["port_range_max"]) == (22, 22)
    assert rule["remote_ip_prefix"] == "0.0.0.0/0"

    shown = osc.json(f"security group show sg-{uniq}")
    assert rule["id"] in [r["id"] for r in shown["rules"]]
    listed = osc.json(f"security group rule list sg-{uniq}")
    assert rule["id"] in [r["ID"] for r in listed]
    assert any(r["ID"] == rule["id"] and r["Port Range"] == "22:22" for r in listed)

    osc.run(f"security group rule delete {rule['id']}")
    assert rule["id"] not in [r["ID"] for r in osc.json(f"security group rule list sg-{uniq}")]
    assert osc.fails(f"security group rule show {rule['id']}")

    osc.run(f"security group delete sg-{uniq}")
    assert f"sg-{uniq}" not in [g["Name"] for g in osc.json("security group list")]


def test_port_with_security_group(osc: OSC, uniq: str) -> None:
    _make_net_and_subnet(osc, uniq)
    sg = osc.json(f"security group create sg-{uniq}")
    port = osc.json(f"port create --network net-{uniq} --security-group sg-{uniq} port-{uniq}")
    assert port["security_group_ids"] == [sg["id"]]


# --- routers and floating IPs ---------------------------------------------------


def test_router_add_subnet_and_external_gateway(osc: OSC, uniq: str) -> None:
    net, sub = _make_net_and_subnet(osc, uniq)
    pub, pubsub = _make_external(osc, uniq)
    router = osc.json(f"router create r-{uniq}")
    assert router["name"] == f"r-{uniq}"
    assert router["external_gateway_info"] is None

    osc.run(f"router add subnet r-{uniq} sub-{uniq}")
    # the router's interface on the subnet is a port holding the subnet's gateway IP
    ports = osc.json(f"port list --router r-{uniq}")
    assert len(ports) == 1
    iface = osc.json(f"port show {ports[0]['ID']}")
    assert iface["device_id"] == router["id"]
    assert iface["device_owner"] == "network:router_interface"
    assert iface["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]

    osc.run(f"router set --external-gateway public-{uniq} r-{uniq}")
    shown = osc.json(f"router show r-{uniq}")
    gw = shown["external_gateway_info"]
    assert gw["network_id"] == pub["id"]
    assert len(gw["external_fixed_ips"]) == 1
    assert gw["external_fixed_ips"][0]["subnet_id"] == pubsub["id"]
    assert ipaddress.ip_address(gw["external_fixed_ips"][0]["ip_address"]) in (
        ipaddress.ip_network("203.0.113.0/24")
    )

    # removing the interface removes its port (the gateway port stays)
    osc.run(f"router remove subnet r-{uniq} sub-{uniq}")
    left = osc.json(f"port list --router r-{uniq}")
    assert iface["id"] not in [p["ID"] for p in left]
    assert [ip["subnet_id"] for p in left for ip in p["Fixed IP Addresses"]] == [pubsub["id"]]


def test_floating_ip_create_and_set_port(osc: OSC, uniq: str) -> None:
    net, sub = _make_net_and_subnet(osc, uniq)
    pub, pubsub = _make_external(osc, uniq)
    osc.json(f"router create r-{uniq}")
    osc.run(f"router add subnet r-{uniq} sub-{uniq}")
    osc.run(f"router set --external-gateway public-{uniq} r-{uniq}")
    port = osc.json(
        f"port create --network net-{uniq} --fixed-ip subnet=sub-{uniq},ip-address=10.0.0.50 "
        f"port-{uniq}"
    )

    fip = osc.json(f"floating ip create public-{uniq}")
    assert fip["floating_network_id"] == pub["id"]
    assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network(
        "203.0.113.0/24"
    )
    assert fip["port_id"] is None
    assert fip["fixed_ip_address"] is None

    osc.run(f"floating ip set --port port-{uniq} {fip['id']}")
    shown = osc.json(f"floating ip show {fip['id']}")
    assert shown["port_id"] == port["id"]
    assert shown["fixed_ip_address"] == "10.0.0.50"
    assert shown["floating_ip_address"] == fip["floating_ip_address"]
    # `floating ip show` also accepts the address itself
    assert osc.json(f"floating ip show {fip['floating_ip_address']}")["id"] == fip["id"]

    listed = osc.json("floating ip list")
    row = next(r for r in listed if r["ID"] == fip["id"])
    assert row["Port"] == port["id"]
    assert row["Fixed IP Address"] == "10.0.0.50"

    osc.run(f"floating ip unset --port {fip['id']}")
    assert osc.json(f"floating ip show {fip['id']}")["port_id"] is None


# --- QoS ------------------------------------------------------------------------


def test_qos_policy_and_bandwidth_limit_rule(osc: OSC, uniq: str) -> None:
    pol = osc.json(f"network qos policy create qp-{uniq}")
    assert pol["name"] == f"qp-{uniq}"
    assert pol["rules"] == []

    rule = osc.json(
        "network qos rule create --type bandwidth-limit --max-kbps 1000 "
        f"--max-burst-kbits 100 --egress qp-{uniq}"
    )
    assert rule["max_kbps"] == 1000
    assert rule["max_burst_kbps"] == 100
    assert rule["direction"] == "egress"

    shown = osc.json(f"network qos policy show qp-{uniq}")
    assert [(r["id"], r["max_kbps"], r["type"]) for r in shown["rules"]] == [
        (rule["id"], 1000, "bandwidth_limit")
    ]
    listed = osc.json(f"network qos rule list qp-{uniq}")
    assert [(r["ID"], r["Max Kbps"], r["Direction"]) for r in listed] == [
        (rule["id"], 1000, "egress")
    ]

    # attach it to a port
    _make_net_and_subnet(osc, uniq)
    port = osc.json(f"port create --network net-{uniq} --qos-policy qp-{uniq} port-{uniq}")
    assert port["qos_policy_id"] == pol["id"]


def test_qos_dscp_and_minimum_bandwidth_rules(osc: OSC, uniq: str) -> None:
    osc.json(f"network qos policy create qd-{uniq}")
    mark = osc.json(f"network qos rule create --type dscp-marking --dscp-mark 26 qd-{uniq}")
    assert mark["dscp_mark"] == 26
    low = osc.json(
        f"network qos rule create --type minimum-bandwidth --min-kbps 1000 --ingress qd-{uniq}"
    )
    assert (low["min_kbps"], low["direction"]) == (1000, "ingress")
    listed = osc.json(f"network qos rule list qd-{uniq}")
    assert sorted((r["Type"], r["ID"]) for r in listed) == sorted(
        [("dscp_marking", mark["id"]), ("minimum_bandwidth", low["id"])]
    )
    types = {t["Type"] for t in osc.json("network qos rule type list")}
    assert types == {"bandwidth_limit", "dscp_marking", "minimum_bandwidth"}
