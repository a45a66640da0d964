"""The DNS responder: UDP and TCP sockets around the sans-IO core
(:mod:`overcast.services.dns`), for the internal DNS an agent answers on its host
and for the authoritative server of the public zone.

One selector thread serves every socket: UDP datagrams, TCP listeners and TCP
connections (2-octet length framing, several queries per connection, an idle
timeout, a cap on concurrent connections).  What a client may see is decided
per query by ``records_for(source_ip, local_ip)``: the caller swaps the value it
returns whenever its records change, so the next query sees the new ones (None:
this client is not served, REFUSED).  Names outside our zones are relayed to the
upstream, when there is one, by a few worker threads, over the transport the
query came on and with a bounded wait (SERVFAIL after it: never a hang).

A per-source token bucket bounds what one address can ask: excess UDP queries are
dropped (a flood from one VM cannot starve the others), a TCP connection whose
source runs over is closed.  Nothing a client sends can stop the thread.

The sockets, the thread and the relay threads (spawned by it) all live in the
network namespace that :meth:`DnsResponder.start` is called in.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby

from overcast.linux import mmsg
from overcast.services import dns

log = logging.getLogger(__name__)

RecordsFor = Callable[[str, str], "dns.Records | None"]
SO_RCVBUFFORCE = 33
UDP_BUFFER = 4 << 20  # room for a burst while the thread is busy elsewhere
TICK = 0.2  # seconds between idle-connection sweeps when nothing happens
MAX_PENDING_RELAYS = 64  # queries waiting for the upstream; beyond them SERVFAIL at once
MAX_CONN_OUTPUT = 1 << 20  # a TCP client that reads nothing is closed past this


class TokenBuckets:
    """``rate`` queries per second and bursts of ``burst`` per source address.
    Buckets that have refilled are forgotten when there are many, so the table
    stays bounded however many addresses ask."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic,
                 max_sources: int = 4096) -> None:
        self.rate, self.burst, self._clock, self._max = rate, burst, clock, max_sources
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, when)

    def take(self, source: str, wanted: int, now: float) -> int:
        """How many of ``wanted`` queries ``source`` may ask at ``now`` (taken)."""
        found = self._buckets.get(source)
        if found is None:
            if len(self._buckets) >= self._max:
                self._forget_full(now)
            tokens = self.burst
        else:
            tokens = min(self.burst, found[0] + (now - found[1]) * self.rate)
        granted = min(wanted, int(tokens)) if tokens >= 1.0 else 0
        self._buckets[source] = (tokens - granted, now)
        return granted

    def allow(self, source: str, now: float | None = None) -> bool:
        """Whether ``source`` may ask one more query (at ``now``, default the clock's)."""
        return self.take(source, 1, self._clock() if now is None else now) == 1

    def _forget_full(self, now: float) -> None:
        full = [s for s, (t, w) in self._buckets.items() if t + (now - w) * self.rate >= self.burst]
        for source in full or list(self._buckets)[: self._max // 2]:
            del self._buckets[source]


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    local: str
    peer: str
    last: float
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    pending: int = 0  # queries at the upstream


@dataclass(frozen=True)
class _UdpClient:
    sock: socket.socket
    address: tuple[str, int] | tuple[str, int, int, int]


def _plain(address: str) -> str:
    """An IPv6 address without its ``%scope``."""
    return address.split("%", 1)[0] if "%" in address else address


@dataclass(frozen=True)
class Limits:
    """What one client may cost: ``rate`` queries/s with bursts of ``burst`` per
    source address; TCP connections closed after ``tcp_idle`` seconds without a
    query, at most ``max_tcp`` at once; ``upstream_timeout`` seconds for a relay."""
    rate: float = 200.0
    burst: float = 400.0
    tcp_idle: float = 10.0
    max_tcp: int = 64
    upstream_timeout: float = 1.5


DEFAULT_LIMITS = Limits()


class DnsResponder:
    """Answers DNS on ``addresses`` (IPv4 and IPv6), UDP and TCP, on ``port``
    (0: one free port for all, see :attr:`port` after :meth:`start`)."""

    def __init__(self, addresses: Sequence[str], records_for: RecordsFor, *, port: int = 53,
                 upstream: tuple[str, int] | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        if not addresses:
            raise ValueError("DNS responder: no address to listen on")
        self.addresses, self.port, self.upstream = list(addresses), port, upstream
        self.limits = limits
        self._records_for = records_for
        self._limiter = TokenBuckets(limits.rate, limits.burst)
        self._selector = selectors.DefaultSelector()
        self._conns: dict[socket.socket, _Conn] = {}
        self._listening: list[socket.socket] = []
        self._batches: dict[socket.socket, mmsg.Batch] = {}
        self._results: deque[tuple[_UdpClient | _Conn, bytes | None]] = deque()
        self._relays = 0
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind every socket (an address that cannot be bound raises OSError naming
        it) and start the thread."""
        for attempt in range(20):
            try:
                self._bind_all()
                break
            except OSError:
                self._close_listening()
                if self.port != 0 or attempt == 19:
                    raise
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        if self.upstream is not None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dns-relay")
        self._thread = threading.Thread(target=self._run, name="dns-responder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and the relays (each bounded by the upstream timeout) and
        close every socket."""
        self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for conn in list(self._conns.values()):
            self._close(conn)
        self._close_listening()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _bind_all(self) -> None:
        wanted = self.port
        for address in self.addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                sock = self._bound(family, kind, address, wanted)
                wanted = sock.getsockname()[1]
        self.port = wanted

    def _bound(self, family: int, kind: int, address: str, port: int) -> socket.socket:
        sock = socket.socket(family, kind)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            else:
                _grow_receive_buffer(sock)
            sock.bind((address, port))
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"DNS responder cannot bind {address} port {port}: {exc.strerror}") from exc
        if kind == socket.SOCK_DGRAM and mmsg.available():
            self._batches[sock] = mmsg.Batch(sock)
        handler = self._on_datagram if kind == socket.SOCK_DGRAM else self._on_accept
        self._selector.register(sock, selectors.EVENT_READ, (handler, _plain(address)))
        self._listening.append(sock)
        return sock

    def _close_listening(self) -> None:
        for sock in self._listening:
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        self._listening.clear()
        self._batches.clear()

    # -- the loop --------------------------------------------------------------------------------------

    def _run(self) -> None:
        swept = time.monotonic()
        while not self._stopping:
            for key, mask in self._selector.select(TICK):
                try:
                    if key.data == self._on_wake:
                        self._on_wake()
                    elif isinstance(key.data, _Conn):
                        self._on_conn(key.data, mask)
                    else:
                        handler, local = key.data
                        handler(key.fileobj, local)
                except Exception:  # noqa: BLE001 - one bad client never stops the responder
                    log.exception("DNS responder: error serving %s", key.fileobj)
            if self._conns and time.monotonic() - swept >= TICK:
                swept = time.monotonic()
                self._close_idle()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending, or we are stopping

    def _on_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while self._results:
            client, reply = self._results.popleft()
            self._relays -= 1
            if isinstance(client, _Conn):
                client.pending -= 1
            if reply is not None:
                self._send(client, reply)

    def _on_datagram(self, sock: socket.socket, local: str) -> None:
        """The datagrams waiting on ``sock``, up to a few batches.  The hot path
        is a repeated query from the source before: one clock read a batch, the
        source's records asked again only when the source changes, and the
        remembered reply (:func:`dns.remembered_udp`) sent with the new id; with
        ``recvmmsg`` (:mod:`mmsg`), a batch comes in and goes out in one call."""
        batch = self._batches.get(sock)
        if batch is None:
            self._on_datagram_each(sock, local)
            return
        take, upstream = self._limiter.take, self.upstream is not None
        reply, data_at = batch.reply, batch.data
        for _ in range(4):  # then let the other sockets have their turn
            try:
                count = batch.receive()
            except OSError as exc:
                log.debug("DNS responder: UDP receive on %s: %s", local, exc)
                return
            if not count:
                return
            now, slot = time.monotonic(), 0
            for host, run in groupby(batch.sources(count)):
                first, slot = slot, slot + sum(1 for _ in run)
                allowed = take(host, slot - first, now)
                records = self._records_for(host, local)
                if records is None:
                    remembered: dict[bytes, bytes] = {}
                else:
                    remembered = dns.remembered_udp(records, upstream)
                for i in range(first, first + allowed):
                    data = data_at(i)
                    found = remembered.get(data[2:])
                    if found is not None:
                        reply(i, data[:2] + found)
                    else:
                        self._answer_datagram(batch, i, data, records, local)
            lost = batch.flush()
            if lost:
                log.debug("DNS responder: %d UDP replies on %s not sent", lost, local)
            if count < batch.slots:
                return

    def _answer_datagram(self, batch: mmsg.Batch, slot: int, data: bytes,
                         records: dns.Records | None, local: str) -> None:
        """A datagram whose reply is not remembered: answered, relayed or dropped."""
        # a datagram longer than a slot (no real query is) arrives cut: it gets
        # what its first bytes get, FORMERR as a rule (and is never remembered)
        result = dns.answer(data, records, upstream_allowed=self.upstream is not None)
        if result.forward:
            self._relay(data, _UdpClient(batch.sock, batch.address(slot)), "udp")
        elif result.reply is not None and not batch.reply(slot, result.reply):
            self._send(_UdpClient(batch.sock, batch.address(slot)), result.reply)

    def _on_datagram_each(self, sock: socket.socket, local: str) -> None:
        """:meth:`_on_datagram` a datagram at a time (no ``recvmmsg``)."""
        recvfrom, sendto, allow = sock.recvfrom, sock.sendto, self._limiter.allow
        scoped = sock.family == socket.AF_INET6  # IPv6 sources may carry a %scope
        upstream = self.upstream is not None
        now = time.monotonic()
        source = ""
        records: dns.Records | None = None
        for _ in range(256):  # then let the other sockets have their turn
            try:
                data, address = recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("DNS responder: UDP receive on %s: %s", local, exc)
                return
            host = _plain(address[0]) if scoped else address[0]
            if not allow(host, now):
                continue
            if host != source:
                source, records = host, self._records_for(host, local)
            reply = None
            if records is not None and (found := dns.remembered_udp(records, upstream).get(data[2:])):
                reply = data[:2] + found
            if reply is None:
                result = dns.answer(data, records, upstream_allowed=upstream)
                if result.forward:
                    self._relay(data, _UdpClient(sock, address), "udp")
                    continue
                reply = result.reply
                if reply is None:
                    continue
            try:
                sendto(reply, address)
            except OSError as exc:
                log.debug("DNS responder: UDP send to %s: %s", address, exc)

    def _query(self, data: bytes, conn: _Conn) -> None:
        result = dns.answer(data, self._records_for(conn.peer, conn.local), transport="tcp",
                            upstream_allowed=self.upstream is not None)
        if result.forward:
            self._relay(data, conn, "tcp")
        elif result.reply is not None:
            self._send(conn, result.reply)

    def _send(self, client: _UdpClient | _Conn, reply: bytes) -> None:
        if isinstance(client, _UdpClient):
            try:
                client.sock.sendto(reply, client.address)
            except OSError as exc:
                log.debug("DNS responder: UDP send to %s: %s", client.address, exc)
            return
        if client.sock in self._conns:
            client.outbuf += len(reply).to_bytes(2, "big") + reply
            self._flush(client)

    # -- relaying to the upstream ---------------------------------------------------------------------

    def _relay(self, data: bytes, client: _UdpClient | _Conn, transport: str) -> None:
        if self._pool is None or self.upstream is None or self._relays >= MAX_PENDING_RELAYS:
            reply = dns.servfail(data)
            if reply is not None:
                self._send(client, reply)
            return
        self._relays += 1
        if isinstance(client, _Conn):
            client.pending += 1
        upstream, timeout = self.upstream, self.limits.upstream_timeout

        def work() -> None:
            reply = _ask_upstream(data, upstream, timeout, transport)
            self._results.append((client, reply if reply is not None else dns.servfail(data)))
            self._wake()

        self._pool.submit(work)

    # -- TCP -----------------------------------------------------------------------------------------

    def _on_accept(self, listener: socket.socket, local: str) -> None:
        for _ in range(64):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: try again next round
                log.warning("DNS responder: TCP accept on %s: %s", local, exc)
                return
            if len(self._conns) >= self.limits.max_tcp:
                sock.close()
                continue
            sock.setblocking(False)
            conn = _Conn(sock, local, _plain(address[0]), time.monotonic())
            self._conns[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _on_conn(self, conn: _Conn, mask: int) -> None:
        if mask & selectors.EVENT_WRITE:
            self._flush(conn)
        if mask & selectors.EVENT_READ and conn.sock in self._conns:
            try:
                data = conn.sock.recv(65537)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._close(conn)
                return
            conn.last = time.monotonic()
            conn.inbuf += data
            self._take_queries(conn)

    def _take_queries(self, conn: _Conn) -> None:
        """Answer every complete query in the connection's buffer."""
        while len(conn.inbuf) >= 2 and conn.sock in self._conns:
            size = int.from_bytes(conn.inbuf[:2], "big")
            if 0 < size and len(conn.inbuf) < 2 + size:
                return
            if size == 0 or not self._limiter.allow(conn.peer):
                self._close(conn)
                return
            message = bytes(conn.inbuf[2:2 + size])
            del conn.inbuf[:2 + size]
            self._query(message, conn)

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        del conn.outbuf[:sent]
        if sent:
            conn.last = time.monotonic()
        if len(conn.outbuf) > MAX_CONN_OUTPUT:
            self._close(conn)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self._selector.modify(conn.sock, events, conn)

    def _close(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock, None) is None:
            return
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _close_idle(self) -> None:
        deadline = time.monotonic() - self.limits.tcp_idle
        for conn in [c for c in self._conns.values() if c.last < deadline and not c.pending]:
            self._close(conn)


def _grow_receive_buffer(sock: socket.socket) -> None:
    """A large UDP receive buffer (beyond rmem_max when we may: we are root)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, UDP_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER)


def _ask_upstream(query: bytes, upstream: tuple[str, int], timeout: float,
                  transport: str) -> bytes | None:
    """The upstream's reply to ``query`` within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in upstream[0] else socket.AF_INET
    try:
        if transport == "tcp":
            return _ask_tcp(query, upstream, family, deadline)
        return _ask_udp(query, upstream, family, deadline)
    except (OSError, ValueError) as exc:
        log.info("DNS upstream %s:%d: %s", upstream[0], upstream[1], exc)
        return None


def _ask_udp(query: bytes, upstream: tuple[str, int], family: int, deadline: float) -> bytes | None:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect(upstream)
        sock.send(query)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            reply = sock.recv(65535)
            if len(reply) >= 12 and reply[:2] == query[:2] and reply[2] & 0x80:
                return reply
    return None


def _ask_tcp(query: bytes, upstream: tuple[str, int], family: int, deadline: float) -> bytes | None:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        sock.connect(upstream)
        sock.sendall(len(query).to_bytes(2, "big") + query)
        head = _read_exactly(sock, 2, deadline)
        reply = _read_exactly(sock, int.from_bytes(head, "big"), deadline)
    return reply if len(reply) >= 12 and reply[:2] == query[:2] else None


def _read_exactly(sock: socket.socket, size: int, deadline: float) -> bytes:
    data = bytearray()
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the upstream did not answer in time")
        sock.settimeout(left)
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the upstream closed the connection")
        data += chunk
    return bytes(data)
