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

import ctypes
import errno
import ipaddress
import logging
import queue
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from overcast.services import dhcp

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SERVER_PORT, CLIENT_PORT = 67, 68
ETH = 14
TTL = 64
SWEEP = 2.0  # seconds between checks for interfaces that vanished silently

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


class Responder:
    """``lookup`` and ``on_event`` are called from the responder's thread:
    they must be quick and must not block (a dict lookup, a queue put)."""

    def __init__(self, lookup: Lookup, on_event: Callable[[Event], None] | None = None) -> None:
        self._lookup = lookup
        self._on_event = on_event
        self._pending: deque[tuple[str, socket.socket | None]] = deque()  # attach/detach to do
        self._socks: dict[str, socket.socket] = {}  # the loop's own, by interface
        self._attached: frozenset[str] = frozenset()  # asked for, less those found gone
        self._lock = threading.Lock()  # guards _attached and _pending
        self._seen: set[tuple[str, str]] = set()  # (ifname, mac) already reported as booting
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dhcp-responder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (joined) and close every socket."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                log.error("DHCP responder thread did not stop within 5 s")
            self._thread = None
        self._take_pending(None)
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        with self._lock:
            self._attached = frozenset()
        self._wake_r.close()
        self._wake_w.close()

    def attach(self, ifname: str) -> None:
        """Answer DHCP on ``ifname`` (in the caller's network namespace);
        raises OSError naming it when it cannot be opened."""
        try:
            sock = _packet_socket(ifname)
        except OSError as exc:
            raise OSError(exc.errno, f"DHCP on {ifname}: {exc.strerror}") from None
        with self._lock:
            self._attached |= {ifname}
            self._pending.append((ifname, sock))
        self._wake()

    def detach(self, ifname: str) -> None:
        with self._lock:
            self._attached -= {ifname}
            self._pending.append((ifname, None))
        self._wake()

    def attached(self) -> frozenset[str]:
        """The interfaces attached and not detached, less those found gone
        (a vanished interface must be attached again once it is back)."""
        return self._attached

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\x00")
        except OSError:
            pass  # stopped, or the pipe is full: the loop wakes anyway

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            swept = time.monotonic()
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=SWEEP):
                    if key.fileobj is self._wake_r:
                        self._wake_r.recv(4096)
                        self._take_pending(selector)
                    else:
                        self._readable(selector, key.data, key.fileobj)  # type: ignore[arg-type]
                if time.monotonic() - swept >= SWEEP:
                    self._sweep(selector)
                    swept = time.monotonic()

    def _gone(self, selector: selectors.BaseSelector, ifname: str, why: str) -> None:
        """``ifname``'s socket is dead: close it, and drop it from attached()
        unless it was attached again meanwhile (that socket is queued)."""
        log.info("DHCP on %s stops: %s", ifname, why)
        self._close(selector, ifname)
        with self._lock:
            if not any(name == ifname for name, _ in self._pending):
                self._attached -= {ifname}

    def _sweep(self, selector: selectors.BaseSelector) -> None:
        """Detach the sockets whose interface is gone.  The kernel reports
        ENETDOWN both for a link going down and for one deleted while up,
        and nothing for one deleted while down, so ask the socket: a
        packet socket whose device was unregistered is bound to no name."""
        for ifname, sock in list(self._socks.items()):
            if _bound_name(sock) != ifname:
                self._gone(selector, ifname, "the interface is gone")

    def _take_pending(self, selector: selectors.BaseSelector | None) -> None:
        """Apply queued attach/detach in the loop's thread (the selector is its own)."""
        while True:
            with self._lock:
                if not self._pending:
                    return
                ifname, sock = self._pending.popleft()
            self._close(selector, ifname)
            if sock is None:
                continue
            if selector is None:
                sock.close()
                continue
            self._socks[ifname] = sock
            selector.register(sock, selectors.EVENT_READ, ifname)

    def _close(self, selector: selectors.BaseSelector | None, ifname: str) -> None:
        sock = self._socks.pop(ifname, None)
        self._seen = {seen for seen in self._seen if seen[0] != ifname}
        if sock is not None:
            if selector is not None:
                selector.unregister(sock)
            _close_later(sock)

    def _readable(self, selector: selectors.BaseSelector, ifname: str, sock: socket.socket) -> None:
        for _ in range(64):  # a burst, then the other interfaces get their turn
            try:
                frame, address = sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENETDOWN and _bound_name(sock) == ifname:
                    continue  # the link went down (it may come back up): keep the socket
                self._gone(selector, ifname,
                           "the interface is gone" if exc.errno == errno.ENETDOWN else str(exc))
                return
            if address[2] != PACKET_OUTGOING:
                self._frame(ifname, sock, frame)

    def _frame(self, ifname: str, sock: socket.socket, frame: bytes) -> None:
        if frame[12:14] == b"\x08\x06":
            self._arp(ifname, sock, frame)
            return
        try:
            decoded = decode_frame(frame)
            if decoded is None:
                return
            src_mac, payload = decoded
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
            self._send(ifname, sock, encode_frame(config, decision.dest, decision.reply))
        if config is not None and decision.event is not None:
            self._report(ifname, message, config, decision.event)

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

    def _send(self, ifname: str, sock: socket.socket, frame: bytes) -> None:
        try:
            sock.send(frame)
        except OSError as exc:
            log.debug("DHCP reply on %s not sent: %s", ifname, exc)

    def _report(self, ifname: str, message: dhcp.Message, config: dhcp.PortConfig, kind: str) -> None:
        key = (ifname, message.mac)
        if kind in ("discover", "request"):
            if key in self._seen:
                return
            self._seen.add(key)
            event = Event(ifname, message.mac, kind, config.ip)
        elif kind in ("release", "decline"):
            self._seen.discard(key)
            address = message.ciaddr if kind == "release" else message.requested_ip
            event = Event(ifname, message.mac, kind, address or dhcp.ZERO)
        else:
            return
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # noqa: BLE001 - the agent's callback must not stop the responder
                log.exception("DHCP event %s on %s: callback failed", kind, ifname)


