"""The DHCP responder: answers DHCPv4 on the VM NICs (taps, host side) it
is attached to, with the decisions of :mod:`overcast.services.dhcp`.

One AF_PACKET socket per interface, so that requests are read before any
IP stack sees them and replies leave by the same interface (DHCP never
crosses the overlay).  A classic BPF program in the kernel passes only
IPv4 UDP to port 67 (unfragmented or first fragments), so the thread wakes
for DHCP only; the frame is decoded again in Python, which trusts nothing.
The port a request is for comes from ``lookup(ifname, mac)``: ``None`` (no
such port, DHCP disabled, a MAC that is not the port's) means silence, so a
VM faking client MACs gets nothing.  A request whose client hardware address
is not the frame's source MAC is ignored as well.

One thread with a selector; attach/detach from any thread.  Garbage frames
are logged at debug and dropped; an interface that vanishes is detached.
Events (RELEASE, DECLINE, and the first DISCOVER or REQUEST of a MAC since
it was attached or released) go to ``on_event``, for the agent to report.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from overcast.linux.packet_taps import PacketTaps
from overcast.services import dhcp

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2
SERVER_PORT, CLIENT_PORT = 67, 68
ETH = 14
TTL = 64

# Classic BPF (code, jt, jf, k): IPv4, UDP, not a later fragment, dst port 67;
# or an ARP request (for the server's address, answered here: a client's
# unicast renewal goes to it).  Jumps count from the next instruction.
BPF_DHCP_SERVER = (
    (0x28, 0, 0, 12),  # 0 ldh [12]               EtherType
    (0x15, 9, 0, ETH_P_ARP),  # 1 jeq ARP: to 11
    (0x15, 0, 11, ETH_P_IP),  # 2 jeq IPv4, else drop
    (0x30, 0, 0, 23),  # 3 ldb [23]               IP protocol
    (0x15, 0, 9, socket.IPPROTO_UDP),  # 4 jeq UDP, else drop
    (0x28, 0, 0, 20),  # 5 ldh [20]               flags and fragment offset
    (0x45, 7, 0, 0x1FFF),  # 6 jset offset: a later fragment, drop
    (0xB1, 0, 0, ETH),  # 7 ldxb 4*([14]&0xf)     X = IP header length
    (0x48, 0, 0, ETH + 2),  # 8 ldh [x+16]         UDP destination port
    (0x15, 0, 4, SERVER_PORT),  # 9 jeq 67, else drop
    (0x06, 0, 0, 0x40000),  # 10 ret: accept the frame
    (0x28, 0, 0, ETH + 6),  # 11 ldh [20]          ARP operation
    (0x15, 0, 1, ARP_REQUEST),  # 12 jeq request, else drop
    (0x06, 0, 0, 0x40000),  # 13 ret: accept
    (0x06, 0, 0, 0),  # 14 ret 0: drop
)

Lookup = Callable[[str, str], "dhcp.PortConfig | None"]


@dataclass(frozen=True)
class Event:
    """What a client did: ``kind`` is "discover", "request", "release" or
    "decline"; ``ip`` the port's address (released/declined: the client's)."""

    ifname: str
    mac: str
    kind: str
    ip: str


REMEMBERED_FRAMES = 4096  # replies kept by the request they answer (all ports of the host)


@dataclass(frozen=True, slots=True)
class Remembered:
    """A reply frame kept for a request (see ``Responder._frame``): made for
    ``config``, its UDP checksum ``partial`` summed without the transaction id."""

    config: dhcp.PortConfig
    mac: str
    frame: bytes
    partial: int
    event: str | None


class Responder(PacketTaps):
    """``lookup`` and ``on_event`` are called from the responder's thread:
    they must be quick and must not block (a dict lookup, a queue put).

    A request that comes again with only its transaction id and ``secs``
    changed (a reboot, a renewal, a retransmission) is answered from the reply
    frame kept for it, with the new id written in and the UDP checksum
    adjusted, as long as ``lookup`` gives the very config it was made for
    (a changed port gets a new config): the reply is a function of the config,
    the rest of the request and its source MAC, which the key holds.  So an
    entry stays right after its tap is gone (it is used again only with the
    same config); the whole memory is dropped when it is full."""

    def __init__(self, lookup: Lookup, on_event: Callable[[Event], None] | None = None) -> None:
        super().__init__("DHCP", BPF_DHCP_SERVER)
        self._lookup = lookup
        self._on_event = on_event
        # (interface, source MAC and the UDP payload without xid and secs) -> its reply
        self._remembered: dict[tuple[str, bytes], Remembered] = {}

    def _frame(self, ifname: str, sock: socket.socket, frame: bytes) -> None:
        if frame[12:14] == b"\x08\x06":
            self._arp(ifname, sock, frame)
            return
        decoded = decode_frame(frame)
        if decoded is None:
            return
        src_mac, payload = decoded
        key = (ifname, frame[6:12] + payload[:4] + payload[10:])
        if self._answered_from_memory(ifname, sock, key, payload):
            return
        try:
            message = dhcp.parse(payload)
            if message.mac != src_mac:
                log.debug("DHCP on %s: chaddr %s sent from %s, ignored", ifname, message.mac, src_mac)
                return
            config = self._lookup(ifname, message.mac)
            decision = dhcp.decide(message, config)
        except dhcp.DhcpError as exc:
            log.debug("DHCP on %s: %s", ifname, exc)
            return
        except Exception:  # noqa: BLE001 - a failing lookup must not stop the responder
            log.exception("DHCP on %s: lookup failed", ifname)
            return
        if config is not None and decision.reply is not None and decision.dest is not None:
            reply = encode_frame(config, decision.dest, decision.reply)
            self._send(ifname, sock, reply)
            if len(self._remembered) >= REMEMBERED_FRAMES:
                self._remembered.clear()
            event = decision.event if decision.event in ("discover", "request") else None
            self._remembered[key] = Remembered(config, message.mac, reply, partial_sum(reply),
                                               event)
        if config is not None and decision.event is not None:
            self._report(ifname, message, config, decision.event)

    def _answered_from_memory(self, ifname: str, sock: socket.socket, key: tuple[str, bytes],
                              payload: bytes) -> bool:
        """Whether the reply kept for ``key`` was sent (with ``payload``'s id);
        one made for a config the lookup no longer gives is forgotten."""
        kept = self._remembered.get(key)
        if kept is None:
            return False
        try:
            current = self._lookup(ifname, kept.mac)
        except Exception:  # noqa: BLE001 - a failing lookup must not stop the responder
            log.exception("DHCP on %s: lookup failed", ifname)
            return True
        if current is not kept.config:
            del self._remembered[key]
            return False
        self._send(ifname, sock, with_xid(kept, payload[4:8]))
        if kept.event is not None:
            self._booted(ifname, kept.mac, kept.event, kept.config.ip)
        return True

    def _arp(self, ifname: str, sock: socket.socket, frame: bytes) -> None:
        """A port asking for its DHCP server's address gets the server's MAC
        (its renewals are unicast to the server id).  Never for the
        gateway: a router answers that."""
        request = decode_arp_request(frame)
        if request is None:
            return
        sender_mac, sender_ip, target_ip = request
        try:
            config = self._lookup(ifname, sender_mac)
        except Exception:  # noqa: BLE001 - a failing lookup must not stop the responder
            log.exception("ARP on %s: lookup failed", ifname)
            return
        if config is None or target_ip != config.server_ip or target_ip == config.router:
            return
        self._send(ifname, sock, arp_reply(config, sender_mac, sender_ip))

    def _report(self, ifname: str, message: dhcp.Message, config: dhcp.PortConfig, kind: str) -> None:
        if kind in ("discover", "request"):
            self._booted(ifname, message.mac, kind, config.ip)
            return
        if kind in ("release", "decline"):
            self._let_go(ifname, message.mac)
            address = message.ciaddr if kind == "release" else message.requested_ip
            self._emit(Event(ifname, message.mac, kind, address or dhcp.ZERO))

    def _booted(self, ifname: str, mac: str, kind: str, ip: str) -> None:
        """A DISCOVER or REQUEST: an event the first time since the tap was
        opened or the MAC let go."""
        if self._booting(ifname, mac):
            self._emit(Event(ifname, mac, kind, ip))

    def _emit(self, event: Event) -> None:
        kind, ifname = event.kind, event.ifname
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - the agent's callback must not stop the responder
                log.exception("DHCP event %s on %s: callback failed", kind, ifname)


def decode_frame(frame: bytes) -> tuple[str, bytes] | None:
    """The source MAC and UDP payload of an Ethernet/IPv4/UDP frame to port
    67, or None for anything else (checked against every length field; the
    UDP checksum is not: with checksum offload it may not be filled in)."""
    if len(frame) < ETH + 28 or frame[12:14] != b"\x08\x00" or frame[ETH] >> 4 != 4:
        return None
    ihl = (frame[ETH] & 0x0F) * 4
    total, fragment = struct.unpack_from("!H2xH", frame, ETH + 2)
    if ihl < 20 or total < ihl + 8 or ETH + total > len(frame) or fragment & 0x3FFF:
        return None
    if frame[ETH + 9] != socket.IPPROTO_UDP:
        return None
    udp = ETH + ihl
    dport, length = struct.unpack_from("!2xHH", frame, udp)
    if dport != SERVER_PORT or length < 8 or udp + length > ETH + total:
        return None
    return frame[6:12].hex(":"), frame[udp + 8:udp + length]


def decode_arp_request(frame: bytes) -> tuple[str, str, str] | None:
    """(sender MAC, sender IP, target IP) of an Ethernet ARP request for
    IPv4 whose sender MAC is the frame's source, else None."""
    if len(frame) < ETH + 28 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, ETH)
    if (htype, ptype, hlen, plen, op) != (1, ETH_P_IP, 6, 4, ARP_REQUEST):
        return None
    sha, spa, tpa = frame[ETH + 8:ETH + 14], frame[ETH + 14:ETH + 18], frame[ETH + 24:ETH + 28]
    if sha != frame[6:12]:
        return None
    mac = sha.hex(":")
    return mac, str(ipaddress.IPv4Address(spa)), str(ipaddress.IPv4Address(tpa))


