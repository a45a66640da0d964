"""QoS rules beyond bandwidth limits, as Neutron has them: DSCP marking (one
per policy, Neutron's marks only) and minimum bandwidth (one per direction,
never above a limit of the same direction), the policy's ``rules`` and
revision, the rule types the registered hosts can realize, and a port's
``qos_network_policy_id``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.model import keys
from overcast.model.types import Host
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump

Obj = dict[str, Any]
MARKS = [0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 46, 48, 56]


@pytest.fixture
def policy(client: Direct) -> Obj:
    return client.create("policy", "qos/policies", name="gold")


def _base(policy: Obj, rule_type: str) -> str:
    return f"/v2.0/qos/policies/{policy['id']}/{rule_type}_rules"


def _make(client: Direct, policy: Obj, rule_type: str, **attrs: Any) -> Obj:
    r = client.post(_base(policy, rule_type), {f"{rule_type}_rule": attrs})
    assert r.status == 201, r.body
    rule: Obj = r.body[f"{rule_type}_rule"]
    return rule


def _revision(client: Direct, policy: Obj) -> int:
    rev: int = client.get(f"/v2.0/qos/policies/{policy['id']}")["policy"]["revision_number"]
    return rev


def _register(store: MemoryStore, name: str, features: dict[str, Any]) -> None:
    """A host record as its agent writes it (overcast.agent.liveness)."""
    host = Host(id=f"id-{name}", host=name, name=name, underlay_ip="198.18.0.1",
                features=features)
    store.put(keys.host(name), json.dumps(host.to_stored()).encode())


def _probed(**available: bool) -> dict[str, Any]:
    """Features in the agent's shape ({name: {"available", "disables", "detail"}})."""
    return {n: {"available": ok, "disables": "", "detail": ""} for n, ok in available.items()}


# DSCP marking --------------------------------------------------------------------
def test_dscp_rule_lifecycle(client: Direct, policy: Obj) -> None:
    base = _base(policy, "dscp_marking")
    rule = _make(client, policy, "dscp_marking", dscp_mark="26")
    assert rule["dscp_mark"] == 26
    assert rule["type"] == "dscp_marking" and rule["qos_policy_id"] == policy["id"]
    assert client.get(base).body["dscp_marking_rules"] == [rule]
    assert client.get(f"{base}/{rule['id']}")["dscp_marking_rule"] == rule
    r = client.put(f"{base}/{rule['id']}", {"dscp_marking_rule": {"dscp_mark": 46}})
    assert r.status == 200 and r["dscp_marking_rule"]["dscp_mark"] == 46
    assert client.get(f"{base}/{rule['id']}")["dscp_marking_rule"]["dscp_mark"] == 46
    assert client.delete(f"{base}/{rule['id']}").status == 204
    assert_error(client.get(f"{base}/{rule['id']}"), 404, rule["id"], type="QosRuleNotFound")
    assert client.get(base).body["dscp_marking_rules"] == []


@pytest.mark.parametrize("mark", MARKS)
def test_every_neutron_mark_is_taken(client: Direct, policy: Obj, mark: int) -> None:
    assert _make(client, policy, "dscp_marking", dscp_mark=mark)["dscp_mark"] == mark


@pytest.mark.parametrize("mark", [1, 7, 9, 42, 44, 50, 52, 54, 57, 64, -8, "x", True, None, 26.5])
def test_other_marks_are_refused(client: Direct, policy: Obj, mark: Any,
                                 unchanged: Any) -> None:
    unchanged()
    r = client.post(_base(policy, "dscp_marking"), {"dscp_marking_rule": {"dscp_mark": mark}})
    err = assert_error(r, 400, "dscp_mark")
    if isinstance(mark, int) and not isinstance(mark, bool):
        assert f"'{mark}' is not in" in err["message"], err


def test_dscp_mark_is_required_and_checked_on_update(client: Direct, policy: Obj) -> None:
    assert_error(client.post(_base(policy, "dscp_marking"), {"dscp_marking_rule": {}}), 400,
                 "dscp_mark")
    rule = _make(client, policy, "dscp_marking", dscp_mark=10)
    assert_error(client.put(f"{_base(policy, 'dscp_marking')}/{rule['id']}",
                            {"dscp_marking_rule": {"dscp_mark": 11}}), 400, "dscp_mark", "11")
    assert_error(client.put(f"{_base(policy, 'dscp_marking')}/{rule['id']}",
                            {"dscp_marking_rule": {"direction": "ingress"}}), 400, "direction")


