"""DHCPv4 (RFC 2131, options RFC 2132), sans-IO: parse a client's message,
decide the answer for one port, encode the reply.  No sockets, no clocks.

The agent answers only for its own ports, and a port's address is the lease:
there is no lease database, so :func:`decide` is a pure function of the
message and the port's :class:`PortConfig` (``None`` when the port is
unknown or its subnet has DHCP disabled: then nothing is answered).  A
client asking for an address that is not the port's current one is NAKed,
so a port whose IP changed is refused on renewal and offered the new one.

Every malformed, truncated or oversized input raises :class:`DhcpError`
(a ``ValueError``) with what was wrong, and nothing else.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
TYPE_NAMES = {DISCOVER: "discover", OFFER: "offer", REQUEST: "request", DECLINE: "decline",
              ACK: "ack", NAK: "nak", RELEASE: "release", INFORM: "inform"}
BOOTREQUEST, BOOTREPLY = 1, 2
MAGIC = b"\x63\x82\x53\x63"
HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")  # up to the magic cookie
XID = struct.Struct("!I")  # the transaction id, at offset 4
FIXED = HEADER.size + len(MAGIC)  # 240
MAX_MESSAGE = 4096  # larger than any frame on a VM NIC we answer; longer input is refused
MIN_MAX_SIZE = 576  # RFC 2132 9.10: the least a client may announce (an IP datagram)
MIN_BOOTP = 300  # the smallest BOOTP message
IP_UDP = 28  # IPv4 + UDP headers, counted in the client's maximum size
BROADCAST_FLAG = 0x8000
ZERO = "0.0.0.0"
BROADCAST = "255.255.255.255"
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"

# option codes this module reads or writes itself
PAD, SUBNET_MASK, ROUTER, DNS, HOST_NAME, DOMAIN_NAME, MTU, BROADCAST_ADDR = 0, 1, 3, 6, 12, 15, 26, 28
REQUESTED_IP, LEASE_TIME, OVERLOAD, MESSAGE_TYPE, SERVER_ID = 50, 51, 52, 53, 54
PARAMETERS, MESSAGE, MAX_SIZE, T1, T2, CLIENT_ID = 55, 56, 57, 58, 59, 61
RAPID_COMMIT, BOOTFILE, DOMAIN_SEARCH, CLASSLESS_ROUTES, END = 80, 67, 119, 121, 255
# options a client may not set through extra_dhcp_opts: they carry the protocol itself
RESERVED = frozenset({PAD, REQUESTED_IP, LEASE_TIME, OVERLOAD, MESSAGE_TYPE, SERVER_ID,
                      PARAMETERS, MESSAGE, MAX_SIZE, T1, T2, CLIENT_ID, RAPID_COMMIT, END})
_FIXED_LENGTH = {MESSAGE_TYPE: 1, REQUESTED_IP: 4, SERVER_ID: 4, MAX_SIZE: 2, OVERLOAD: 1}


class DhcpError(ValueError):
    """A DHCP message or option that cannot be parsed or encoded; says why."""


@dataclass(frozen=True)
class Message:
    """A parsed BOOTP/DHCP message.  ``options`` keeps the order of the wire
    (an option split over several instances, RFC 3396, is joined)."""

    op: int
    htype: int
    hlen: int
    xid: int
    secs: int
    flags: int
    ciaddr: str
    yiaddr: str
    siaddr: str
    giaddr: str
    chaddr: bytes  # the hlen significant bytes
    options: tuple[tuple[int, bytes], ...]

    # read several times per message (decide, build, destination, the
    # responder): made once, from the options (unique: they are joined)
    mac: str = field(init=False, repr=False, compare=False)
    message_type: int | None = field(init=False, repr=False, compare=False)
    _by_code: dict[int, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_code = dict(self.options)
        kind = by_code.get(MESSAGE_TYPE)
        object.__setattr__(self, "_by_code", by_code)
        object.__setattr__(self, "mac", self.chaddr.hex(":"))
        object.__setattr__(self, "message_type", kind[0] if kind else None)

    def option(self, code: int) -> bytes | None:
        return self._by_code.get(code)

    @property
    def requested_ip(self) -> str | None:
        return _address_option(self._by_code.get(REQUESTED_IP))

    @property
    def server_id(self) -> str | None:
        return _address_option(self._by_code.get(SERVER_ID))

    @property
    def client_id(self) -> bytes | None:
        return self._by_code.get(CLIENT_ID)

    @property
    def parameters(self) -> tuple[int, ...]:
        return tuple(self._by_code.get(PARAMETERS) or b"")

    @property
    def host_name(self) -> str | None:
        value = self._by_code.get(HOST_NAME)
        return value.decode("ascii", "replace") if value is not None else None

    @property
    def max_size(self) -> int | None:
        value = self._by_code.get(MAX_SIZE)
        return struct.unpack("!H", value)[0] if value else None


def _address_option(value: bytes | None) -> str | None:
    return socket.inet_ntoa(value) if value is not None else None


def parse(data: bytes) -> Message:
    """The message in ``data`` (a UDP payload), checked: fixed header, magic
    cookie, every option inside the buffer, an END option, the known
    options' lengths, and the overloaded ``file``/``sname`` fields."""
    if len(data) > MAX_MESSAGE:
        raise DhcpError(f"DHCP message of {len(data)} bytes is longer than {MAX_MESSAGE}")
    if len(data) < FIXED:
        raise DhcpError(f"DHCP message of {len(data)} bytes is shorter than its {FIXED}-byte header")
    (op, htype, hlen, _hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr,
     sname, file) = HEADER.unpack_from(data)
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise DhcpError(f"op {op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)")
    if hlen > len(chaddr):
        raise DhcpError(f"hardware address length {hlen} is over {len(chaddr)}")
    if data[HEADER.size:FIXED] != MAGIC:
        raise DhcpError("no DHCP magic cookie: a BOOTP message, not DHCP")
    options = _options(data[FIXED:], "options")
    overload = dict(options).get(OVERLOAD)
    if overload is not None:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise DhcpError(f"option overload {overload.hex() or 'empty'} is not one byte 1, 2 or 3")
        if overload[0] & 1:
            options += _options(file, "file field")
        if overload[0] & 2:
            options += _options(sname, "sname field")
    return Message(op, htype, hlen, xid, secs, flags, _ip(ciaddr), _ip(yiaddr), _ip(siaddr),
                   _ip(giaddr), chaddr[:hlen], _joined(options))


