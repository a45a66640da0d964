"""A batched rtnetlink writer for the frequent changes: bridge FDB entries on
VXLAN devices and attachments (a device's master, MTU and up flag).

pyroute2 sends one request and waits for its answer, about 2 ms a change; a
host that learns 200 remote ports needs hundreds of them.  This writer packs
many requests, each with ``NLM_F_REQUEST | NLM_F_ACK`` and its own sequence
number, into few ``sendmsg`` calls.  The kernel handles the requests of one
call in order, one after the other, and answers every one (a failing request
does not stop the rest), so a batch behaves like the same requests sent one
by one.  The answers are then read and matched to their requests by sequence
number: every refused request gets its own :class:`Refusal`.

The socket asks for capped acknowledgements (the request is not echoed back)
with extended acks (the kernel's error text), and for a large receive buffer
so that the answers of a whole batch fit.  If answers were dropped all the
same (``ENOBUFS``), the requests without an answer are reported as refused
with that reason: their outcome is unknown and the next observe tells.

The socket lives in the network namespace current when it is created.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_CREATE, NLM_F_APPEND = 0x400, 0x800
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # in an acknowledgement's header
NLMSGERR_ATTR_MSG = 1
RTM_NEWLINK, RTM_NEWNEIGH, RTM_DELNEIGH = 16, 28, 29
IFLA_MTU, IFLA_MASTER, IFLA_GROUP = 4, 10, 27
NDA_DST, NDA_LLADDR = 1, 2
AF_UNSPEC, AF_BRIDGE = 0, 7
IFF_UP = 0x1
NTF_SELF = 0x2
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK = 10, 11
SO_RCVBUFFORCE = 33

RCVBUF = 8 << 20  # bytes the kernel may queue for us: answers of a batch
ANSWER_COST = 2048  # upper estimate of one queued answer (skb truesize)
BATCH_BYTES = 32 << 10  # requests per sendmsg, at most (well under SO_SNDBUF)
ANSWER_TIMEOUT_MS = 10_000  # the kernel answers within sendmsg; never hang

NLMSGHDR = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
NDMSG = struct.Struct("=BxxxiHBB")
RTATTR = struct.Struct("=HH")
U32 = struct.Struct("=I")
I32 = struct.Struct("=i")


@dataclass(frozen=True, slots=True)
class Request:
    """One rtnetlink request without its header (the writer adds it)."""

    msg_type: int
    flags: int
    body: bytes

    def encode(self, seq: int) -> bytes:
        length = NLMSGHDR.size + len(self.body)
        return NLMSGHDR.pack(length, self.msg_type, self.flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0) + self.body


@dataclass(frozen=True, slots=True)
class Refusal:
    """The kernel's answer to a request it refused (or whose answer was lost)."""

    code: int
    message: str

    def describe(self) -> str:
        return f"netlink error {self.code}: {self.message}"


def fdb_request(op: Literal["append", "del"], ifindex: int, mac: str, dst: str) -> Request:
    """``bridge fdb append|del MAC dev IFINDEX dst DST`` (self, permanent):
    on a VXLAN device, frames for ``mac`` go to ``dst``; ``append`` adds one
    more destination for the same MAC (head-end replication for 00:..:00)."""
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    body = NDMSG.pack(AF_BRIDGE, ifindex, NUD_NOARP | NUD_PERMANENT, NTF_SELF, 0)
    body += _attr(NDA_LLADDR, bytes.fromhex(mac.replace(":", "")))
    body += _attr(NDA_DST, socket.inet_pton(family, dst))
    if op == "append":
        return Request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND, body)
    return Request(RTM_DELNEIGH, 0, body)


def link_set_request(ifindex: int, master: int | None = None, mtu: int | None = None,
                     up: bool | None = None, group: int | None = None) -> Request:
    """``ip link set dev IFINDEX [master M | nomaster] [mtu N] [up | down]
    [group G]``: ``master=0`` detaches; ``None`` leaves that property alone."""
    change = 0 if up is None else IFF_UP
    flags = IFF_UP if up else 0
    body = IFINFOMSG.pack(AF_UNSPEC, 0, ifindex, flags, change)
    if mtu is not None:
        body += _attr(IFLA_MTU, U32.pack(mtu))
    if master is not None:
        body += _attr(IFLA_MASTER, U32.pack(master))
    if group is not None:
        body += _attr(IFLA_GROUP, U32.pack(group))
    return Request(RTM_NEWLINK, 0, body)


def _attr(kind: int, value: bytes) -> bytes:
    length = RTATTR.size + len(value)
    return RTATTR.pack(length, kind) + value + b"\0" * (-length % 4)