def test_one_dscp_rule_per_policy(client: Direct, policy: Obj) -> None:
    first = _make(client, policy, "dscp_marking", dscp_mark=10)
    r = client.post(_base(policy, "dscp_marking"), {"dscp_marking_rule": {"dscp_mark": 12}})
    err = assert_error(r, 409, "dscp_marking", first["id"], policy["id"], type="QoSRulesConflict")
    assert err["message"] == (f"Rule dscp_marking conflicts with rule {first['id']} which "
                              f"already exists in QoS Policy {policy['id']}.")
    other = client.create("policy", "qos/policies", name="silver")
    assert _make(client, other, "dscp_marking", dscp_mark=12)["dscp_mark"] == 12
    # updating the one rule is no conflict with itself
    r = client.put(f"{_base(policy, 'dscp_marking')}/{first['id']}",
                   {"dscp_marking_rule": {"dscp_mark": 10}})
    assert r.status == 200, r.body


# minimum bandwidth ---------------------------------------------------------------
def test_minimum_bandwidth_rule_lifecycle(client: Direct, policy: Obj) -> None:
    base = _base(policy, "minimum_bandwidth")
    rule = _make(client, policy, "minimum_bandwidth", min_kbps=1000)
    assert (rule["min_kbps"], rule["direction"]) == (1000, "egress")
    assert rule["type"] == "minimum_bandwidth" and rule["qos_policy_id"] == policy["id"]
    ingress = _make(client, policy, "minimum_bandwidth", min_kbps="0", direction="ingress")
    assert (ingress["min_kbps"], ingress["direction"]) == (0, "ingress")
    listed = client.get(base).body["minimum_bandwidth_rules"]
    assert sorted((x["direction"], x["min_kbps"]) for x in listed) == [("egress", 1000),
                                                                        ("ingress", 0)]
    filtered = client.get(base, params={"direction": "ingress"}).body["minimum_bandwidth_rules"]
    assert [x["id"] for x in filtered] == [ingress["id"]]
    r = client.put(f"{base}/{rule['id']}", {"minimum_bandwidth_rule": {"min_kbps": 2000}})
    assert r.status == 200 and r["minimum_bandwidth_rule"]["min_kbps"] == 2000
    assert client.delete(f"{base}/{rule['id']}").status == 204
    assert_error(client.get(f"{base}/{rule['id']}"), 404, type="QosRuleNotFound")
    assert [x["id"] for x in client.get(base).body["minimum_bandwidth_rules"]] == [ingress["id"]]


def test_one_minimum_rule_per_direction(client: Direct, policy: Obj) -> None:
    base = _base(policy, "minimum_bandwidth")
    egress = _make(client, policy, "minimum_bandwidth", min_kbps=10)
    assert_error(client.post(base, {"minimum_bandwidth_rule": {"min_kbps": 20,
                                                               "direction": "egress"}}),
                 409, egress["id"], type="QoSRulesConflict")
    ingress = _make(client, policy, "minimum_bandwidth", min_kbps=20, direction="ingress")
    assert_error(client.put(f"{base}/{ingress['id']}",
                            {"minimum_bandwidth_rule": {"direction": "egress"}}),
                 409, egress["id"], type="QoSRulesConflict")
    # a bandwidth limit in the same direction is another type: no duplicate
    _make(client, policy, "bandwidth_limit", max_kbps=100)


@pytest.mark.parametrize(("body", "word"), [
    ({"min_kbps": -1}, "min_kbps"), ({"min_kbps": 2**31}, "min_kbps"),
    ({"min_kbps": "many"}, "min_kbps"), ({"min_kbps": True}, "min_kbps"),
    ({"min_kbps": 10, "direction": "up"}, "direction"),
    ({"min_kbps": 10, "direction": None}, "direction"),
    ({"direction": "egress"}, "min_kbps"), ({"min_kbps": 10, "max_kbps": 20}, "max_kbps"),
])
def test_bad_minimum_rules(client: Direct, policy: Obj, body: Obj, word: str,
                           unchanged: Any) -> None:
    unchanged()
    r = client.post(_base(policy, "minimum_bandwidth"), {"minimum_bandwidth_rule": body})
    assert_error(r, 400, word)