def _ip(packed: bytes) -> str:
    """Four bytes as a dotted quad (what ``str(IPv4Address(...))`` gives, in C)."""
    return socket.inet_ntoa(packed)


def _options(area: bytes, where: str) -> list[tuple[int, bytes]]:
    """The options of one area, up to its END option (which must be there)."""
    found: list[tuple[int, bytes]] = []
    i = 0
    while i < len(area):
        code = area[i]
        if code == PAD:
            i += 1
            continue
        if code == END:
            return found
        if i + 1 >= len(area):
            raise DhcpError(f"option {code} in the {where} is cut off before its length")
        length = area[i + 1]
        value = area[i + 2:i + 2 + length]
        if len(value) != length:
            raise DhcpError(f"option {code} in the {where} claims {length} bytes, "
                            f"{len(value)} are left")
        found.append((code, value))
        i += 2 + length
    raise DhcpError(f"the {where} have no END option (truncated message?)")


def _joined(options: list[tuple[int, bytes]]) -> tuple[tuple[int, bytes], ...]:
    """Join split options (RFC 3396) and check the lengths of those we read."""
    joined: dict[int, bytes] = {}
    for code, value in options:
        joined[code] = joined.get(code, b"") + value
    for code, length in _FIXED_LENGTH.items():
        if code in joined and len(joined[code]) != length:
            raise DhcpError(f"option {code} has {len(joined[code])} bytes, must have {length}")
    size = joined.get(MAX_SIZE)
    if size is not None and struct.unpack("!H", size)[0] < MIN_MAX_SIZE:
        raise DhcpError(f"maximum message size {struct.unpack('!H', size)[0]} is under "
                        f"{MIN_MAX_SIZE}")
    return tuple(joined.items())


