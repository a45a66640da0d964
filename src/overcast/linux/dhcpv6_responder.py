"""The DHCPv6 responder: answers DHCPv6 on the VM NICs (taps, host side) it
is attached to, with the decisions of :mod:`overcast.services.dhcpv6`.

As the DHCPv4 responder (:mod:`overcast.linux.dhcp_responder`): one
AF_PACKET socket per interface, bound to every protocol (a socket bound to
one protocol is fed after the device's rx handler, and a bridge port's, the
bridge, has taken the frame by then), with a classic BPF program that passes
only IPv6 UDP to port 547 whose next header is UDP (no extension headers:
clients send none, and a fragment is not a whole message), so the thread
wakes for DHCPv6 only; the frame is decoded again in Python, which trusts
nothing.  A message to another unicast address (a server of the VM's
own, somewhere) is left alone.  The port comes from ``lookup(ifname, source MAC)``: ``None`` (no
such port, no DHCPv6 on its subnet, a MAC that is not the port's) means
silence, so a VM faking MACs gets nothing.

A reply goes from the server's link-local address (``fe80::`` and the
modified EUI-64 of the server's MAC) and MAC to the client's source address
and MAC, UDP 547 to 546, out of the same interface.  One thread with a
selector; attach/detach from any thread; an interface that vanishes is
detached.  Events (RELEASE, DECLINE, and the first SOLICIT, REQUEST or
INFORMATION-REQUEST of a MAC since it was attached or released) go to
``on_event``, for the agent to report.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from overcast.linux.dhcp_responder import checksum
from overcast.linux.packet_taps import PacketTaps
from overcast.services import dhcpv6

log = logging.getLogger(__name__)

ETH_P_IPV6 = 0x86DD
SERVER_PORT, CLIENT_PORT = 547, 546
ETH, IP6 = 14, 40
HOP_LIMIT = 64
# All_DHCP_Relay_Agents_and_Servers (RFC 8415 7.1): where clients send; we never
# send the Server Unicast option, so only a client that ignores it sends to us directly
ALL_SERVERS = ipaddress.IPv6Address("ff02::1:2").packed
BOOTS = ("solicit", "request", "information-request")  # reported once per attach or release

# Classic BPF (code, jt, jf, k): IPv6, next header UDP, destination port 547.
# Jumps count from the next instruction.
BPF_DHCPV6_SERVER = (
    (0x28, 0, 0, 12),  # 0 ldh [12]               EtherType
    (0x15, 0, 5, ETH_P_IPV6),  # 1 jeq IPv6, else drop
    (0x30, 0, 0, ETH + 6),  # 2 ldb [20]          next header
    (0x15, 0, 3, socket.IPPROTO_UDP),  # 3 jeq UDP, else drop
    (0x28, 0, 0, ETH + IP6 + 2),  # 4 ldh [56]    UDP destination port
    (0x15, 0, 1, SERVER_PORT),  # 5 jeq 547, else drop
    (0x06, 0, 0, 0x40000),  # 6 ret: accept the frame
    (0x06, 0, 0, 0),  # 7 ret 0: drop
)

Lookup = Callable[[str, str], "tuple[dhcpv6.Port6Config, bool] | None"]


@dataclass(frozen=True)
class Frame:
    """What the responder needs of a client's frame."""

    src_mac: str
    src_ip: bytes  # 16 bytes
    dst_ip: bytes
    payload: bytes


@dataclass(frozen=True)
class Event:
    """What a client did: ``kind`` is "solicit", "request",
    "information-request", "release" or "decline"; ``addresses`` the port's
    (released or declined: those the client named)."""

    ifname: str
    mac: str
    kind: str
    addresses: tuple[str, ...]


