"""Packets the firewall logs (nftables ``log group N``) read through
nfnetlink_log (``NETLINK_NETFILTER``), raw: the security group packet logs
(``docs/firewall.md``, "Packet logs").

A reader binds one group in the network namespace it is made in, asks for
the first ``COPY`` bytes of each packet, and hands every logged packet to a
callback from a thread of its own: the rule's prefix, the devices (for a
bridged packet, ``physindev``/``physoutdev`` are the bridge ports: the taps)
and the start of the IP packet.  What the kernel sends is parsed
defensively: a message or an attribute that is malformed is skipped, never
raised.  When the agent reads slower than packets are logged, the kernel
drops log messages (the socket's buffer is full: ``ENOBUFS``), counted in
``lost``; the packets themselves are not affected.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from overcast.linux.conntrack import (  # the nfnetlink framing both speak
    NETLINK_NETFILTER,
    NFGENMSG,
    NLATTR,
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NLMSGHDR,
    attributes,
)

log = logging.getLogger(__name__)

NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULA_PREFIX, NFULA_PAYLOAD = 10, 9
NFULA_IFINDEX = {4: "indev", 5: "outdev", 6: "physindev", 7: "physoutdev"}
BE32 = struct.Struct("!I")
COPY = 128  # bytes of each packet: the IP and transport headers
SOCKET_BUFFER = 1 << 20
TIMEOUT = 2.0  # seconds for the kernel's answer to a configuration request


@dataclass(frozen=True)
class Logged:
    """One packet the firewall logged."""

    prefix: str
    devices: dict[str, int]  # indev/outdev/physindev/physoutdev -> ifindex (those given)
    payload: bytes  # the start of the IP packet

    def summary(self) -> str:
        """The packet's addresses, protocol and ports (or ICMP type/code), in
        words: ``tcp 10.0.0.5:40000 -> 10.0.0.6:22``; "?" when it is not an
        IP packet this can read."""
        return describe(self.payload)


def describe(packet: bytes) -> str:
    try:
        version = packet[0] >> 4
        if version == 4:
            ihl = (packet[0] & 0x0F) * 4
            proto, src, dst = packet[9], packet[12:16], packet[16:20]
            rest = packet[ihl:]
        elif version == 6:
            proto, src, dst, rest = packet[6], packet[8:24], packet[24:40], packet[40:]
        else:
            return "?"
        a, b = ipaddress.ip_address(bytes(src)), ipaddress.ip_address(bytes(dst))
    except (IndexError, ValueError):
        return "?"
    name = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "ipv6-icmp"}.get(proto, str(proto))
    if proto in (6, 17, 132) and len(rest) >= 4:
        sport, dport = struct.unpack_from("!HH", rest)
        return f"{name} {_at(a, sport)} -> {_at(b, dport)}"
    if proto in (1, 58) and len(rest) >= 2:
        return f"{name} {a} -> {b} type {rest[0]} code {rest[1]}"
    return f"{name} {a} -> {b}"


def _at(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


def interface_name(index: int) -> str | None:
    """The name of the interface ``index`` in the caller's namespace (None:
    gone since the packet was logged)."""
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


def parse(buf: bytes) -> list[Logged]:
    """The logged packets of one read (several messages may come at once)."""
    out, off = [], 0
    while off + NLMSGHDR.size <= len(buf):
        length, mtype, _flags, _seq, _pid = NLMSGHDR.unpack_from(buf, off)
        if length < NLMSGHDR.size or off + length > len(buf):
            break
        if mtype == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            found = attributes(buf, off + NLMSGHDR.size + NFGENMSG.size, off + length)
            prefix = found.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode("ascii", "replace")
            devices = {name: BE32.unpack(found[kind])[0] for kind, name in NFULA_IFINDEX.items()
                       if len(found.get(kind, b"")) == 4}
            out.append(Logged(prefix, devices, found.get(NFULA_PAYLOAD, b"")))
        off += (length + 3) & ~3
    return out


def _message(mtype: int, group: int, attrs: list[tuple[int, bytes]], seq: int) -> bytes:
    body = NFGENMSG.pack(socket.AF_UNSPEC, 0, socket.htons(group))
    for kind, value in attrs:
        size = NLATTR.size + len(value)
        body += NLATTR.pack(size, kind) + value + b"\0" * (-size % 4)
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), (NFNL_SUBSYS_ULOG << 8) | mtype,
                         NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


class NflogReader:
    """The packets logged to ``group`` in the caller's network namespace,
    each handed to ``on_packet`` from the reader's thread."""

    def __init__(self, group: int, on_packet: Callable[[Logged], None]) -> None:
        self.group = group
        self.on_packet = on_packet
        self.lost = 0  # log messages the kernel dropped (the socket's buffer was full)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Bind the group (OSError naming it when the kernel refuses: no
        nfnetlink_log, or another process holds the group) and read."""
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
            sock.bind((0, 0))
            sock.settimeout(TIMEOUT)
            self._configure(sock, 1, [(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND]))])
            self._configure(sock, 2, [(NFULA_CFG_MODE, struct.pack(
                "!IBB", COPY, NFULNL_COPY_PACKET, 0))])
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"packet log group {self.group}: {exc.strerror or exc}") \
                from None
        sock.settimeout(0.5)  # how soon stop() is seen
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="packet-log", daemon=True)
        self._thread.start()

    def _configure(self, sock: socket.socket, seq: int, attrs: list[tuple[int, bytes]]) -> None:
        sock.send(_message(NFULNL_MSG_CONFIG, self.group, attrs, seq))
        while True:
            buf = sock.recv(65536)
            length, mtype, _f, got, _p = NLMSGHDR.unpack_from(buf)
            if mtype == NLMSG_ERROR and got == seq:
                code = -struct.unpack_from("=i", buf, NLMSGHDR.size)[0]
                if code:
                    raise OSError(code, errno.errorcode.get(code, str(code)))
                return

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                buf = sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost += 1
                    continue
                if self._stop.is_set():
                    return
                log.error("packet log group %d: %s", self.group, exc)
                return
            for packet in parse(buf):
                try:
                    self.on_packet(packet)
                except Exception:  # noqa: BLE001 - one packet's report never stops the reader
                    log.exception("packet log group %d: a packet's report failed", self.group)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