# ---------------------------------------------------------------- port config

@dataclass(frozen=True)
class PortConfig:
    """What one port is given.  ``routes`` are the subnet's host routes
    (destination CIDR, next hop); ``extra`` are encoded extra options
    (see :func:`extra_options`): they replace ours of the same code."""

    mac: str
    ip: str
    prefixlen: int
    server_ip: str
    server_mac: str
    router: str | None = None
    dns_servers: tuple[str, ...] = ()
    domain_name: str | None = None
    host_name: str | None = None
    mtu: int | None = None
    routes: tuple[tuple[str, str], ...] = ()
    lease_time: int = 86400
    domain_search: tuple[str, ...] = ()
    extra: ExtraOptions = field(default_factory=lambda: ExtraOptions())
    # the options on the wire (code, length, value) by code, made once: replies are built from them
    encoded: tuple[tuple[int, bytes], ...] = field(init=False, repr=False, compare=False)
    encoded_by_code: dict[int, bytes] = field(init=False, repr=False, compare=False)
    server_id_option: bytes = field(init=False, repr=False, compare=False)
    lease_options: bytes = field(init=False, repr=False, compare=False)  # 51, 58 and 59
    # replies made for this config, by what they depend on but the id (see _reply);
    # touched by one responder thread only
    replies: dict[tuple[object, ...], tuple[bytes, Dest]] = field(
        init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse at once what could not be encoded later, in a reply."""
        if not 0 < self.lease_time < 2**32:
            raise DhcpError(f"DHCP config of port {self.mac}: lease time {self.lease_time}")
        try:
            ipaddress.IPv4Interface(f"{self.ip}/{self.prefixlen}")
            for mac in (self.mac, self.server_mac):
                if not _MAC.match(mac):
                    raise ValueError(f"{mac!r} is not a MAC address")
            object.__setattr__(self, "mac", self.mac.lower())
            object.__setattr__(self, "ip", str(ipaddress.IPv4Address(self.ip)))
            object.__setattr__(self, "server_ip", str(ipaddress.IPv4Address(self.server_ip)))
            object.__setattr__(self, "encoded", tuple(
                (code, _encode_option(code, value)) for code, value in config_options(self).items()))
            object.__setattr__(self, "server_id_option",
                               _encode_option(SERVER_ID, socket.inet_aton(self.server_ip)))
            object.__setattr__(self, "lease_options", b"".join(
                _encode_option(code, struct.pack("!I", seconds)) for code, seconds in (
                    (LEASE_TIME, self.lease_time), (T1, self.lease_time // 2),
                    (T2, self.lease_time * 7 // 8))))
            by_code = dict(sorted(self.encoded))  # by code: the order of those not asked for
            object.__setattr__(self, "encoded_by_code", by_code)
        except (ValueError, UnicodeError, struct.error) as exc:
            raise DhcpError(f"DHCP config of port {self.mac}: {exc}") from None
        if self.mtu is not None and not 68 <= self.mtu <= 0xFFFF:
            raise DhcpError(f"DHCP config of port {self.mac}: MTU {self.mtu} is not in 68..65535")

    @property
    def netmask(self) -> str:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{self.prefixlen}").netmask)

    @property
    def broadcast(self) -> str:
        return str(ipaddress.IPv4Interface(f"{self.ip}/{self.prefixlen}").network.broadcast_address)


def config_options(config: PortConfig) -> dict[int, bytes]:
    """The configuration options of ``config``, encoded, by code."""
    out: dict[int, bytes] = {SUBNET_MASK: _addresses([config.netmask]),
                             BROADCAST_ADDR: _addresses([config.broadcast])}
    if config.router:
        out[ROUTER] = _addresses([config.router])
    if config.dns_servers:
        out[DNS] = _addresses(config.dns_servers)
    if config.host_name:
        out[HOST_NAME] = config.host_name.encode("ascii")
    if config.domain_name:
        out[DOMAIN_NAME] = config.domain_name.encode("ascii")
    if config.mtu is not None:
        out[MTU] = struct.pack("!H", config.mtu)
    if config.domain_search:
        out[DOMAIN_SEARCH] = domain_search(config.domain_search)
    if config.routes:
        out[CLASSLESS_ROUTES] = classless_routes(_with_default(config.routes, config.router))
    out.update(config.extra.options)
    return out


def _with_default(routes: Iterable[tuple[str, str]], router: str | None) -> list[tuple[str, str]]:
    """RFC 3442: a client that takes option 121 ignores option 3, so the
    default route must be in 121 as well."""
    routes = list(routes)
    if router and not any(ipaddress.IPv4Network(d, strict=False).prefixlen == 0 for d, _ in routes):
        routes.append(("0.0.0.0/0", router))
    return routes


def classless_routes(routes: Iterable[tuple[str, str]]) -> bytes:
    """Option 121's compact form: prefix length, its significant octets, next hop."""
    out = b""
    for dest, gateway in routes:
        net = ipaddress.IPv4Network(dest, strict=False)
        out += bytes([net.prefixlen]) + net.network_address.packed[:(net.prefixlen + 7) // 8]
        out += ipaddress.IPv4Address(gateway).packed
    return out


def domain_search(domains: Iterable[str]) -> bytes:
    """Option 119: the names in RFC 1035 wire form (no compression)."""
    out = b""
    for domain in domains:
        for label in domain.strip(".").split("."):
            raw = label.encode("ascii")
            if not 0 < len(raw) < 64:
                raise DhcpError(f"domain {domain!r}: label {label!r} is empty or over 63 bytes")
            out += bytes([len(raw)]) + raw
        out += b"\x00"
    return out


def _addresses(addresses: Iterable[str]) -> bytes:
    return b"".join(ipaddress.IPv4Address(a).packed for a in addresses)


# ---------------------------------------------------------- extra_dhcp_opts

# The names dnsmasq and Neutron use, with how their values are encoded.
OPTION_NAMES: dict[str, tuple[int, str]] = {
    "netmask": (1, "ip"), "time-offset": (2, "i32"), "router": (3, "ips"),
    "time-server": (4, "ips"), "dns-server": (6, "ips"), "log-server": (7, "ips"),
    "lpr-server": (9, "ips"), "hostname": (12, "str"), "boot-file-size": (13, "u16"),
    "domain-name": (15, "str"), "swap-server": (16, "ip"), "root-path": (17, "str"),
    "extension-path": (18, "str"), "ip-forward-enable": (19, "bool"),
    "non-local-source-routing": (20, "bool"), "max-datagram-reassembly": (22, "u16"),
    "default-ttl": (23, "u8"), "mtu": (26, "u16"), "all-subnets-local": (27, "bool"),
    "broadcast": (28, "ip"), "router-discovery": (31, "bool"),
    "router-solicitation": (32, "ip"), "trailer-encapsulation": (34, "bool"),
    "arp-timeout": (35, "u32"), "ethernet-encap": (36, "bool"), "tcp-ttl": (37, "u8"),
    "tcp-keepalive": (38, "u32"), "nis-domain": (40, "str"), "nis-server": (41, "ips"),
    "ntp-server": (42, "ips"), "vendor-encap": (43, "hex"), "netbios-ns": (44, "ips"),
    "netbios-dd": (45, "ips"), "netbios-nodetype": (46, "u8"), "netbios-scope": (47, "str"),
    "x-windows-fs": (48, "ips"), "x-windows-dm": (49, "ips"), "vendor-class": (60, "str"),
    "nis+-domain": (64, "str"), "nis+-server": (65, "ips"), "tftp-server": (66, "str"),
    "bootfile-name": (67, "str"), "mobile-ip-home": (68, "ips"), "smtp-server": (69, "ips"),
    "pop3-server": (70, "ips"), "nntp-server": (71, "ips"), "irc-server": (74, "ips"),
    "user-class": (77, "str"), "domain-search": (119, "domains"), "sip-server": (120, "hex"),
    "classless-static-route": (121, "routes"), "tftp-server-address": (150, "ips"),
    "server-ip-address": (-1, "ip"),  # not an option: the siaddr header field (next server)
}
_NUMBERED = {code: kind for code, kind in OPTION_NAMES.values()}
_HEX = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2})*$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_INT_RANGE = {"u8": (0, 0xFF, "!B"), "u16": (0, 0xFFFF, "!H"), "u32": (0, 0xFFFFFFFF, "!I"),
              "i32": (-(2**31), 2**31 - 1, "!i")}