def test_minimum_above_limit_is_a_conflict(client: Direct, policy: Obj) -> None:
    """Neutron's QoSRuleParameterConflict, within one direction."""
    limit = _make(client, policy, "bandwidth_limit", max_kbps=1000)
    err = assert_error(client.post(_base(policy, "minimum_bandwidth"),
                                   {"minimum_bandwidth_rule": {"min_kbps": 1001}}),
                       409, "1001", "1000", "bandwidth_limit", type="QoSRuleParameterConflict")
    assert policy["id"] in err["message"]
    _make(client, policy, "minimum_bandwidth", min_kbps=2000, direction="ingress")
    low = _make(client, policy, "minimum_bandwidth", min_kbps=1000)
    assert_error(client.put(f"{_base(policy, 'bandwidth_limit')}/{limit['id']}",
                            {"bandwidth_limit_rule": {"max_kbps": 999}}),
                 409, "999", "minimum_bandwidth", type="QoSRuleParameterConflict")
    assert_error(client.put(f"{_base(policy, 'minimum_bandwidth')}/{low['id']}",
                            {"minimum_bandwidth_rule": {"min_kbps": 1500}}),
                 409, "1500", type="QoSRuleParameterConflict")
    assert client.put(f"{_base(policy, 'bandwidth_limit')}/{limit['id']}",
                      {"bandwidth_limit_rule": {"max_kbps": 1000}}).status == 200


# a rule below another policy or of another type is not there ----------------------
def test_rules_are_found_below_their_policy_and_type_only(client: Direct, policy: Obj) -> None:
    other = client.create("policy", "qos/policies", name="silver")
    rule = _make(client, policy, "dscp_marking", dscp_mark=8)
    for path in (f"{_base(other, 'dscp_marking')}/{rule['id']}",
                 f"{_base(policy, 'minimum_bandwidth')}/{rule['id']}",
                 f"{_base(policy, 'bandwidth_limit')}/{rule['id']}"):
        assert_error(client.get(path), 404, rule["id"], type="QosRuleNotFound")
        assert_error(client.put(path, {"x": {}}), 400)  # the body is read first
        assert_error(client.delete(path), 404, type="QosRuleNotFound")
    assert_error(client.get(f"/v2.0/qos/policies/{'0' * 8}-0000-4000-8000-{'0' * 12}"
                            "/dscp_marking_rules"), 404)


# the policy ----------------------------------------------------------------------
def test_policy_lists_every_rule_and_its_revision_moves(client: Direct, policy: Obj) -> None:
    rev = _revision(client, policy)
    limit = _make(client, policy, "bandwidth_limit", max_kbps=5000, direction="ingress")
    assert _revision(client, policy) == rev + 1
    mark = _make(client, policy, "dscp_marking", dscp_mark=34)
    low = _make(client, policy, "minimum_bandwidth", min_kbps=100)
    assert _revision(client, policy) == rev + 3
    shown = client.get(f"/v2.0/qos/policies/{policy['id']}")["policy"]
    assert {(r["type"], r["id"], r["qos_policy_id"]) for r in shown["rules"]} == {
        ("bandwidth_limit", limit["id"], policy["id"]), ("dscp_marking", mark["id"], policy["id"]),
        ("minimum_bandwidth", low["id"], policy["id"])}
    by_type = {r["type"]: r for r in shown["rules"]}
    assert by_type["dscp_marking"]["dscp_mark"] == 34
    assert by_type["minimum_bandwidth"]["min_kbps"] == 100
    assert by_type["bandwidth_limit"]["max_kbps"] == 5000
    listed = client.get("/v2.0/qos/policies").body["policies"]
    assert [p["rules"] for p in listed if p["id"] == policy["id"]] == [shown["rules"]]
    client.put(f"{_base(policy, 'dscp_marking')}/{mark['id']}",
               {"dscp_marking_rule": {"dscp_mark": 36}})
    assert _revision(client, policy) == rev + 4
    client.delete(f"{_base(policy, 'minimum_bandwidth')}/{low['id']}")
    assert _revision(client, policy) == rev + 5
    assert {r["type"] for r in
            client.get(f"/v2.0/qos/policies/{policy['id']}")["policy"]["rules"]} == {
        "bandwidth_limit", "dscp_marking"}


def test_a_refused_rule_leaves_the_policy_alone(client: Direct, policy: Obj,
                                                unchanged: Any) -> None:
    _make(client, policy, "dscp_marking", dscp_mark=8)
    unchanged()
    r = client.post(_base(policy, "dscp_marking"), {"dscp_marking_rule": {"dscp_mark": 10}})
    assert r.status == 409