class Responder(PacketTaps):
    """``lookup`` (returning the port's config and whether its subnet is
    dhcpv6-stateful) and ``on_event`` are called from the responder's
    thread: they must be quick and must not block."""

    def __init__(self, lookup: Lookup, on_event: Callable[[Event], None] | None = None) -> None:
        super().__init__("DHCPv6", BPF_DHCPV6_SERVER)
        self._lookup = lookup
        self._on_event = on_event

    def _frame(self, ifname: str, sock: socket.socket, data: bytes) -> None:
        try:
            frame = decode_frame(data)
            if frame is None:
                return
            message = dhcpv6.parse(frame.payload)
            found = self._lookup(ifname, frame.src_mac)
            if found is None:
                return
            config, stateful = found
            if frame.dst_ip not in (ALL_SERVERS, link_local(config.server_mac)):
                log.debug("DHCPv6 on %s: for %s, another server", ifname,
                          ipaddress.IPv6Address(frame.dst_ip))
                return
            decision = dhcpv6.decide(message, config, stateful)
        except dhcpv6.Dhcpv6Error as exc:
            log.debug("DHCPv6 on %s: %s", ifname, exc)
            return
        except Exception:  # noqa: BLE001 - a failing lookup must not stop the responder
            log.exception("DHCPv6 on %s: lookup failed", ifname)
            return
        if decision.reply is not None:
            self._send(ifname, sock, encode_frame(config.server_mac, frame, decision.reply))
        if decision.event is not None:
            self._report(ifname, frame.src_mac, message, config, decision.event)

    def _report(self, ifname: str, mac: str, message: dhcpv6.Message,
                config: dhcpv6.Port6Config, kind: str) -> None:
        if kind in BOOTS:
            if not self._booting(ifname, mac):
                return
            event = Event(ifname, mac, kind, config.addresses)
        elif kind in ("release", "decline"):
            self._let_go(ifname, mac)
            event = Event(ifname, mac, kind, message.addresses())
        else:
            return
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - the agent's callback must not stop the responder
                log.exception("DHCPv6 event %s on %s: callback failed", kind, ifname)


def decode_frame(data: bytes) -> Frame | None:
    """The client's addresses and UDP payload of an Ethernet/IPv6/UDP frame
    to port 547, or None for anything else (checked against every length
    field; the UDP checksum is not: with offload it may not be filled in)."""
    if len(data) < ETH + IP6 + 8 or data[12:14] != b"\x86\xdd" or data[ETH] >> 4 != 6:
        return None
    payload_length, next_header = struct.unpack_from("!HB", data, ETH + 4)
    if next_header != socket.IPPROTO_UDP or ETH + IP6 + payload_length > len(data):
        return None
    udp = ETH + IP6
    dport, length = struct.unpack_from("!2xHH", data, udp)
    if dport != SERVER_PORT or not 8 <= length <= payload_length:
        return None
    src_mac = ":".join(f"{b:02x}" for b in data[6:12])
    return Frame(src_mac, data[ETH + 8:ETH + 24], data[ETH + 24:ETH + 40],
                 data[udp + 8:udp + length])


def link_local(mac: str) -> bytes:
    """fe80:: with the modified EUI-64 of ``mac`` (RFC 4291 appendix A)."""
    raw = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([raw[0] ^ 0x02]) + raw[1:3] + b"\xff\xfe" + raw[3:]
    return b"\xfe\x80" + bytes(6) + eui


def encode_frame(server_mac: str, to: Frame, payload: bytes) -> bytes:
    """The Ethernet/IPv6/UDP frame carrying ``payload`` from the server's
    link-local address, port 547, to the client of ``to``, port 546, with
    the UDP checksum over the IPv6 pseudo header (RFC 8200 8.1)."""
    src, dst = link_local(server_mac), to.src_ip
    udp_length = 8 + len(payload)
    udp = struct.pack("!HHHH", SERVER_PORT, CLIENT_PORT, udp_length, 0) + payload
    pseudo = src + dst + struct.pack("!I3xB", udp_length, socket.IPPROTO_UDP)
    udp_sum = checksum(pseudo + udp) or 0xFFFF  # 0 is not allowed over IPv6
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    ip6 = struct.pack("!IHBB", 6 << 28, udp_length, socket.IPPROTO_UDP, HOP_LIMIT) + src + dst
    ethernet = _mac(to.src_mac) + _mac(server_mac) + struct.pack("!H", ETH_P_IPV6)
    return ethernet + ip6 + udp


def server_address(server_mac: str) -> str:
    """The server's link-local address, as text (replies come from it)."""
    return str(ipaddress.IPv6Address(link_local(server_mac)))


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))
