"""DNS (RFC 1035, EDNS(0) RFC 6891), sans-IO: parse and build messages, and the
answer of an authoritative server for a few zones held in memory.

The same core serves the internal DNS each agent answers for the ports of a
project and the authoritative server for the public zone: :func:`answer` takes
the bytes of a query and a :class:`Records` value and returns the bytes of the
reply (or None when nothing must be sent), never raising.  The socket adapter
(``overcast.linux.dns_responder``) only moves bytes and relays to an upstream
when :attr:`Answer.forward` says so.

Choices, where the RFCs leave one: a positive answer carries no authority
section (BIND's ``minimal-responses``); ANY is answered with every RRset the
name has (the zones are small; RFC 8482 allows it); zone transfers are
REFUSED; a name between a record and its zone's apex (an empty non-terminal)
exists, so it gets NODATA, not NXDOMAIN (RFC 8020).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

A, NS, SOA, PTR, AAAA, OPT, IXFR, AXFR, ANY = 1, 2, 6, 12, 28, 41, 251, 252, 255
IN = 1
TYPES = {"A": A, "NS": NS, "SOA": SOA, "PTR": PTR, "AAAA": AAAA}
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, BADVERS = 0, 1, 2, 3, 4, 5, 16
OUR_UDP_SIZE = 1232  # the DNS flag day 2020 figure: no IP fragmentation on any path
MAX_MESSAGE = 65535
QR, AA, TC, RD, RA, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0010

Name = tuple[bytes, ...]  # labels as received (case kept); compare with _key()
Entry = tuple[str, str, str, int]  # (name, type "A"|"AAAA"|"PTR", value, ttl)


class DnsError(ValueError):
    """A message that is malformed, truncated or too big; says what and where."""


# -- names ---------------------------------------------------------------------------------------

def _key(name: Name) -> Name:
    """The name for comparisons: DNS names are case-insensitive in ASCII (RFC 4343)."""
    return tuple([label.lower() for label in name])


def name_from_text(text: str) -> Name:
    """``"vm1.example.org."`` (the final dot optional; ``"."`` is the root) as labels."""
    labels = [part.encode("ascii") for part in text.rstrip(".").split(".")] if text.strip(".") else []
    if any(not 0 < len(label) < 64 for label in labels):
        raise ValueError(f"DNS name {text!r}: every label must have 1 to 63 characters")
    if sum(len(label) + 1 for label in labels) + 1 > 255:
        raise ValueError(f"DNS name {text!r} is longer than 255 octets")
    return tuple(labels)


def name_to_text(name: Name) -> str:
    """Presentation form with the final dot; odd octets as ``\\DDD``."""
    def show(label: bytes) -> str:
        return "".join(chr(b) if 0x21 <= b < 0x7F and b not in b".\\" else f"\\{b:03d}" for b in label)
    return ".".join(show(label) for label in name) + "."


def reverse_name(ip: str) -> str:
    """The PTR owner of an address: ``4.3.2.10.in-addr.arpa.`` or the ip6.arpa nibbles."""
    return ipaddress.ip_address(ip).reverse_pointer + "."


def reverse_zone(cidr: str) -> str:
    """The reverse zone that holds a network's addresses, cut at the octet (IPv4) or
    nibble (IPv6) boundary at or above its prefix (a /20 is served from its /16)."""
    net = ipaddress.ip_network(cidr, strict=False)
    step = 8 if net.version == 4 else 4
    keep = net.prefixlen // step
    labels = reverse_name(str(net.network_address)).rstrip(".").split(".")
    total = 4 if net.version == 4 else 32
    return ".".join(labels[total - keep:]) + "."


# -- parsing ---------------------------------------------------------------------------------------

class Question(NamedTuple):
    name: Name
    qtype: int
    qclass: int = IN


class Record(NamedTuple):
    """A resource record as parsed: ``value`` is the presentation form of the data
    for the types this module knows (A, AAAA, NS, PTR, SOA), else hex."""
    name: Name
    rtype: int
    rclass: int
    ttl: int
    value: str


@dataclass(frozen=True)
class Message:
    id: int
    flags: int
    questions: tuple[Question, ...]
    answers: tuple[Record, ...]
    authority: tuple[Record, ...]
    additional: tuple[Record, ...]

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def rcode(self) -> int:
        """The 4-bit rcode of the header, extended by an OPT record's upper 8 bits."""
        opt = next((r for r in self.additional if r.rtype == OPT), None)
        return (self.flags & 0xF) | (((opt.ttl >> 24) << 4) if opt is not None else 0)


