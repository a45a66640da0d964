"""``overcast server --public-dns``: the server starts the public zone's DNS
as its own process and stops it with itself; a floating IP's name is
answered within a second of being set."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from overcast.services import dns

from .server import free_port, running_server


def ask(port: int, name: str) -> list[str]:
    """The A records of ``name`` from 127.0.0.1:``port`` ([] without an answer)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(dns.build_query(name, dns.A, ident=7), ("127.0.0.1", port))
        try:
            reply = dns.parse(s.recv(4096))
        except OSError:
            return []
    return [r.value for r in reply.answers]


def test_the_public_zone_is_served_while_the_server_runs(tmp_path: Path) -> None:
    api_port, dns_port = free_port(), free_port()
    args = ["--bind", f"127.0.0.1:{api_port}", "--store", f"sqlite:///{tmp_path}/store.db",
            "--workers", "1", "--public-dns", f"127.0.0.1:{dns_port}", "--public-zone", "pub.test"]
    with running_server(args, api_port, tmp_path / "server.log") as url:
        net = httpx.post(url + "/v2.0/networks", json={"network": {
            "name": "public", "router:external": True}}).json()["network"]
        httpx.post(url + "/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "203.0.113.0/24", "ip_version": 4}})
        fip = httpx.post(url + "/v2.0/floatingips", json={"floatingip": {
            "floating_network_id": net["id"], "dns_name": "www",
            "dns_domain": "pub.test."}}).json()["floatingip"]
        deadline = time.monotonic() + 5
        while ask(dns_port, "www.pub.test") != [fip["floating_ip_address"]]:
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.05)
    assert ask(dns_port, "www.pub.test") == []  # stopped with the server


def test_a_memory_store_cannot_be_shared_with_it(tmp_path: Path) -> None:
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "overcast.cli.main", "server", "--store",
                          "memory:", "--public-dns", "127.0.0.1:5353",
                          "--bind", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "--public-dns needs a store" in out.stderr