def test_deleting_a_policy_deletes_its_rules(client: Direct, store: MemoryStore,
                                             policy: Obj) -> None:
    for rule_type, attrs in (("bandwidth_limit", {"max_kbps": 10}),
                             ("dscp_marking", {"dscp_mark": 8}),
                             ("minimum_bandwidth", {"min_kbps": 5})):
        _make(client, policy, rule_type, **attrs)
    assert client.delete(f"/v2.0/qos/policies/{policy['id']}").status == 204
    left = [k for k in dump(store) if k.startswith(keys.OBJ) and "_rule/" in k
            and "/default_security_group_rule/" not in k]
    assert left == []


def test_rules_are_the_operators_and_seen_with_their_policy() -> None:
    store = MemoryStore()
    api = Api(store, auth=Auth({"t-ops": Context("ops", True), "t-alice": Context("alice", False),
                                "t-bob": Context("bob", False)}))
    ops, alice, bob = (Direct(api, f"t-{n}") for n in ("ops", "alice", "bob"))
    shared = ops.create("policy", "qos/policies", name="shared", shared=True)
    private = ops.create("policy", "qos/policies", name="private", project_id="alice")
    for pol in (shared, private):
        _make(ops, pol, "dscp_marking", dscp_mark=8)
        _make(ops, pol, "minimum_bandwidth", min_kbps=8)
    for rule_type, body in (("dscp_marking", {"dscp_mark": 10}),
                            ("minimum_bandwidth", {"min_kbps": 1, "direction": "ingress"})):
        assert_error(alice.post(_base(private, rule_type), {f"{rule_type}_rule": body}), 403,
                     f"create_{rule_type}_rule")
        # Neutron's policy judges a create before the policy is looked up: bob, who
        # cannot see alice's policy, is refused as she is (so is a policy that is not there)
        assert_error(bob.post(_base(private, rule_type), {f"{rule_type}_rule": body}), 403,
                     f"create_{rule_type}_rule")
        assert_error(bob.post(_base({"id": "no-such-policy"}, rule_type),
                              {f"{rule_type}_rule": body}), 403)
        assert_error(ops.post(_base({"id": "no-such-policy"}, rule_type),
                              {f"{rule_type}_rule": body}), 404, type="QosPolicyNotFound")
        assert len(alice.get(_base(private, rule_type)).body[f"{rule_type}_rules"]) == 1
        assert len(bob.get(_base(shared, rule_type)).body[f"{rule_type}_rules"]) == 1
        assert_error(bob.get(_base(private, rule_type)), 404)


# rule types ----------------------------------------------------------------------
def test_rule_types_without_hosts_are_every_type(client: Direct) -> None:
    r = client.get("/v2.0/qos/rule-types")
    assert r.status == 200
    assert r.body == {"rule_types": [{"type": "bandwidth_limit"}, {"type": "dscp_marking"},
                                     {"type": "minimum_bandwidth"}]}


def test_rule_type_details(client: Direct) -> None:
    dscp = client.get("/v2.0/qos/rule-types/dscp_marking").body["rule_type"]
    assert dscp == {"type": "dscp_marking", "drivers": [{"name": "overcast",
                    "supported_parameters": [{"parameter_name": "dscp_mark",
                                              "parameter_type": "choices",
                                              "parameter_values": MARKS}]}]}
    low = client.get("/v2.0/qos/rule-types/minimum_bandwidth").body["rule_type"]
    params = {p["parameter_name"]: p for p in low["drivers"][0]["supported_parameters"]}
    assert params["min_kbps"] == {"parameter_name": "min_kbps", "parameter_type": "range",
                                  "parameter_values": {"start": 0, "end": 2147483647}}
    # only what a VM sends is guaranteed (on its host's uplink)
    assert params["direction"]["parameter_values"] == ["egress"]
    limit = client.get("/v2.0/qos/rule-types/bandwidth_limit").body["rule_type"]
    assert [p["parameter_name"] for p in limit["drivers"][0]["supported_parameters"]] == [
        "max_kbps", "max_burst_kbps", "direction"]
    assert_error(client.get("/v2.0/qos/rule-types/packet_rate_limit"), 404,
                 "packet_rate_limit")


