"""The overcast-firewall extension: a security group rule's packets and
bytes summed over the hosts' counter keys (what the agents write), and a
port's ``overcast:firewall`` (what its host enforces, from the status its
agent writes).  Members see the counters of the rules they can see; where a
port is enforced names hosts, so only an admin sees it (as binding:host_id).
That a listing reads the hosts' keys once: ``test_cost.py``'s
``rules_listed_with_counters`` shape."""

from __future__ import annotations

import json
from typing import Any

from overcast.api.kinds import security
from overcast.model import keys
from overcast.model.types import Host
from overcast.store import MemoryStore

from .test_tenancy import Cloud


def counters(store: MemoryStore, host: str, rules: dict[str, list[int]]) -> None:
    store.put(keys.firewall_counters(host), json.dumps({"host": host, "rules": rules}).encode())


def alice_rule(cloud: Cloud, port: int = 22) -> dict[str, Any]:
    group = cloud.alice.create("security_group", "security-groups", name="web")
    return cloud.alice.create("security_group_rule", "security-group-rules",
                              security_group_id=group["id"], direction="ingress",
                              protocol="tcp", port_range_min=port, port_range_max=port)


def test_rule_counters_are_summed_over_hosts_and_zero_without_hits() -> None:
    cloud = Cloud()
    ssh, web = alice_rule(cloud), alice_rule(cloud, 80)
    assert (ssh["overcast:packets"], ssh["overcast:bytes"]) == (0, 0)
    counters(cloud.store, "h1", {ssh["id"]: [3, 180]})
    counters(cloud.store, "h2", {ssh["id"]: [2, 120], web["id"]: [1, 60]})
    shown = cloud.alice.get(f"/v2.0/security-group-rules/{ssh['id']}").body["security_group_rule"]
    assert (shown["overcast:packets"], shown["overcast:bytes"]) == (5, 300)
    listed = {r["id"]: (r["overcast:packets"], r["overcast:bytes"])
              for r in cloud.alice.get("/v2.0/security-group-rules").body["security_group_rules"]}
    assert listed[ssh["id"]] == (5, 300) and listed[web["id"]] == (1, 60)
    picked = cloud.alice.get("/v2.0/security-group-rules",
                             params=[("fields", "id"), ("fields", "overcast:packets")])
    assert {"id": ssh["id"], "overcast:packets": 5} in picked.body["security_group_rules"]


def test_a_member_sees_counters_only_of_rules_they_can_see() -> None:
    cloud = Cloud()
    rule = alice_rule(cloud)
    counters(cloud.store, "h1", {rule["id"]: [7, 420]})
    assert cloud.bob.get(f"/v2.0/security-group-rules/{rule['id']}").status == 404
    bobs = cloud.bob.get("/v2.0/security-group-rules").body["security_group_rules"]
    assert rule["id"] not in {r["id"] for r in bobs}
    assert cloud.ops.get(f"/v2.0/security-group-rules/{rule['id']}").body[
        "security_group_rule"]["overcast:packets"] == 7


def test_an_unreadable_host_value_does_not_hide_the_others() -> None:
    cloud = Cloud()
    rule = alice_rule(cloud)
    cloud.store.put(keys.firewall_counters("h1"), b'{"rules": {"x": "not counters"}}')
    counters(cloud.store, "h2", {rule["id"]: [1, 60]})
    shown = cloud.alice.get(f"/v2.0/security-group-rules/{rule['id']}").body["security_group_rule"]
    assert shown["overcast:packets"] == 1


def test_a_port_shows_what_its_host_enforces_to_an_admin_only() -> None:
    cloud = Cloud()
    group = cloud.alice.create("security_group", "security-groups", name="web")
    port = cloud.alice.port(cloud.a_net["id"], security_groups=[group["id"]])
    assert cloud.ops.get(f"/v2.0/ports/{port['id']}").body["port"]["overcast:firewall"] == []
    cloud.ops.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "h1"}})
    cloud.store.put(keys.port_status(port["id"]), json.dumps({
        "status": "ACTIVE", "host": "h1",
        "firewall": {"port_security": True, "security_groups": [group["id"]]}}).encode())
    seen = cloud.ops.get(f"/v2.0/ports/{port['id']}").body["port"]
    assert seen["status"] == "ACTIVE"
    assert seen["overcast:firewall"] == [
        {"host": "h1", "port_security": True, "security_groups": [group["id"]]}]
    listed = cloud.ops.get("/v2.0/ports", params={"id": port["id"]}).body["ports"]
    assert listed[0]["overcast:firewall"] == seen["overcast:firewall"]
    assert "overcast:firewall" not in cloud.alice.get(f"/v2.0/ports/{port['id']}").body["port"]
    why = "security group rule r1: protocol 44 is the IPv6 extension header ipv6-frag"
    cloud.store.put(keys.port_status(port["id"]), json.dumps({
        "status": "ACTIVE", "host": "h1", "firewall": {
            "port_security": True, "security_groups": [group["id"]], "not_enforced": [why]}}).encode())
    assert cloud.ops.get(f"/v2.0/ports/{port['id']}").body["port"]["overcast:firewall"] == [
        {"host": "h1", "port_security": True, "security_groups": [group["id"]],
         "not_enforced": [why]}]