_CLOSING: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()
_closer: threading.Thread | None = None
_closer_lock = threading.Lock()


def _close_later(sock: socket.socket) -> None:
    """Close a packet socket off the answering thread: the kernel waits for
    an RCU grace period in each close (~13 ms here), which would hold every
    other tap's answers (50 closed leases: 0.6 s without an answer)."""
    global _closer
    _CLOSING.put(sock)
    with _closer_lock:
        if _closer is None:
            _closer = threading.Thread(target=_close_all, name="dhcp-closer", daemon=True)
            _closer.start()


def _close_all() -> None:
    """Until nothing was queued for 5 s (checked under the lock the next
    ``_close_later`` takes: no socket is left behind)."""
    global _closer
    while True:
        try:
            sock = _CLOSING.get(timeout=5)
        except queue.Empty:
            with _closer_lock:
                if _CLOSING.empty():
                    _closer = None
                    return
            continue
        sock.close()


def _bound_name(sock: socket.socket) -> str:
    """The name of the device ``sock`` is bound to ('' once it is gone),
    resolved in the socket's own namespace."""
    try:
        return str(sock.getsockname()[0])
    except OSError:
        return ""


def _packet_socket(ifname: str) -> socket.socket:
    """A non-blocking packet socket on ``ifname`` that the kernel feeds only
    DHCP server traffic: the filter is attached before the socket is bound
    to a protocol, so nothing unfiltered is ever queued."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        program = b"".join(struct.pack("HBBI", *insn) for insn in BPF_DHCP_SERVER)
        buffer = ctypes.create_string_buffer(program, len(program))
        fprog = struct.pack("HL", len(BPF_DHCP_SERVER), ctypes.addressof(buffer))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        # every protocol (the filter checks the EtherType): a socket of one protocol is
        # fed after the device's rx handler, and a bridge port's (a tap on a bridge) has
        # taken the frame by then; ETH_P_ALL sockets see it first
        sock.bind((ifname, ETH_P_ALL))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


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
    return ":".join(f"{b:02x}" for b in frame[6:12]), frame[udp + 8:udp + length]


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
    mac = ":".join(f"{b:02x}" for b in sha)
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


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))
