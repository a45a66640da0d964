"""The sans-IO DNS core: what an authoritative server answers, read back with the
core's own parser (the responder tests check the same with ``dig``)."""

from __future__ import annotations

import struct

import pytest

from overcast.services import dns

NS1 = "ns1.example.org"


def _records(hosts: list[tuple[str, list[str]]] | None = None, serial: int = 7) -> dns.Records:
    hosts = hosts if hosts is not None else [
        ("vm1.example.org", ["10.0.0.5", "fd00::5"]),
        ("vm2.sub.example.org", ["10.0.0.6"]),
        (NS1, ["10.0.0.1"]),
    ]
    zones = [dns.Zone(origin, serial, (NS1,)) for origin in
             ("example.org", dns.reverse_zone("10.0.0.0/24"), dns.reverse_zone("fd00::/64"))]
    return dns.Records(dns.host_entries(hosts), zones)


def _ask(name: str, qtype: int, records: dns.Records | None = None, *, udp_size: int | None = None,
         transport: str = "udp", upstream_allowed: bool = False) -> dns.Message:
    query = dns.build_query(name, qtype, ident=0x4242, udp_size=udp_size)
    result = dns.answer(query, records if records is not None else _records(),
                        transport=transport, upstream_allowed=upstream_allowed)
    assert result.reply is not None and not result.forward
    reply = dns.parse(result.reply)
    assert reply.id == 0x4242 and reply.flags & dns.QR
    return reply


def _values(records: tuple[dns.Record, ...], rtype: int) -> list[str]:
    return sorted(r.value for r in records if r.rtype == rtype)


def test_a_name_of_the_zone_resolves_authoritatively() -> None:
    reply = _ask("vm1.example.org", dns.A)
    assert reply.rcode == dns.NOERROR and reply.flags & dns.AA
    assert _values(reply.answers, dns.A) == ["10.0.0.5"]
    assert reply.authority == ()
    assert _values(_ask("vm1.example.org", dns.AAAA).answers, dns.AAAA) == ["fd00::5"]


def test_names_are_case_insensitive_and_the_question_keeps_its_case() -> None:
    reply = _ask("VM1.Example.ORG", dns.A)
    assert _values(reply.answers, dns.A) == ["10.0.0.5"]
    assert reply.questions[0].name == (b"VM1", b"Example", b"ORG")
    assert reply.answers[0].name == (b"VM1", b"Example", b"ORG")


def test_a_missing_name_is_nxdomain_with_the_soa() -> None:
    reply = _ask("nope.example.org", dns.A)
    assert reply.rcode == dns.NXDOMAIN and reply.flags & dns.AA
    assert reply.answers == ()
    (soa,) = reply.authority
    assert soa.rtype == dns.SOA and soa.name == (b"example", b"org")
    assert soa.value == "ns1.example.org. hostmaster.example.org. 7 3600 600 86400 30"


def test_an_existing_name_without_the_type_is_nodata() -> None:
    reply = _ask("vm2.sub.example.org", dns.AAAA)
    assert reply.rcode == dns.NOERROR and reply.answers == ()
    assert [r.rtype for r in reply.authority] == [dns.SOA]


def test_an_empty_non_terminal_is_nodata_not_nxdomain() -> None:
    """sub.example.org has no records but a name below it (RFC 8020)."""
    reply = _ask("sub.example.org", dns.A)
    assert reply.rcode == dns.NOERROR and reply.answers == ()
    assert _ask("x.sub.example.org", dns.A).rcode == dns.NXDOMAIN


def test_the_serial_is_the_zone_s() -> None:
    soa = _ask("example.org", dns.SOA, _records(serial=2026120201)).answers[0]
    assert soa.value.split()[2] == "2026120201"


def test_soa_and_ns_at_the_apex_with_the_name_server_s_address() -> None:
    reply = _ask("example.org", dns.NS)
    assert _values(reply.answers, dns.NS) == ["ns1.example.org."]
    assert _values(reply.additional, dns.A) == ["10.0.0.1"]
    assert [r.rtype for r in _ask("example.org", dns.SOA).answers] == [dns.SOA]


