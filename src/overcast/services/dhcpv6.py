"""DHCPv6 (RFC 8415), sans-IO: parse a client's message, decide the answer
for one port, encode the reply.  No sockets, no clocks.

As for DHCPv4 (:mod:`overcast.services.dhcp`), a port's addresses are the
binding: there is no lease database, so :func:`decide` is a pure function of
the message, the port's :class:`Port6Config` (``None``: the port is unknown
here, nothing is answered) and the subnet's mode, Neutron's
``ipv6_address_mode``:

- ``dhcpv6-stateful`` (``stateful=True``): the port's addresses are given in
  the first IA_NA of a SOLICIT (ADVERTISE, or REPLY with rapid commit) or
  REQUEST; a RENEW or REBIND gets them too, and the addresses it names that
  are no longer the port's back with lifetimes 0 (RFC 8415 18.3.4), so a
  client whose port's address changed drops the old one and takes the new
  one in that exchange (a NoBinding there made ISC dhclient and dhcpcd start
  over with a SOLICIT, and dhcpcd then kept the old address on the NIC); a
  CONFIRM of an address that is not the port's gets NotOnLink (the client
  starts over with a SOLICIT).  The port's own addresses are the only ones
  "appropriate for the link" here: port security drops anything the VM
  sends from any other.
- ``dhcpv6-stateless``: addresses come from SLAAC, only INFORMATION-REQUEST
  is what the client should send.  A SOLICIT is answered with an ADVERTISE
  carrying only status NoAddrsAvail and SOL_MAX_RT (RFC 8415 18.3.1's MUST
  for a server that will assign nothing; silence would leave the client
  soliciting at its fastest, the ADVERTISE tells it why and slows it to
  once an hour); a REQUEST gets each IA back with NoAddrsAvail, a RENEW or
  REBIND with NoBinding, a CONFIRM NotOnLink.

INFORMATION-REQUEST is answered in both modes with the DNS servers (option
23) and the domain search list (24).  RELEASE and DECLINE get status Success
and are reported as an event.  A message naming a server id that is not ours
(the client chose another server) is ignored, as RFC 8415 section 16 says.

Every malformed, truncated or oversized input raises :class:`Dhcpv6Error`
(a ``ValueError``) saying what was wrong, and nothing else.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass

(SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE, DECLINE, RECONFIGURE,
 INFORMATION_REQUEST, RELAY_FORW, RELAY_REPL) = range(1, 14)
TYPE_NAMES = {SOLICIT: "solicit", ADVERTISE: "advertise", REQUEST: "request", CONFIRM: "confirm",
              RENEW: "renew", REBIND: "rebind", REPLY: "reply", RELEASE: "release",
              DECLINE: "decline", RECONFIGURE: "reconfigure",
              INFORMATION_REQUEST: "information-request", RELAY_FORW: "relay-forw",
              RELAY_REPL: "relay-repl"}

# option codes (RFC 8415 section 21; 23 and 24: RFC 3646)
CLIENTID, SERVERID, IA_NA, IA_TA, IAADDR, ORO, PREFERENCE, ELAPSED_TIME = 1, 2, 3, 4, 5, 6, 7, 8
STATUS_CODE, RAPID_COMMIT, DNS_SERVERS, DOMAIN_LIST, SOL_MAX_RT = 13, 14, 23, 24, 82
# status codes (RFC 8415 21.13)
SUCCESS, UNSPEC_FAIL, NO_ADDRS_AVAIL, NO_BINDING, NOT_ON_LINK, USE_MULTICAST = range(6)

MAX_MESSAGE = 4096  # longer than any unfragmented UDP payload on a VM NIC; longer is refused
MAX_DUID = 130  # RFC 8415 11.1, with its type code
MIN_DUID = 3  # a type code and at least one byte of identifier
INFINITY = 0xFFFFFFFF
STATELESS_SOL_MAX_RT = 3600  # seconds: how often a client that solicits anyway may try
_SINGLE = {CLIENTID: "client id", SERVERID: "server id", ORO: "option request",
           ELAPSED_TIME: "elapsed time", RAPID_COMMIT: "rapid commit", PREFERENCE: "preference"}
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_HEADER = struct.Struct("!I")  # message type (8 bits) and transaction id (24 bits)
_IA_HEAD = struct.Struct("!III")
_IAADDR_HEAD = struct.Struct("!16sII")


class Dhcpv6Error(ValueError):
    """A DHCPv6 message, option or port configuration that cannot be parsed
    or encoded; says why."""


@dataclass(frozen=True)
class IaAddress:
    """An IA Address option (RFC 8415 21.6): ``address`` in compressed form."""

    address: str
    preferred: int
    valid: int


@dataclass(frozen=True)
class IaNa:
    """An Identity Association for Non-temporary Addresses (RFC 8415 21.4)."""

    iaid: int
    t1: int
    t2: int
    addresses: tuple[IaAddress, ...] = ()
    status: int | None = None  # the IA's own status code, when it has one


@dataclass(frozen=True)
class Message:
    """A parsed client/server message (relay messages are refused by parse).
    ``options`` keeps every top-level option in wire order; the fields below
    are the ones decoded from it."""

    msg_type: int
    transaction_id: int
    options: tuple[tuple[int, bytes], ...]
    client_id: bytes | None = None  # the client's DUID, opaque
    server_id: bytes | None = None
    ia_na: tuple[IaNa, ...] = ()
    oro: tuple[int, ...] = ()
    elapsed_time: int | None = None  # hundredths of a second
    rapid_commit: bool = False
    status: int | None = None  # the top-level status code (in replies)

    def option(self, code: int) -> bytes | None:
        return next((value for c, value in self.options if c == code), None)

    @property
    def kind(self) -> str:
        return TYPE_NAMES.get(self.msg_type, f"type {self.msg_type}")

    def addresses(self) -> tuple[str, ...]:
        """Every address in the message's IA_NAs, in order."""
        return tuple(a.address for ia in self.ia_na for a in ia.addresses)


