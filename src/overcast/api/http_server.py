"""The API's HTTP/1.1 server: an asyncio protocol per connection
(``http_connection``) on httptools' parser (llhttp, ``http_reader``),
answering each request with ``app.Edge``; this module admits connections,
and stops them all.

What one client may hold of a worker is bounded (``http_limits.EdgeLimits``):

* time: a connection waiting between requests is closed ``idle_timeout``
  after its last answer; one whose request head is unfinished
  ``header_timeout`` after it connected or began the request (slowloris);
  one whose body is unfinished ``body_timeout`` after its head; one that
  does not read its answers when its output stays blocked ``idle_timeout``;
* memory: the head is counted as it arrives and answered 431 past
  ``max_header_bytes``, before the parser buffers more of it; the body stops
  at ``ApiConfig.max_body_bytes`` (413); while one of its requests is
  answered, at most ``max_header_bytes`` more is read from a connection (and
  held, so that a client that leaves is seen), and nothing while its output
  is blocked;
* connections: at the cap (``EdgeLimits.connection_cap``) a new connection
  closes the one idle longest (else the one quiet longest with an
  unfinished request, else one whose answer is still going out: once it is
  out); only if every connection has a request being answered does the
  newcomer get 503;
* threads: the pool holds ``EdgeLimits.pool_backlog`` requests, running or
  waiting; one more is answered 503, and the request of a client that left
  before its turn never runs.

Malformed requests (400), heads too large (431) and bodies too large (413)
are answered in the Neutron error shape, then the connection ends: the
server half-closes and drains what the client still sends (so that it reads
the answer rather than a reset) for ``EdgeLimits.linger`` seconds, or until
the answer is out while it still moves.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from overcast.api.app import Edge
from overcast.api.http_connection import Connection
from overcast.api.http_limits import EdgeLimits
from overcast.api.service import Api

log = logging.getLogger("overcast.api.http")
BACKLOG = 2048
SHUTDOWN_GRACE = 9.0  # s answers in progress get when the server stops (``overcast server``:
# its --stop-grace less a margin, so that the worker ends them before any SIGKILL)


class HttpServer:
    """One worker's connections: admission at the cap, stop."""

    def __init__(self, api: Api, limits: EdgeLimits | None = None,
                 grace: float = SHUTDOWN_GRACE) -> None:
        self.edge = Edge(api, limits)
        self.grace = grace
        self.limits = self.edge.limits
        self.cap = self.limits.connection_cap()
        self.conns: dict[Connection, None] = {}  # oldest-quiet first
        self._empty: asyncio.Event | None = None  # set when stopping and no connection is left

    async def serve(self, sock: socket.socket, stop: asyncio.Event,
                    started: Callable[[], None] | None = None) -> None:
        """Answer on the listening ``sock`` until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Connection(self), sock=sock, backlog=BACKLOG)
        if started is not None:
            started()
        try:
            await stop.wait()
        finally:
            server.close()
            await self._drain()
            self.edge.close()

    async def _drain(self) -> None:
        self._empty = asyncio.Event()
        for conn in list(self.conns):
            conn.shutdown()
        if self.conns:
            try:
                await asyncio.wait_for(self._empty.wait(), self.grace)
            except TimeoutError:
                log.warning("%d connections still busy after %gs; closing them",
                            len(self.conns), self.grace)
        for conn in list(self.conns):
            conn.abort()

    def admit(self, conn: Connection) -> bool:
        """Count a new connection in, closing the quietest one at the cap;
        False if every connection is busy answering."""
        if len(self.conns) >= self.cap:
            victim = self._quietest()
            if victim is None:
                return False
            log.debug("connection cap %d reached: closing the one idle longest", self.cap)
            victim.evict()
        self.conns[conn] = None
        return True

    def _quietest(self) -> Connection | None:
        """The connection idle longest, else the one quiet longest with an
        unfinished request, else the first with an answer still going out."""
        partial = sending = None
        for conn in self.conns:
            if conn.answering:
                continue
            if conn.idle:
                return conn
            if conn.sending:
                sending = sending or conn
            elif partial is None:
                partial = conn
        return partial or sending

    def quiet(self, conn: Connection) -> None:
        """``conn`` has answered everything: now the newest quiet one."""
        if conn in self.conns:
            del self.conns[conn]
            self.conns[conn] = None

    def forget(self, conn: Connection) -> None:
        self.conns.pop(conn, None)
        if self._empty is not None and not self.conns:
            self._empty.set()


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (a faster loop), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(server: HttpServer, sock: socket.socket) -> None:
    """Serve on ``sock`` in this (main) thread until SIGTERM or SIGINT."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await server.serve(sock, stop)

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main())