@dataclass(frozen=True)
class ExtraOptions:
    """Neutron's extra_dhcp_opts for IPv4, encoded."""

    options: tuple[tuple[int, bytes], ...] = ()
    next_server: str = ZERO
    boot_file: str = ""
    problems: tuple[str, ...] = field(default=(), compare=False)


def check_extra_dhcp_opts(opts: Iterable[object]) -> list[str]:
    """Every problem with a port's extra_dhcp_opts, each naming its entry
    (``extra_dhcp_opts[2]: ...``); empty when all are good.  For the API.
    Entries with ip_version 6 are not checked (no DHCPv6 options are served),
    nor address options of IPv6 addresses only on entries without ip_version."""
    return list(_extra(opts).problems)


def extra_options(opts: Iterable[object]) -> ExtraOptions:
    """The IPv4 entries of ``opts`` encoded (IPv6 ones are skipped, a null
    value is no option); raises DhcpError naming every bad entry."""
    extra = _extra(opts)
    if extra.problems:
        raise DhcpError("; ".join(extra.problems))
    return extra


def _extra(opts: Iterable[object]) -> ExtraOptions:
    options: dict[int, bytes] = {}
    next_server, boot_file, problems = ZERO, "", []
    for i, opt in enumerate(opts):
        try:
            if not isinstance(opt, Mapping):
                raise DhcpError(f"{opt!r} is not an object with opt_name and opt_value")
            version = opt.get("ip_version", 4)
            if version not in (4, 6, "4", "6", None):
                raise DhcpError(f"ip_version {version!r} is not 4 or 6")
            if version in (6, "6"):
                continue  # DHCPv6 options: not served here, their names are DHCPv6's
            code, kind = _option_code(opt.get("opt_name"))
            value = opt.get("opt_value")
            if value is None or (opt.get("ip_version") is None and _ipv6_only(kind, value)):
                continue  # no option; or, with no ip_version, addresses only DHCPv6 could carry
            encoded = encode_value(kind, str(value))
            if code == -1:
                next_server = str(ipaddress.IPv4Address(encoded))
                continue
            if code == BOOTFILE:
                boot_file = str(value)
            options[code] = encoded
        except DhcpError as exc:
            problems.append(f"extra_dhcp_opts[{i}]: {exc}")
    return ExtraOptions(tuple(options.items()), next_server, boot_file, tuple(problems))