# ---------------------------------------------------------------- parsing

def parse(data: bytes) -> Message:
    """The message in ``data`` (a UDP payload), checked: header, every option
    inside the buffer, the lengths of the options read here (and of the
    options inside IA_NA and IA Address), no repeated singleton option and
    no two IA_NA with one IAID."""
    if len(data) > MAX_MESSAGE:
        raise Dhcpv6Error(f"DHCPv6 message of {len(data)} bytes is longer than {MAX_MESSAGE}")
    if len(data) < _HEADER.size:
        raise Dhcpv6Error(f"DHCPv6 message of {len(data)} bytes is shorter than its 4-byte header")
    (head,) = _HEADER.unpack_from(data)
    msg_type, xid = head >> 24, head & 0xFFFFFF
    if msg_type in (RELAY_FORW, RELAY_REPL):
        raise Dhcpv6Error(f"{TYPE_NAMES[msg_type]} message: relayed messages are not served "
                          "(only clients on the port's own link are)")
    if not 0 < msg_type < RELAY_FORW:
        raise Dhcpv6Error(f"message type {msg_type} is not a DHCPv6 message type")
    options = options_of(data[_HEADER.size:], "message")
    fields = _top_level(options)
    return Message(msg_type, xid, tuple(options), **fields)  # type: ignore[arg-type]


def options_of(area: bytes, where: str) -> list[tuple[int, bytes]]:
    """The (code, value) options filling ``area`` exactly."""
    found: list[tuple[int, bytes]] = []
    i = 0
    while i < len(area):
        if i + 4 > len(area):
            raise Dhcpv6Error(f"an option header in the {where} is cut off after "
                              f"{len(area) - i} bytes")
        code, length = struct.unpack_from("!HH", area, i)
        value = area[i + 4:i + 4 + length]
        if len(value) != length:
            raise Dhcpv6Error(f"option {code} in the {where} claims {length} bytes, "
                              f"{len(value)} are left")
        found.append((code, value))
        i += 4 + length
    return found