def test_the_extension_is_advertised() -> None:
    cloud = Cloud()
    aliases = {e["alias"] for e in cloud.alice.get("/v2.0/extensions").body["extensions"]}
    assert "overcast-firewall" in aliases
    assert cloud.alice.get("/v2.0/extensions/overcast-firewall").status == 200


def test_forgetting_an_agent_forgets_its_counters() -> None:
    cloud = Cloud()
    rule = alice_rule(cloud)
    host = Host(id="h9", host="h9", underlay_ip="198.18.0.9")
    cloud.store.put(keys.host("h9"), json.dumps(host.to_stored()).encode())
    counters(cloud.store, "h9", {rule["id"]: [4, 240]})
    counters(cloud.store, "h1", {rule["id"]: [1, 60]})
    assert cloud.ops.delete("/v2.0/agents/h9").status == 204
    assert cloud.store.get(keys.firewall_counters("h9")) is None
    shown = cloud.alice.get(f"/v2.0/security-group-rules/{rule['id']}").body["security_group_rule"]
    assert shown["overcast:packets"] == 1


HOSTILE_COUNTERS = [
    b'{"rules": {"R": [Infinity, 1]}}', b'{"rules": {"R": [1e400, 1]}}',
    b'{"rules": {"R": [NaN, 1]}}', b'{"rules": {"R": [-Infinity, 1]}}',
    b'{"rules": {"R": ["12", 1]}}', b'{"rules": {"R": [true, 1]}}',
    b'{"rules": {"R": [-3, 1]}}', b'{"rules": {"R": [1.5, 1]}}',
    b'{"rules": {"R": [1]}}', b'{"rules": {"R": [1, 2, 3]}}', b'{"rules": {"R": {"0": 1}}}',
    b'{"rules": {"R": [1, 18446744073709551616]}}', b'{"rules": {"R": null}}',
    b'{"rules": ["R"]}', b'{"rules": 7}', b'[1, 2]', b'"x"', b'12', b'null',
    b'\xff\xfe not utf-8', b'{"rules": ' * 100_000, b'',
]


def test_hostile_counter_values_are_skipped_and_never_fail_a_request() -> None:
    """What one host's key holds (whatever wrote it) cannot fail another's
    GET: an entry that is not [packets, bytes] of non-negative 64-bit
    integers is left out, the good ones beside it and the other hosts'
    keys are counted."""
    cloud = Cloud()
    rule = alice_rule(cloud)
    group_id = rule["security_group_id"]
    counters(cloud.store, "good", {rule["id"]: [2, 120]})
    for i, raw in enumerate(HOSTILE_COUNTERS):
        cloud.store.put(keys.firewall_counters(f"bad{i}"), raw.replace(b'"R"', json.dumps(
            rule["id"]).encode()))
    cloud.store.put(keys.firewall_counters("mixed"), json.dumps({"rules": {
        rule["id"]: [1, 60], "other": ["1", 2]}}).encode())
    shown = cloud.alice.get(f"/v2.0/security-group-rules/{rule['id']}")
    assert shown.status == 200, shown.body
    assert (shown.body["security_group_rule"]["overcast:packets"],
            shown.body["security_group_rule"]["overcast:bytes"]) == (3, 180)
    for path in ("/v2.0/security-group-rules", "/v2.0/security-groups",
                 f"/v2.0/security-groups/{group_id}"):
        assert cloud.alice.get(path).status == 200, path
    assert cloud.bob.get("/v2.0/security-groups").status == 200


HOSTILE_FIREWALL = [
    7, "x", [1], {"port_security": True, "security_groups": 5},
    {"port_security": True, "security_groups": "abc"},
    {"port_security": True, "security_groups": [1, 2]},
    {"port_security": "yes", "security_groups": []},
    {"port_security": True, "security_groups": [], "not_enforced": 3},
    {"port_security": True, "security_groups": [], "not_enforced": "why"},
    {"port_security": True, "security_groups": [], "not_enforced": [{"a": 1}]},
]
HOSTILE_STATUS = [b"not json", b"\xff", b"[1]", b'{"status": 5, "host": "h1"}',
                  b'{"status": "ACTIVE", "host": ["h1"]}', b"null"]


def bound_port(cloud: Cloud) -> dict[str, Any]:
    group = cloud.alice.create("security_group", "security-groups", name="web")
    port = cloud.alice.port(cloud.a_net["id"], security_groups=[group["id"]])
    cloud.ops.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "h1"}})
    return port


