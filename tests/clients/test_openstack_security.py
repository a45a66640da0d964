"""The unmodified `openstack` CLI's security-group and port-security commands
against Overcast, as a Neutron user runs them: what each command prints
(`-f json`), its exit status, and for a refusal the error text naming the field.

Each `openstack` call costs about a second of Python start-up, so commands that
do not depend on each other run side by side (``batch``) and each output is
read for everything it shows.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import OPENSTACK, OSC, CLIError

pytestmark = pytest.mark.slow


@dataclass
class Ran:
    cmd: str
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        if self.rc != 0:
            raise CLIError(f"`openstack {self.cmd}` failed (rc={self.rc}):\n{self.err.strip()}")
        try:
            return json.loads(self.out) if self.out.strip() else None
        except ValueError as e:
            raise CLIError(f"`openstack {self.cmd}` printed non-JSON: {self.out!r}") from e

    def error(self) -> str:
        if self.rc == 0:
            raise CLIError(f"`openstack {self.cmd}` succeeded but should have failed:\n"
                           f"{self.out}")
        return self.err


def batch(osc: OSC, *cmds: str) -> list[Ran]:
    """Run independent `openstack` commands at once; wait for all of them."""
    procs = [(cmd, subprocess.Popen([str(OPENSTACK), *shlex.split(cmd)], env=osc.env(),
                                    cwd=osc.tmp, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True))
             for cmd in cmds]
    ran = []
    try:
        for cmd, proc in procs:
            out, err = proc.communicate(timeout=120)
            ran.append(Ran(cmd, proc.returncode, out, err))
    finally:  # none is left running if one hangs
        for _, proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return ran


def ok(osc: OSC, *cmds: str) -> list[Any]:
    """Run commands that must succeed; their parsed `-f json` output (None if silent)."""
    return [r.json() for r in batch(osc, *cmds)]


def _egress_all(rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(direction, ethertype) of each rule that allows everything (no protocol or remote)."""
    return sorted((r["direction"], r["ethertype"]) for r in rules
                  if r["protocol"] is None and r["remote_ip_prefix"] is None
                  and r["remote_group_id"] is None and r["port_range_min"] is None)


# --- groups -------------------------------------------------------------------


def test_security_group_create_show_set_list_delete(osc: OSC, uniq: str) -> None:
    name = f"web-{uniq}"
    created, default, dup = batch(
        osc, f"security group create --description 'web tier' --stateless {name} -f json",
        "security group show default -f json",
        "security group create default")
    sg = created.json()
    assert (sg["name"], sg["description"], sg["stateful"]) == (name, "web tier", False)
    # a new group allows all egress, IPv4 and IPv6, and nothing in (Neutron's)
    assert _egress_all(sg["rules"]) == [("egress", "IPv4"), ("egress", "IPv6")]
    assert len(sg["rules"]) == 2
    assert all(r["security_group_id"] == sg["id"] for r in sg["rules"])

    # the project's default group: all egress, and ingress from its own members
    dflt = default.json()
    assert (dflt["name"], dflt["description"]) == ("default", "Default security group")
    assert len(dflt["rules"]) == 4
    assert _egress_all(dflt["rules"]) == [("egress", "IPv4"), ("egress", "IPv6")]
    ingress = sorted((r["ethertype"], r["remote_group_id"], r["protocol"], r["remote_ip_prefix"])
                     for r in dflt["rules"] if r["direction"] == "ingress")
    assert ingress == [("IPv4", dflt["id"], None, None), ("IPv6", dflt["id"], None, None)]
    assert all(r["belongs_to_default_sg"] for r in dflt["rules"])
    # the name is the default group's (Neutron: 409 SecurityGroupDefaultAlreadyExists)
    assert "409" in dup.error() and "Default security group already exists" in dup.err

    renamed = f"app-{uniq}"
    change, clash = batch(osc, f"security group set --name {renamed} --description 'app tier' "
                               f"--stateful {name}",
                          f"security group set --name Default {sg['id']}")
    assert change.json() is None  # `set` prints nothing
    assert "409" in clash.error() and "name 'Default'" in clash.err
    shown = osc.json(f"security group show {sg['id']}")
    assert (shown["name"], shown["description"], shown["stateful"]) == (
        renamed, "app tier", True)

    osc.run(f"security group delete {renamed}")
    listed = osc.json("security group list")
    assert [(g["ID"], g["Name"], g["Description"]) for g in listed] == [
        (dflt["id"], "default", "Default security group")]


# --- rules --------------------------------------------------------------------


