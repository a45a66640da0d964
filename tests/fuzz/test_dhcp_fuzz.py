"""Fuzz the DHCPv4 core with hypothesis: from any bytes, ``parse`` raises only
DhcpError; ``decide`` never raises, and what it answers parses, is a reply to
the same transaction and fits the client's maximum message size; each within
a bounded time.  The responder's frame decoder never raises either.

Inputs: random bytes; valid client messages with bytes flipped, cut or
appended; and messages built from a real header and random options (lengths
that lie, no END, options overloaded into sname/file, long split options),
mostly from the port's own MAC so that the fuzzer reaches the decisions.  A
reply remembered for the port (another transaction's), an ACK made from the
OFFER before it, and a reply frame the responder kept for a request are each
the one made afresh."""

from __future__ import annotations

import dataclasses
import struct
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overcast.linux.dhcp_responder import Responder, decode_frame
from overcast.services import dhcp

MAC = "fa:16:3e:00:00:01"
CONFIG = dhcp.PortConfig(
    mac=MAC, ip="10.0.0.5", prefixlen=24, server_ip="10.0.0.2", server_mac="fa:16:3e:ff:ff:fe",
    router="10.0.0.1", dns_servers=("10.0.0.2", "10.0.0.3"), domain_name="example.org",
    host_name="vm1", mtu=1450, domain_search=("example.org",),
    routes=tuple((f"172.{i}.0.0/16", "10.0.0.254") for i in range(30)),
    extra=dhcp.extra_options([{"opt_name": "tftp-server", "opt_value": "t" * 200},
                              {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}]))
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUND = 0.05  # seconds one parse and decision may take (they take well under 1 ms)

CHECKED = {0, 50, 52, 53, 54, 57, 255}  # options whose presence or length parse checks
codes = st.sampled_from([0, 1, 3, 6, 12, 50, 51, 52, 53, 54, 55, 57, 61, 119, 121, 255]) | st.integers(0, 255)
plain_codes = st.integers(1, 254).filter(lambda code: code not in CHECKED)


@st.composite
def option_area(draw: st.DrawFn) -> bytes:
    """Options (in one area of four, lengths that may lie), mostly with an END."""
    honest = draw(st.integers(0, 3)) > 0
    out = b""
    for _ in range(draw(st.integers(0, 12))):
        code = draw(plain_codes if honest and draw(st.integers(0, 3)) else codes)
        value = draw(st.binary(max_size=20) | st.sampled_from([b"\x01", b"\x03", b"\x08",
                                                              b"\x0a\x00\x00\x02", b"\x0a\x00\x00\x05",
                                                              b"\x02\x40", b"\x00\x10", b"\x03"]))
        length = len(value) if honest else draw(st.sampled_from([len(value), 0, 255])
                                                   | st.integers(0, 255))
        out += bytes([code, length]) + value
    return out + (b"\xff" if draw(st.integers(0, 3)) > 0 else b"")


