"""The unmodified `openstack` CLI's address scope and subnet pool commands
against Overcast, and subnets made from a pool (``subnet create
--subnet-pool``): what each command prints (`-f json`), its exit status, and
for a refusal the error text.  Independent commands run side by side
(``batch``): each call costs a second or two."""

from __future__ import annotations

import pytest

from .conftest import OSC
from .test_openstack_security import batch, ok

pytestmark = pytest.mark.slow


def test_subnet_pools_and_subnets_from_them(osc: OSC, uniq: str) -> None:
    scope, pool, net = f"scope-{uniq}", f"pool-{uniq}", f"net-{uniq}"
    made_scope, made_net = ok(osc, f"address scope create --ip-version 4 {scope} -f json",
                              f"network create {net} -f json")
    assert (made_scope["name"], made_scope["ip_version"], made_scope["shared"]) == (
        scope, 4, False)
    made = ok(osc, f"subnet pool create --pool-prefix 10.50.1.0/24 --pool-prefix 10.50.0.0/24 "
                   f"--default-prefix-length 26 --address-scope {scope} "
                   f"--description 'the pool' {pool} -f json")[0]
    # merged into one prefix; the family from it
    assert made["prefixes"] == ["10.50.0.0/23"]
    assert (made["name"], made["ip_version"], made["default_prefixlen"], made["min_prefixlen"],
            made["max_prefixlen"], made["address_scope_id"], made["description"]) == (
        pool, 4, 26, 8, 32, made_scope["id"], "the pool")

    first = ok(osc, f"subnet create --subnet-pool {pool} --prefix-length 25 --network {net} "
                    f"s1-{uniq} -f json")[0]
    second = ok(osc, f"subnet create --subnet-pool {pool} --network {net} s2-{uniq} -f json")[0]
    assert (first["cidr"], first["subnetpool_id"], first["gateway_ip"]) == (
        "10.50.0.0/25", made["id"], "10.50.0.1")
    assert second["cidr"] == "10.50.0.128/26"  # the pool's default length, the lowest free

    # by id where the rename beside them may come first
    ran = batch(osc,
                f"subnet pool set --pool-prefix 10.60.0.0/24 --name {pool}-2 {pool}",
                f"subnet create --subnet-pool {made['id']} --prefix-length 4 --network {net} "
                f"bad-{uniq}",
                f"subnet create --subnet-pool {made['id']} --subnet-range 10.50.0.0/26 "
                f"--network {net} taken-{uniq}",
                f"subnet pool create --pool-prefix 10.50.0.0/16 --address-scope {scope} "
                f"overlap-{uniq}")
    assert ran[0].rc == 0, ran[0].err
    assert "minimum allowed prefix is 8" in ran[1].error()
    assert "Cannot allocate requested subnet" in ran[2].error()
    assert "must have unique prefixes" in ran[3].error()

    shown, listed, network = ok(osc, f"subnet pool show {pool}-2 -f json",
                                "subnet pool list -f json", f"network show {net} -f json")
    assert shown["prefixes"] == ["10.50.0.0/23", "10.60.0.0/24"]
    assert [p["Prefixes"] for p in listed if p["ID"] == made["id"]] == [shown["prefixes"]]
    assert network["ipv4_address_scope"] == made_scope["id"]

    # in use, neither goes; once the subnets are gone, both do
    in_use, scope_in_use = batch(osc, f"subnet pool delete {made['id']}",
                                 f"address scope delete {scope}")
    assert "existing allocations" in in_use.error()
    assert "in use" in scope_in_use.error()
    ok(osc, f"subnet delete s1-{uniq} s2-{uniq}")
    ok(osc, f"subnet pool delete {made['id']}")
    ok(osc, f"address scope delete {scope}", f"network delete {net}")


def test_auto_allocated_topology(osc: OSC, uniq: str) -> None:
    pub, default = f"pub-{uniq}", f"default-{uniq}"
    external, made_pool = ok(
        osc, f"network create --external --default {pub} -f json",
        f"subnet pool create --pool-prefix 10.77.0.0/16 --default-prefix-length 24 --default "
        f"--share {default} -f json")
    assert (external["is_default"], made_pool["is_default"], made_pool["shared"]) == (
        True, True, True)
    # with no Keystone the CLI knows no current project: name it (the one the API gave us)
    project = f"--project {external['project_id']}"
    try:
        ok(osc, f"subnet create --network {pub} --subnet-range 198.51.100.0/24 s-{uniq} -f json")
        checked = batch(osc, f"network auto allocated topology create --check-resources {project} "
                        "-f json")
        # it passes; the CLI prints its dry_run column empty (as against Neutron: the answer's
        # "id" is "dry-run=pass", which the CLI does not map to that column)
        assert checked[0].json() == {"dry_run": None}
        first = ok(osc, f"network auto allocated topology create {project} -f json")[0]
        assert first["project_id"] == external["project_id"]
        again, shown = ok(osc, f"network auto allocated topology create --or-show {project} "
                               "-f json",
                          f"network show {first['id']} -f json")
        assert again["id"] == first["id"]
        assert (shown["name"], shown["subnets"] != []) == ("auto_allocated_network", True)
        subnet = ok(osc, "subnet show auto_allocated_subnet_v4 -f json")[0]
        assert subnet["subnetpool_id"] == made_pool["id"]
        assert subnet["cidr"].startswith("10.77.")
        ok(osc, f"network auto allocated topology delete {project}")
        assert "auto_allocated_network" not in {n["Name"] for n in ok(
            osc, "network list -f json")[0]}
    finally:
        batch(osc, f"network auto allocated topology delete {project}")
        batch(osc, f"subnet delete s-{uniq}")
        batch(osc, f"network delete {pub}", f"subnet pool delete {default}")