def _ipv6_only(kind: str, value: object) -> bool:
    """An address option's value made of IPv6 addresses only (Neutron takes it
    on an entry without ip_version; a DHCPv4 answer has no room for it)."""
    if kind not in ("ip", "ips", "guess"):
        return False
    parts = [p.strip() for p in str(value).split(",")]
    try:
        return all(ipaddress.ip_address(p).version == 6 for p in parts)
    except ValueError:
        return False


def _option_code(name: object) -> tuple[int, str]:
    """The code and value kind of an option named as dnsmasq does, or by number."""
    text = str(name).strip().lower().removeprefix("option:")
    if text.isdigit():
        code = int(text)
        if not 0 < code < 255 or code in RESERVED:
            raise DhcpError(f"option {code} cannot be set: it is out of range or carries "
                            "the DHCP protocol itself")
        return code, _NUMBERED.get(code, "guess")
    if text not in OPTION_NAMES:
        raise DhcpError(f"unknown DHCP option name {name!r} (use a dnsmasq name such as "
                        "'tftp-server' or 'bootfile-name', or the option's number)")
    return OPTION_NAMES[text]


def encode_value(kind: str, text: str) -> bytes:
    """``text`` (as in dnsmasq's ``dhcp-option``) encoded as ``kind``."""
    try:
        return _encode(kind, text.strip())
    except (ValueError, struct.error) as exc:
        raise DhcpError(f"value {text!r} is not a valid {kind}: {exc}") from None