def _read_name(data: bytes, pos: int) -> tuple[Name, int]:
    """The name at ``pos`` and the offset after it.  A compression pointer must point
    before the last place a pointer led to (so pointers can never loop), and the
    name may not exceed 255 octets."""
    labels: list[bytes] = []
    end, limit, length = -1, pos, 1
    while True:
        if pos >= len(data):
            raise DnsError(f"name at offset {pos} runs past the end of the message")
        size = data[pos]
        if size >= 0xC0:
            if pos + 1 >= len(data):
                raise DnsError(f"compression pointer at offset {pos} is cut short")
            target = ((size & 0x3F) << 8) | data[pos + 1]
            if target >= limit:
                raise DnsError(f"compression pointer at offset {pos} does not point backwards")
            end = pos + 2 if end < 0 else end
            pos = limit = target
            continue
        if size > 63:
            raise DnsError(f"label type {size >> 6:#x} at offset {pos} is not supported")
        if size == 0:
            return tuple(labels), (pos + 1 if end < 0 else end)
        length += size + 1
        if length > 255 or pos + 1 + size > len(data):
            raise DnsError(f"name at offset {pos} is too long or cut short")
        labels.append(data[pos + 1:pos + 1 + size])
        pos += 1 + size


def _unpack(fmt: str, data: bytes, pos: int) -> tuple[int, ...]:
    try:
        return struct.unpack_from(fmt, data, pos)
    except struct.error:
        raise DnsError(f"message cut short at offset {pos}") from None


def _rdata_text(data: bytes, rtype: int, start: int, end: int) -> str:
    """The presentation form of the data at ``start:end`` (names may point anywhere
    before them in the message)."""
    rdata = data[start:end]
    if rtype == A and len(rdata) == 4:
        return str(ipaddress.IPv4Address(rdata))
    if rtype == AAAA and len(rdata) == 16:
        return str(ipaddress.IPv6Address(rdata))
    if rtype in (NS, PTR):
        name, after = _read_name(data, start)
        if after != end:
            raise DnsError(f"{rtype} record data at offset {start} has the wrong length")
        return name_to_text(name)
    if rtype == SOA:
        mname, pos = _read_name(data, start)
        rname, pos = _read_name(data, pos)
        if pos + 20 != end:
            raise DnsError(f"SOA record data at offset {start} has the wrong length")
        numbers = " ".join(str(n) for n in _unpack("!5I", data, pos))
        return f"{name_to_text(mname)} {name_to_text(rname)} {numbers}"
    if rtype in (A, AAAA):
        raise DnsError(f"address record at offset {start} has {len(rdata)} octets")
    return rdata.hex()


def _read_record(data: bytes, pos: int) -> tuple[Record, int]:
    name, pos = _read_name(data, pos)
    rtype, rclass, ttl, size = _unpack("!HHIH", data, pos)
    start = pos + 10
    if start + size > len(data):
        raise DnsError(f"record data at offset {start} runs past the end of the message")
    return Record(name, rtype, rclass, ttl, _rdata_text(data, rtype, start, start + size)), start + size


def parse(data: bytes) -> Message:
    """The message in ``data``; anything malformed raises :class:`DnsError` (and only that)."""
    if len(data) > MAX_MESSAGE:
        raise DnsError(f"message of {len(data)} octets is over {MAX_MESSAGE}")
    if len(data) < 12:
        raise DnsError(f"message of {len(data)} octets is shorter than a header")
    ident, flags, qdcount, *counts = struct.unpack_from("!6H", data)
    pos, questions = 12, []
    for _ in range(qdcount):
        name, pos = _read_name(data, pos)
        qtype, qclass = _unpack("!HH", data, pos)
        questions.append(Question(name, qtype, qclass))
        pos += 4
    sections: list[tuple[Record, ...]] = []
    for count in counts:
        section = []
        for _ in range(count):
            record, pos = _read_record(data, pos)
            section.append(record)
        sections.append(tuple(section))
    if pos != len(data):
        raise DnsError(f"{len(data) - pos} octets of garbage after the last record")
    return Message(ident, flags, tuple(questions), *sections)