def arp_reply(config: dhcp.PortConfig, to_mac: str, to_ip: str) -> bytes:
    """The server's ARP reply to the port (its address is the server id)."""
    server = _mac(config.server_mac)
    ethernet = _mac(to_mac) + server + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, ARP_REPLY) + server
    arp += ipaddress.IPv4Address(config.server_ip).packed + _mac(to_mac)
    arp += ipaddress.IPv4Address(to_ip).packed
    return ethernet + arp


def encode_frame(config: dhcp.PortConfig, dest: dhcp.Dest, payload: bytes) -> bytes:
    """The Ethernet/IPv4/UDP frame carrying ``payload`` from the port's DHCP
    server to ``dest``, with both checksums."""
    src, dst = socket.inet_aton(config.server_ip), socket.inet_aton(dest.ip)  # checked addresses
    udp_length = 8 + len(payload)
    ip_header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_length, 0, 0, TTL,
                            socket.IPPROTO_UDP, 0, src, dst)
    ip_header = ip_header[:10] + struct.pack("!H", checksum(ip_header)) + ip_header[12:]
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_length)
    udp = struct.pack("!HHHH", SERVER_PORT, CLIENT_PORT, udp_length, 0) + payload
    udp_sum = checksum(pseudo + udp) or 0xFFFF  # 0 would mean "no checksum"
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    ethernet = _mac(dest.mac) + _mac(config.server_mac) + struct.pack("!H", ETH_P_IP)
    return ethernet + ip_header + udp