def _top_level(options: list[tuple[int, bytes]]) -> dict[str, object]:
    """The decoded fields of :class:`Message` from its top-level options."""
    seen: set[int] = set()
    fields: dict[str, object] = {}
    ias: list[IaNa] = []
    for code, value in options:
        if code in _SINGLE:
            if code in seen:
                raise Dhcpv6Error(f"{_SINGLE[code]} option ({code}) appears twice")
            seen.add(code)
        if code in (CLIENTID, SERVERID):
            fields["client_id" if code == CLIENTID else "server_id"] = _duid(code, value)
        elif code == IA_NA:
            ias.append(_ia_na(value))
        elif code == ORO:
            fields["oro"] = _oro(value)
        elif code == ELAPSED_TIME:
            fields["elapsed_time"] = _exact(code, value, 2, "!H")
        elif code == RAPID_COMMIT:
            _length(code, value, 0)
            fields["rapid_commit"] = True
        elif code == STATUS_CODE:
            fields["status"] = _status(value)
    if len({ia.iaid for ia in ias}) != len(ias):
        raise Dhcpv6Error("two IA_NA options have the same IAID")
    fields["ia_na"] = tuple(ias)
    return fields


def _length(code: int, value: bytes, length: int) -> None:
    if len(value) != length:
        raise Dhcpv6Error(f"option {code} has {len(value)} bytes, must have {length}")


def _exact(code: int, value: bytes, length: int, fmt: str) -> int:
    _length(code, value, length)
    number: int = struct.unpack(fmt, value)[0]
    return number


def _duid(code: int, value: bytes) -> bytes:
    if not MIN_DUID <= len(value) <= MAX_DUID:
        raise Dhcpv6Error(f"{_SINGLE[code]} (option {code}) is a DUID of {len(value)} bytes, "
                          f"not {MIN_DUID} to {MAX_DUID}")
    return value


def _oro(value: bytes) -> tuple[int, ...]:
    if len(value) % 2:
        raise Dhcpv6Error(f"option request (6) of {len(value)} bytes is not a list of 2-byte codes")
    return struct.unpack(f"!{len(value) // 2}H", value)


def _status(value: bytes) -> int:
    if len(value) < 2:
        raise Dhcpv6Error(f"status code option (13) of {len(value)} bytes has no 2-byte code")
    code: int = struct.unpack_from("!H", value)[0]
    return code


def _ia_na(value: bytes) -> IaNa:
    """RFC 8415 21.4: IAID, T1, T2, then options (IA Address, status)."""
    if len(value) < _IA_HEAD.size:
        raise Dhcpv6Error(f"IA_NA (3) of {len(value)} bytes is shorter than its 12-byte header")
    iaid, t1, t2 = _IA_HEAD.unpack_from(value)
    addresses, status = [], None
    for code, inner in options_of(value[_IA_HEAD.size:], f"IA_NA {iaid}"):
        if code == IAADDR:
            addresses.append(_iaaddr(iaid, inner))
        elif code == STATUS_CODE:
            status = _status(inner)
    return IaNa(iaid, t1, t2, tuple(addresses), status)


def _iaaddr(iaid: int, value: bytes) -> IaAddress:
    """RFC 8415 21.6: address, preferred and valid lifetimes, then options
    (only checked to fill the option exactly)."""
    if len(value) < _IAADDR_HEAD.size:
        raise Dhcpv6Error(f"IA address (5) in IA_NA {iaid} has {len(value)} bytes, "
                          f"under its {_IAADDR_HEAD.size}")
    packed, preferred, valid = _IAADDR_HEAD.unpack_from(value)
    options_of(value[_IAADDR_HEAD.size:], f"IA address of IA_NA {iaid}")
    return IaAddress(str(ipaddress.IPv6Address(packed)), preferred, valid)


