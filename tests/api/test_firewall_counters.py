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