def test_ptr_v4_and_v6_come_from_the_same_hosts() -> None:
    v4 = _ask(dns.reverse_name("10.0.0.5"), dns.PTR)
    assert v4.flags & dns.AA and _values(v4.answers, dns.PTR) == ["vm1.example.org."]
    v6 = _ask(dns.reverse_name("fd00::5"), dns.PTR)
    assert _values(v6.answers, dns.PTR) == ["vm1.example.org."]
    assert dns.reverse_name("fd00::5").endswith(".0.0.d.f.ip6.arpa.")
    assert _ask(dns.reverse_name("10.0.0.99"), dns.PTR).rcode == dns.NXDOMAIN


def test_reverse_zones_are_cut_at_octets_and_nibbles() -> None:
    assert dns.reverse_zone("10.1.2.0/24") == "2.1.10.in-addr.arpa."
    assert dns.reverse_zone("10.1.16.0/20") == "1.10.in-addr.arpa."
    assert dns.reverse_zone("fd00:1::/64") == "0.0.0.0.0.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa."
    assert dns.reverse_zone("fd00::/62") == "0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."[2:]


def test_any_answers_every_rrset_of_the_name() -> None:
    reply = _ask("vm1.example.org", dns.ANY)
    assert sorted(r.rtype for r in reply.answers) == [dns.A, dns.AAAA]


def test_names_outside_our_zones_are_refused_or_forwarded() -> None:
    reply = _ask("www.example.com", dns.A)
    assert reply.rcode == dns.REFUSED and not reply.flags & dns.AA
    query = dns.build_query("www.example.com", dns.A)
    assert dns.answer(query, _records(), upstream_allowed=True) == dns.Answer(None, forward=True)
    # our own names are never forwarded
    inside = dns.answer(dns.build_query("nope.example.org", dns.A), _records(), upstream_allowed=True)
    assert inside.reply is not None and dns.parse(inside.reply).rcode == dns.NXDOMAIN


def test_a_client_without_records_is_refused() -> None:
    result = dns.answer(dns.build_query("vm1.example.org", dns.A), None, upstream_allowed=True)
    assert result.reply is not None and dns.parse(result.reply).rcode == dns.REFUSED


def test_zone_transfers_and_other_classes_are_refused() -> None:
    assert _ask("example.org", dns.AXFR, transport="tcp").rcode == dns.REFUSED
    query = bytearray(dns.build_query("version.bind", 16))
    query[-1] = 3  # class CH
    reply = dns.answer(bytes(query), _records()).reply
    assert reply is not None and dns.parse(reply).rcode == dns.REFUSED


def _big() -> dns.Records:
    return _records([("big.example.org", [f"10.0.0.{i}" for i in range(1, 101)])])


def test_a_big_answer_is_truncated_over_udp_without_edns() -> None:
    reply = _ask("big.example.org", dns.A, _big())
    assert reply.flags & dns.TC and reply.answers == () and len(reply.questions) == 1


def test_edns_raises_the_udp_limit_up_to_ours_only() -> None:
    forty = _records([("big.example.org", [f"10.0.0.{i}" for i in range(1, 41)])])  # ~700 octets
    assert _ask("big.example.org", dns.A, forty).flags & dns.TC
    fits = _ask("big.example.org", dns.A, forty, udp_size=1232)
    assert not fits.flags & dns.TC and len(fits.answers) == 40
    assert [r.rclass for r in fits.additional if r.rtype == dns.OPT] == [dns.OUR_UDP_SIZE]
    # 100 records (~1.6 kB): over our 1232 even when the client offers 4096
    capped = _ask("big.example.org", dns.A, _big(), udp_size=4096)
    assert capped.flags & dns.TC and capped.answers == ()
    assert [r.rtype for r in capped.additional] == [dns.OPT]
    # an advertised size under 512 counts as 512
    assert _ask("vm1.example.org", dns.A, udp_size=100).answers


def test_tcp_carries_the_whole_answer() -> None:
    reply = _ask("big.example.org", dns.A, _big(), transport="tcp")
    assert not reply.flags & dns.TC and len(reply.answers) == 100


def test_answers_are_compressed() -> None:
    query = dns.build_query("big.example.org", dns.A)
    reply = dns.answer(query, _big(), transport="tcp").reply
    assert reply is not None
    assert len(reply) == len(query) + 100 * (2 + 10 + 4)  # every owner a 2-octet pointer