# ---------------------------------------------------------------- port config

@dataclass(frozen=True)
class Port6Config:
    """What one port is given by DHCPv6.  ``addresses``: the port's IPv6
    fixed IPs on subnets in dhcpv6-stateful mode (empty when stateless);
    ``server_mac``: the DHCP server's MAC, from which its DUID (DUID-LL) and
    link-local address come.  ``t1``/``t2`` 0 leave them to the client."""

    mac: str
    server_mac: str
    addresses: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()
    domain_search: tuple[str, ...] = ()
    preferred_lifetime: int = 14400
    valid_lifetime: int = 86400
    t1: int = 7200
    t2: int = 11520

    def __post_init__(self) -> None:
        """Refuse at once what could not be encoded later, in a reply."""
        for mac in (self.mac, self.server_mac):
            if not _MAC.match(mac):
                raise Dhcpv6Error(f"DHCPv6 config: {mac!r} is not a MAC address")
        object.__setattr__(self, "mac", self.mac.lower())
        object.__setattr__(self, "server_mac", self.server_mac.lower())
        for name in ("addresses", "dns_servers"):
            object.__setattr__(self, name, tuple(
                _ipv6(self.mac, name, a) for a in getattr(self, name)))
        domain_list(self.domain_search)  # raises on a bad name
        if not 0 < self.preferred_lifetime <= self.valid_lifetime <= INFINITY:
            raise Dhcpv6Error(f"DHCPv6 config of port {self.mac}: lifetimes preferred "
                              f"{self.preferred_lifetime}, valid {self.valid_lifetime}")
        if not 0 <= self.t1 <= self.t2 <= self.preferred_lifetime:
            raise Dhcpv6Error(f"DHCPv6 config of port {self.mac}: T1 {self.t1} and T2 {self.t2} "
                              f"must be 0 <= T1 <= T2 <= preferred lifetime")

    @property
    def server_duid(self) -> bytes:
        """DUID-LL (RFC 8415 11.4): type 3, hardware type 1 (Ethernet), MAC."""
        return struct.pack("!HH", 3, 1) + _mac(self.server_mac)


def _ipv6(mac: str, name: str, text: str) -> str:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError as exc:
        raise Dhcpv6Error(f"DHCPv6 config of port {mac}: {name}: {exc}") from None


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def domain_list(domains: tuple[str, ...]) -> bytes:
    """Option 24's value: the names in RFC 1035 wire form (no compression)."""
    out = b""
    for domain in domains:
        for label in domain.strip(".").split("."):
            raw = label.encode("ascii", "replace")
            if not 0 < len(raw) < 64:
                raise Dhcpv6Error(f"domain {domain!r}: label {label!r} is empty or over 63 bytes")
            out += bytes([len(raw)]) + raw
        out += b"\x00"
    return out


# ---------------------------------------------------------------- decisions

@dataclass(frozen=True)
class Decision:
    """The answer to one message: ``reply`` (a UDP payload, for the client's
    link-local address, port 546) or None; ``event`` names what the client
    did ("solicit", "request", "release", ...) when the message was for us."""

    reply: bytes | None = None
    event: str | None = None


SILENCE = Decision()
# RFC 8415 section 16: what each message must (True) or must not (False) carry
_NEEDS_SERVER_ID = {SOLICIT: False, REQUEST: True, CONFIRM: False, RENEW: True, REBIND: False,
                    RELEASE: True, DECLINE: True}


