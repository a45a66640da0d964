"""What the DHCPv4 and DHCPv6 responders share: one thread with a selector
over one ``AF_PACKET`` socket per tap (host side of a VM's NIC), each with a
classic BPF program so the thread wakes only for its protocol; attach and
detach from any thread; a tap that vanishes is detached; a frame the
responder cannot take is logged at debug and dropped.  A subclass answers
each frame in ``_frame``.

The sockets are bound to every protocol (the filter checks the EtherType):
a socket of one protocol is fed after the device's receive handler, and a
bridge port's (a tap on a bridge) has taken the frame by then; ``ETH_P_ALL``
sockets see it first.  They are closed off the answering thread: the kernel
waits for an RCU grace period in each close (~13 ms here), which would hold
every other tap's answers.  A socket detached while its interface is still
there is first parked (out of the selector, answering nothing) and closed once
the interface is gone or after PARKED_FOR seconds: a packet socket closing
while its device is deleted can make the deletion wait (seen here: 50 veths
deleted in 40 ms, and in 750 ms with their sockets closing meanwhile, the
kernel waiting out the device's references with a growing sleep), and a VM's
port is often removed just before its tap.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import queue
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
SO_ATTACH_FILTER = 26
SWEEP = 2.0  # seconds between checks for interfaces that vanished silently
PACKET_IGNORE_OUTGOING = 23  # Linux 4.20: what the socket's own tap sends is not looped back to it
PARKED_FOR = 10.0  # seconds a detached socket waits for its interface to go before it is closed

Program = Sequence[tuple[int, int, int, int]]  # classic BPF: (code, jt, jf, k)


class PacketTaps:
    """``what`` names the protocol in logs and errors; ``program`` is the
    BPF filter of every socket."""

    def __init__(self, what: str, program: Program) -> None:
        self.what, self._program = what, program
        self.log = logging.getLogger(type(self).__module__)  # the responder's own logger
        self._pending: deque[tuple[str, socket.socket | None]] = deque()  # attach/detach to do
        self._socks: dict[str, socket.socket] = {}  # the loop's own, by interface
        # detached while their interface was there: (socket, interface, since), closed by _sweep
        self._parked: list[tuple[socket.socket, str, float]] = []
        self._attached: frozenset[str] = frozenset()  # asked for, less those found gone
        self._lock = threading.Lock()  # guards _attached and _pending
        self._seen: set[tuple[str, str]] = set()  # (ifname, mac) already reported as booting
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.what.lower()}-responder",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (joined) and close every socket."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                self.log.error("%s responder thread did not stop within 5 s", self.what)
            self._thread = None
        self._take_pending(None)
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
        for sock, _, _ in self._parked:
            sock.close()
        self._parked.clear()
        with self._lock:
            self._attached = frozenset()
        self._wake_r.close()
        self._wake_w.close()

    def attach(self, ifname: str) -> None:
        """Answer on ``ifname`` (in the caller's network namespace); raises
        OSError naming it when it cannot be opened."""
        try:
            sock = packet_socket(ifname, self._program)
        except OSError as exc:
            raise OSError(exc.errno, f"{self.what} on {ifname}: {exc.strerror}") from None
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

    def alive(self, ifname: str) -> bool:
        """Whether ``ifname``'s socket (the one attached last) is bound to a
        device of that name: not to one deleted since, maybe made again under
        the name (a socket of the old device is dead).  From any thread."""
        with self._lock:
            queued = [sock for name, sock in self._pending if name == ifname]
            sock = queued[-1] if queued else self._socks.get(ifname)
        return sock is not None and bound_name(sock) == ifname

    def booted(self, ifname: str, mac: str) -> bool:
        """Whether ``mac`` booted on ``ifname`` (asked since it was opened, not
        let go since): read from any thread (a set's membership)."""
        return (ifname, mac.lower()) in self._seen

    def _frame(self, ifname: str, sock: socket.socket, data: bytes) -> None:
        raise NotImplementedError

    def _send(self, ifname: str, sock: socket.socket, data: bytes) -> None:
        try:
            sock.send(data)
        except OSError as exc:
            self.log.debug("%s reply on %s not sent: %s", self.what, ifname, exc)

    def _booting(self, ifname: str, mac: str) -> bool:
        """True the first time since the tap was opened or ``mac`` let go."""
        if (ifname, mac) in self._seen:
            return False
        self._seen.add((ifname, mac))
        return True

    def _let_go(self, ifname: str, mac: str) -> None:
        self._seen.discard((ifname, mac))

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
        self.log.info("%s on %s stops: %s", self.what, ifname, why)
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
            if bound_name(sock) != ifname:
                self._gone(selector, ifname, "the interface is gone")
        now, parked = time.monotonic(), []
        for sock, ifname, since in self._parked:
            if bound_name(sock) != ifname or now - since >= PARKED_FOR:
                close_later(sock)
            else:
                parked.append((sock, ifname, since))
        self._parked = parked

    def _take_pending(self, selector: selectors.BaseSelector | None) -> None:
        """Apply queued attach/detach in the loop's thread (the selector is its own)."""
        while True:
            with self._lock:  # the swap is whole for alive(): old socket or new, never none
                if not self._pending:
                    return
                ifname, sock = self._pending.popleft()
                self._close(selector, ifname)
                if sock is not None and selector is not None:
                    self._socks[ifname] = sock
                    selector.register(sock, selectors.EVENT_READ, ifname)
            if sock is not None and selector is None:
                sock.close()

    def _close(self, selector: selectors.BaseSelector | None, ifname: str) -> None:
        sock = self._socks.pop(ifname, None)
        self._seen = {seen for seen in self._seen if seen[0] != ifname}
        if sock is not None:
            if selector is not None:
                selector.unregister(sock)
            if selector is not None and bound_name(sock) == ifname:
                self._parked.append((sock, ifname, time.monotonic()))  # see the module's doc
            else:
                close_later(sock)

    def _readable(self, selector: selectors.BaseSelector, ifname: str, sock: socket.socket) -> None:
        """One frame: the selector is level-triggered, so a tap with more queued
        is ready again at the next select, after the other ready taps had theirs
        (no "would block" error raised and caught per wake-up)."""
        try:
            data, address = sock.recvfrom(65535)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno == errno.ENETDOWN and bound_name(sock) == ifname:
                return  # the link went down (it may come back up): keep the socket
            self._gone(selector, ifname,
                       "the interface is gone" if exc.errno == errno.ENETDOWN else str(exc))
            return
        if address[2] != PACKET_OUTGOING:  # what the tap sends to the VM is not a request
            self._frame(ifname, sock, data)


def packet_socket(ifname: str, program: Program) -> socket.socket:
    """A non-blocking packet socket on ``ifname`` that the kernel feeds only
    what ``program`` accepts: the filter is attached before the socket is
    bound to a protocol, so nothing unfiltered is ever queued."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        code = b"".join(struct.pack("HBBI", *insn) for insn in program)
        buffer = ctypes.create_string_buffer(code, len(code))
        fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        sock.bind((ifname, ETH_P_ALL))
        try:  # our replies (and all else sent to the VM) are not copied to us, to be dropped
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            pass  # an older kernel: _readable drops them by their packet type
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def bound_name(sock: socket.socket) -> str:
    """The name of the device ``sock`` is bound to ('' once it is gone),
    resolved in the socket's own namespace."""
    try:
        return str(sock.getsockname()[0])
    except OSError:
        return ""


_CLOSING: queue.SimpleQueue[socket.socket] = queue.SimpleQueue()
_closers = 0  # threads closing
_closer_lock = threading.Lock()
CLOSERS = 16  # at most: their closes wait out one RCU grace period together


def close_later(sock: socket.socket) -> None:
    """Close a packet socket on a thread of its own (see the module's doc).
    Several close at once when many are queued (a wave of VMs gone): each
    close waits for a grace period, and concurrent waits share one, so 50
    sockets take about one period instead of fifty in a row."""
    global _closers
    _CLOSING.put(sock)
    with _closer_lock:
        if _closers < CLOSERS and _closers < _CLOSING.qsize():
            _closers += 1
            threading.Thread(target=_close_all, name="packet-closer", daemon=True).start()


def _close_all() -> None:
    """Until nothing was queued for 5 s (checked under the lock the next
    ``close_later`` takes: no socket is left behind)."""
    global _closers
    while True:
        try:
            sock = _CLOSING.get(timeout=5)
        except queue.Empty:
            with _closer_lock:
                if _CLOSING.empty():
                    _closers -= 1
                    return
            continue
        sock.close()
