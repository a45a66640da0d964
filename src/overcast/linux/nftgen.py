"""The nftables generation of a network namespace (``NFT_MSG_GETGEN``).

Every committed nftables transaction in a namespace, by anyone, moves its
generation id by one.  So a listing taken while the generation stayed put
still describes the kernel as long as the generation has not moved since:
the agent's observe reuses its last listing of the firewall's tables then
(``NetlinkKernel.nft_view``) instead of listing every element again (432 ms
at 10,000 elements), and follows its own batch when that batch moved the
generation by exactly one from there (``linux/nft_view.py``).  One request
and one answer on a raw ``NETLINK_NETFILTER`` socket, with a timeout.
"""

from __future__ import annotations

import os
import socket
import struct

from overcast.linux.devices import entered_netns

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWGEN, NFT_MSG_GETGEN = 15, 16
NFTA_GEN_ID = 1
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLA_TYPE_MASK = 0x3FFF
TIMEOUT = 5.0  # seconds: a lost answer raises TimeoutError instead of blocking
_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, res_id
_NLA = struct.Struct("=HH")


class Generation:
    """Reads the generation of the namespace the socket was made in."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._sock.bind((0, 0))
            self._sock.settimeout(TIMEOUT)
        except OSError:
            self._sock.close()
            raise
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def read(self) -> int:
        self._seq += 1
        body = _NFGEN.pack(socket.AF_UNSPEC, 0, 0)
        kind = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN
        self._sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST, self._seq, 0) + body)
        while True:
            data = self._sock.recv(1 << 16)
            found = parse(data, self._seq)
            if found is not None:
                return found


class LazyGeneration:
    """The generation of namespace ``netns`` (None: the current one), read
    through a socket made there on first use and made again after a
    failure; None when it cannot be read (then the caller lists)."""

    def __init__(self, netns: str | None) -> None:
        self._netns = netns
        self._gen: Generation | None = None

    def read(self) -> int | None:
        try:
            if self._gen is None:
                with entered_netns(self._netns):
                    self._gen = Generation()
            return self._gen.read()
        except (OSError, ValueError, struct.error):
            self.close()
            return None

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None


def parse(data: bytes, seq: int) -> int | None:
    """The generation id in the answer to request ``seq`` among the netlink
    messages ``data``; None when they do not hold it.  An error answer
    raises OSError; a malformed message raises ValueError."""
    at = 0
    while at + _HDR.size <= len(data):
        length, kind, _flags, got, _pid = _HDR.unpack_from(data, at)
        if length < _HDR.size or at + length > len(data):
            raise ValueError("malformed netlink message")
        if got == seq and kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, at + _HDR.size)
            if err:
                raise OSError(-err, os.strerror(-err))
        elif got == seq and kind == NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN:
            attr = at + _HDR.size + _NFGEN.size
            while attr + _NLA.size <= at + length:
                size, attr_type = _NLA.unpack_from(data, attr)
                if size < _NLA.size:
                    raise ValueError("malformed netlink attribute")
                if attr_type & NLA_TYPE_MASK == NFTA_GEN_ID and size >= _NLA.size + 4:
                    return int(struct.unpack_from("!I", data, attr + _NLA.size)[0])
                attr += (size + 3) & ~3
            raise ValueError("NFT_MSG_NEWGEN without NFTA_GEN_ID")
        at += (length + 3) & ~3
    return None
