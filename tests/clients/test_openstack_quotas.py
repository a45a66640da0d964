"""The unmodified `openstack` CLI's quota commands against Overcast.

The CLI looks every project up in the identity service first; with
``auth_type none`` it finds Overcast's small Keystone stand-in through
``OS_IDENTITY_ENDPOINT_OVERRIDE`` (``api/identity.py``).  ``--network``
keeps it to the network service (there is no compute or volume here), and
with no token there is no current project, so each command names one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import OSC

pytestmark = pytest.mark.slow


class IdentityOSC(OSC):
    def env(self) -> dict[str, str]:
        return {**super().env(), "OS_IDENTITY_ENDPOINT_OVERRIDE": self.endpoint + "/identity"}


def _limits(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {r["Resource"]: r["Limit"] for r in rows if r["Limit"] is not None}


def test_quota_set_show_list_and_delete(api_url: str, tmp_path: Path) -> None:
    osc = IdentityOSC(api_url.rstrip("/"), tmp_path)
    project = "lab"  # the no-auth caller's project
    defaults = _limits(osc.json(f"quota show --default --network {project}"))
    assert {k: defaults[k] for k in ("networks", "ports", "routers", "subnets",
                                     "floating_ips", "security_groups", "security_group_rules",
                                     "rbac_policies", "subnet_pools")} == {
        "networks": 100, "ports": 500, "routers": 10, "subnets": 100, "floating_ips": 50,
        "security_groups": 10, "security_group_rules": 100, "rbac_policies": 10,
        "subnet_pools": -1}
    assert osc.json("quota list --network") == []

    osc.run(f"quota set --networks 2 --ports 7 {project}")
    shown = _limits(osc.json(f"quota show --network {project}"))
    assert (shown["networks"], shown["ports"], shown["routers"]) == (2, 7, 10)
    listed = osc.json("quota list --network")
    assert [(r["Project ID"], r["Networks"], r["Ports"]) for r in listed] == [(project, 2, 7)]

    # what is in use, and the limit enforced
    osc.run("network create a")
    usage = {r["Resource"]: r for r in osc.json(f"quota show --usage --network {project}")}
    assert (usage["networks"]["Limit"], usage["networks"]["In Use"]) == (2, 1)
    osc.run("network create b")
    err = osc.fails("network create c")
    assert "Quota exceeded for resources: ['network']" in err, err
    # not below what is used, unless forced
    err = osc.fails(f"quota set --networks 1 {project}")
    assert "must be greater than or equal to already used 2" in err, err
    osc.run(f"quota set --networks 1 --force {project}")
    assert _limits(osc.json(f"quota show --network {project}"))["networks"] == 1

    osc.run(f"quota delete --network {project}")
    assert _limits(osc.json(f"quota show --network {project}"))["networks"] == 100
    assert osc.json("quota list --network") == []
