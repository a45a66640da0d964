"""Frames by hand and sockets inside namespaces, for the firewall's packet
tests (``test_firewall_packets.py``): Ethernet, ARP, IPv4/UDP, ICMPv6 router
advertisements, a raw AF_PACKET capture that keeps what a device saw, and
TCP/UDP sockets made inside a VM namespace (``setns`` in this thread: a
socket stays in the namespace it was made in).  The tests at the end check
the builders against what the kernel itself sends, without root where they
can.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from overcast.linux.devices import entered_netns

ETH_P_ALL, ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0003, 0x0800, 0x0806, 0x86DD
PACKET_OUTGOING = 4
BROADCAST = "ff:ff:ff:ff:ff:ff"
DEADLINE = 5.0  # seconds an expected packet may take (it normally takes well under 10 ms)


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def eth(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + payload


def arp(op: int, sha: str, spa: str, tha: str, tpa: str) -> bytes:
    """An Ethernet/IPv4 ARP body (op 1 request, 2 reply)."""
    return (struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, op) + mac_bytes(sha) + IPv4Address(spa).packed
            + mac_bytes(tha) + IPv4Address(tpa).packed)


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def ipv4_udp(src: str, dst: str, sport: int, dport: int, data: bytes) -> bytes:
    """An IPv4 header and a UDP datagram, both checksums right."""
    udp_len = 8 + len(data)
    s, d = IPv4Address(src).packed, IPv4Address(dst).packed
    pseudo = s + d + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + data
    udp = udp[:6] + struct.pack("!H", checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0x4000, 64, 17, 0, s, d)
    return head[:10] + struct.pack("!H", checksum(head)) + head[12:] + udp


def icmp6_router_advertisement(src: str, mac: str) -> bytes:
    """An IPv6 header and a router advertisement to all nodes (lifetime 1800 s,
    the sender's link-layer address as its one option)."""
    dst = "ff02::1"
    body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + bytes([1, 1]) + mac_bytes(mac)
    s, d = IPv6Address(src).packed, IPv6Address(dst).packed
    pseudo = s + d + struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
    return struct.pack("!IHBB", 0x60000000, len(body), 58, 255) + s + d + body


@dataclass(frozen=True)
class Frame:
    """One frame a capture saw: its bytes and whether the device sent it."""

    data: bytes
    outgoing: bool

    @property
    def src(self) -> str:
        return mac_text(self.data[6:12])

    @property
    def ethertype(self) -> int:
        return int.from_bytes(self.data[12:14], "big")

    def arp(self) -> tuple[int, str, str, str] | None:
        """(op, sender MAC, sender IP, target IP) of an ARP frame."""
        if self.ethertype != ETH_P_ARP or len(self.data) < 42:
            return None
        b = self.data[14:]
        return (int.from_bytes(b[6:8], "big"), mac_text(b[8:14]), str(IPv4Address(b[14:18])),
                str(IPv4Address(b[24:28])))

    def ipv4(self) -> tuple[str, str, int, bytes] | None:
        """(source, destination, protocol, the IP payload) of an IPv4 frame."""
        if self.ethertype != ETH_P_IP or len(self.data) < 34:
            return None
        ihl = (self.data[14] & 0x0F) * 4
        return (str(IPv4Address(self.data[26:30])), str(IPv4Address(self.data[30:34])),
                self.data[23], self.data[14 + ihl:])

    def udp(self) -> tuple[str, int, str, int, bytes] | None:
        """(source, sport, destination, dport, data) of a UDP/IPv4 frame."""
        ip = self.ipv4()
        if ip is None or ip[2] != 17 or len(ip[3]) < 8:
            return None
        sport, dport = struct.unpack("!HH", ip[3][:4])
        return ip[0], sport, ip[1], dport, ip[3][8:]

    def tcp_syn(self) -> tuple[str, str, int] | None:
        """(source, destination, dport) of a TCP SYN without ACK."""
        ip = self.ipv4()
        if ip is None or ip[2] != 6 or len(ip[3]) < 14 or ip[3][13] & 0x12 != 0x02:
            return None
        return ip[0], ip[1], int.from_bytes(ip[3][2:4], "big")

    def icmp6_type(self) -> int | None:
        if self.ethertype != ETH_P_IPV6 or len(self.data) < 55 or self.data[20] != 58:
            return None
        return self.data[54]


Predicate = Callable[[Frame], bool]


def in_netns(ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM,
             proto: int = 0) -> socket.socket:
    """A socket in namespace ``ns``."""
    with entered_netns(ns):
        return socket.socket(family, kind, proto)


@dataclass
class Capture:
    """Every frame device ``dev`` of namespace ``ns`` sends or receives, from
    the moment it is made (a raw AF_PACKET socket)."""

    ns: str
    dev: str = "eth0"
    frames: list[Frame] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = in_netns(self.ns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((self.dev, ETH_P_ALL))
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def drain(self) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            self.frames.append(Frame(data, addr[2] == PACKET_OUTGOING))

    def received(self, pred: Predicate) -> list[Frame]:
        self.drain()
        return [f for f in self.frames if not f.outgoing and pred(f)]

    def sent(self, pred: Predicate) -> list[Frame]:
        self.drain()
        return [f for f in self.frames if f.outgoing and pred(f)]

    def wait(self, pred: Predicate, outgoing: bool = False, deadline: float = DEADLINE) -> Frame:
        """The first frame in that direction that ``pred`` accepts; fails
        after ``deadline`` seconds without one."""
        end = time.monotonic() + deadline
        while True:
            found = (self.sent if outgoing else self.received)(pred)
            if found:
                return found[0]
            left = end - time.monotonic()
            assert left > 0, f"{self.ns}/{self.dev}: no {'outgoing' if outgoing else 'incoming'} " \
                f"frame matching {getattr(pred, '__doc__', None) or pred} within {deadline} s"
            select.select([self.sock], [], [], left)


@dataclass
class Wire:
    """Hand-built frames out of ``dev`` of namespace ``ns``."""

    ns: str
    dev: str = "eth0"

    def __post_init__(self) -> None:
        self.sock = in_netns(self.ns, socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.sock.bind((self.dev, 0))

    def send(self, *frames: bytes) -> None:
        for frame in frames:
            self.sock.send(frame)

    def close(self) -> None:
        self.sock.close()


@contextmanager
def one_cpu() -> Iterator[None]:
    """This thread on one CPU for the block: frames it sends (and the kernel
    sends on its behalf) are processed in the order sent, so a frame seen
    after another proves that the other had its chance to arrive."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def test_udp_checksum_is_the_internet_checksum() -> None:
    # RFC 1071's example: the sum of 0001 f203 f4f5 f6f7 is ddf2, its complement 220d
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    packet = ipv4_udp("10.0.0.1", "10.0.0.2", 5000, 6000, b"x")
    assert checksum(packet[:20]) == 0  # a right header sums to zero
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 17, len(packet) - 20)
    assert checksum(pseudo + packet[20:]) == 0


def test_frames_parse_back() -> None:
    frame = Frame(eth(BROADCAST, "fa:16:3e:00:00:01", ETH_P_ARP,
                      arp(1, "fa:16:3e:00:00:01", "10.0.0.1", "00:00:00:00:00:00", "10.0.0.2")), False)
    assert frame.arp() == (1, "fa:16:3e:00:00:01", "10.0.0.1", "10.0.0.2")
    udp = Frame(eth(BROADCAST, "fa:16:3e:00:00:01", ETH_P_IP,
                    ipv4_udp("10.0.0.1", "255.255.255.255", 67, 68, b"offer")), False)
    assert udp.udp() == ("10.0.0.1", 67, "255.255.255.255", 68, b"offer")
    ra = Frame(eth("33:33:00:00:00:01", "fa:16:3e:00:00:01", ETH_P_IPV6,
                   icmp6_router_advertisement("fe80::f816:3eff:fe00:1", "fa:16:3e:00:00:01")), False)
    assert ra.icmp6_type() == 134