def decide(message: Message, config: Port6Config | None, stateful: bool) -> Decision:
    """The reply to ``message`` from a client of the port ``config``
    (see the module's docstring for what each message gets)."""
    if config is None or not _valid_for(message, config):
        return SILENCE
    kind = message.msg_type
    if kind == INFORMATION_REQUEST:
        return _reply(message, config, REPLY, _config_options(config))
    if kind in (RELEASE, DECLINE):
        return _reply(message, config, REPLY, [_status_option(SUCCESS, "")])
    if not stateful:
        return _stateless(message, config)
    return _stateful(message, config)


def _stateful(message: Message, config: Port6Config) -> Decision:
    """dhcpv6-stateful: the port's addresses (the module's docstring)."""
    kind = message.msg_type
    if kind == SOLICIT:
        options = _assigned(message, config) + _config_options(config)
        if message.rapid_commit:
            return _reply(message, config, REPLY, [(RAPID_COMMIT, b""), *options])
        # preference 255: the client need not wait for other servers' advertisements
        return _reply(message, config, ADVERTISE, [(PREFERENCE, b"\xff"), *options])
    if kind == REQUEST:
        return _reply(message, config, REPLY, _assigned(message, config) + _config_options(config))
    if kind in (RENEW, REBIND):
        return _reply(message, config, REPLY, _renewed(message, config) + _config_options(config))
    return _confirm(message, config)


def _valid_for(message: Message, config: Port6Config) -> bool:
    """RFC 8415 section 16: a client message with a client id, a server id
    where one is required and none where it is forbidden, and ours when
    there is one; an INFORMATION-REQUEST without IAs."""
    kind = message.msg_type
    if message.server_id is not None and message.server_id != config.server_duid:
        return False  # for another server
    if kind == INFORMATION_REQUEST:
        return not message.ia_na and message.option(IA_TA) is None
    if kind not in _NEEDS_SERVER_ID or message.client_id is None:
        return False  # a server's message, or no client id
    return (message.server_id is not None) == _NEEDS_SERVER_ID[kind]


def _stateless(message: Message, config: Port6Config) -> Decision:
    """dhcpv6-stateless: no address is ever given (the module's docstring)."""
    why = "addresses on this network come from SLAAC (ipv6_address_mode dhcpv6-stateless)"
    kind = message.msg_type
    if kind == SOLICIT:
        options = [_status_option(NO_ADDRS_AVAIL, why),
                   (SOL_MAX_RT, struct.pack("!I", STATELESS_SOL_MAX_RT))]
        return _reply(message, config, ADVERTISE, options)
    if kind == CONFIRM:
        return _reply(message, config, REPLY, [_status_option(NOT_ON_LINK, why)])
    status = NO_ADDRS_AVAIL if kind == REQUEST else NO_BINDING
    options = [_ia_option(ia.iaid, 0, 0, [], (status, why)) for ia in message.ia_na]
    return _reply(message, config, REPLY, options + _config_options(config))


def _assigned(message: Message, config: Port6Config) -> list[tuple[int, bytes]]:
    """The port's addresses in the client's first IA_NA; every other IA_NA
    (and the first, when the port has no address) gets NoAddrsAvail."""
    out = []
    for n, ia in enumerate(message.ia_na):
        if n == 0 and config.addresses:
            out.append(_ia_option(ia.iaid, config.t1, config.t2, _ours(config), None))
        else:
            out.append(_ia_option(ia.iaid, 0, 0, [], (NO_ADDRS_AVAIL, "no more addresses for "
                                                      "this port: all are in another IA")))
    return out


def _renewed(message: Message, config: Port6Config) -> list[tuple[int, bytes]]:
    """RENEW/REBIND (RFC 8415 18.3.4, 18.3.5): the first IA_NA gets the
    port's addresses, and every IA its addresses that are no longer the
    port's with lifetimes 0, so a client whose port's address changed drops
    the old one and takes the new one in this one exchange.  An IA left with
    nothing (a later IA holding none, or a port without addresses) gets
    NoBinding, after which the client asks anew."""
    out = []
    for n, ia in enumerate(message.ia_na):
        stale = [(a, 0, 0) for a in dict.fromkeys(a.address for a in ia.addresses)
                 if a not in config.addresses]
        if n == 0 and config.addresses:
            out.append(_ia_option(ia.iaid, config.t1, config.t2, _ours(config) + stale, None))
        elif stale:
            out.append(_ia_option(ia.iaid, 0, 0, stale, None))
        else:
            out.append(_ia_option(ia.iaid, 0, 0, [], (NO_BINDING, "no binding for this IA "
                                                      "(the port's addresses are in the first)")))
    return out


