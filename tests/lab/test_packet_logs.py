"""Security group packet logs (Neutron's logging) in the real lab: a log on
a group tells, in its port's host's agent log, each new connection the
group admits and each packet it drops, naming the port; ports outside the
log are never told; a disabled log tells nothing more."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from overcast.lab import control, ipcmd
from overcast.plan import names

from . import traffic
from .conftest import Lab
from .test_firewall_groups import MEMBER_PORT, OUTSIDER_PORT, ip, ns, reaches, sg

pytestmark = pytest.mark.root
__all__ = ["sg"]  # the fixture, used by name

CONVERGE = 10.0


def _lines(path: Any, since: int) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        f.seek(since)
        return [ln for ln in f.read().splitlines() if "action=" in ln]


def _until_told(path: Any, since: int, *words: str) -> str:
    """The first line after ``since`` with every one of ``words``."""
    deadline = time.monotonic() + CONVERGE
    while True:
        told = [ln for ln in _lines(path, since) if all(w in ln for w in words)]
        if told:
            return told[0]
        assert time.monotonic() < deadline, _lines(path, since)
        time.sleep(0.1)


def _refused(lab: Lab, port: int) -> None:
    tried = traffic.attempts(reaches(lab, "sg1", "sg3", port, 1.0))
    assert tried and not any(a.answered for a in tried), tried


def _logged_tags(lab: Lab, host: str) -> list[Any]:
    listed = ipcmd.run(["nft", "-j", "list", "set", "inet", names.FW_TABLE, "log_drop"],
                       ns=control.current_topology().host(host).netns)
    return list(json.loads(listed.stdout)["nftables"][1]["set"].get("elem", []))


def test_a_groups_packet_log_tells_its_ports_admitted_connections_and_drops_until_disabled(
        lab: Lab, sg: dict[str, Any]) -> None:
    sg3 = lab.vms["sg3"]["port_id"]
    made = lab.api.call("POST", "/v2.0/log/logs", {"log": {
        "name": "outsiders", "resource_type": "security_group",
        "resource_id": sg["outsiders"]["id"], "event": "ALL"}})["log"]
    path = control.log_path("agent-host3")
    since = path.stat().st_size
    try:
        with traffic.listen(ns(lab, "sg3"), OUTSIDER_PORT):
            deadline = time.monotonic() + CONVERGE
            wanted = f"-> {ip(lab, 'sg3')}:{OUTSIDER_PORT}"
            while True:  # the log is in place once a connection is told
                first = traffic.first_answer(reaches(lab, "sg1", "sg3", OUTSIDER_PORT, 2.0))
                assert first is not None and first.kind == "open"
                told = [ln for ln in _lines(path, since)
                        if "action=ACCEPT direction=ingress" in ln and wanted in ln]
                if told:
                    break
                assert time.monotonic() < deadline, _lines(path, since)
                time.sleep(0.2)
        print("told:", told[0])
        assert f"port={sg3}" in told[0] and made["id"] in told[0], told
        assert f"tcp {ip(lab, 'sg1')}:" in told[0], told
        # a connection the group does not admit: dropped, and told
        _refused(lab, MEMBER_PORT)
        _until_told(path, since, "action=DROP direction=ingress", f"port={sg3}",
                    f"-> {ip(lab, 'sg3')}:{MEMBER_PORT}")
        # only the logged group's port is told, of every host's log
        for host in ("host1", "host2", "host3"):
            others = [ln for ln in _lines(control.log_path(f"agent-{host}"), 0)
                      if made["id"] in ln and f"port={sg3}" not in ln]
            assert others == [], others
        # disabled: its elements leave host3's kernel, and a drop is no longer told
        lab.api.call("PUT", f"/v2.0/log/logs/{made['id']}", {"log": {"enabled": False}})
        deadline = time.monotonic() + CONVERGE
        while _logged_tags(lab, "host3"):
            assert time.monotonic() < deadline, "the log's tags are still in host3's kernel"
            time.sleep(0.1)
        quiet = path.stat().st_size
        _refused(lab, MEMBER_PORT)
        assert [ln for ln in _lines(path, quiet) if "action=" in ln] == []
    finally:
        lab.api.call("DELETE", f"/v2.0/log/logs/{made['id']}")