def _encode(kind: str, text: str) -> bytes:
    if kind == "guess":  # an option we have no type for: addresses, hex bytes or text
        parts = [p.strip() for p in text.split(",")]
        kind = "ips" if all(map(_is_ipv4, parts)) else "hex" if _HEX.match(text) else "str"
    if kind in _INT_RANGE:
        low, high, fmt = _INT_RANGE[kind]
        if not low <= int(text) <= high:
            raise ValueError(f"out of {low}..{high}")
        return struct.pack(fmt, int(text))
    return _ENCODERS[kind](text)


def _one_ip(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def _ip_list(text: str) -> bytes:
    return _addresses(p.strip() for p in text.split(","))


def _bool(text: str) -> bytes:
    if text.lower() not in ("0", "1", "true", "false"):
        raise ValueError("0/1/true/false expected")
    return bytes([text.lower() in ("1", "true")])


def _hex(text: str) -> bytes:
    if not _HEX.match(text):
        raise ValueError("colon-separated hex bytes expected")
    return bytes.fromhex(text.replace(":", ""))


def _domains(text: str) -> bytes:
    return domain_search(p.strip() for p in text.split(","))


def _routes(text: str) -> bytes:
    """``dest/len,gateway,dest/len,gateway,...`` as option 121."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) % 2:
        raise ValueError("pairs of destination CIDR and gateway expected")
    return classless_routes(zip(parts[::2], parts[1::2], strict=True))


def _text(text: str) -> bytes:
    if not text or len(text.encode()) > 255 * 4:
        raise ValueError("empty or too long")
    return text.encode("utf-8")


_ENCODERS = {"ip": _one_ip, "ips": _ip_list, "bool": _bool, "hex": _hex, "domains": _domains,
             "routes": _routes, "str": _text}


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------ decisions

@dataclass(frozen=True)
class Dest:
    """Where a reply goes (RFC 2131 4.1): an IP and MAC, UDP port 68."""

    ip: str
    mac: str


@dataclass(frozen=True)
class Decision:
    """The answer to one message: ``reply`` (a UDP payload) and ``dest``, or
    neither; ``event`` names what the client did ("discover", "request",
    "inform", "release", "decline") when the message was for us."""

    reply: bytes | None = None
    dest: Dest | None = None
    event: str | None = None


SILENCE = Decision()


def decide(message: Message, config: PortConfig | None) -> Decision:
    """The reply to ``message`` from a client of the port ``config``.

    Silence for: no config (unknown MAC, DHCP disabled), a hardware address
    that is not the port's, replies, relayed messages (only local ports are
    answered), and messages naming another server.  DISCOVER is offered the
    port's IP (ACKed at once when it asks for rapid commit, RFC 4039); a
    REQUEST (selecting, init-reboot, renewing or rebinding) is
    ACKed when it asks for that IP and NAKed otherwise; INFORM is ACKed
    without address or lease; RELEASE and DECLINE are only an event."""
    kind = message.message_type
    if (config is None or message.op != BOOTREQUEST or message.htype != 1 or message.hlen != 6
            or message.mac != config.mac or message.giaddr != ZERO):
        return SILENCE
    if message.server_id not in (None, config.server_ip):
        return SILENCE  # the client chose, or is talking to, another server
    if kind == DISCOVER:  # RFC 4039 rapid commit: ACK at once to a client that asks
        return _reply(message, config, ACK if message.option(RAPID_COMMIT) == b"" else OFFER)
    if kind == REQUEST:
        return _request(message, config)
    if kind == INFORM:
        return _reply(message, config, ACK)
    if kind in (RELEASE, DECLINE):
        return Decision(event=TYPE_NAMES[kind])
    return SILENCE


def _request(message: Message, config: PortConfig) -> Decision:
    """RFC 2131 4.3.2: the address asked for is option 50 (selecting,
    init-reboot) or ciaddr (renewing, rebinding); the port's IP is ACKed,
    any other NAKed."""
    wanted = message.requested_ip or (message.ciaddr if message.ciaddr != ZERO else None)
    if wanted is None:
        return SILENCE  # neither: no state of RFC 2131 4.3.2
    return _reply(message, config, ACK if wanted == config.ip else NAK)


REMEMBERED = 16  # replies remembered per port config (a port's few kinds of message)


def _reply(message: Message, config: PortConfig, kind: int) -> Decision:
    """The reply and where it goes.  Both are functions of ``config`` and of what
    :func:`build` and :func:`destination` read of the message; the chaddr is the
    port's MAC (decide checked it) and only the transaction id varies between a
    client's repeated messages (a reboot, every renewal), so the reply is
    remembered per config by the rest and the id written into it."""
    event = TYPE_NAMES.get(message.message_type or 0)
    rest = (message.flags & BROADCAST_FLAG, message.ciaddr, message.client_id,
            message.option(PARAMETERS), message.max_size)
    key = (kind, message.message_type, *rest)
    found = config.replies.get(key)
    if found is None:
        found = _offer_acked(config, kind, message, rest)
        if found is None:
            found = build(message, config, kind), destination(message, config, kind)
        if len(config.replies) >= REMEMBERED:
            config.replies.clear()
        config.replies[key] = found
    payload, dest = found
    return Decision(payload[:4] + XID.pack(message.xid) + payload[8:], dest, event)


TYPE_AT = FIXED + 2  # the reply's message type: the value of its first option


def _offer_acked(config: PortConfig, kind: int, message: Message,
                 rest: tuple[object, ...]) -> tuple[bytes, Dest] | None:
    """A booting client's REQUEST (selecting: no ciaddr) right after its
    DISCOVER: the ACK is the OFFER remembered for the same rest of the message,
    with its type changed.  :func:`build` writes the same bytes for both (the
    type is the first option; the lease, the addresses and the options asked
    for are the same), and :func:`destination` gives the same place."""
    if kind != ACK or message.message_type != REQUEST or message.ciaddr != ZERO:
        return None
    offered = config.replies.get((OFFER, DISCOVER, *rest))
    if offered is None:
        return None
    payload, dest = offered
    return payload[:TYPE_AT] + bytes((ACK,)) + payload[TYPE_AT + 1:], dest


def destination(message: Message, config: PortConfig, kind: int) -> Dest:
    """RFC 2131 4.1: to ciaddr when the client has one (not for a NAK),
    broadcast when it asks for it or for a NAK, else unicast to the
    offered address at the client's MAC."""
    mac = config.mac
    if kind == NAK:
        return Dest(BROADCAST, BROADCAST_MAC)
    if message.ciaddr != ZERO:
        return Dest(message.ciaddr, mac)
    if message.flags & BROADCAST_FLAG or kind == ACK and message.message_type == INFORM:
        return Dest(BROADCAST, BROADCAST_MAC)
    return Dest(config.ip, mac)


