"""What ``overcast`` shows of the overcast-firewall extension: a rule's
packets and bytes in ``security group rule list --long`` and ``show``, and
in ``port show`` which groups are enforced on which host."""

from __future__ import annotations

from .conftest import Run
from .fake_neutron import FakeNeutron

WEB = "3e000000-0000-4000-8000-000000000002"
DB = "db000000-0000-4000-8000-000000000003"


def test_rule_list_long_shows_packets_and_bytes(overcast: Run, fake: FakeNeutron) -> None:
    ssh = fake.add("security-group-rules", security_group_id=WEB, direction="ingress",
                   ethertype="IPv4", protocol="tcp", port_range_min=22, port_range_max=22,
                   **{"overcast:packets": 1234, "overcast:bytes": 98765})
    fake.add("security-group-rules", security_group_id=WEB, direction="egress", ethertype="IPv4")
    result = overcast("security", "group", "rule", "list", "--long")
    assert result.code == 0, result.err
    header, *rows = [line for line in result.out.splitlines() if line.startswith("|")]
    assert [h.strip() for h in header.strip("|").split("|")][-2:] == ["Packets", "Bytes"]
    cells = {r.split("|")[1].strip(): [c.strip() for c in r.strip("|").split("|")] for r in rows}
    assert cells[ssh["id"]][-2:] == ["1234", "98765"]
    # a server without the extension: empty cells, not "None"
    assert [c for k, c in cells.items() if k != ssh["id"]][0][-2:] == ["", ""]
    short = overcast("security", "group", "rule", "list")
    assert "Packets" not in short.out


def test_rule_show_shows_the_counters(overcast: Run, fake: FakeNeutron) -> None:
    ssh = fake.add("security-group-rules", security_group_id=WEB, direction="ingress",
                   ethertype="IPv4", protocol="tcp", **{"overcast:packets": 5, "overcast:bytes": 300})
    result = overcast("security", "group", "rule", "show", ssh["id"])
    assert result.code == 0, result.err
    fields = {line.split("|")[1].strip(): line.split("|")[2].strip()
              for line in result.out.splitlines() if line.startswith("| ")}
    assert fields["overcast:packets"] == "5" and fields["overcast:bytes"] == "300"
    as_json = overcast("security", "group", "rule", "show", ssh["id"], "-f", "json").json()
    assert as_json["overcast:packets"] == 5


def test_port_show_says_which_groups_are_enforced_on_which_host(overcast: Run,
                                                                fake: FakeNeutron) -> None:
    port = fake.add("ports", name="vm1", **{"overcast:firewall": [
        {"host": "hv1", "port_security": True, "security_groups": [WEB, DB]}]})
    result = overcast("port", "show", "vm1")
    assert result.code == 0, result.err
    line = next(ln for ln in result.out.splitlines() if "overcast:firewall" in ln)
    assert f"hv1: port security on, security groups {WEB}, {DB}" in line
    bare = fake.add("ports", name="vm2", **{"overcast:firewall": [
        {"host": "hv2", "port_security": False, "security_groups": []}]})
    assert "hv2: port security off (no filtering)" in overcast("port", "show", bare["id"]).out
    partly = fake.add("ports", name="vm4", **{"overcast:firewall": [
        {"host": "hv1", "port_security": True, "security_groups": [WEB],
         "not_enforced": ["security group rule r1: protocol 44 is the IPv6 extension header"]}]})
    shown = overcast("port", "show", partly["id"]).out
    assert "hv1: NOT enforced: security group rule r1: protocol 44" in shown
    nowhere = fake.add("ports", name="vm3", **{"overcast:firewall": []})
    assert "not enforced on any host" in overcast("port", "show", nowhere["id"]).out
    assert port["id"]