def test_rule_type_details_are_for_admins() -> None:
    api = Api(MemoryStore(), auth=Auth({"t-alice": Context("alice", False)}))
    alice = Direct(api, "t-alice")
    assert alice.get("/v2.0/qos/rule-types").status == 200
    assert_error(alice.get("/v2.0/qos/rule-types/dscp_marking"), 403, "get_rule_type")


def test_rule_types_are_what_every_host_supports(client: Direct, store: MemoryStore) -> None:
    everything = _probed(tc_htb=True, tc_ingress=True, ifb=True, tc_mirred=True,
                         nft_bridge=True)
    _register(store, "hv1", everything)
    assert [t["type"] for t in client.get("/v2.0/qos/rule-types").body["rule_types"]] == [
        "bandwidth_limit", "dscp_marking", "minimum_bandwidth"]
    _register(store, "hv2", {**everything, **_probed(nft_bridge=False)})
    assert [t["type"] for t in client.get("/v2.0/qos/rule-types").body["rule_types"]] == [
        "bandwidth_limit", "minimum_bandwidth"]
    assert client.get("/v2.0/qos/rule-types/dscp_marking").body == {
        "rule_type": {"type": "dscp_marking", "drivers": []}}
    _register(store, "hv3", {**everything, **_probed(qos_uplink=False)})  # no --qos-uplink
    assert [t["type"] for t in client.get("/v2.0/qos/rule-types").body["rule_types"]] == [
        "bandwidth_limit"]
    _register(store, "hv4", {**everything, **_probed(tc_htb=False)})
    assert client.get("/v2.0/qos/rule-types").body == {"rule_types": []}
    assert client.get("/v2.0/qos/rule-types/bandwidth_limit").body["rule_type"]["drivers"] == []


def test_egress_needs_the_redirect_on_every_host(client: Direct, store: MemoryStore) -> None:
    _register(store, "hv1", _probed(tc_htb=True, tc_ingress=True, ifb=False, nft_bridge=True))
    expected = {"bandwidth_limit": ["ingress"], "minimum_bandwidth": ["egress"]}  # (the uplink's)
    for rule_type, directions in expected.items():
        details = client.get(f"/v2.0/qos/rule-types/{rule_type}").body["rule_type"]
        params = {p["parameter_name"]: p for p in details["drivers"][0]["supported_parameters"]}
        assert params["direction"]["parameter_values"] == directions, rule_type


def test_features_a_host_does_not_name_count_as_there(client: Direct,
                                                      store: MemoryStore) -> None:
    """An agent from before a probe existed (no tc_mirred), one whose probe
    failed ({}), the plain-bool shape of older records, and the agent's
    non-probe entries."""
    _register(store, "old", _probed(tc_htb=True, tc_ingress=True, ifb=True, nft_bridge=True))
    _register(store, "failed", {})
    _register(store, "bools", {"tc_htb": True, "nft_bridge": True, "bridge_mappings": {},
                               "routers": False})
    assert len(client.get("/v2.0/qos/rule-types").body["rule_types"]) == 3
    details = client.get("/v2.0/qos/rule-types/bandwidth_limit").body["rule_type"]
    params = {p["parameter_name"]: p for p in details["drivers"][0]["supported_parameters"]}
    assert params["direction"]["parameter_values"] == ["ingress", "egress"]
    _register(store, "bools", {"tc_htb": False})
    assert [t["type"] for t in client.get("/v2.0/qos/rule-types").body["rule_types"]] == [
        "dscp_marking"]


# ports ---------------------------------------------------------------------------
def test_qos_network_policy_id(client: Direct, policy: Obj) -> None:
    other = client.create("policy", "qos/policies", name="silver")
    net = client.network(name="n", qos_policy_id=policy["id"])
    client.subnet(net["id"], "10.0.0.0/24")
    plain = client.network(name="plain")
    port = client.port(net["id"])
    own = client.port(net["id"], qos_policy_id=other["id"])
    elsewhere = client.port(plain["id"])
    assert port["qos_network_policy_id"] == policy["id"] and port["qos_policy_id"] is None
    assert own["qos_network_policy_id"] == policy["id"] and own["qos_policy_id"] == other["id"]
    assert elsewhere["qos_network_policy_id"] is None
    client.put(f"/v2.0/networks/{net['id']}", {"network": {"qos_policy_id": other["id"]}})
    assert client.get(f"/v2.0/ports/{port['id']}")["port"]["qos_network_policy_id"] == \
        other["id"]
    listed = {p["id"]: p["qos_network_policy_id"] for p in client.get("/v2.0/ports").body["ports"]}
    assert listed == {port["id"]: other["id"], own["id"]: other["id"], elsewhere["id"]: None}
    filtered = client.get("/v2.0/ports", params={"qos_network_policy_id": other["id"]})
    assert sorted(p["id"] for p in filtered.body["ports"]) == sorted([port["id"], own["id"]])
    assert_error(client.put(f"/v2.0/ports/{port['id']}",
                            {"port": {"qos_network_policy_id": policy["id"]}}), 400,
                 "qos_network_policy_id")


