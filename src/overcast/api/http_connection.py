"""One client connection of the HTTP server: the transport's calls, and the
answering of what its ``http_reader.RequestReader`` read, in order, through
``app.Edge`` (on the loop, or the slow ones in the thread pool); the flow
control (reading paused while output is blocked or too much is held) and
the one deadline timer that keep the limits of ``http_limits.EdgeLimits``;
and the ending (half-close, linger, close).  See ``http_server`` for the
rules."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from concurrent.futures import Future
from typing import Protocol, cast

from overcast.api.app import INTERNAL_ERROR, POOL_FULL, Edge
from overcast.api.errors import Unavailable
from overcast.api.http_limits import EdgeLimits
from overcast.api.http_reader import BODY, DONE, HEAD, IDLE, Item, RequestReader, address
from overcast.api.http_response import CONTINUE, Reply, error_reply, head
from overcast.api.wire import Request

log = logging.getLogger("overcast.api.http")
BATCH = 8  # pipelined requests answered on the loop before other connections get a turn
TCP_CLOSE = 7  # tcp_info's tcpi_state of a connection reset (Linux)


class Server(Protocol):
    """What a connection needs of its server (``http_server.HttpServer``)."""

    edge: Edge
    limits: EdgeLimits
    cap: int

    def admit(self, conn: Connection) -> bool: ...
    def quiet(self, conn: Connection) -> None: ...
    def forget(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One client connection: reads requests (its ``reader``), answers them in order."""

    def __init__(self, server: Server) -> None:
        self.server, self.limits, self.edge = server, server.limits, server.edge
        self.loop = asyncio.get_running_loop()
        self.reader = RequestReader(self.limits.max_header_bytes,
                                    self.edge.api.cfg.max_body_bytes,
                                    self.loop.time, self._send_continue)
        self.transport = cast(asyncio.Transport, None)
        self.quiet_since = self.blocked_since = self.reader.accepted
        self.answering = False  # a request is in the thread pool
        self.ending = False  # answer what was read, then close
        self.write_blocked = self.reading_paused = False
        self.queue: deque[Item] = self.reader.queue  # read, to answer in turn
        self.held: list[bytes] = []  # read while earlier requests are answered: parsed after
        self.held_bytes = 0
        self.held_eof = False  # the client's EOF came after what is held
        self.timer: asyncio.TimerHandle | None = None  # the deadline of what is awaited
        self.linger: asyncio.TimerHandle | None = None  # the end of the drain after the last answer
        self.deadline = 0.0
        self.blocked_pending = 0  # output buffered when it was last seen blocked
        self.task: asyncio.Task[None] | None = None  # waiting for the pool's answer
        self.job: Future[Reply] | None = None  # the request in the pool
        self.run_soon = False  # a batch of answers is due on the next loop turn

    @property
    def phase(self) -> int:
        """Where reading is: ``IDLE``, ``HEAD``, ``BODY`` or ``DONE``."""
        return self.reader.phase

    # the transport's calls ---------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.reader.local = address(self.transport.get_extra_info("sockname"))
        if not self.server.admit(self):
            log.warning("every one of %d connections is busy: refusing a new one",
                        self.server.cap)
            self._write(Item(None, None, False), error_reply(Unavailable(
                "Too many connections to this API worker; try again later")))
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.phase == DONE:
            return  # draining what follows an answer that ended the connection
        if self.answering or self.queue:  # held until those are answered (``_go_on``);
            self.held.append(data)  # reading goes on, so that a client that leaves is seen
            self.held_bytes += len(data)
            self._set_reading()
            return
        self.reader.take(data)
        self._go_on()

    def eof_received(self) -> bool:
        if self.held:
            self.held_eof = True  # after what it sent before
            return True
        return self._half_closed()

    def _half_closed(self) -> bool:
        """The client sent all it will: answer what was read, then close
        (False: nothing to answer, close now)."""
        if self.answering or self.queue:
            self.ending = True
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.phase in (HEAD, BODY):
            log.debug("client %s left in the middle of a request",
                      self.transport.get_extra_info("peername"))
        self.reader.stop()
        self.queue.clear()
        self._cancel_timer()
        if self.linger is not None:
            self.linger.cancel()
        if self.job is not None:  # not started: it never runs (nothing was answered)
            self.job.cancel()
        if self.task is not None:
            self.task.cancel()
        self.server.forget(self)

    def pause_writing(self) -> None:
        self.write_blocked, self.blocked_since = True, self.loop.time()
        self.blocked_pending = self.transport.get_write_buffer_size()
        self._set_reading()
        self._arm()

    def resume_writing(self) -> None:
        self.write_blocked = False
        self._go_on()

    # the server's calls --------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """No request under way (or none to come) and no answer on its way
        out: the first to close at the cap."""
        return (self.phase in (IDLE, DONE) and not self.queue and not self.answering
                and not self.sending)

    @property
    def sending(self) -> bool:
        """An answer is still on its way out (in the transport's buffer)."""
        return self.write_blocked or self.transport.get_write_buffer_size() > 0

    def evict(self) -> None:
        """Closed to make room at the cap: at once, or if an answer is on its
        way out, once it is out (``_end``; aborted if it stops moving)."""
        self.server.forget(self)
        if not self.sending:
            self.abort()
        elif self.phase != DONE:  # DONE: it is being ended already
            self._end()

    def shutdown(self) -> None:
        """The server stops: close now if nothing is being answered, else after it."""
        if self.answering or self.queue:
            self.ending = True
        else:
            self.transport.close()

    def abort(self) -> None:
        self.reader.stop()
        self.server.forget(self)
        self.transport.abort()

    # answering -----------------------------------------------------------------------
    def _run(self) -> None:
        """Answer what was read, in order: on the loop (``BATCH`` at a time, so
        that a pipelining client lets others in), or the slow ones in the pool;
        nothing while the answers do not leave."""
        budget = BATCH
        while self.queue and not (self.answering or self.write_blocked
                                  or self.transport.is_closing()):
            if budget == 0:
                if not self.run_soon:
                    self.run_soon = True
                    self.loop.call_soon(self._run_later)
                return
            budget -= 1
            item = self.queue.popleft()
            if item.req is not None and self.edge.slow(item.req):
                if self._to_pool(item, item.req):
                    return
                continue
            self._write(item, item.resp if item.req is None else self.edge.answer(item.req))
        if not self.queue and not self.answering and self.phase != DONE:
            self.quiet_since = self.loop.time()
            self.server.quiet(self)
            self._send_continue()

    def _to_pool(self, item: Item, req: Request) -> bool:
        """Hand ``req`` to the pool (True), or answer 503 if it is full or shut;
        nothing if the client is gone already (True)."""
        if _reset(self.transport):
            self.transport.abort()
            return True
        try:
            job = self.edge.submit(req)
        except RuntimeError:  # the pool is shut: the server is stopping
            self._write(item, error_reply(Unavailable("The API is stopping; try again")))
            return False
        if job is None:
            log.warning("the thread pool holds %d requests already: refusing one",
                        self.edge.jobs)
            self._write(item, POOL_FULL)
            return False
        self.answering, self.job = True, job
        self._set_reading()
        self.task = self.loop.create_task(self._answer_in_pool(item, job))
        return True

    def _send_continue(self) -> None:
        """The 100 Continue a body waits for, once the answers before it are out."""
        reader = self.reader
        if reader.continue_due and reader.phase == BODY and not (self.queue or self.answering):
            reader.continue_due = False
            self.transport.write(CONTINUE)

    def _run_later(self) -> None:
        self.run_soon = False
        self._go_on()

    def _go_on(self) -> None:
        """After a pause (pool, blocked output, batch): answer on, read on, re-time."""
        self._run()
        if self.held and not (self.answering or self.queue):
            self._take_held()
            self._run()
        self._set_reading()
        self._arm()

    def _take_held(self) -> None:
        """Parse what arrived while earlier requests were being answered."""
        data = b"".join(self.held)
        self.held.clear()
        self.held_bytes = 0
        if self.phase != DONE:
            self.reader.take(data)
        if self.held_eof:
            self.held_eof = False
            if not self._half_closed() and not self.transport.is_closing():
                self.transport.close()

    async def _answer_in_pool(self, item: Item, job: Future[Reply]) -> None:
        """Write the pool's answer (cancelled when the client leaves)."""
        try:
            reply = await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            if self.transport.is_closing():
                raise  # the client left (connection_lost)
            reply = error_reply(Unavailable("The API is stopping; try again"))
        except Exception:  # a bug (answer catches the API's own): still an answer
            log.exception("no answer from the thread pool")
            reply = INTERNAL_ERROR
        finally:
            self.answering = False
            self.task = self.job = None
        if not self.transport.is_closing():  # else the client left
            self._write(item, reply)
        self._go_on()

    def _write(self, item: Item, reply: Reply | None) -> None:
        assert reply is not None
        status, data = reply
        close = not item.keep_alive or self.ending
        start = head(status, data, close=close, http10=item.http10,
                     challenge=self.edge.api.auth.challenge(status))
        if data is None or item.head:
            self.transport.write(start)
        else:
            self.transport.writelines([start, data])
        if close:
            self._end()

    def _end(self) -> None:
        """Nothing more is read or answered: half-close, drain a moment, close."""
        self.reader.stop()
        self.queue.clear()
        self._cancel_timer()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.linger = self.loop.call_later(self.limits.linger, self._linger_end, -1)
        self._set_reading()

    def _linger_end(self, pending_before: int) -> None:
        """Close once the answer is out; abort if it stopped going out (a
        timer of its own: ``_arm`` cancels only the deadline of ``timer``)."""
        pending = self.transport.get_write_buffer_size()
        if pending == 0:
            self.linger = None
            self.transport.close()
        elif pending == pending_before:  # the client read nothing for a whole linger
            self.linger = None
            self.transport.abort()
        else:
            self.linger = self.loop.call_later(self.limits.linger, self._linger_end, pending)

    # flow and time -------------------------------------------------------------------
    def _set_reading(self) -> None:
        """Read while output flows and no more than ``max_header_bytes`` is
        held behind the requests being answered (and always while draining)."""
        pause = ((self.write_blocked or self.held_bytes > self.limits.max_header_bytes)
                 and self.phase != DONE)
        if pause == self.reading_paused or self.transport.is_closing():
            return
        self.reading_paused = pause
        if pause:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _arm(self) -> None:
        """One timer: the deadline of whatever the connection is waiting for
        (none while its requests are being answered and the answers leave)."""
        lim = self.limits
        if self.phase == DONE or self.transport.is_closing():
            self._cancel_timer()
            return
        if self.write_blocked:
            deadline = self.blocked_since + lim.idle_timeout
        elif self.answering or self.queue:
            self._cancel_timer()
            return
        elif self.phase == IDLE:
            deadline = (self.reader.accepted + lim.header_timeout if self.reader.fresh
                        else self.quiet_since + lim.idle_timeout)
        elif self.phase == HEAD:
            deadline = self.reader.since + lim.header_timeout
        else:
            deadline = self.reader.since + lim.body_timeout
        if self.timer is not None and deadline == self.deadline:
            return
        self._cancel_timer()
        self.deadline = deadline
        self.timer = self.loop.call_at(deadline, self._expire)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self) -> None:
        self.timer = None
        if self.phase == DONE:
            return
        if self.write_blocked:
            if self._output_moved():
                self._arm()  # a slow reader, not a stuck one
                return
            what = "output blocked"
        elif self.answering or self.queue:
            return
        else:
            what = {IDLE: "idle", HEAD: "head unfinished", BODY: "body unfinished"}[self.phase]
        log.debug("closing %s: %s too long", self.transport.get_extra_info("peername"), what)
        self.reader.stop()
        if self.write_blocked:
            self.transport.abort()  # close() would wait for output that never leaves
        else:
            self.transport.close()

    def _output_moved(self) -> bool:
        """Whether the client read some of the blocked output since it blocked
        (or since the last look); if so, the wait starts again."""
        pending = self.transport.get_write_buffer_size()
        if pending >= self.blocked_pending:
            return False
        self.blocked_pending, self.blocked_since = pending, self.loop.time()
        return True


def _reset(transport: asyncio.Transport) -> bool:
    """Whether the kernel has seen the client reset the connection (the loop
    may not have yet): its request, read with the reset, is not worth a thread."""
    sock = transport.get_extra_info("socket")
    try:
        return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == TCP_CLOSE)
    except (AttributeError, OSError):  # not TCP, or not Linux
        return False