@st.composite
def built(draw: st.DrawFn) -> bytes:
    """A BOOTP header (mostly the port's MAC, sometimes another or a bad op/hlen),
    the magic cookie, random options and possibly overloaded sname/file."""
    mac = draw(st.sampled_from([MAC, MAC, MAC, "fa:16:3e:00:00:02"]))
    kind = draw(st.sampled_from([1, 1, 3, 3, 3, 4, 7, 8]) | st.integers(0, 10))
    ciaddr = draw(st.sampled_from(["0.0.0.0", "10.0.0.5", "10.0.0.9"]))
    server = draw(st.sampled_from([[], [(54, b"\x0a\x00\x00\x02")], [(54, b"\x0a\x00\x00\x03")]]))
    asked = draw(st.sampled_from([[], [(50, b"\x0a\x00\x00\x05")], [(50, b"\x0a\x00\x00\x09")]]))
    size = draw(st.sampled_from([[], [(57, struct.pack("!H", 576))], [(57, struct.pack("!H", 1500))]]))
    prl = [(55, draw(st.binary(max_size=30)))] if draw(st.booleans()) else []
    data = bytearray(dhcp.client_message(kind, mac, draw(st.integers(0, 2**32 - 1)), ciaddr=ciaddr,
                                         broadcast=draw(st.booleans()),
                                         options=server + asked + size + prl))
    if draw(st.integers(0, 3)) == 0:
        data[0], data[2] = draw(st.integers(0, 3)), draw(st.integers(0, 20))
    data = data[:-1] + draw(option_area())  # more options, maybe no END after them
    if draw(st.integers(0, 3)) == 0:  # overload: options in sname and file as well
        data[44:108] = draw(option_area()).ljust(64, b"\x00")[:64]
        data[108:236] = draw(option_area()).ljust(128, b"\x00")[:128]
        data = data[:-1] + bytes([52, 1, draw(st.integers(0, 4)), 255])
    return bytes(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid client message with bytes flipped, then cut or extended."""
    data = bytearray(draw(built()) if draw(st.booleans()) else dhcp.client_message(
        draw(st.sampled_from([1, 3, 4, 7, 8])), MAC, 1, options=[(50, b"\x0a\x00\x00\x05")]))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data) + draw(st.binary(max_size=64))


def long_options() -> st.SearchStrategy[bytes]:
    """Messages made large by many or long (split) options, up to past the limit."""
    return st.integers(0, 60).map(lambda n: dhcp.client_message(
        1, MAC, 3, options=[(12, b"h" * 255)] * n + [(121, b"\x20" * 255)]))


def check(data: bytes) -> None:
    start = time.perf_counter()
    try:
        message = dhcp.parse(data)
    except dhcp.DhcpError:
        return
    for config in (CONFIG, None):
        decision = dhcp.decide(message, config)
        if config is not None:  # a reply remembered from another id is the fresh one
            CONFIG.replies.clear()
            assert dhcp.decide(message, config) == decision
        if decision.reply is None:
            assert decision.dest is None
            continue
        assert decision.dest is not None
        reply = dhcp.parse(decision.reply)
        assert (reply.op, reply.xid, reply.chaddr) == (dhcp.BOOTREPLY, message.xid, message.chaddr)
        assert reply.message_type in (dhcp.OFFER, dhcp.ACK, dhcp.NAK)
        assert reply.server_id == CONFIG.server_ip
        assert len(decision.reply) <= max(message.max_size or 0, 576) - 28
    assert time.perf_counter() - start < BOUND


@FUZZ
@given(st.binary(max_size=1500))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(built())
def test_built_messages(data: bytes) -> None:
    check(data)


@FUZZ
@given(mutated())
def test_mutated_messages(data: bytes) -> None:
    check(data)


@settings(max_examples=60, deadline=None)
@given(long_options())
def test_long_and_oversized_messages(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.binary(max_size=600) | built().map(
    lambda payload: bytes(12) + b"\x08\x00\x45\x00" + struct.pack("!H", 28 + len(payload))
    + bytes(5) + b"\x11" + bytes(10) + struct.pack("!HHH", 68, 67, 8 + len(payload)) + b"\x00\x00"
    + payload))
def test_frame_decoder(frame: bytes) -> None:
    decoded = decode_frame(frame)
    if decoded is not None:
        check(decoded[1])


@st.composite
def boot(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A client's DISCOVER and its REQUEST (selecting), with the same options
    but the address asked for, in their own transactions."""
    common = (draw(st.sampled_from([[], [(55, bytes([1, 3, 6, 121]))], [(55, bytes([121, 3]))]]))
              + draw(st.sampled_from([[], [(61, b"\x01\x02\x03")]]))
              + draw(st.sampled_from([[], [(57, struct.pack("!H", 576))],
                                      [(57, struct.pack("!H", 1500))]]))
              + draw(st.lists(st.tuples(plain_codes, st.binary(max_size=12)), max_size=4)))
    asked = draw(st.sampled_from([[], [(50, b"\x0a\x00\x00\x05")], [(50, b"\x0a\x00\x00\x09")]]))
    broadcast = draw(st.booleans())
    ids = st.integers(0, 2**32 - 1)
    return (dhcp.client_message(dhcp.DISCOVER, MAC, draw(ids), broadcast=broadcast, options=common),
            dhcp.client_message(dhcp.REQUEST, MAC, draw(ids), broadcast=broadcast,
                                options=asked + common))


@FUZZ
@given(boot())
def test_an_ack_made_from_the_offer_before_it_is_the_fresh_one(messages: tuple[bytes, bytes]) -> None:
    discover, request = (dhcp.parse(m) for m in messages)
    config = dataclasses.replace(CONFIG)
    dhcp.decide(discover, config)
    assert dhcp.decide(request, config) == dhcp.decide(request, dataclasses.replace(CONFIG))


def framed(payload: bytes) -> bytes:
    return (b"\xff" * 6 + bytes.fromhex(MAC.replace(":", "")) + b"\x08\x00\x45\x00"
            + struct.pack("!H", 28 + len(payload)) + bytes(5) + b"\x11" + bytes(10)
            + struct.pack("!HHH", 68, 67, 8 + len(payload)) + b"\x00\x00" + payload)


class Sock:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)


@FUZZ
@given(built(), st.integers(0, 2**32 - 1), st.integers(0, 65535))
def test_a_reply_frame_kept_for_a_request_is_the_fresh_one(payload: bytes, xid: int, secs: int) -> None:
    config = dataclasses.replace(CONFIG)
    kept, sock = Responder(lambda ifname, mac: config if mac == MAC else None), Sock()
    kept._frame("tap0", sock, framed(payload))  # type: ignore[arg-type]
    again = bytearray(payload)
    if len(again) >= 10:
        again[4:10] = struct.pack("!IH", xid, secs)
    kept._frame("tap0", sock, framed(bytes(again)))  # type: ignore[arg-type]
    other = dataclasses.replace(CONFIG)
    new, new_sock = Responder(lambda ifname, mac: other if mac == MAC else None), Sock()
    new._frame("tap0", new_sock, framed(bytes(again)))  # type: ignore[arg-type]
    assert sock.sent[1:] == new_sock.sent