# the default policy (qos-default) ---------------------------------------------------
def test_a_new_network_takes_its_projects_default_policy() -> None:
    """Neutron's _create_network_policy: a network made without a policy (or
    with null) takes its project's default one; one naming a policy keeps it;
    another project's network, and a port, take nothing of it."""
    store = MemoryStore()
    api = Api(store, auth=Auth({"t-ops": Context("ops", True), "t-alice": Context("alice", False),
                                "t-bob": Context("bob", False)}))
    ops, alice, bob = (Direct(api, f"t-{n}") for n in ("ops", "alice", "bob"))
    default = ops.create("policy", "qos/policies", name="d", project_id="alice", is_default=True)
    other = ops.create("policy", "qos/policies", name="o", project_id="alice")
    assert default["is_default"] is True and other["is_default"] is False
    made = ops.network(name="for-alice", project_id="alice")
    assert made["qos_policy_id"] == default["id"]
    assert ops.get(f"/v2.0/networks/{made['id']}")["network"]["qos_policy_id"] == default["id"]
    assert alice.network(name="hers", qos_policy_id=None)["qos_policy_id"] == default["id"]
    assert alice.network(name="named", qos_policy_id=other["id"])["qos_policy_id"] == other["id"]
    assert bob.network(name="his")["qos_policy_id"] is None
    port = alice.port(made["id"])
    assert (port["qos_policy_id"], port["qos_network_policy_id"]) == (None, default["id"])
    # no longer the default: new networks take nothing
    assert ops.put(f"/v2.0/qos/policies/{default['id']}",
                   {"policy": {"is_default": False}}).status == 200
    assert alice.network(name="later")["qos_policy_id"] is None


def test_one_default_policy_per_project(client: Direct, store: MemoryStore) -> None:
    first = client.create("policy", "qos/policies", name="a", is_default=True)
    second = client.create("policy", "qos/policies", name="b")
    before = dump(store)
    message = f"A default QoS policy exists for project {first['project_id']}."
    assert_error(client.post("/v2.0/qos/policies", {"policy": {"name": "c", "is_default": True}}),
                 409, message, type="QoSPolicyDefaultAlreadyExists")
    assert_error(client.put(f"/v2.0/qos/policies/{second['id']}",
                            {"policy": {"is_default": True}}),
                 409, message, type="QoSPolicyDefaultAlreadyExists")
    assert dump(store) == before
    # the default itself may say so again; another project has its own
    assert client.put(f"/v2.0/qos/policies/{first['id']}",
                      {"policy": {"is_default": True, "name": "a2"}}).status == 200
    theirs = client.create("policy", "qos/policies", name="t", project_id="p2", is_default=True)
    assert theirs["is_default"] is True
    assert client.put(f"/v2.0/qos/policies/{first['id']}",
                      {"policy": {"is_default": False}}).status == 200
    r = client.put(f"/v2.0/qos/policies/{second['id']}", {"policy": {"is_default": True}})
    assert r.status == 200 and r["policy"]["is_default"] is True, r.body


def test_extensions(client: Direct) -> None:
    ext = {e["alias"]: e for e in client.get("/v2.0/extensions").body["extensions"]}
    assert ext["qos-port-network-policy"]["name"] == "QoS port network policy ID"
    assert ext["qos-port-network-policy"]["description"] == \
        "Adds a the QoS network ID to the port definition"
    assert ext["qos-bw-minimum-ingress"]["name"] == \
        "Ingress direction for QoS minimum bandwidth rule"
    assert ext["qos"]["name"] == "Quality of Service"
    assert ext["qos-default"]["name"] == "QoS default policy"
    for alias in ("qos-bw-limit-direction", "qos-rule-type-details"):
        assert alias in ext
