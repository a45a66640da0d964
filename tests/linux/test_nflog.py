"""The packet log reader (``linux/nflog.py``): real packets logged by a real
nftables ``log group`` rule in a namespace of the test's own, and the
parser against what the kernel must never make it raise."""

from __future__ import annotations

import json
import queue
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from overcast.linux.devices import entered_netns
from overcast.linux.nflog import Logged, NflogReader, describe, parse

from .conftest import MakeNs, sh


@pytest.mark.root
def test_a_logged_packet_arrives_with_its_prefix_devices_and_headers(make_ns: MakeNs) -> None:
    ns = make_ns("nflog")
    got: queue.Queue[Logged] = queue.Queue()
    with entered_netns(ns):  # the socket is the namespace's
        reader = NflogReader(7, got.put)
        reader.start()
    try:
        rules = {"nftables": [
            {"add": {"table": {"family": "inet", "name": "oc_t_log"}}},
            {"add": {"chain": {"family": "inet", "table": "oc_t_log", "name": "out",
                               "type": "filter", "hook": "output", "prio": 0,
                               "policy": "accept"}}},
            {"add": {"rule": {"family": "inet", "table": "oc_t_log", "chain": "out", "expr": [
                {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "udp"}},
                {"log": {"prefix": "overcast egress DROP", "group": 7}}]}}}]}
        sh(ns, "nft", "-j", json.dumps(rules))
        sh(ns, "ip", "link", "set", "lo", "up")
        sh(ns, "python3", "-c", "import socket; s = socket.socket(socket.AF_INET, "
           "socket.SOCK_DGRAM); s.sendto(b'x', ('127.0.0.1', 9999))")
        packet = got.get(timeout=5)
        assert packet.prefix == "overcast egress DROP"
        assert packet.devices.get("outdev") == 1  # lo
        assert packet.summary().startswith("udp 127.0.0.1:") and "-> 127.0.0.1:9999" in packet.summary()
    finally:
        reader.stop()


def _attr(kind: int, value: bytes) -> bytes:
    size = 4 + len(value)
    return struct.pack("=HH", size, kind) + value + b"\0" * (-size % 4)


def _packet(*attrs: bytes) -> bytes:
    body = struct.pack("=BBH", 2, 0, 0) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), 4 << 8, 0, 0, 0) + body


def test_a_message_is_parsed_and_a_bridged_packets_ports_are_named() -> None:
    ip = bytes.fromhex("45000028000040004006" "0000" "0a06000b" "0a06000d") + struct.pack("!HH", 40000, 7030)
    buf = _packet(_attr(10, b"overcast ingress DROP\0"), _attr(7, struct.pack("!I", 42)),
                  _attr(6, struct.pack("!I", 41)), _attr(9, ip))
    (got,) = parse(buf + buf[:7])  # a torn second message is left out
    assert got.prefix == "overcast ingress DROP"
    assert got.devices == {"physoutdev": 42, "physindev": 41}
    assert got.summary() == "tcp 10.6.0.11:40000 -> 10.6.0.13:7030"
    v6 = bytes([0x60, 0, 0, 0, 0, 8, 58, 64]) + bytes(15) + b"\x01" + bytes(15) + b"\x02" + b"\x80\x00"
    assert describe(v6) == "ipv6-icmp ::1 -> ::2 type 128 code 0"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_whatever_arrives_never_raises(data: bytes) -> None:
    for got in parse(data) + parse(_packet(data[:200])):
        got.summary()
    describe(data)
