"""The advertiser: sends the router advertisements of the current plan
(:class:`overcast.plan.adverts.Advert`) from each router interface, inside
its router's namespace, and answers router solicitations at once.

One raw ICMPv6 socket per advertising interface, made inside the router's
namespace (a socket stays in the namespace it was made in) and bound to
the device.  Unsolicited RAs: three at start a second apart (RFC 4861's
initial advertisements), then every ``interval`` seconds.  An interface
whose link-local address is not usable yet (duplicate address detection)
is tried again at the next round.  A thread of the agent; stopping it
closes the sockets.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from overcast.linux.devices import entered_netns
from overcast.plan.adverts import Advert
from overcast.services import ra

log = logging.getLogger(__name__)

ALL_NODES = "ff02::1"
INITIAL = 3  # advertisements a second apart when an interface starts
INTERVAL = 10.0  # seconds between unsolicited advertisements after that
SO_BINDTODEVICE = 25


@dataclass
class _Interface:
    advert: Advert
    sock: socket.socket
    sent: int = 0
    due: float = 0.0
    scope: int = 0  # the device's index in its namespace


class Advertiser:
    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._wanted: dict[tuple[str, str], Advert] = {}
        self._open: dict[tuple[str, str], _Interface] = {}
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, adverts: Iterable[Advert]) -> None:
        """The adverts of the latest plan (the thread picks them up at once)."""
        wanted = {(a.netns, a.dev): a for a in adverts}
        with self._lock:
            if wanted == self._wanted:
                return
            self._wanted = wanted
        self._changed.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="advertiser", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for iface in self._open.values():
            iface.sock.close()
        self._open.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
                self._round()
            except Exception as exc:  # noqa: BLE001 - the thread outlives any one interface
                log.error("router advertisements: %s", exc)
                time.sleep(1.0)

    def _sync(self) -> None:
        """Open the sockets of new interfaces, close those no longer wanted."""
        if not self._changed.is_set():
            return
        self._changed.clear()
        with self._lock:
            wanted = dict(self._wanted)
        for key in set(self._open) - set(wanted):
            self._open.pop(key).sock.close()
        for key, advert in wanted.items():
            held = self._open.get(key)
            if held is not None and held.advert == advert:
                continue
            if held is not None:
                held.sock.close()
            try:
                sock, index = _socket(advert)
                self._open[key] = _Interface(advert, sock, scope=index)
            except OSError as exc:
                log.warning("no router advertisements from %s in %s yet: %s", advert.dev,
                            advert.netns, exc)
                self._changed.set()  # tried again next round

    def _round(self) -> None:
        """Send what is due, answer solicitations, wait until the next due time."""
        now = time.monotonic()
        for iface in list(self._open.values()):
            if iface.due <= now:
                self._send(iface)
                iface.due = now + (1.0 if iface.sent < INITIAL else self.interval)
        socks = [i.sock for i in self._open.values()]
        wait = min((i.due for i in self._open.values()), default=now + 1.0) - now
        wait = max(0.05, min(wait, 1.0))
        if not socks:
            self._changed.wait(wait)
            return
        ready, _, _ = select.select(socks, [], [], wait)
        for sock in ready:
            iface = next(i for i in self._open.values() if i.sock is sock)
            try:
                data = sock.recv(1500)
            except OSError:
                continue
            if ra.is_solicitation(data):
                self._send(iface)

    def _send(self, iface: _Interface) -> None:
        a = iface.advert
        message = ra.advertisement(a.mac, list(a.prefixes), a.mtu, a.mode)
        try:
            iface.sock.sendto(message, (ALL_NODES, 0, 0, iface.scope))
            iface.sent += 1
        except OSError as exc:  # e.g. the link-local address is still tentative
            log.debug("RA from %s in %s: %s", a.dev, a.netns, exc)


def _socket(advert: Advert) -> tuple[socket.socket, int]:
    """A raw ICMPv6 socket in the advert's namespace, bound to its device,
    hop limit 255 (RFC 4861: a receiver drops ND with any other); and the
    device's index there."""
    with entered_netns(advert.netns):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, advert.dev.encode())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            index = socket.if_nametoindex(advert.dev)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            # only router solicitations are read (ICMP6_FILTER: block all, pass type 133)
            blocked = bytearray(b"\xff" * 32)
            blocked[ra.ROUTER_SOLICITATION >> 3] &= ~(1 << (ra.ROUTER_SOLICITATION & 7)) & 0xFF
            sock.setsockopt(socket.IPPROTO_ICMPV6, 1, bytes(blocked))
            group = socket.inet_pton(socket.AF_INET6, "ff02::2") + index.to_bytes(4, "little")
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
    return sock, index
