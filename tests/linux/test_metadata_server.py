"""The metadata service's HTTP adapter on 127.0.0.1 (no root): it starts without
asking any resolver (HTTPServer's reverse lookup of its address would ask the
host's resolver from the router's namespace and stall the agent's pass), and
answers a port's own metadata by the request's source address."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from overcast.linux.metadata_server import MetadataServer
from overcast.services import metadata


def test_it_starts_without_a_name_lookup_and_answers_the_asking_port(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(*args: object) -> str:
        raise AssertionError(f"a name lookup at start: {args!r}")

    monkeypatch.setattr(socket, "getfqdn", no_lookup)
    monkeypatch.setattr(socket, "gethostbyaddr", no_lookup)
    port = metadata.MetaPort(ip="127.0.0.1", port_id="p1", instance_id="vm-1",
                             mac="fa:16:3e:00:00:01", local_hostname="vm1")
    server = MetadataServer("127.0.0.1", lambda source: port if source == "127.0.0.1" else None,
                            port=0)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/latest/meta-data/local-ipv4"
        with urllib.request.urlopen(url, timeout=5) as reply:
            assert reply.status == 200 and reply.read().decode().strip() == "127.0.0.1"
    finally:
        server.stop()
