"""Metering labels and rules as Neutron serves them: the operator makes them
(shared labels too), their project reads them, rules of a label may not
overlap (409), a label goes with its rules; nothing written on a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from overcast.api import Api, Auth
from overcast.api.auth import Context
from overcast.store import MemoryStore

from .helpers import Direct, assert_error, dump

TOKENS = {"t-admin": Context("ops", True), "t-alice": Context("alice", False),
          "t-bob": Context("bob", False)}
LABELS, RULES = "/v2.0/metering/metering-labels", "/v2.0/metering/metering-label-rules"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def c(store: MemoryStore) -> dict[str, Direct]:
    api = Api(store, auth=Auth(dict(TOKENS)))
    return {t.removeprefix("t-"): Direct(api, t) for t in TOKENS}


def label(c: dict[str, Direct], **attrs: Any) -> dict[str, Any]:
    return c["admin"].create("metering_label", "metering/metering-labels",
                             **{"project_id": "alice", **attrs})


def rule(c: dict[str, Direct], lab: dict[str, Any], **attrs: Any) -> Any:
    return c["admin"].post(RULES, {"metering_label_rule": {
        "metering_label_id": lab["id"], "direction": "ingress",
        "remote_ip_prefix": "10.0.0.0/24", **attrs}})


def test_labels_and_rules(c: dict[str, Direct]) -> None:
    lab = label(c, name="web", description="web traffic")
    assert lab == {"id": lab["id"], "project_id": "alice", "tenant_id": "alice",
                   "name": "web", "description": "web traffic", "shared": False,
                   "overcast:packets": 0, "overcast:bytes": 0}
    r = rule(c, lab, excluded=True)
    assert r.status == 201, r.body
    made = r["metering_label_rule"]
    assert made == {"id": made["id"], "project_id": "alice", "tenant_id": "alice",
                    "metering_label_id": lab["id"], "direction": "ingress", "excluded": True,
                    "remote_ip_prefix": "10.0.0.0/24", "overcast:packets": 0,
                    "overcast:bytes": 0}
    # the label's project reads them; another project does not see them
    assert c["alice"].get(f"{LABELS}/{lab['id']}")["metering_label"] == lab
    assert [x["id"] for x in c["alice"].get(RULES)["metering_label_rules"]] == [made["id"]]
    assert c["alice"].get(RULES, params={"direction": "egress"})["metering_label_rules"] == []
    assert_error(c["bob"].get(f"{LABELS}/{lab['id']}"), 404, type="MeteringLabelNotFound")
    assert c["bob"].get(RULES)["metering_label_rules"] == []
    # nothing changes once made
    assert c["admin"].put(f"{LABELS}/{lab['id']}", {"metering_label": {"name": "x"}}).status \
        == 405
    # a label goes with its rules
    assert c["admin"].delete(f"{LABELS}/{lab['id']}").status == 204
    assert_error(c["admin"].get(f"{RULES}/{made['id']}"), 404,
                 type="MeteringLabelRuleNotFound")


def test_the_operators_to_make(c: dict[str, Direct], store: MemoryStore) -> None:
    lab = label(c, name="web")
    before = dump(store)
    for body in ({"name": "mine"}, {"name": "mine", "shared": True}):
        assert_error(c["alice"].post(LABELS, {"metering_label": body}), 403,
                     "create_metering_label", type="PolicyNotAuthorized")
    assert_error(c["alice"].post(RULES, {"metering_label_rule": {
        "metering_label_id": lab["id"], "direction": "ingress",
        "remote_ip_prefix": "10.0.0.0/24"}}), 403, "create_metering_label_rule")
    # a rule for a label bob cannot see: as if there were none
    assert_error(c["bob"].post(RULES, {"metering_label_rule": {
        "metering_label_id": lab["id"], "direction": "ingress",
        "remote_ip_prefix": "10.0.0.0/24"}}), 404, type="MeteringLabelNotFound")
    assert_error(c["alice"].delete(f"{LABELS}/{lab['id']}"), 403, "delete_metering_label")
    assert dump(store) == before
    shared = label(c, name="all", shared=True)
    assert shared["shared"] is True


def test_overlapping_rules(c: dict[str, Direct], store: MemoryStore) -> None:
    lab = label(c)
    assert rule(c, lab).status == 201
    before = dump(store)
    assert_error(rule(c, lab, remote_ip_prefix="10.0.0.128/25"), 409, "10.0.0.128/25",
                 "overlaps", type="MeteringLabelRuleOverlaps")
    assert_error(rule(c, lab, remote_ip_prefix="10.0.0.0/16"), 409, type="MeteringLabelRuleOverlaps")
    assert dump(store) == before
    # another direction, the excluded kind, another family, another label: no overlap
    assert rule(c, lab, direction="egress").status == 201
    assert rule(c, lab, excluded=True).status == 201
    assert rule(c, lab, remote_ip_prefix="2001:db8::/64").status == 201
    assert rule(c, label(c), remote_ip_prefix="10.0.0.0/24").status == 201


@pytest.mark.parametrize("attrs,words", [
    ({"direction": "sideways"}, ("direction", "sideways")),
    ({"remote_ip_prefix": "10.0.0.1/24"}, ("remote_ip_prefix", "10.0.0.1/24")),
    ({"remote_ip_prefix": "banana"}, ("remote_ip_prefix",)),
    ({"excluded": "maybe"}, ("excluded",)),
    ({"colour": "red"}, ("colour",)),
])
def test_bad_rules(c: dict[str, Direct], store: MemoryStore, attrs: dict[str, Any],
                   words: tuple[str, ...]) -> None:
    lab = label(c)
    before = dump(store)
    assert_error(rule(c, lab, **attrs), 400, *words)
    assert dump(store) == before


def test_required(c: dict[str, Direct]) -> None:
    lab = label(c)
    for name in ("metering_label_id", "direction", "remote_ip_prefix"):
        body = {"metering_label_id": lab["id"], "direction": "ingress",
                "remote_ip_prefix": "10.0.0.0/24"}
        del body[name]
        assert_error(c["admin"].post(RULES, {"metering_label_rule": body}), 400, name)
    assert_error(c["admin"].post(RULES, {"metering_label_rule": {
        "metering_label_id": "6f0e7a9c-0000-4000-8000-0000000000aa", "direction": "ingress",
        "remote_ip_prefix": "10.0.0.0/24"}}), 404, type="MeteringLabelNotFound")


def test_extension(c: dict[str, Direct]) -> None:
    r = c["alice"].get("/v2.0/extensions/metering")
    assert r.status == 200 and r["extension"]["name"] == "Neutron Metering"


def test_what_the_routers_counted_is_shown_per_rule_and_per_label_summed_over_hosts(
        c: dict[str, Direct], store: MemoryStore) -> None:
    import json

    from overcast.model import keys

    lab, other = label(c), label(c)
    out = rule(c, lab, direction="egress", remote_ip_prefix="0.0.0.0/0").body["metering_label_rule"]
    back = rule(c, lab, remote_ip_prefix="0.0.0.0/0").body["metering_label_rule"]
    assert (out["overcast:packets"], out["overcast:bytes"]) == (0, 0)
    for host, counted in (("h1", {out["id"]: [3, 300], back["id"]: [2, 200]}),
                          ("h2", {out["id"]: [1, 100]})):
        store.put(keys.metering_counters(host),
                  json.dumps({"host": host, "rules": counted}).encode())
    store.put(keys.metering_counters("h3"), b"not json")  # counts nothing, hides nothing
    shown = c["alice"].get(f"{RULES}/{out['id']}").body["metering_label_rule"]
    assert (shown["overcast:packets"], shown["overcast:bytes"]) == (4, 400)
    got = c["alice"].get(f"{LABELS}/{lab['id']}").body["metering_label"]
    assert (got["overcast:packets"], got["overcast:bytes"]) == (6, 600)
    assert c["alice"].get(f"{LABELS}/{other['id']}").body["metering_label"][
        "overcast:packets"] == 0


def test_a_shared_labels_counts_are_an_admins_to_read(c: dict[str, Direct], store: MemoryStore) -> None:
    """It counts every project's routers: its own project sees it, not them."""
    import json

    from overcast.model import keys

    lab = label(c, shared=True)
    counted = rule(c, lab, remote_ip_prefix="0.0.0.0/0").body["metering_label_rule"]
    store.put(keys.metering_counters("h1"),
              json.dumps({"host": "h1", "rules": {counted["id"]: [5, 500]}}).encode())
    mine = c["alice"].get(f"{LABELS}/{lab['id']}").body["metering_label"]
    assert "overcast:packets" not in mine and mine["shared"] is True
    assert "overcast:bytes" not in c["alice"].get(f"{RULES}/{counted['id']}").body[
        "metering_label_rule"]
    assert c["admin"].get(f"{LABELS}/{lab['id']}").body["metering_label"][
        "overcast:packets"] == 5