XID_AT = ETH + 20 + 8 + 4  # a reply's transaction id (our IP header has no options)
UDP_SUM_AT = ETH + 20 + 6


def partial_sum(frame: bytes) -> int:
    """The one's complement sum (as :func:`checksum` reduces it) of a reply
    frame's pseudo-header and UDP datagram without its checksum and its
    transaction id: adding the id's two words gives the checksum's sum."""
    ip = frame[ETH:ETH + 20]
    udp = frame[ETH + 20:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(udp))
    body = udp[:6] + b"\x00\x00" + udp[8:12] + bytes(4) + udp[16:]
    if len(body) % 2:
        body += b"\x00"
    return int.from_bytes(pseudo + body, "big") % 0xFFFF


def with_xid(kept: Remembered, xid: bytes) -> bytes:
    """The kept reply frame with transaction id ``xid`` and its UDP checksum."""
    number = int.from_bytes(xid, "big")
    total = (kept.partial + (number >> 16) + (number & 0xFFFF)) % 0xFFFF or 0xFFFF
    udp_sum = ~total & 0xFFFF or 0xFFFF
    frame = kept.frame
    return (frame[:UDP_SUM_AT] + udp_sum.to_bytes(2, "big") + frame[UDP_SUM_AT + 2:XID_AT]
            + xid + frame[XID_AT + 4:])


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    # the one's complement sum of the 16-bit words is the number they make
    # modulo 0xFFFF (2**16 = 1 modulo it), with 0xFFFF for a nonzero multiple
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF or (0xFFFF if number else 0)
    return ~total & 0xFFFF


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))