def build(message: Message, config: PortConfig, kind: int) -> bytes:
    """The reply of type ``kind`` (OFFER, ACK or NAK) to ``message``."""
    inform = message.message_type == INFORM
    leased = kind in (OFFER, ACK) and not inform
    yiaddr = config.ip if leased else ZERO
    ciaddr = message.ciaddr if kind == ACK else ZERO
    extra = config.extra
    header = HEADER.pack(
        BOOTREPLY, 1, 6, 0, message.xid, 0, message.flags & BROADCAST_FLAG,
        _packed(ciaddr), _packed(yiaddr), _packed(extra.next_server), bytes(4),
        message.chaddr.ljust(16, b"\x00"), b"", extra.boot_file.encode()[:127] if leased else b"")
    wire = [bytes((MESSAGE_TYPE, 1, kind)), config.server_id_option]
    if leased:
        wire.append(config.lease_options)
    client_id = message.client_id
    if client_id is not None:
        wire.append(_encode_option(CLIENT_ID, client_id))  # RFC 6842: echoed
    if kind == ACK and message.message_type == DISCOVER:
        wire.append(_encode_option(RAPID_COMMIT, b""))
    if kind != NAK:
        wire += _ordered(message, config)
    budget = max(message.max_size or MIN_MAX_SIZE, MIN_MAX_SIZE) - IP_UDP - FIXED
    return _padded(header + MAGIC + _within(wire, budget))


