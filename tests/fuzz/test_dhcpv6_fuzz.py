"""Fuzz the DHCPv6 core with hypothesis: from any bytes, ``parse`` raises only
Dhcpv6Error; ``decide`` never raises in either address mode, and what it
answers parses, is a server message of the same transaction with our server
id; each within a bounded time.  The responder's frame decoder never raises
and its replies carry a correct UDP checksum.

Inputs: random bytes; messages built from a real header and options (the
port's client and server ids, IA_NAs with real and random addresses, lengths
that lie, nested options cut short); and those with bytes flipped, cut or
appended."""

from __future__ import annotations

import struct
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overcast.linux import dhcpv6_responder
from overcast.linux.dhcp_responder import checksum
from overcast.services import dhcpv6

MAC = "fa:16:3e:00:00:01"
CONFIG = dhcpv6.Port6Config(mac=MAC, server_mac="fa:16:3e:ff:ff:fe",
                            addresses=("2001:db8::5", "2001:db8::6"),
                            dns_servers=("2001:db8::2", "2001:db8::3"),
                            domain_search=("example.org", "cloud.example"))
STATELESS = dhcpv6.Port6Config(mac=MAC, server_mac="fa:16:3e:ff:ff:fe",
                               dns_servers=("2001:db8::2",))
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUND = 0.05  # seconds one parse and decision may take (they take well under 1 ms)

addresses = st.sampled_from(["2001:db8::5", "2001:db8::6", "2001:db8::9", "fe80::1"])
duids = st.sampled_from([dhcpv6.duid_ll(MAC), CONFIG.server_duid, dhcpv6.duid_ll("02:00:00:00:00:01")])
plain = st.tuples(st.integers(0, 90), st.binary(max_size=24))


@st.composite
def ia_option(draw: st.DrawFn) -> tuple[int, bytes]:
    """An IA_NA with real or random addresses, sometimes with junk options after."""
    code, value = dhcpv6.ia_na(draw(st.integers(0, 3)), tuple(draw(st.lists(addresses, max_size=3))),
                               draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        value += dhcpv6.encode_options(draw(st.lists(plain, max_size=3)))
    return code, value


@st.composite
def built(draw: st.DrawFn) -> bytes:
    """A client (or server) message from real options, some of them twice or cut."""
    kind = draw(st.sampled_from([1, 3, 4, 5, 6, 8, 9, 11]) | st.integers(0, 14))
    options: list[tuple[int, bytes]] = []
    if draw(st.integers(0, 4)):
        options.append((dhcpv6.CLIENTID, draw(duids)))
    if draw(st.booleans()):
        options.append((dhcpv6.SERVERID, draw(duids)))
    options += draw(st.lists(ia_option(), max_size=3))
    options += draw(st.lists(st.sampled_from([(6, b"\x00\x17\x00\x18"), (8, b"\x00\x00"),
                                              (14, b""), (13, b"\x00\x00ok")]) | plain, max_size=4))
    data = dhcpv6.build(kind, draw(st.integers(0, 0xFFFFFF)), options)
    if draw(st.integers(0, 4)) == 0:  # a length that lies at the end
        data += struct.pack("!HH", draw(st.integers(0, 30)), draw(st.integers(0, 0xFFFF)))
    return data


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(built()))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data) + draw(st.binary(max_size=64))


def check(data: bytes) -> None:
    start = time.perf_counter()
    try:
        message = dhcpv6.parse(data)
    except dhcpv6.Dhcpv6Error:
        return
    for config, stateful in ((CONFIG, True), (STATELESS, False), (CONFIG, False), (None, True)):
        decision = dhcpv6.decide(message, config, stateful)
        if decision.reply is None:
            continue
        reply = dhcpv6.parse(decision.reply)
        assert reply.msg_type in (dhcpv6.ADVERTISE, dhcpv6.REPLY)
        assert (reply.transaction_id, reply.server_id) == (message.transaction_id,
                                                            CONFIG.server_duid)
        assert reply.client_id == message.client_id
        if not stateful:
            assert all(a.valid == 0 for ia in reply.ia_na for a in ia.addresses)
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


def udp6_frame(payload: bytes, length: int | None = None) -> bytes:
    udp = struct.pack("!HHHH", 546, 547, 8 + len(payload) if length is None else length, 0)
    ip6 = struct.pack("!IHBB", 6 << 28, len(udp) + len(payload), 17, 1)
    ip6 += bytes.fromhex("fe80" + "00" * 13 + "01") + bytes.fromhex("ff02" + "00" * 11 + "010002")
    return b"\x33\x33\x00\x01\x00\x02" + bytes.fromhex(MAC.replace(":", "")) + b"\x86\xdd" + ip6 + udp + payload


@FUZZ
@given(st.binary(max_size=600) | built().map(udp6_frame) | st.tuples(built(), st.integers(0, 0xFFFF))
       .map(lambda pair: udp6_frame(*pair)) | mutated().map(udp6_frame).map(lambda f: f[:len(f) // 2]))
def test_frame_decoder(frame: bytes) -> None:
    decoded = dhcpv6_responder.decode_frame(frame)
    if decoded is None:
        return
    assert decoded.src_mac == ":".join(f"{b:02x}" for b in frame[6:12])
    check(decoded.payload)
    reply = dhcpv6_responder.encode_frame(CONFIG.server_mac, decoded, decoded.payload)
    pseudo = reply[22:54] + struct.pack("!I3xB", len(reply) - 54, 17)
    assert checksum(pseudo + reply[54:]) == 0  # the checksum we wrote sums to zero
