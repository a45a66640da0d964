"""Datagrams many at a time: ``recvmmsg(2)`` and ``sendmmsg(2)`` through ctypes.

Python's ``recvfrom`` and ``sendto`` cost a system call and a few objects per
datagram; a server that answers small queries at line rate (the DNS responder)
spends more on those than on its answers.  :class:`Batch` receives up to
``slots`` datagrams of one socket in one call, into buffers of its own, and
sends the replies the same way: a reply to datagram ``i`` is written into
slot ``i`` and goes back to the address it came from, in the same order.

Where the C library has no ``recvmmsg`` (not Linux, or no ctypes),
:func:`available` is False and callers keep the one-at-a-time path.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import sys

MSG_DONTWAIT = 0x40
SLOT = 4096  # bytes a datagram may have; a longer one arrives cut
NAME = 28  # sizeof(struct sockaddr_in6), room for either family


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int,
                                  ctypes.c_void_p]
        libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def available() -> bool:
    return _LIBC is not None


class Batch:
    """Buffers for up to ``slots`` datagrams of ``sock`` (a UDP socket, IPv4 or
    IPv6), received and answered a batch at a time.  One thread uses it."""

    def __init__(self, sock: socket.socket, slots: int = 64) -> None:
        if _LIBC is None:
            raise OSError(errno.ENOSYS, "recvmmsg is not available")
        self.sock, self.slots = sock, slots
        self._fd = sock.fileno()
        self._v6 = sock.family == socket.AF_INET6
        # anonymous mappings: pages are committed only as the kernel writes into
        # them (a responder per router namespace; most see a few queries)
        self._data = mmap.mmap(-1, slots * SLOT)
        self._names = mmap.mmap(-1, slots * NAME)
        self._view, self._names_view = memoryview(self._data), memoryview(self._names)
        data = ctypes.addressof(ctypes.c_char.from_buffer(self._data))
        names = ctypes.addressof(ctypes.c_char.from_buffer(self._names))
        self._recv_iov = (_Iovec * slots)(*[_Iovec(data + i * SLOT, SLOT) for i in range(slots)])
        self._send_iov = (_Iovec * slots)(*[_Iovec(data + i * SLOT, 0) for i in range(slots)])
        namelen = NAME if self._v6 else 16
        self._recv = (_Mmsghdr * slots)()
        self._send = (_Mmsghdr * slots)()
        for i in range(slots):
            for hdrs, iov in ((self._recv, self._recv_iov), (self._send, self._send_iov)):
                hdr = hdrs[i].hdr
                hdr.name, hdr.namelen = names + i * NAME, namelen
                hdr.iov, hdr.iovlen = ctypes.addressof(iov[i]), 1
        self._sources: dict[int | bytes, str] = {}  # address as read -> text
        self._pending: list[int] = []  # slots with a reply written, in order
        # the kernel's msg_len of every received header, and every reply's
        # iov_len, as plain integers (no ctypes object made per datagram)
        words = ctypes.sizeof(_Mmsghdr) // 4
        self._lengths = memoryview(self._recv).cast("B").cast("I")[_Mmsghdr.len.offset // 4::words]
        self._reply_lengths = memoryview(self._send_iov).cast("B").cast("Q")[1::2]
        # sin_addr of every source name, as the native integer of its 4 octets
        self._v4_sources = self._names_view.cast("I")[1::NAME // 4]

    def receive(self) -> int:
        """The datagrams waiting now, up to ``slots`` (0: none); raises OSError
        for an error other than "nothing waiting"."""
        assert _LIBC is not None
        self._pending.clear()  # replies queued and never flushed (an error) are of old slots
        got = _LIBC.recvmmsg(self._fd, self._recv, self.slots, MSG_DONTWAIT, None)
        if got < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return 0
            raise OSError(err, os.strerror(err))
        return int(got)

    def sources(self, count: int) -> list[str]:
        """The source address of each of the ``count`` datagrams received."""
        known = self._sources
        if self._v6:
            names = self._names_view
            keys: list[int] | list[bytes] = [names[i * NAME + 8:i * NAME + 24].tobytes()
                                             for i in range(count)]
        else:
            keys = self._v4_sources[:count].tolist()
        out = []
        for key in keys:
            source = known.get(key)
            if source is None:
                source = self._source_text(key)
            out.append(source)
        return out

    def _source_text(self, key: int | bytes) -> str:
        if len(self._sources) >= 4096:
            self._sources.clear()
        if isinstance(key, bytes):
            text = socket.inet_ntop(socket.AF_INET6, key)
        else:
            text = socket.inet_ntop(socket.AF_INET, key.to_bytes(4, sys.byteorder))
        self._sources[key] = text
        return text

    def data(self, slot: int) -> bytes:
        """The datagram received in ``slot``."""
        at = slot * SLOT
        return self._view[at:at + self._lengths[slot]].tobytes()

    def address(self, slot: int) -> tuple[str, int] | tuple[str, int, int, int]:
        """The datagram's source as ``recvfrom`` gives it (for a reply sent later)."""
        name = self._names[slot * NAME:(slot + 1) * NAME]
        port = int.from_bytes(name[2:4], "big")
        if not self._v6:
            return socket.inet_ntop(socket.AF_INET, name[4:8]), port
        host = socket.inet_ntop(socket.AF_INET6, name[8:24])
        return host, port, int.from_bytes(name[4:8], "big"), int.from_bytes(name[24:28], sys.byteorder)

    def reply(self, slot: int, data: bytes) -> bool:
        """Queue ``data`` as the reply to the datagram in ``slot`` (False when it
        does not fit a slot: send it another way)."""
        if len(data) > SLOT:
            return False
        at = slot * SLOT
        self._view[at:at + len(data)] = data
        self._reply_lengths[slot] = len(data)
        self._pending.append(slot)
        return True

    def flush(self) -> int:
        """Send the queued replies (consecutive slots in one call each); how many
        could not be sent (the socket's buffer was full, or an error)."""
        pending, self._pending = self._pending, []
        lost, i = 0, 0
        assert _LIBC is not None
        while i < len(pending):
            j = i + 1
            while j < len(pending) and pending[j] == pending[j - 1] + 1:
                j += 1
            first, count = pending[i], j - i
            while count:
                sent = _LIBC.sendmmsg(self._fd, ctypes.byref(self._send[first]), count,
                                      MSG_DONTWAIT)
                if sent > 0:
                    first, count = first + sent, count - sent
                    continue
                if ctypes.get_errno() in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS):
                    lost += count  # the socket's buffer is full: the rest as well
                    break
                lost, first, count = lost + 1, first + 1, count - 1  # this reply's address only
            i = j
        return lost
