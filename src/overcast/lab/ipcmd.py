"""Runs iproute2 for the emulated data center.

The lab is the data center, not product code: it may drive ``ip`` directly.
Every failure raises :class:`LabError` naming the command and its stderr.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

LAB_ALIAS = "overcast-lab"


class LabError(Exception):
    """A lab operation failed; the message says which and why."""


def run(argv: list[str], ns: str | None = None, check: bool = True,
        timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (optionally inside namespace ``ns``) and capture its output."""
    full = (["ip", "netns", "exec", ns] if ns else []) + argv
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(full)}: timed out after {timeout:g}s") from exc
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(full)}: {proc.stderr.strip() or 'exit ' + str(proc.returncode)}")
    return proc


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    """``ip [-n ns] args...``; returns stdout."""
    argv = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return run(argv, check=check).stdout


def ip_json(*args: str, ns: str | None = None) -> list[dict[str, Any]]:
    out = ip("-j", *args, ns=ns, check=False)
    try:
        data = json.loads(out) if out.strip() else []
    except json.JSONDecodeError:
        return []
    return data if isinstance(data, list) else []


def netns_list() -> list[str]:
    return [entry["name"] for entry in ip_json("netns", "list")]


def netns_exists(name: str) -> bool:
    return name in netns_list()


def netns_add(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def netns_delete(name: str) -> None:
    if netns_exists(name):
        ip("netns", "delete", name)


def links(ns: str | None = None) -> list[dict[str, Any]]:
    return ip_json("link", "show", ns=ns)


def link_exists(name: str, ns: str | None = None) -> bool:
    return any(link.get("ifname") == name for link in links(ns))


def has_lab_mark(ns: str) -> bool:
    """True when namespace ``ns`` holds a link carrying the lab's ifalias."""
    return any(link.get("ifalias") == LAB_ALIAS for link in links(ns))


def sysctl(ns: str, key: str, value: str) -> None:
    run(["sysctl", "-q", "-w", f"{key}={value}"], ns=ns)