def test_security_group_rules_and_refusals(osc: OSC, uniq: str) -> None:
    name = f"sg-{uniq}"
    sg, dflt = ok(osc, f"security group create {name} -f json",
                  "security group show default -f json")
    made = ok(
        osc,
        f"security group rule create --ingress --protocol tcp --dst-port 22 "
        f"--remote-ip 10.0.0.0/8 {name} -f json",
        f"security group rule create --egress --ethertype IPv6 --protocol udp "
        f"--dst-port 8000:8080 --remote-ip 2001:db8::/32 {name} -f json",
        f"security group rule create --protocol icmp --icmp-type 3 --icmp-code 1 {name} -f json",
        f"security group rule create --ethertype IPv6 --protocol ipv6-icmp --icmp-type 128 "
        f"{name} -f json",
        f"security group rule create --protocol sctp --dst-port 9000 {name} -f json",
        f"security group rule create --protocol 47 {name} -f json",
        f"security group rule create --protocol any --remote-group default {name} -f json",
    )
    tcp, udp, icmp, icmp6, sctp, gre, anyp = made
    seen = [(r["direction"], r["ether_type"], r["protocol"], r["port_range_min"],
             r["port_range_max"], r["remote_ip_prefix"], r["remote_group_id"]) for r in made]
    assert seen == [
        ("ingress", "IPv4", "tcp", 22, 22, "10.0.0.0/8", None),
        ("egress", "IPv6", "udp", 8000, 8080, "2001:db8::/32", None),
        ("ingress", "IPv4", "icmp", 3, 1, "0.0.0.0/0", None),
        ("ingress", "IPv6", "ipv6-icmp", 128, None, "::/0", None),
        ("ingress", "IPv4", "sctp", 9000, 9000, "0.0.0.0/0", None),
        ("ingress", "IPv4", "47", None, None, "0.0.0.0/0", None),
        ("ingress", "IPv4", None, None, None, None, dflt["id"]),
    ]
    assert all(r["security_group_id"] == sg["id"] for r in made)
    assert tcp["normalized_cidr"] == "10.0.0.0/8" and not tcp["belongs_to_default_sg"]

    (listed, long, tcp_in, shown,
     ports, nocode, nocode_api, family, both, both_api, dup) = batch(
        osc, f"security group rule list {name} -f json",
        f"security group rule list --long {name} -f json",
        "security group rule list --ingress --protocol tcp -f json",
        f"security group rule show {udp['id']} -f json",
        # refusals
        f"security group rule create --protocol 47 --dst-port 22 {name}",
        f"security group rule create --protocol icmp --icmp-code 3 {name}",
        # the same, past the CLI's own check: the API refuses it too
        f"security group rule create --protocol icmp "
        f"--extra-property type=int,name=port_range_max,value=3 {name}",
        f"security group rule create --ethertype IPv6 --remote-ip 10.0.0.0/8 {name}",
        f"security group rule create --remote-ip 10.0.0.0/8 --remote-group {name} {name}",
        f"security group rule create --remote-ip 10.0.0.0/8 "
        f"--extra-property name=remote_group_id,value={sg['id']} {name}",
        f"security group rule create --protocol tcp --dst-port 22 --remote-ip 10.0.0.0/8 "
        f"{name}")
    rows = {r["ID"]: r for r in listed.json()}
    assert set(rows) == {r["id"] for r in made} | {r["id"] for r in sg["rules"]}
    assert [rows[r["id"]]["Port Range"] for r in (tcp, udp, icmp, icmp6, sctp, gre, anyp)] == [
        "22:22", "8000:8080", "type=3:code=1", "type=128", "9000:9000", "", ""]
    assert rows[udp["id"]]["IP Range"] == "2001:db8::/32"
    assert rows[udp["id"]]["Direction"] == "egress"
    assert rows[anyp["id"]]["Remote Security Group"] == dflt["id"]
    assert rows[gre["id"]]["IP Protocol"] == "47"
    assert {r["ID"] for r in long.json()} == set(rows)  # --long is deprecated, same rows
    tcp_rows = tcp_in.json()
    assert [(r["ID"], r["Security Group"]) for r in tcp_rows] == [(tcp["id"], sg["id"])]
    assert shown.json() == udp | {"updated_at": shown.json()["updated_at"]}

    err = ports.error()
    assert "400" in err and "port_range_min" in err and "protocol 47 has no ports" in err
    assert "--icmp-type required with argument --icmp-code" in nocode.error()
    err = nocode_api.error()
    assert "400" in err and "port_range_min" in err and "(port-range-max) 3 is provided" in err
    err = family.error()
    assert "400" in err and "Conflicting value ethertype IPv6 for CIDR 10.0.0.0/8" in err
    assert "--remote-group: not allowed with argument --remote-ip" in both.error()
    err = both_api.error()
    assert "400" in err and "remote_group_id and remote_ip_prefix are mutually exclusive" in err
    err = dup.error()
    assert "409" in err and f"Security group rule already exists. Rule id is {tcp['id']}" in err

    osc.run(f"security group rule delete {tcp['id']} {udp['id']}")
    left = osc.json(f"security group rule list {name}")
    # the refusals added nothing
    assert {r["ID"] for r in left} == set(rows) - {tcp["id"], udp["id"]}


