"""ctnetlink messages (``linux/conntrack.py``): an entry's attributes read
back as the flow they name, a malformed entry is skipped (never raised
into the sweep, never deleted), and a reply that never comes ends the
request with a timeout instead of blocking the agent."""

from __future__ import annotations

import time

import pytest

from overcast.linux import conntrack as ct
from overcast.plan.firewall_admits import Flow

TCP = Flow(7, 4, "10.0.0.2", "10.0.0.1", 6, 40000, 22)
PING6 = Flow(9, 6, "fd00::2", "fd00::1", 58, 128 << 8, 77)


def entry(f: Flow) -> bytes:
    """An entry as a dump gives it: family header, original tuple, zone
    (the layout of a delete request)."""
    return ct._delete_body(f)


def test_an_entry_reads_back_as_its_flow() -> None:
    assert ct._flow(entry(TCP)) == TCP
    assert ct._flow(entry(PING6)) == PING6


def addr_attr(version: int, value: bytes) -> bytes:
    return ct._attr(ct.CTA_IP_V4_SRC if version == 4 else ct.CTA_IP_V6_SRC, value)


@pytest.mark.parametrize("payload", [
    b"",
    entry(TCP)[:-3],  # the zone cut short
    entry(TCP).replace(addr_attr(4, bytes([10, 0, 0, 2])), addr_attr(4, b"")),  # empty address
    entry(TCP).replace(addr_attr(4, bytes([10, 0, 0, 2])), addr_attr(4, b"\x0a\x00\x00\x00\x02\x00\x00\x00")),
    entry(TCP).replace(ct._attr(ct.CTA_PROTO_NUM, b"\x06"), ct._attr(ct.CTA_PROTO_NUM, b"")),
    entry(TCP).replace(ct._attr(ct.CTA_PROTO_SRC_PORT, ct.BE16.pack(40000)),
                       ct._attr(ct.CTA_PROTO_SRC_PORT, b"\x01")),  # a one-byte port
], ids=["empty", "short zone", "empty address", "8-byte IPv4 address", "no protocol",
        "short port"])
def test_a_malformed_entry_is_skipped(payload: bytes) -> None:
    assert payload != entry(TCP)
    assert ct._flow(payload) is None


@pytest.mark.root
def test_a_reply_that_never_comes_times_out() -> None:
    sock = ct.Conntrack(timeout=0.3)
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            list(sock._acks({1 << 30}))  # an ack for a request never sent
        assert time.monotonic() - start < 3
    finally:
        sock.close()