def _confirm(message: Message, config: Port6Config) -> Decision:
    """CONFIRM (RFC 8415 18.3.3): no addresses, no answer; all of them the
    port's: Success; any other: NotOnLink."""
    addresses = message.addresses()
    if not addresses:
        return SILENCE
    if set(addresses) <= set(config.addresses):
        return _reply(message, config, REPLY, [_status_option(SUCCESS, "")])
    return _reply(message, config, REPLY, [_status_option(
        NOT_ON_LINK, "not on link: the port's addresses have changed")])


def _ours(config: Port6Config) -> list[tuple[str, int, int]]:
    return [(a, config.preferred_lifetime, config.valid_lifetime) for a in config.addresses]


def _config_options(config: Port6Config) -> list[tuple[int, bytes]]:
    """The other configuration: DNS servers (23) and domain list (24)."""
    out = []
    if config.dns_servers:
        out.append((DNS_SERVERS, b"".join(ipaddress.IPv6Address(a).packed
                                          for a in config.dns_servers)))
    if config.domain_search:
        out.append((DOMAIN_LIST, domain_list(config.domain_search)))
    return out


def _reply(message: Message, config: Port6Config, kind: int,
           options: list[tuple[int, bytes]]) -> Decision:
    head = [(SERVERID, config.server_duid)]
    if message.client_id is not None:
        head.append((CLIENTID, message.client_id))
    return Decision(build(kind, message.transaction_id, head + options), message.kind)


def _status_option(status: int, text: str) -> tuple[int, bytes]:
    return STATUS_CODE, struct.pack("!H", status) + text.encode()


def _ia_option(iaid: int, t1: int, t2: int, addresses: list[tuple[str, int, int]],
               status: tuple[int, str] | None) -> tuple[int, bytes]:
    inner = [(IAADDR, ipaddress.IPv6Address(a).packed + struct.pack("!II", p, v))
             for a, p, v in addresses]
    if status is not None:
        inner.append(_status_option(*status))
    return IA_NA, _IA_HEAD.pack(iaid, t1, t2) + encode_options(inner)


# ---------------------------------------------------------------- encoding

def encode_options(options: list[tuple[int, bytes]]) -> bytes:
    out = b""
    for code, value in options:
        if len(value) > 0xFFFF:
            raise Dhcpv6Error(f"option {code} of {len(value)} bytes does not fit its length field")
        out += struct.pack("!HH", code, len(value)) + value
    return out


def build(kind: int, transaction_id: int, options: list[tuple[int, bytes]]) -> bytes:
    """A message of type ``kind`` with ``options`` in this order."""
    if not 0 <= kind < 256 or not 0 <= transaction_id <= 0xFFFFFF:
        raise Dhcpv6Error(f"message type {kind} or transaction id {transaction_id} out of range")
    return _HEADER.pack(kind << 24 | transaction_id) + encode_options(options)


def ia_na(iaid: int, addresses: tuple[str, ...] = (), t1: int = 0, t2: int = 0) -> tuple[int, bytes]:
    """An IA_NA option as a client sends it (for tests and benchmarks)."""
    return _ia_option(iaid, t1, t2, [(a, 0, 0) for a in addresses], None)


def duid_ll(mac: str) -> bytes:
    """A DUID-LL for ``mac`` (for tests: a client's DUID)."""
    return struct.pack("!HH", 3, 1) + _mac(mac)