def test_edns_version_other_than_zero_is_badvers() -> None:
    query = bytearray(dns.build_query("vm1.example.org", dns.A, udp_size=1232))
    query[-5] = 1  # OPT TTL: version 1
    reply = dns.answer(bytes(query), _records()).reply
    assert reply is not None and dns.parse(reply).rcode == dns.BADVERS


def test_the_do_bit_is_echoed() -> None:
    query = bytearray(dns.build_query("vm1.example.org", dns.A, udp_size=1232))
    query[-4] = 0x80  # OPT TTL: the DO flag
    reply = dns.answer(bytes(query), _records()).reply
    assert reply is not None
    (opt,) = dns.parse(reply).additional
    assert opt.ttl & 0x8000


def _formerr(query: bytes) -> None:
    result = dns.answer(query, _records())
    assert result.reply is not None
    reply = dns.parse(result.reply)
    assert reply.rcode == dns.FORMERR and reply.id == struct.unpack("!H", query[:2])[0]


def test_malformed_queries_get_formerr() -> None:
    good = dns.build_query("vm1.example.org", dns.A, ident=77)
    _formerr(good[:-3])  # question cut short
    _formerr(good + b"\x00")  # trailing garbage
    _formerr(good[:4] + b"\x00\x02" + good[6:] + good[12:])  # two questions
    _formerr(good[:4] + b"\x00\x00" + good[6:12])  # no question
    two_opts = dns.build_query("vm1.example.org", dns.A, ident=77, udp_size=1232)
    opt = two_opts[len(good):]
    _formerr(two_opts[:10] + b"\x00\x02" + two_opts[12:] + opt)
    looping = good[:12] + b"\xc0\x0c" + good[-4:]  # a pointer to itself
    _formerr(looping)


def test_other_opcodes_are_notimp() -> None:
    for opcode in (1, 2, 4, 5):  # IQUERY, STATUS, NOTIFY, UPDATE
        query = bytearray(dns.build_query("example.org", dns.SOA, ident=9))
        query[2] |= opcode << 3
        result = dns.answer(bytes(query), _records())
        assert result.reply is not None
        reply = dns.parse(result.reply)
        assert reply.rcode == dns.NOTIMP and reply.opcode == opcode


def test_an_edns_query_gets_an_opt_record_whatever_the_outcome() -> None:
    """dig warns "EDNS query returned status NOTIMP - retry with '+noedns'" when the
    reply to an EDNS query has no OPT record; BIND always sends one."""
    query = bytearray(dns.build_query("example.org", dns.SOA, ident=9, udp_size=1232))
    query[2] |= 2 << 3  # STATUS
    result = dns.answer(bytes(query), _records())
    assert result.reply is not None
    reply = dns.parse(result.reply)
    assert reply.rcode == dns.NOTIMP and [r.rtype for r in reply.additional] == [dns.OPT]
    assert len(reply.questions) == 1
    refused = _ask("www.example.com", dns.A, udp_size=1232)
    assert [r.rtype for r in refused.additional] == [dns.OPT]


def test_responses_and_scraps_get_nothing() -> None:
    reply = dns.answer(dns.build_query("vm1.example.org", dns.A), _records()).reply
    assert reply is not None
    assert dns.answer(reply, _records()) == dns.Answer(None)  # never answer an answer
    assert dns.answer(b"\x00" * 11, _records()) == dns.Answer(None)
    assert dns.answer(b"", _records()) == dns.Answer(None)


def test_servfail_echoes_the_question() -> None:
    reply = dns.servfail(dns.build_query("www.example.com", dns.A, ident=5))
    assert reply is not None
    message = dns.parse(reply)
    assert message.rcode == dns.SERVFAIL and message.id == 5 and len(message.questions) == 1
    assert dns.servfail(b"junk") is None


