"""Fuzz the DNS core with hypothesis: from any bytes, ``parse`` raises only
DnsError, and ``answer`` never raises and returns nothing or a reply that parses,
carries the query's id and fits its transport, within a bounded time.

Inputs: random bytes; valid queries with random bytes flipped, cut or appended;
and messages built from random headers, names (with compression pointers aimed
anywhere) and records, so that the fuzzer reaches past the header."""

from __future__ import annotations

import struct
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overcast.services import dns

ZONE = dns.Zone("example.org", 3, ("ns1.example.org",))
REVERSE = dns.Zone(dns.reverse_zone("10.0.0.0/24"), 3, ("ns1.example.org",))
RECORDS = dns.Records(dns.host_entries([("vm1.example.org", ["10.0.0.5"]),
                                        ("big.example.org", [f"10.0.0.{i}" for i in range(10, 90)]),
                                        ("ns1.example.org", ["10.0.0.1"])]), [ZONE, REVERSE])
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUND = 0.05  # seconds one answer may take (they take ~0.1 ms)

labels = st.sampled_from([b"vm1", b"VM1", b"big", b"example", b"org", b"ns1", b"in-addr", b"arpa",
                          b"10", b"5", b"", b"x" * 63]) | st.binary(max_size=70)


@st.composite
def names(draw: st.DrawFn) -> bytes:
    """A wire name: labels (some of illegal lengths) ending in a root, a pointer
    anywhere, or nothing at all."""
    out = b"".join(bytes([min(len(label), draw(st.integers(0, 255)) if draw(st.booleans()) else len(label))])
                   + label for label in draw(st.lists(labels, max_size=6)))
    end = draw(st.sampled_from(["root", "pointer", "none"]))
    if end == "pointer":
        return out + struct.pack("!H", 0xC000 | draw(st.integers(0, 0x3FFF)))
    return out + (b"\x00" if end == "root" else b"")


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    counts = [draw(st.integers(0, 3)) for _ in range(4)]
    flags = draw(st.integers(0, 0xFFFF)) & ~0x8000 if draw(st.booleans()) else draw(st.integers(0, 0xFFFF))
    out = struct.pack("!6H", draw(st.integers(0, 0xFFFF)), flags, *counts)
    for _ in range(counts[0]):
        out += draw(names()) + struct.pack("!HH", draw(st.sampled_from([1, 2, 6, 12, 28, 255, 252, 16])),
                                           draw(st.sampled_from([1, 3, 255])))
    for _ in range(sum(counts[1:]) + draw(st.integers(0, 1))):
        rdata = draw(st.binary(max_size=40) | names())
        rtype = draw(st.sampled_from([1, 2, 6, 12, 28, 41, 99]))
        out += draw(names()) + struct.pack("!HHIH", rtype, draw(st.integers(0, 0xFFFF)),
                                           draw(st.integers(0, 2**32 - 1)),
                                           draw(st.sampled_from([len(rdata), 0, 300]))) + rdata
    return out


@st.composite
def mutated_queries(draw: st.DrawFn) -> bytes:
    name = draw(st.sampled_from(["vm1.example.org", "big.example.org", "5.0.0.10.in-addr.arpa",
                                 "nope.example.org", "example.org", "www.example.com"]))
    query = bytearray(dns.build_query(name, draw(st.sampled_from([1, 2, 6, 12, 28, 255])),
                                      udp_size=draw(st.none() | st.integers(0, 0xFFFF))))
    for _ in range(draw(st.integers(0, 4))):
        query[draw(st.integers(0, len(query) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(query)))
    return bytes(query[:cut]) if draw(st.booleans()) else bytes(query) + draw(st.binary(max_size=8))


anything = st.binary(max_size=600) | messages() | mutated_queries()


@FUZZ
@given(anything)
def test_parse_raises_only_dns_error(data: bytes) -> None:
    try:
        message = dns.parse(data)
    except dns.DnsError:
        return
    assert len(message.questions) == struct.unpack_from("!H", data, 4)[0]


@FUZZ
@given(anything, st.sampled_from(["udp", "tcp"]), st.booleans(), st.booleans())
def test_answer_never_raises_and_replies_well_formed(data: bytes, transport: str,
                                                      upstream: bool, served: bool) -> None:
    started = time.monotonic()
    result = dns.answer(data, RECORDS if served else None, transport=transport,
                        upstream_allowed=upstream)
    assert time.monotonic() - started < BOUND
    if result.forward:
        assert upstream and served and result.reply is None
        return
    if result.reply is None:
        assert len(data) < 12 or data[2] & 0x80
        return
    reply = dns.parse(result.reply)
    assert reply.flags & dns.QR and reply.id == struct.unpack_from("!H", data)[0]
    assert len(result.reply) <= (65535 if transport == "tcp" else dns.OUR_UDP_SIZE)
    assert len(reply.questions) <= 1


@FUZZ
@given(anything, st.integers(0, 0xFFFF))
def test_a_remembered_reply_is_the_fresh_one_with_the_new_id(data: bytes, ident: int) -> None:
    """The second asking of a query (another id) comes from the memory of replies:
    the same as a fresh answer (the memory emptied) but for the id."""
    again = ident.to_bytes(2, "big") + data[2:] if len(data) >= 2 else data
    dns.answer(data, RECORDS)
    remembered = dns.answer(again, RECORDS)
    fast = dns.remembered_udp(RECORDS).get(again[2:])
    RECORDS.replies.clear()
    fresh = dns.answer(again, RECORDS)
    assert remembered == fresh
    if fast is not None:  # the responder's fast path sends the same bytes
        assert not fresh.forward and fresh.reply == again[:2] + fast


def test_a_query_of_the_greatest_size_is_answered_in_bounded_time() -> None:
    """65535 octets of pointers and labels: the parser stops at the first bad
    name, never walks the pointers more than once."""
    chain = b"".join(struct.pack("!H", 0xC000 | (12 + 2 * i)) for i in range(32000))
    data = struct.pack("!6H", 1, 0, 1, 0, 0, 0) + b"\x01a" * 3 + chain
    data = data[:65535]
    started = time.monotonic()
    result = dns.answer(data, RECORDS)
    assert time.monotonic() - started < BOUND
    assert result.reply is not None and dns.parse(result.reply).rcode == dns.FORMERR