def _packed(address: str) -> bytes:
    """A dotted quad already checked (parsed or in a PortConfig), packed fast."""
    return socket.inet_aton(address)


def _padded(message: bytes) -> bytes:
    """At least BOOTP's 300 bytes (RFC 1542 3.3: some clients drop shorter)."""
    return message.ljust(MIN_BOOTP, bytes([PAD]))


def _ordered(message: Message, config: PortConfig) -> list[bytes]:
    """Configuration options on the wire: those the client asked for first,
    in its order, then the others by code (clients that do not list an
    option they understand still take it)."""
    options = config.encoded_by_code
    asked = [c for c in dict.fromkeys(message.parameters) if c in options]
    if not asked:
        return list(options.values())
    chosen = set(asked)
    return [options[c] for c in asked] + [options[c] for c in options if c not in chosen]


def _within(wire: list[bytes], budget: int) -> bytes:
    """Encoded options and END, within ``budget`` bytes: an option that does
    not fit is left out (the first ones, the protocol's own, always fit)."""
    if sum(map(len, wire)) + 1 <= budget:  # the usual case: everything fits
        return b"".join(wire) + bytes([END])
    out, used = [], 1
    for option in wire:
        if used + len(option) <= budget:
            out.append(option)
            used += len(option)
    return b"".join(out) + bytes([END])


def _encode_options(options: list[tuple[int, bytes]], budget: int) -> bytes:
    return _within([_encode_option(code, value) for code, value in options], budget)


def _encode_option(code: int, value: bytes) -> bytes:
    """One option; a value over 255 bytes is split over several (RFC 3396)."""
    if len(value) <= 255:
        return bytes((code, len(value))) + value
    chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
    return b"".join(bytes((code, len(chunk))) + chunk for chunk in chunks)


def client_message(kind: int, mac: str, xid: int, *, ciaddr: str = ZERO, broadcast: bool = False,
                   options: Iterable[tuple[int, bytes]] = ()) -> bytes:
    """The bytes a client sends (for tests and benchmarks: the agent never
    sends requests): message type ``kind`` from ``mac``, then ``options``."""
    header = HEADER.pack(BOOTREQUEST, 1, 6, 0, xid, 0, BROADCAST_FLAG if broadcast else 0,
                         ipaddress.IPv4Address(ciaddr).packed, bytes(4), bytes(4), bytes(4),
                         bytes.fromhex(mac.replace(":", "")).ljust(16, b"\x00"), b"", b"")
    body = [(MESSAGE_TYPE, bytes([kind])), *options]
    return header + MAGIC + _encode_options(body, 1 << 16)
