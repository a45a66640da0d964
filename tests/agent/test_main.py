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