class RtnlWriter:
    """One raw NETLINK_ROUTE socket for batched requests."""

    def __init__(self, rcvbuf: int = RCVBUF, batch: int | None = None) -> None:
        """``batch``: requests per sendmsg, at most; by default as many as
        the granted receive buffer surely holds the answers of."""
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            self._sock.bind((0, 0))
            _enable(self._sock, SOL_NETLINK, NETLINK_CAP_ACK)
            _enable(self._sock, SOL_NETLINK, NETLINK_EXT_ACK)
            self.rcvbuf = _grow_rcvbuf(self._sock, rcvbuf)
            self._sock.setblocking(False)
        except BaseException:
            self._sock.close()
            raise
        self._batch_size = batch or max(1, self.rcvbuf // ANSWER_COST)
        self._seq = 0
        self._buf = bytearray(1 << 16)
        self._poll = select.poll()
        self._poll.register(self._sock, select.POLLIN)

    def close(self) -> None:
        self._sock.close()

    def send(self, requests: Sequence[Request]) -> list[Refusal | None]:
        """Send all ``requests`` in order, in few system calls; the answer to
        each, in the same order: None (done) or the kernel's refusal."""
        answers: list[Refusal | None] = []
        start = 0
        while start < len(requests):
            chunk: list[bytes] = []
            seqs: list[int] = []
            size = 0
            for request in requests[start:start + self._batch_size]:
                seq = self._next_seq()
                data = request.encode(seq)
                if chunk and size + len(data) > BATCH_BYTES:
                    break
                chunk.append(data)
                seqs.append(seq)
                size += len(data)
            answers += self._exchange(b"".join(chunk), seqs)
            start += len(seqs)
        return answers

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1  # never 0: the kernel's own messages use 0
        return self._seq

    def _exchange(self, data: bytes, seqs: list[int]) -> list[Refusal | None]:
        """Send one chunk, then read its answers.  The kernel answers while it
        handles the send, so they are queued (or dropped) by the time it
        returns; the bounded wait below is only a guard against a hang."""
        self._sock.send(data)
        pending = set(seqs)
        got: dict[int, Refusal | None] = {}
        lost: Refusal | None = None
        while pending:
            try:
                size = self._sock.recv_into(self._buf)
            except BlockingIOError:
                if lost is not None or not self._poll.poll(ANSWER_TIMEOUT_MS):
                    break  # all that was queued has been read
                continue
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                lost = Refusal(errno.ENOBUFS, "answer lost: netlink receive buffer overflow "
                               f"({self.rcvbuf} bytes); outcome unknown until the next observe")
                continue
            for seq, answer in decode_answers(bytes(self._buf[:size])):
                if seq in pending:
                    pending.discard(seq)
                    got[seq] = answer
        missing = lost or Refusal(errno.ETIMEDOUT, f"no answer from the kernel within {ANSWER_TIMEOUT_MS} ms")
        return [got[seq] if seq in got else missing for seq in seqs]


def decode_answers(data: bytes) -> list[tuple[int, Refusal | None]]:
    """(sequence number, None or refusal) of every acknowledgement in
    ``data`` (what one read from the socket returned); other messages are
    skipped."""
    out = []
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, flags, seq, _pid = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size:
            raise OSError(errno.EPROTO, "malformed netlink message")
        start, end = offset + NLMSGHDR.size, offset + length
        offset += (length + 3) & ~3
        if kind != NLMSG_ERROR or end - start < I32.size:
            continue
        (code,) = I32.unpack_from(data, start)
        out.append((seq, _refusal(data, start, end, flags, -code) if code else None))
    return out


def _refusal(data: bytes, start: int, end: int, flags: int, code: int) -> Refusal:
    """The error code and, when the kernel says more (extended ack), its text."""
    text = ""
    if flags & NLM_F_ACK_TLVS:
        inner = start + I32.size
        if flags & NLM_F_CAPPED:
            tlvs = inner + NLMSGHDR.size
        else:
            (inner_length,) = U32.unpack_from(data, inner)
            tlvs = inner + ((inner_length + 3) & ~3)
        text = _ext_ack_message(data, tlvs, end)
    strerror = os.strerror(code)
    return Refusal(code, f"{strerror} ({text})" if text else strerror)


def _ext_ack_message(data: bytes, pos: int, end: int) -> str:
    while pos + RTATTR.size <= end:
        length, kind = RTATTR.unpack_from(data, pos)
        if length < RTATTR.size:
            break
        if kind == NLMSGERR_ATTR_MSG:
            return data[pos + RTATTR.size:pos + length].split(b"\0", 1)[0].decode("utf-8", "replace")
        pos += (length + 3) & ~3
    return ""


def _enable(sock: socket.socket, level: int, option: int) -> None:
    try:
        sock.setsockopt(level, option, 1)
    except OSError:
        pass  # an older kernel: full acks, no error text; still correct


def _grow_rcvbuf(sock: socket.socket, size: int) -> int:
    """Ask for ``size`` bytes of receive buffer (past ``rmem_max`` as root);
    returns what the kernel granted."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