@pytest.mark.parametrize("data, what", [
    (b"\x00" * 5, "shorter than a header"),
    (b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab", "runs past the end|too long or cut short"),
    (b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01", "does not point backwards"),
    (b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x41\x00\x00\x01\x00\x01", "label type"),
    (b"\x00" * 12 + b"\x00" * 65530, "over 65535"),
    (b"\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x09",
     "runs past the end"),
])
def test_parse_names_what_is_wrong(data: bytes, what: str) -> None:
    with pytest.raises(dns.DnsError, match=what):
        dns.parse(data)


def test_a_name_of_over_255_octets_is_refused_by_the_parser() -> None:
    label = b"\x3f" + b"a" * 63
    data = b"\x00\x00\x00\x00\x00\x01" + b"\x00" * 6 + label * 4 + b"\x00\x00\x01\x00\x01"
    with pytest.raises(dns.DnsError, match="too long"):
        dns.parse(data)


def test_records_outside_every_zone_or_of_unknown_types_are_refused() -> None:
    zone = dns.Zone("example.org", 1, (NS1,))
    with pytest.raises(ValueError, match="in none of the zones"):
        dns.Records([("vm.example.com", "A", "10.0.0.1", 30)], [zone])
    with pytest.raises(ValueError, match="type 'MX'"):
        dns.Records([("vm.example.org", "MX", "mail", 30)], [zone])
    with pytest.raises(ValueError, match="1 to 63"):
        dns.name_from_text("a..b")


def test_an_rrset_answers_with_one_ttl_and_no_duplicates() -> None:
    zone = dns.Zone("example.org", 1, (NS1,))
    records = dns.Records([("vm.example.org", "A", "10.0.0.1", 60), ("vm.example.org", "A", "10.0.0.2", 20),
                           ("vm.example.org", "A", "10.0.0.1", 60)], [zone])
    reply = _ask("vm.example.org", dns.A, records)
    assert [(r.value, r.ttl) for r in reply.answers] == [("10.0.0.1", 20), ("10.0.0.2", 20)]


def test_a_remembered_reply_carries_each_query_s_id() -> None:
    records = _records()
    first = dns.answer(dns.build_query("vm1.example.org", dns.A, ident=1), records).reply
    second = dns.answer(dns.build_query("vm1.example.org", dns.A, ident=2), records).reply
    assert first is not None and second is not None
    assert (dns.parse(first).id, dns.parse(second).id) == (1, 2) and first[2:] == second[2:]
    # the same query over TCP, or against other records, is answered afresh
    tcp = dns.answer(dns.build_query("big.example.org", dns.A, ident=3), _big(), transport="tcp")
    assert tcp.reply is not None and not dns.parse(tcp.reply).flags & dns.TC
    other = dns.answer(dns.build_query("vm1.example.org", dns.A, ident=2), _records([])).reply
    assert other is not None and dns.parse(other).rcode == dns.NXDOMAIN


def test_the_memory_of_replies_is_bounded() -> None:
    records = _records()
    for i in range(dns.MEMO_ENTRIES + 10):
        dns.answer(dns.build_query(f"n{i}.example.org", dns.A), records)
    assert 0 < len(records.replies) <= dns.MEMO_ENTRIES


def test_network_records_serve_a_project_s_names_and_subnets() -> None:
    records = dns.network_records(
        "proj.example.", [("vm1.proj.example", ["10.1.2.3", "fd00:1::3"]),
                          ("vm2.proj.example", ["192.0.2.9"])],  # outside every subnet given
        ["10.1.2.0/24", "fd00:1::/64"], serial=42)
    assert _values(_ask("vm1.proj.example", dns.A, records).answers, dns.A) == ["10.1.2.3"]
    assert _values(_ask("vm2.proj.example", dns.A, records).answers, dns.A) == ["192.0.2.9"]
    ptr = _ask(dns.reverse_name("fd00:1::3"), dns.PTR, records)
    assert _values(ptr.answers, dns.PTR) == ["vm1.proj.example."]
    assert _ask(dns.reverse_name("10.1.2.77"), dns.PTR, records).rcode == dns.NXDOMAIN
    assert _ask(dns.reverse_name("192.0.2.9"), dns.PTR, records).rcode == dns.REFUSED
    soa = _ask("proj.example", dns.SOA, records).answers[0]
    assert soa.value.split()[:3] == ["proj.example.", "hostmaster.proj.example.", "42"]
    with pytest.raises(ValueError, match="in none of the zones"):
        dns.network_records("proj.example", [("vm.other.example", ["10.1.2.4"])], ["10.1.2.0/24"], 1)
