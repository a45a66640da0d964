"""The public zone's authoritative DNS (``overcast public-dns``, in the lab's
internet namespace): a floating IP's dns_name resolves from the internet
within a second of being set, with its PTR, SOA and NS as from any
authoritative server, over UDP and TCP; a removed name is NXDOMAIN within
a second, and the SOA serial moves with the zone."""

from __future__ import annotations

import time
from typing import Any

import pytest

from overcast.lab import fabric, probe
from overcast.lab.topology import EXTERNAL_GW, PUBLIC_ZONE

from .conftest import Lab
from .test_external import external

pytestmark = pytest.mark.root


def dig(*args: str) -> str:
    out = probe.in_ns(fabric.EXT_NS, ["dig", "+time=1", "+tries=1", f"@{EXTERNAL_GW}", *args])
    assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def short(*args: str) -> list[str]:
    return dig("+short", *args).split()


def status(*args: str) -> str:
    return dig(*args).split("status: ", 1)[1].split(",", 1)[0]


def serial() -> int:
    return int(short("SOA", PUBLIC_ZONE)[2])


def until(check: Any, what: str, timeout: float = 1.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout:g}s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_floating_ips_name_is_published_and_withdrawn_within_a_second(lab: Lab) -> None:
    public = lab.tenant("external", external)["network"]
    before = serial()
    assert status("www.cloud.example") == "NXDOMAIN"
    fip = lab.api.call("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public["id"], "dns_name": "www",
        "dns_domain": f"{PUBLIC_ZONE}."}})["floatingip"]
    address = fip["floating_ip_address"]
    try:
        until(lambda: short(f"www.{PUBLIC_ZONE}") == [address], "the name")
        assert short("+tcp", f"www.{PUBLIC_ZONE}") == [address]
        assert short("-x", address) == [f"www.{PUBLIC_ZONE}."]
        assert status(f"www.{PUBLIC_ZONE}", "AAAA") == "NOERROR"  # NODATA
        assert "flags: qr aa" in dig(f"www.{PUBLIC_ZONE}")  # authoritative
        assert short("NS", PUBLIC_ZONE) == [f"ns1.{PUBLIC_ZONE}."]
        assert short(f"ns1.{PUBLIC_ZONE}") == [EXTERNAL_GW]
        published = serial()
        assert published > before
    finally:
        lab.api.call("DELETE", f"/v2.0/floatingips/{fip['id']}")
    until(lambda: status(f"www.{PUBLIC_ZONE}") == "NXDOMAIN", "the withdrawal")
    assert serial() > published
    assert status("www.example.org") == "REFUSED"  # not our zone
