"""The agent's command line refuses bad input before touching anything."""

from __future__ import annotations

import subprocess
import sys


def test_underlay_address_must_be_an_address() -> None:
    out = subprocess.run([sys.executable, "-m", "overcast.agent", "--host", "h1", "--store",
                          "memory:", "--underlay-ip", "198.18.0.300"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--underlay-ip" in out.stderr and "'198.18.0.300' is not an IP address" in out.stderr


def test_firewall_is_on_unless_switched_off() -> None:
    from overcast.agent.main import build_parser

    base = ["--host", "h1", "--store", "memory:", "--underlay-ip", "198.18.0.1"]
    assert build_parser().parse_args(base).firewall == "on"
    assert build_parser().parse_args([*base, "--firewall", "off"]).firewall == "off"
    out = subprocess.run([sys.executable, "-m", "overcast.agent", *base, "--firewall", "maybe"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--firewall" in out.stderr