# -- building ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Soa:
    mname: Name
    rname: Name
    numbers: tuple[int, int, int, int, int]  # serial refresh retry expire minimum


class _RR(NamedTuple):
    """A record to write: ``data`` is bytes, a name (written compressed) or an SOA."""
    name: Name
    rtype: int
    ttl: int
    data: bytes | Name | _Soa
    rclass: int = IN


class _Writer:
    """Writes a message, compressing every name against the names already written."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._offsets: dict[Name, int] = {}

    def name(self, name: Name) -> None:
        low = _key(name)
        for i, label in enumerate(name):
            suffix = low[i:]
            offset = self._offsets.get(suffix)
            if offset is not None:
                self.buf += (0xC000 | offset).to_bytes(2, "big")
                return
            if len(self.buf) < 0x4000:
                self._offsets[suffix] = len(self.buf)
            self.buf.append(len(label))
            self.buf += label
        self.buf.append(0)

    def record(self, rr: _RR) -> None:
        self.name(rr.name)
        self.buf += struct.pack("!HHIH", rr.rtype, rr.rclass, rr.ttl, 0)
        start = len(self.buf)
        if isinstance(rr.data, bytes):
            self.buf += rr.data
        elif isinstance(rr.data, _Soa):
            self.name(rr.data.mname)
            self.name(rr.data.rname)
            self.buf += struct.pack("!5I", *rr.data.numbers)
        else:
            self.name(rr.data)
        struct.pack_into("!H", self.buf, start - 2, len(self.buf) - start)


@dataclass
class _Reply:
    id: int
    flags: int
    rcode: int = NOERROR
    question: Question | None = None
    answers: list[_RR] = field(default_factory=list)
    authority: list[_RR] = field(default_factory=list)
    additional: list[_RR] = field(default_factory=list)
    edns_do: bool | None = None  # None: no OPT in the reply

    def wire(self, limit: int) -> bytes:
        """The bytes; when they do not fit in ``limit``, TC set and only the question
        and the OPT record kept (the client retries over TCP)."""
        data = self._build(truncated=False)
        return data if len(data) <= limit else self._build(truncated=True)

    def _build(self, truncated: bool) -> bytes:
        sections = ([], [], []) if truncated else (self.answers, self.authority, self.additional)
        opt = self.edns_do is not None
        flags = QR | self.flags | (TC if truncated else 0) | (self.rcode & 0xF)
        out = _Writer()
        out.buf += struct.pack("!6H", self.id, flags, int(self.question is not None),
                               len(sections[0]), len(sections[1]), len(sections[2]) + opt)
        if self.question is not None:
            q = self.question
            out.name(q.name)
            out.buf += struct.pack("!HH", q.qtype, q.qclass)
        for section in sections:
            for rr in section:
                out.record(rr)
        if opt:  # the root name, OPT, our UDP size, extended rcode, version 0, DO, no options
            ttl = ((self.rcode >> 4) << 24) | (0x8000 if self.edns_do else 0)
            out.buf += struct.pack("!BHHIH", 0, OPT, OUR_UDP_SIZE, ttl, 0)
        return bytes(out.buf)


def build_query(name: str, qtype: int, *, ident: int = 0, udp_size: int | None = None,
                recursion: bool = True) -> bytes:
    """A query for ``name``/``qtype`` (class IN), with an OPT record advertising
    ``udp_size`` when given: for clients, tests and benchmarks."""
    out = _Writer()
    out.buf += struct.pack("!6H", ident, RD if recursion else 0, 1, 0, 0, int(udp_size is not None))
    out.name(name_from_text(name))
    out.buf += struct.pack("!HH", qtype, IN)
    if udp_size is not None:
        out.record(_RR((), OPT, 0, b"", rclass=udp_size))
    return bytes(out.buf)


# -- the records a server answers from ---------------------------------------------------------------

@dataclass(frozen=True)
class Zone:
    """A zone this server is authoritative for.  ``serial`` must change whenever the
    zone's records do (the caller's revision of them); ``ttl`` is the SOA's and NS's
    TTL, and with ``minimum`` bounds how long a negative answer is cached."""
    origin: str
    serial: int
    ns: tuple[str, ...]
    rname: str = ""  # default hostmaster.<origin>
    refresh: int = 3600
    retry: int = 600
    expire: int = 86400
    minimum: int = 30
    ttl: int = 30

    def soa(self) -> _RR:
        origin = name_from_text(self.origin)
        rname = name_from_text(self.rname) if self.rname else (b"hostmaster", *origin)
        mname = name_from_text(self.ns[0]) if self.ns else origin
        numbers = (self.serial & 0xFFFFFFFF, self.refresh, self.retry, self.expire, self.minimum)
        return _RR(origin, SOA, self.ttl, _Soa(mname, rname, numbers))


def host_entries(hosts: Iterable[tuple[str, Iterable[str]]], ttl: int = 30) -> list[Entry]:
    """A/AAAA for each ``(name, addresses)`` and the PTR of every address back to its
    name, from the one list (so forward and reverse never disagree)."""
    entries: list[Entry] = []
    for name, addresses in hosts:
        for address in addresses:
            version = ipaddress.ip_address(address).version
            entries.append((name, "A" if version == 4 else "AAAA", address, ttl))
            entries.append((reverse_name(address), "PTR", name, ttl))
    return entries


def network_records(domain: str, hosts: Iterable[tuple[str, Iterable[str]]],
                    cidrs: Iterable[str], serial: int, ns: tuple[str, ...] = (),
                    ttl: int = 30) -> Records:
    """The records of one set of hosts (a project's ports): the forward zone
    ``domain`` and the reverse zone of each of ``cidrs`` (their subnets), with A/AAAA
    and PTR from the one list.  A host name must lie in ``domain``; the PTR of an
    address outside every reverse zone is left out (we are not its authority)."""
    networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    served = [n.supernet(new_prefix=n.prefixlen - n.prefixlen % (8 if n.version == 4 else 4))
              for n in networks]
    forward: list[tuple[str, list[str]]] = []
    reverse: list[Entry] = []
    for name, addresses in hosts:
        forward.append((name, list(addresses)))
        for address in forward[-1][1]:
            ip = ipaddress.ip_address(address)
            if any(ip in net for net in served):
                reverse.append((reverse_name(address), "PTR", name, ttl))
    entries = [e for e in host_entries(forward, ttl) if e[1] != "PTR"] + reverse
    origins = [domain, *sorted({reverse_zone(str(n)) for n in networks})]
    return Records(entries, [Zone(origin, serial, ns, ttl=ttl) for origin in origins])


def _entry_rr(entry: Entry) -> _RR:
    name, kind, value, ttl = entry
    rtype = TYPES.get(kind.upper())
    if rtype == A:
        return _RR(name_from_text(name), A, ttl, ipaddress.IPv4Address(value).packed)
    if rtype == AAAA:
        return _RR(name_from_text(name), AAAA, ttl, ipaddress.IPv6Address(value).packed)
    if rtype == PTR:
        return _RR(name_from_text(name), PTR, ttl, name_from_text(value))
    raise ValueError(f"DNS record {entry!r}: type {kind!r} is not one of A, AAAA, PTR")


class Records:
    """What a server answers, immutable: the RRsets of ``entries`` and the SOA and NS
    at each zone's apex.  Every entry must lie in one of ``zones``; a name is served
    by the zone with the longest origin that contains it."""

    def __init__(self, entries: Iterable[Entry], zones: Iterable[Zone]) -> None:
        self._zones = {_key(name_from_text(z.origin)): z for z in zones}
        self._rrsets: dict[tuple[Name, int], list[_RR]] = {}
        self._names: set[Name] = set()
        # replies by (tcp?, forwarding?, query without its id): the value is immutable, so
        # a query's reply never changes; bounded (cleared when full)
        self.replies: dict[tuple[bool, bool, bytes], Answer] = {}
        # the UDP replies among them that are sent (no forward), without the ids, by
        # forwarding? (see remembered_udp)
        self.udp_replies: tuple[dict[bytes, bytes], dict[bytes, bytes]] = ({}, {})
        self._soas = {apex: zone.soa() for apex, zone in self._zones.items()}
        for zone in self._zones.values():
            self._add(zone.soa())
            for ns in zone.ns:
                self._add(_RR(name_from_text(zone.origin), NS, zone.ttl, name_from_text(ns)))
        for entry in entries:
            self._add(_entry_rr(entry), entry)
        self._types: dict[Name, list[int]] = {}
        self._sets: dict[tuple[Name, int], tuple[_RR, ...]] = {}
        for (key, rtype), rrset in sorted(self._rrsets.items()):
            self._types.setdefault(key, []).append(rtype)
            ttl = min(r.ttl for r in rrset)  # one TTL for an RRset (RFC 2181 5.2)
            self._sets[key, rtype] = tuple(r._replace(ttl=ttl) for r in rrset)
        del self._rrsets

    def _add(self, rr: _RR, entry: Entry | None = None) -> None:
        key = _key(rr.name)
        apex = self.zone_apex(key)
        if apex is None:
            raise ValueError(f"DNS record {entry!r} is in none of the zones {sorted(self.origins())}")
        rrset = self._rrsets.setdefault((key, rr.rtype), [])
        if all(r.data != rr.data for r in rrset):
            rrset.append(rr)
        for i in range(len(key) - len(apex) + 1):  # the name and its empty non-terminals
            self._names.add(key[i:])

    def origins(self) -> list[str]:
        return [name_to_text(apex) for apex in self._zones]

    def zone_apex(self, key: Name) -> Name | None:
        """The origin (as a key) of the closest zone that contains ``key``, if any."""
        for i in range(len(key) + 1):
            if key[i:] in self._zones:
                return key[i:]
        return None

    def negative_soa(self, apex: Name) -> _RR:
        """The SOA for a negative answer: its TTL capped by the SOA minimum (RFC 2308)."""
        zone, soa = self._zones[apex], self._soas[apex]
        return _RR(soa.name, SOA, min(zone.ttl, zone.minimum), soa.data)

    def exists(self, key: Name) -> bool:
        return key in self._names

    def rrset(self, key: Name, rtype: int) -> tuple[_RR, ...]:
        """The records of one type at ``key``, all with the smallest TTL among them."""
        return self._sets.get((key, rtype), ())

    def types_at(self, key: Name) -> list[int]:
        return self._types.get(key, [])


# -- answering -----------------------------------------------------------------------------------------

class Answer(NamedTuple):
    """``reply``: the bytes to send back (None: send nothing).  ``forward``: the name
    is outside our zones and forwarding is allowed: relay the query upstream."""
    reply: bytes | None
    forward: bool = False


MEMO_ENTRIES = 2048  # replies remembered per Records value: a few MB at worst
MEMO_QUERY, MEMO_REPLY = 512, OUR_UDP_SIZE  # the largest query and reply remembered


def answer(query: bytes, records: Records | None, *, transport: str = "udp",
           upstream_allowed: bool = False) -> Answer:
    """The reply to ``query``.  Never raises: a message whose header can be read gets
    an answer (FORMERR when the rest is malformed); a response, or less than a
    header, gets nothing.  ``records`` None: this client is not served (REFUSED).

    The reply is a function of the query's bytes after its id and of ``records``, so
    the replies of a Records value are remembered (the same names are asked again and
    again) and only the id is written into a remembered one."""
    if records is None or len(query) > MEMO_QUERY:
        return _answer(query, records, transport, upstream_allowed)
    key = (transport == "tcp", upstream_allowed, query[2:])
    found = records.replies.get(key)
    if found is None:
        found = _answer(query, records, transport, upstream_allowed)
        if found.reply is None or len(found.reply) <= MEMO_REPLY:
            if len(records.replies) >= MEMO_ENTRIES:
                records.replies.clear()
                for table in records.udp_replies:
                    table.clear()
            records.replies[key] = found
            if transport != "tcp" and found.reply is not None and not found.forward:
                records.udp_replies[upstream_allowed][key[2]] = found.reply[2:]
        return found
    if found.reply is None:
        return found
    return Answer(query[:2] + found.reply[2:], found.forward)


def remembered_udp(records: Records, upstream_allowed: bool = False) -> dict[bytes, bytes]:
    """The UDP replies :func:`answer` remembers for ``records``, as a mapping from a
    query without its id to the reply without its id (the responder's fast path:
    ``query[:2] + found``, no :class:`Answer` made).  A query it lacks goes to
    :func:`answer`.  Read only; emptied with :attr:`Records.replies`."""
    return records.udp_replies[upstream_allowed]


def _answer(query: bytes, records: Records | None, transport: str,
            upstream_allowed: bool) -> Answer:
    if len(query) < 12 or len(query) > MAX_MESSAGE or query[2] & 0x80:
        return Answer(None)
    ident, flags = struct.unpack_from("!HH", query)
    echo = (flags & (0x7800 | RD | CD)) | (RA if upstream_allowed else 0)
    unknown_opcode = (flags >> 11) & 0xF != 0
    try:
        message = parse(query)
    except DnsError:
        return Answer(_Reply(ident, echo, NOTIMP if unknown_opcode else FORMERR).wire(512))
    opts = [r for r in message.additional if r.rtype == OPT]
    if len(opts) > 1 or any(r.name for r in opts):
        return Answer(_Reply(ident, echo, FORMERR).wire(512))
    reply = _Reply(ident, echo, question=message.questions[0] if len(message.questions) == 1 else None)
    limit = MAX_MESSAGE if transport == "tcp" else 512
    if opts:  # answered with an OPT whatever the outcome, as BIND does (dig expects it)
        reply.edns_do = bool(opts[0].ttl & 0x8000)
        limit = MAX_MESSAGE if transport == "tcp" else min(max(512, opts[0].rclass), OUR_UDP_SIZE)
        if (opts[0].ttl >> 16) & 0xFF != 0:
            reply.rcode = BADVERS
            return Answer(reply.wire(limit))
    if unknown_opcode or reply.question is None:
        reply.rcode = NOTIMP if unknown_opcode else FORMERR
        return Answer(reply.wire(limit))
    return _answer_question(message, reply, limit, records, upstream_allowed)


def servfail(query: bytes) -> bytes | None:
    """SERVFAIL for ``query`` (when the upstream did not answer in time)."""
    try:
        message = parse(query)
    except DnsError:
        return None
    reply = _Reply(message.id, message.flags & (RD | CD) | RA, SERVFAIL,
                   message.questions[0] if len(message.questions) == 1 else None)
    return reply.wire(512)


def _answer_question(message: Message, reply: _Reply, limit: int, records: Records | None,
                     upstream_allowed: bool) -> Answer:
    question = message.questions[0]
    key = _key(question.name)
    apex = records.zone_apex(key) if records is not None else None
    if records is None or question.qclass != IN or question.qtype in (AXFR, IXFR):
        reply.rcode = REFUSED
    elif apex is None:
        if upstream_allowed:
            return Answer(None, forward=True)
        reply.rcode = REFUSED
    else:
        reply.flags |= AA
        _lookup(reply, records, key, apex)
    return Answer(reply.wire(limit))


def _lookup(reply: _Reply, records: Records, key: Name, apex: Name) -> None:
    """Fill ``reply`` for a name of one of our zones: the RRsets asked for, else
    NODATA or NXDOMAIN with the zone's SOA (its TTL capped by the SOA minimum)."""
    assert reply.question is not None
    qtype, qname = reply.question.qtype, reply.question.name
    types = records.types_at(key) if qtype == ANY else [qtype]
    for rtype in types:
        reply.answers += [_RR(qname, r.rtype, r.ttl, r.data) for r in records.rrset(key, rtype)]
    if reply.answers:
        if qtype == NS:
            _add_glue(reply, records)
        return
    if not records.exists(key):
        reply.rcode = NXDOMAIN
    reply.authority.append(records.negative_soa(apex))


def _add_glue(reply: _Reply, records: Records) -> None:
    """The addresses of the name servers, where we hold them."""
    for ns in reply.answers:
        if isinstance(ns.data, tuple):
            for rtype in (A, AAAA):
                reply.additional += records.rrset(_key(ns.data), rtype)