def test_hostile_port_status_values_show_nothing_enforced_and_never_fail() -> None:
    cloud = Cloud()
    port = bound_port(cloud)
    for fw in HOSTILE_FIREWALL:
        cloud.store.put(keys.port_status(port["id"]), json.dumps(
            {"status": "ACTIVE", "host": "h1", "firewall": fw}).encode())
        shown = cloud.ops.get(f"/v2.0/ports/{port['id']}")
        assert shown.status == 200, (fw, shown.body)
        assert shown.body["port"]["overcast:firewall"] == [], fw
        listed = cloud.ops.get("/v2.0/ports")
        assert listed.status == 200, (fw, listed.body)
    for raw in HOSTILE_STATUS:
        cloud.store.put(keys.port_status(port["id"]), raw)
        for path in (f"/v2.0/ports/{port['id']}", "/v2.0/ports"):
            got = cloud.ops.get(path)
            assert got.status == 200, (raw, path, got.body)
        seen = cloud.ops.get(f"/v2.0/ports/{port['id']}").body["port"]
        assert (seen["status"], seen["overcast:firewall"]) == ("DOWN", []), raw


def test_a_port_shows_no_enforcement_of_a_host_it_left_nor_while_down() -> None:
    """After a rebinding the old host's status (and what it enforced) is
    stale: the port is DOWN and ``overcast:firewall`` is empty until the new
    host reports it ACTIVE."""
    cloud = Cloud()
    port = bound_port(cloud)
    fw = {"port_security": True, "security_groups": port["security_groups"]}
    cloud.store.put(keys.port_status(port["id"]), json.dumps(
        {"status": "ACTIVE", "host": "h1", "firewall": fw}).encode())
    assert cloud.ops.get(f"/v2.0/ports/{port['id']}").body["port"]["overcast:firewall"] != []
    cloud.ops.put(f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "h2"}})
    listed = cloud.ops.get("/v2.0/ports", params={"id": port["id"]}).body["ports"][0]
    for seen in (cloud.ops.get(f"/v2.0/ports/{port['id']}").body["port"], listed):
        assert (seen["status"], seen["overcast:firewall"]) == ("DOWN", [])
    cloud.store.put(keys.port_status(port["id"]), json.dumps(
        {"status": "DOWN", "host": "h2", "firewall": fw}).encode())
    seen = cloud.ops.get(f"/v2.0/ports/{port['id']}").body["port"]
    assert (seen["status"], seen["overcast:firewall"]) == ("DOWN", [])
    cloud.store.put(keys.port_status(port["id"]), json.dumps(
        {"status": "ACTIVE", "host": "h2", "firewall": fw}).encode())
    assert cloud.ops.get(f"/v2.0/ports/{port['id']}").body["port"]["overcast:firewall"] == [
        {"host": "h2", **fw}]


def test_an_unchanged_host_key_is_parsed_once_however_many_requests_read_it() -> None:
    """A rule GET, a group GET, a group create and a listing each read the
    hosts' counter keys; each key is parsed once per value it holds
    (``security.HOST_COUNTERS``: by key, mod_revision and value)."""
    cloud = Cloud()
    rule = alice_rule(cloud)
    hosts = [f"h{i}" for i in range(40)]
    for host in hosts:
        counters(cloud.store, host, {rule["id"]: [1, 60], f"other-{host}": [5, 5]})
    parsed = security.HOST_COUNTERS.parses
    shown = cloud.alice.get(f"/v2.0/security-group-rules/{rule['id']}").body["security_group_rule"]
    assert shown["overcast:packets"] == 40
    assert security.HOST_COUNTERS.parses - parsed == len(hosts)
    parsed = security.HOST_COUNTERS.parses
    for _ in range(3):
        assert cloud.alice.get(f"/v2.0/security-group-rules/{rule['id']}").status == 200
        assert cloud.alice.get(f"/v2.0/security-groups/{rule['security_group_id']}").status == 200
        assert cloud.alice.get("/v2.0/security-group-rules").status == 200
        cloud.alice.create("security_group", "security-groups", name="more")
    assert security.HOST_COUNTERS.parses == parsed
    counters(cloud.store, "h3", {rule["id"]: [10, 600]})
    shown = cloud.alice.get(f"/v2.0/security-group-rules/{rule['id']}").body["security_group_rule"]
    assert (shown["overcast:packets"], shown["overcast:bytes"]) == (49, 2940)
    assert security.HOST_COUNTERS.parses == parsed + 1


def test_responses_without_rules_read_no_counters() -> None:
    cloud = Cloud()
    rule = alice_rule(cloud)
    counters(cloud.store, "h1", {rule["id"]: [1, 60]})
    security.HOST_COUNTERS.clear()
    parsed = security.HOST_COUNTERS.parses
    for path in ("/v2.0/ports", "/v2.0/networks", "/v2.0/subnets", "/v2.0/routers"):
        assert cloud.alice.get(path).status == 200
    assert security.HOST_COUNTERS.parses == parsed
