"""Fuzz the Overcast API from its own OpenAPI document: no input may cause a 5xx.

Schemathesis generates requests for every operation in /openapi.json, in both
positive (schema-valid) and negative (schema-violating) modes, and checks
``not_a_server_error`` on every response. Random strings almost never name an
existing object or a valid CIDR, so before each request some references
(``network_id``, ``subnet_id``, ``port_id``, path ``{id}`` ...) and some
address fields are swapped, deterministically per example, for ids of objects
seeded in the server and for tricky but well-formed addresses; that takes the
fuzzer past the 404/400 front door into the IPAM, router and floating IP code.
The same goes for the sub-resource path parameters ``{tag}``, ``{host}`` and
``{rule_id}``: every seeded object carries a tag, the seeded port is bound to
one made-up host and has an inactive binding on another, and the seeded QoS
policy has a bandwidth limit rule.

Budget: OVERCAST_FUZZ_EXAMPLES examples per operation (default 20), so that the
whole module runs in well under two minutes.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from overcast.api.openapi import document

if TYPE_CHECKING:
    from overcast.api.embedded import EmbeddedServer

STATUS: Counter[tuple[str, str, int]] = Counter()
REASONS: Counter[tuple[str, str, str]] = Counter()
MAX_EXAMPLES = int(os.environ.get("OVERCAST_FUZZ_EXAMPLES", "20"))

# which seeded object a reference field should point at
REF_KIND = {
    "network_id": ("network",),
    "floating_network_id": ("external",),
    "subnet_id": ("subnet", "spare_subnet"),  # the spare one is on no router yet
    "port_id": ("port",),
    "device_id": ("router",),
    "router_id": ("router",),
    "security_group_id": ("sg",),
    "remote_group_id": ("sg",),
    "qos_policy_id": ("qos",),
    "remote_address_group_id": ("ag",),
}
# collection in the path -> seeded object kind for its {id}
PATH_KIND = {
    "networks": "network",
    "subnets": "subnet",
    "ports": "port",
    "security-groups": "sg",
    "security-group-rules": "sgr",
    "routers": "router",
    "floatingips": "fip",
    "qos": "qos",
    "agents": "agent",
    "address-groups": "ag",
    "trunks": "trunk",
    "address-scopes": "scope",
    "subnetpools": "pool",
    "network_segment_ranges": "segrange",
}
# collections whose {id} is another collection's object (not tagged through them)
ID_KIND = {**PATH_KIND, "network-segment-ranges": "segrange",  # the alias plugins use
           "network-ip-availabilities": "network", "policies": "qos",
           "metering": "ml", "log": "log", "default-security-group-rules": "dsgr",
           "quotas": "project", "rbac-policies": "rbac"}
# other path parameters -> the seeded values to pick from
PATH_SEEDS = {
    "rule_id": ("rule",),
    "host": ("host", "inactive_host"),
    "tag": ("tag",),
    "pf_id": ("pf",),
    "project_id": ("project",),
}
TAG = "fuzz-tag"
HOSTS = ("fuzz-host", "fuzz-host-2")  # no agent runs: bindings take any host name
CIDRS = [
    "10.20.0.0/24",
    "10.20.0.0/30",
    "10.20.0.0/31",
    "10.20.0.1/32",
    "0.0.0.0/0",
    "10.0.0.0/8",
    "203.0.113.0/24",
    "fd00::/64",
    "fd00::/127",
    "::/0",
    "10.20.0.5/24",
    "192.168.0.0/16",
]
CHOICES: dict[str, list[Any]] = {
    "direction": ["ingress", "egress"],
    "ethertype": ["IPv4", "IPv6"],
    "protocol": ["tcp", "udp", "icmp", "6", "any", None, "ipv6-icmp", "132"],
    "port_range_min": [0, 1, 22, 65535, 65536, -1],
    "port_range_max": [0, 1, 22, 65535, 65536],
    "mtu": [68, 1280, 1450, 9000, 0, 100000],
    "ipv6_ra_mode": ["slaac", "dhcpv6-stateful", "dhcpv6-stateless", None],
    "ipv6_address_mode": ["slaac", "dhcpv6-stateful", "dhcpv6-stateless", None],
    "mac_address": ["fa:16:3e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"],
    "max_kbps": [0, 1, 1000, 2**31, 2**63],
    "max_burst_kbps": [0, 100, 2**31 - 1, 2**31],
    "vnic_type": ["normal", "direct", "macvtap"],
}
IPS = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.255",
    "10.0.0.0",
    "203.0.113.1",
    "fd00::1",
    "10.0.0.77",
    "255.255.255.255",
    "0.0.0.0",
    "::",
]


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 201, (path, body, r.status_code, r.text)
    return next(iter(r.json().values()))


def seed(base: str) -> dict[str, str]:
    """Create one object of each kind, each with the tag TAG, the port bound to both
    HOSTS and a bandwidth limit rule in the QoS policy; return their ids by kind (and
    the host names and the tag, for the path parameters)."""
    with httpx.Client(base_url=base + "/v2.0", timeout=30) as c:
        ids: dict[str, str] = {}
        ids["network"] = _post(c, "/networks", {"network": {"name": "seed"}})["id"]
        ids["subnet"] = _post(
            c,
            "/subnets",
            {"subnet": {"network_id": ids["network"], "cidr": "10.0.0.0/24", "ip_version": 4}},
        )["id"]
        ids["external"] = _post(
            c, "/networks", {"network": {"name": "ext", "router:external": True}}
        )["id"]
        ids["ext_subnet"] = _post(
            c,
            "/subnets",
            {
                "subnet": {
                    "network_id": ids["external"],
                    "cidr": "203.0.113.0/24",
                    "ip_version": 4,
                    "enable_dhcp": False,
                }
            },
        )["id"]
        spare = _post(c, "/networks", {"network": {"name": "spare"}})["id"]
        ids["spare_subnet"] = _post(
            c,
            "/subnets",
            {"subnet": {"network_id": spare, "cidr": "10.1.0.0/24", "ip_version": 4}},
        )["id"]
        ids["sg"] = _post(c, "/security-groups", {"security_group": {"name": "seed"}})["id"]
        ids["sgr"] = _post(
            c,
            "/security-group-rules",
            {
                "security_group_rule": {
                    "security_group_id": ids["sg"],
                    "direction": "ingress",
                    "ethertype": "IPv4",
                    "protocol": "tcp",
                    "port_range_min": 22,
                    "port_range_max": 22,
                }
            },
        )["id"]
        ids["router"] = _post(
            c,
            "/routers",
            {"router": {"name": "seed", "external_gateway_info": {"network_id": ids["external"]}}},
        )["id"]
        r = c.put(
            f"/routers/{ids['router']}/add_router_interface", json={"subnet_id": ids["subnet"]}
        )
        assert r.status_code == 200, r.text
        ids["port"] = _post(c, "/ports", {"port": {"network_id": ids["network"]}})["id"]
        ids["fip"] = _post(
            c, "/floatingips", {"floatingip": {"floating_network_id": ids["external"]}}
        )["id"]
        ids["qos"] = _post(c, "/qos/policies", {"policy": {"name": "seed"}})["id"]
        ids["ag"] = _post(c, "/address-groups",
                          {"address_group": {"name": "seed", "addresses": ["10.30.0.0/24"]}})["id"]
        agents = c.get("/agents").json().get("agents", [])
        ids["agent"] = agents[0]["id"] if agents else "no-agent"
        ids["host"], ids["inactive_host"], ids["tag"] = *HOSTS, TAG
        for host in HOSTS:  # the first becomes the active binding, the second inactive
            _post(c, f"/ports/{ids['port']}/bindings", {"binding": {"host": host}})
        ids["rule"] = _post(
            c,
            f"/qos/policies/{ids['qos']}/bandwidth_limit_rules",
            {"bandwidth_limit_rule": {"max_kbps": 1000}},
        )["id"]
        _seed_more(c, ids)
        for collection, kind in PATH_KIND.items():
            if kind != "agent":
                r = c.put(f"{_collection_path(collection)}/{ids[kind]}/tags/{TAG}")
                assert r.status_code == 201, r.text
        return ids


def _seed_more(c: httpx.Client, ids: dict[str, str]) -> None:
    """A trunk (on a port of its own), a metering label, a log and a port
    forwarding of the floating IP to the port."""
    parent = _post(c, "/ports", {"port": {"network_id": ids["network"]}})["id"]
    ids["trunk"] = _post(c, "/trunks", {"trunk": {"port_id": parent}})["id"]
    ids["ml"] = _post(c, "/metering/metering-labels", {"metering_label": {"name": "seed"}})["id"]
    ids["log"] = _post(c, "/log/logs", {"log": {"resource_type": "security_group"}})["id"]
    _seed_forwarding(c, ids)
    _seed_pools_and_policies(c, ids)


SEEDS_MADE = [0]  # how many times seed() ran: each time a segment range of its own


def _seed_pools_and_policies(c: httpx.Client, ids: dict[str, str]) -> None:
    """An address scope with a subnet pool in it, a segment range, a default
    security group rule, an RBAC policy on the network, and the project (no-auth's)."""
    SEEDS_MADE[0] += 1
    ids["project"] = "lab"
    ids["scope"] = _post(c, "/address-scopes",
                         {"address_scope": {"name": "seed", "ip_version": 4}})["id"]
    ids["pool"] = _post(c, "/subnetpools", {"subnetpool": {
        "name": "seed", "prefixes": ["10.200.0.0/16"], "address_scope_id": ids["scope"]}})["id"]
    low = 100_000 + 100 * SEEDS_MADE[0]
    ids["segrange"] = _post(c, "/network_segment_ranges", {"network_segment_range": {
        "network_type": "vxlan", "minimum": low, "maximum": low + 9}})["id"]
    rules = c.get("/default-security-group-rules").json()["default_security_group_rules"]
    ids["dsgr"] = rules[0]["id"] if rules else _post(
        c, "/default-security-group-rules", {"default_security_group_rule": {
            "direction": "ingress", "protocol": "tcp", "port_range_min": 7000,
            "port_range_max": 7000, "used_in_default_sg": True,
            "used_in_non_default_sg": False}})["id"]
    ids["rbac"] = _post(c, "/rbac-policies", {"rbac_policy": {
        "object_type": "network", "object_id": ids["network"], "action": "access_as_shared",
        "target_tenant": "fuzz-project"}})["id"]


def _seed_forwarding(c: httpx.Client, ids: dict[str, str]) -> None:
    port = c.get(f"/ports/{ids['port']}").json()["port"]
    r = c.post(f"/floatingips/{ids['fip']}/port_forwardings", json={"port_forwarding": {
        "protocol": "tcp", "internal_port_id": port["id"], "external_port": 2222,
        "internal_port": 22, "internal_ip_address": port["fixed_ips"][0]["ip_address"]}})
    if r.status_code == 201:  # else the one seeded is still there
        ids["pf"] = r.json()["port_forwarding"]["id"]
    ids.setdefault("pf", "no-port-forwarding")


def _collection_path(collection: str) -> str:
    return "/qos/policies" if collection == "qos" else f"/{collection}"


def _restore(base: str, ids: dict[str, str], path: str, params: dict[str, Any]) -> None:
    """Put back what a successful DELETE below an object removed: the tag, the
    binding or the rule (a deleted object itself takes a fresh seed)."""
    with httpx.Client(base_url=base + "/v2.0", timeout=30) as c:
        if "/tags" in path:
            collection = path.split("/")[2]
            c.put(f"{_collection_path(collection)}/{params['id']}/tags/{TAG}")
        elif "/bindings/" in path:
            for host in HOSTS:  # 409 for one still there
                c.post(f"/ports/{ids['port']}/bindings", json={"binding": {"host": host}})
        elif path.endswith("{pf_id}"):
            _seed_forwarding(c, ids)
        elif path.endswith("{rule_id}"):
            r = c.post(
                f"/qos/policies/{ids['qos']}/bandwidth_limit_rules",
                json={"bandwidth_limit_rule": {"max_kbps": 1000}},
            )
            if r.status_code == 201:
                ids["rule"] = r.json()["bandwidth_limit_rule"]["id"]


def _mutate(value: Any, rng: random.Random, ids: dict[str, str], depth: int = 0) -> Any:
    if depth > 4:
        return value
    if isinstance(value, list):
        return [_mutate(v, rng, ids, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if k in REF_KIND and rng.random() < 0.8:
            v = ids[rng.choice(REF_KIND[k])]
        elif k in CHOICES and rng.random() < 0.7:
            v = rng.choice(CHOICES[k])
        elif k in ("cidr", "remote_ip_prefix", "destination") and rng.random() < 0.7:
            v = rng.choice(CIDRS)
        elif (
            k
            in (
                "ip_address",
                "gateway_ip",
                "floating_ip_address",
                "fixed_ip_address",
                "start",
                "end",
                "nexthop",
            )
            and rng.random() < 0.7
        ):
            v = rng.choice(IPS)
        elif k == "ip_version" and rng.random() < 0.5:
            v = rng.choice([4, 6])
        elif k == "host" and rng.random() < 0.5:  # else a new host: a binding is created
            v = rng.choice(HOSTS)
        elif v is None or k in ("id", "project_id", "tenant_id"):
            continue  # the generated schema allows these, the API (rightly) is pickier
        else:
            v = _mutate(v, rng, ids, depth + 1)
        out[k] = v
    return out


@pytest.fixture(scope="module", autouse=True)
def _status_summary() -> Iterator[None]:
    """With `pytest -s`, print how many responses of each status each operation gave."""
    yield
    for (method, path, status), n in sorted(STATUS.items()):
        print(f"{method:6} {path:40} {status} x{n}")
    for (method, path, msg), n in REASONS.most_common(60):
        print(f"400 {method:6} {path:40} x{n}: {msg}")


@pytest.fixture(scope="module")
def api_server() -> Iterator[EmbeddedServer]:
    """One server for the whole module, instead of the suite's one per test (stopping
    each takes 0.2 s, a third of the run with a hundred operations). Each operation
    still aims at objects seeded for it; what earlier operations made stays around."""
    from overcast.api import Api, ApiConfig
    from overcast.api.embedded import EmbeddedServer
    from overcast.api.quotas import NO_LIMITS
    from overcast.store import MemoryStore

    # no quotas: every operation seeds its own objects in one project
    with EmbeddedServer(Api(MemoryStore(), ApiConfig(quota_defaults=NO_LIMITS))) as server:
        yield server


@pytest.fixture
def fuzz_target(api_url: str) -> dict[str, Any]:
    base = api_url.rstrip("/")
    return {"base": base, "ids": seed(base)}


# The document is built at import time with the same function that serves
# /openapi.json (test_served_document_is_the_fuzzed_one checks they agree), because
# schemathesis.pytest.from_fixture (a schema loaded from the live server) breaks on
# pytest 9 ('Function' object has no attribute '_nodeid', schemathesis 4.32).
PLACEHOLDER = "http://127.0.0.1:1"
schema = schemathesis.openapi.from_dict(document(PLACEHOLDER))
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES
)


def test_served_document_is_the_fuzzed_one(fuzz_target: dict[str, Any]) -> None:
    served = httpx.get(fuzz_target["base"] + "/openapi.json", timeout=30).json()
    expected = document(fuzz_target["base"])
    assert served["paths"] == expected["paths"]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_server_errors(case: schemathesis.Case[Any], fuzz_target: dict[str, Any]) -> None:
    ids = fuzz_target["ids"]
    rng = random.Random(
        json.dumps(
            [case.method, case.path, case.path_parameters, case.query, case.body],
            sort_keys=True,
            default=repr,
        )
    )
    for name in sorted(case.path_parameters or {}):
        seeded = (ID_KIND[case.path.split("/")[2]],) if name == "id" else PATH_SEEDS[name]
        if rng.random() < 0.6:
            case.path_parameters[name] = ids[rng.choice(seeded)]
    if isinstance(case.body, dict) and rng.random() < 0.8:
        case.body = _mutate(case.body, rng, ids)
    response = case.call(base_url=fuzz_target["base"], timeout=30)
    STATUS[(case.method, case.path, response.status_code)] += 1
    if response.status_code == 400 and case.method in ("POST", "PUT"):
        try:
            REASONS[(case.method, case.path, response.json()["NeutronError"]["message"][:70])] += 1
        except Exception:
            pass
    case.validate_response(response, checks=[not_a_server_error])
    if case.method == "DELETE" and response.status_code == 204:
        # keep something to aim at for the following examples
        if case.path.endswith("/{id}"):
            fuzz_target["ids"] = seed(fuzz_target["base"])
        else:
            _restore(fuzz_target["base"], ids, case.path, case.path_parameters)