# --- ports --------------------------------------------------------------------


def test_port_security_groups_port_security_and_address_pairs(osc: OSC, uniq: str) -> None:
    net, nops, a, b, c = ok(
        osc, f"network create net-{uniq} -f json",
        f"network create --disable-port-security nops-{uniq} -f json",
        f"security group create a-{uniq} -f json", f"security group create b-{uniq} -f json",
        "security group show default -f json")
    assert nops["port_security_enabled"] is False and net["port_security_enabled"] is True
    p1, p2, p3, refused, p5 = batch(
        osc, f"port create --network net-{uniq} --security-group a-{uniq} "
             f"--security-group b-{uniq} p1-{uniq} -f json",
        f"port create --network net-{uniq} --security-group b-{uniq} p2-{uniq} -f json",
        f"port create --network nops-{uniq} p3-{uniq} -f json",
        f"port create --network nops-{uniq} --security-group a-{uniq} p4-{uniq}",
        f"port create --network net-{uniq} --allowed-address ip-address=10.0.0.50 "
        f"--allowed-address ip-address=10.0.0.0/28,mac-address=fa:16:3e:00:00:01 "
        f"p5-{uniq} -f json")
    port1, port2, port3, port5 = p1.json(), p2.json(), p3.json(), p5.json()
    assert (port1["port_security_enabled"], port1["security_group_ids"]) == (
        True, [a["id"], b["id"]])
    assert port2["security_group_ids"] == [b["id"]]
    # on a network without port security a new port has none, and no group
    assert (port3["port_security_enabled"], port3["security_group_ids"]) == (False, [])
    err = refused.error()
    assert "409" in err and "Port has security group associated" in err
    # a pair given without a MAC has the port's own, as in Neutron
    mac = port5["mac_address"]
    assert port5["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.50", "mac_address": mac},
        {"ip_address": "10.0.0.0/28", "mac_address": "fa:16:3e:00:00:01"}]
    assert port5["security_group_ids"] == [c["id"]]  # the project's default group

    ok(osc, f"port set --security-group default p1-{uniq}",  # adds the default group
       f"port set --disable-port-security --no-security-group p2-{uniq}",
       f"port unset --allowed-address ip-address=10.0.0.50,mac-address={mac} p5-{uniq}")
    ok(osc, f"port unset --security-group a-{uniq} p1-{uniq}",
       f"port set --allowed-address ip-address=2001:db8::5 p5-{uniq}")
    shown1, shown2, in_use, disable, shown5, dup, nosec = batch(
        osc, f"port show p1-{uniq} -f json", f"port show p2-{uniq} -f json",
        f"security group delete b-{uniq}", f"port set --disable-port-security p1-{uniq}",
        f"port show p5-{uniq} -f json",
        f"port set --allowed-address ip-address=10.0.0.0/28,mac-address=fa:16:3e:00:00:01 "
        f"p5-{uniq}",
        f"port set --disable-port-security --no-security-group p5-{uniq}")
    assert shown1.json()["security_group_ids"] == [b["id"], c["id"]]
    assert (shown2.json()["port_security_enabled"], shown2.json()["security_group_ids"]) == (
        False, [])
    err = in_use.error()
    assert "409" in err and f"Security Group {b['id']} in use" in err
    err = disable.error()
    assert "409" in err and "Cannot disable port security" in err
    assert shown5.json()["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.0/28", "mac_address": "fa:16:3e:00:00:01"},
        {"ip_address": "2001:db8::5", "mac_address": mac}]
    err = dup.error()
    assert "400" in err and "allowed_address_pairs" in err and "duplicate address pair" in err
    err = nosec.error()
    assert "409" in err and "Port Security must be enabled in order to have allowed address" in err

    ok(osc, f"port set --no-security-group p1-{uniq}", f"port set --enable-port-security p2-{uniq}",
       f"port set --no-allowed-address p5-{uniq}")
    after1, after2, after5 = ok(osc, f"port show p1-{uniq} -f json",
                                f"port show p2-{uniq} -f json", f"port show p5-{uniq} -f json")
    assert (after1["port_security_enabled"], after1["security_group_ids"]) == (True, [])
    # enabling port security again adds no group (as Neutron: only a new port gets default)
    assert (after2["port_security_enabled"], after2["security_group_ids"]) == (True, [])
    assert after5["allowed_address_pairs"] == []
