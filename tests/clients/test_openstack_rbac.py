"""The unmodified `openstack network rbac` commands against Overcast: create
(each object type, a project or all projects; a project named by its id,
as Overcast has no identity service), list and its filters, show, set and
delete, what a policy does to ``shared`` and ``router:external``, and the
refusals (a duplicate, an action a type does not have).  The independent
commands run side by side (``batch``): each costs a second or two."""

from __future__ import annotations

import pytest

from .conftest import OSC
from .test_openstack_security import batch, ok

pytestmark = pytest.mark.slow


def test_rbac_policies(osc: OSC, uniq: str) -> None:
    net, ext, qos, sg = f"net-{uniq}", f"ext-{uniq}", f"qos-{uniq}", f"sg-{uniq}"
    made = ok(osc, f"network create {net} -f json", f"network create {ext} -f json",
              f"network qos policy create {qos} -f json", f"security group create {sg} -f json")
    net_id, ext_id, qos_id, sg_id = (m["id"] for m in made)

    ran = batch(
        osc,
        f"network rbac create --target-project alice-{uniq} --action access_as_shared "
        f"--type network {net} -f json",
        f"network rbac create --target-project bob-{uniq} --action access_as_external "
        f"--type network {ext} -f json",
        f"network rbac create --target-all-projects --action access_as_shared "
        f"--type qos_policy {qos} -f json",
        f"network rbac create --target-project bob-{uniq} --action access_as_shared "
        f"--type security_group {sg} -f json",
        f"network rbac create --target-project bob-{uniq} --action access_as_external "
        f"--type qos_policy {qos}")
    assert [r.rc for r in ran[:4]] == [0, 0, 0, 0], [r.err for r in ran[:4]]
    shared, external, everyone, group = (r.json() for r in ran[:4])
    assert shared == {"id": shared["id"], "action": "access_as_shared", "object_id": net_id,
                      "object_type": "network", "project_id": "lab",
                      "target_project_id": f"alice-{uniq}"}
    assert (external["object_id"], external["target_project_id"]) == (ext_id, f"bob-{uniq}")
    assert (everyone["object_type"], everyone["target_project_id"]) == ("qos_policy", "*")
    assert (group["object_type"], group["object_id"]) == ("security_group", sg_id)
    assert "Invalid action 'access_as_external' for object type 'qos_policy'" in ran[4].error()

    mine = {p["id"] for p in (shared, external, everyone, group)}
    listed, networks, by_action, by_target, shown, net_shown, ext_shown, qos_shown, dup = batch(
        osc, "network rbac list -f json", "network rbac list --type network -f json",
        "network rbac list --action access_as_external -f json",
        f"network rbac list --target-project bob-{uniq} -f json",
        f"network rbac show {shared['id']} -f json", f"network show {net} -f json",
        f"network show {ext} -f json", f"network qos policy show {qos} -f json",
        f"network rbac create --target-project alice-{uniq} --action access_as_shared "
        f"--type network {net}")
    assert mine <= {p["ID"] for p in listed.json()}
    assert {p["ID"] for p in networks.json()} & mine == {shared["id"], external["id"]}
    assert {p["ID"] for p in by_action.json()} & mine == {external["id"]}
    assert {p["ID"] for p in by_target.json()} == {external["id"], group["id"]}
    assert shown.json() == shared
    # shared with alice only: not shared for the caller; the wildcard QoS policy is
    assert net_shown.json()["shared"] is False
    assert ext_shown.json()["router:external"] is True
    assert qos_shown.json()["shared"] is True
    assert "An RBAC policy already exists with those values." in dup.error()

    ok(osc, f"network rbac set --target-project carol-{uniq} {shared['id']}")
    moved, gone = batch(osc, f"network rbac show {shared['id']} -f json",
                        f"network rbac delete {everyone['id']} {external['id']}")
    assert moved.json()["target_project_id"] == f"carol-{uniq}"
    assert gone.rc == 0, gone.err
    after = batch(osc, f"network qos policy show {qos} -f json", f"network show {ext} -f json",
                  f"network rbac show {everyone['id']}")
    assert after[0].json()["shared"] is False
    assert after[1].json()["router:external"] is False
    assert after[2].rc != 0
