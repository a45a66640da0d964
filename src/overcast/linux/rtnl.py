"""A small read-only rtnetlink dump reader, for :meth:`NetlinkKernel.observe`.

pyroute2 decodes every attribute of every message (statistics, per-family
configuration, ...), which costs about a millisecond per link.  Observe needs a
handful of attributes, so this reader asks the kernel for an RTM_GETLINK and an
RTM_GETNEIGH (AF_BRIDGE, the FDB) dump on a raw NETLINK_ROUTE socket and
decodes only those.  It never writes: FDB entries and attachments go through
the batched writer (``overcast.linux.rtnl_write``), devices through pyroute2.

A dump interrupted by a concurrent change (``NLM_F_DUMP_INTR``) is read to its
end and then reported as :class:`DumpInterrupted`, so the caller can retry.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Collection, Iterator

from overcast.plan.raw import FdbRow, Link

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP, NLM_F_DUMP_INTR = 0x1, 0x300, 0x10
RTM_NEWLINK, RTM_GETLINK, RTM_NEWNEIGH, RTM_GETNEIGH = 16, 18, 28, 30
IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_AF_SPEC = 3, 4, 10, 18, 20, 26
IFLA_GROUP = 27
WANTED_LINK_ATTRS = frozenset((IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_GROUP,
                               IFLA_AF_SPEC))
AF_INET6, IFLA_INET6_CONF, DEVCONF_DISABLE_IPV6 = 10, 2, 26  # net.ipv6.conf.<dev>.disable_ipv6
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_VXLAN_ID, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING, IFLA_VXLAN_PORT = 1, 4, 7, 15
IFLA_BR_MCAST_SNOOPING = 23
IFLA_BR_NF_CALL_IPTABLES = 36  # present only with br_netfilter (CONFIG_BRIDGE_NETFILTER)
IFLA_BR_NF_CALL_IP6TABLES = 37
NDA_DST, NDA_LLADDR = 1, 2
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
IFF_UP = 0x1
AF_BRIDGE = 7
RECV_BUFFER = 1 << 16  # the kernel never puts more than 32 KiB in one dump message

NLMSGHDR = struct.Struct("=IHHII")
IFINFOMSG = struct.Struct("=BxHiII")
NDMSG = struct.Struct("=BxxxiHBB")
RTATTR = struct.Struct("=HH")
U32 = struct.Struct("=I")
BE16 = struct.Struct("!H")


class DumpInterrupted(Exception):
    """The kernel changed the table while dumping it: the dump may be torn."""


class RtnlReader:
    """One raw NETLINK_ROUTE socket, in the namespace current when created."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0
        self._buf = bytearray(RECV_BUFFER)

    def close(self) -> None:
        self._sock.close()

    def links(self) -> list[Link]:
        messages = list(self._dump(RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0)))
        return [_link(buf, start, end) for buf, start, end in messages]

    def fdb(self, ifindexes: Collection[int]) -> list[FdbRow]:
        """The FDB rows of the devices ``ifindexes`` (others are skipped by
        their header, without decoding)."""
        rows = []
        for buf, start, end in list(self._dump(RTM_GETNEIGH, NDMSG.pack(AF_BRIDGE, 0, 0, 0, 0))):
            _family, ifindex, _state, flags, _type = NDMSG.unpack_from(buf, start)
            if ifindex in ifindexes:
                rows.append(_fdb_row(buf, start, end, ifindex, flags))
        return rows

    def _dump(self, msg_type: int, body: bytes) -> Iterator[tuple[bytes, int, int]]:
        """(buffer, payload start, message end) of every message of one dump.
        Callers read the whole dump before decoding it, so a decoding error
        never leaves a dump half read (the next one would fail with EBUSY)."""
        self._seq += 1
        seq = self._seq
        header = NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
        self._sock.sendto(header + body, (0, 0))
        interrupted = False
        while True:
            size = self._sock.recv_into(self._buf)
            data = bytes(self._buf[:size])
            offset = 0
            while offset + NLMSGHDR.size <= size:
                length, kind, flags, msg_seq, _pid = NLMSGHDR.unpack_from(data, offset)
                if length < NLMSGHDR.size:
                    raise OSError(errno.EPROTO, "malformed netlink message")
                start, end = offset + NLMSGHDR.size, offset + length
                offset += (length + 3) & ~3
                if msg_seq != seq:
                    continue  # left over from an earlier, abandoned dump
                interrupted = interrupted or bool(flags & NLM_F_DUMP_INTR)
                if kind == NLMSG_DONE:
                    if interrupted:
                        raise DumpInterrupted()
                    return
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, start)
                    raise OSError(-code, os.strerror(-code))
                yield data, start, end


def _attrs(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(type, value start, value end) of the attributes in buf[start:end]."""
    while start + 4 <= end:
        length, kind = RTATTR.unpack_from(buf, start)
        if length < 4:
            return
        yield kind & NLA_TYPE_MASK, start + 4, start + length
        start += (length + 3) & ~3


def _str(buf: bytes, start: int, end: int) -> str:
    return buf[start:end].split(b"\0", 1)[0].decode("utf-8", "replace")


def _link(buf: bytes, start: int, end: int) -> Link:
    """The walk over the ~45 top-level attributes of a link is inlined: it is
    most of observe's time."""
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(buf, start)
    link = Link(index=index, up=bool(flags & IFF_UP))
    pos, unpack = start + IFINFOMSG.size, RTATTR.unpack_from
    while pos + 4 <= end:
        length, kind = unpack(buf, pos)
        if length < 4:
            break
        kind &= NLA_TYPE_MASK
        if kind in WANTED_LINK_ATTRS:
            _link_attr(link, kind, buf, pos + 4, pos + length)
        pos += (length + 3) & ~3
    return link


def _link_attr(link: Link, kind: int, buf: bytes, vstart: int, vend: int) -> None:
    if kind == IFLA_IFNAME:
        link.name = _str(buf, vstart, vend)
    elif kind == IFLA_MTU:
        (link.mtu,) = U32.unpack_from(buf, vstart)
    elif kind == IFLA_MASTER:
        (link.master,) = U32.unpack_from(buf, vstart)
    elif kind == IFLA_GROUP:
        (link.group,) = U32.unpack_from(buf, vstart)
    elif kind == IFLA_IFALIAS:
        link.alias = _str(buf, vstart, vend)
    elif kind == IFLA_LINKINFO:
        _linkinfo(link, buf, vstart, vend)
    elif kind == IFLA_AF_SPEC:
        link.ipv6 = _ipv6_enabled(buf, vstart, vend)


def _linkinfo(link: Link, buf: bytes, start: int, end: int) -> None:
    data = None
    for kind, vstart, vend in _attrs(buf, start, end):
        if kind == IFLA_INFO_KIND:
            link.kind = _str(buf, vstart, vend)
        elif kind == IFLA_INFO_DATA:
            data = (vstart, vend)
    if link.kind == "vxlan" and data is not None:
        _vxlan(link, buf, *data)
    elif link.kind == "bridge" and data is not None:
        for kind, vstart, _vend in _attrs(buf, *data):
            if kind == IFLA_BR_MCAST_SNOOPING:
                link.mcast_snooping = bool(buf[vstart])
            elif kind == IFLA_BR_NF_CALL_IPTABLES:
                link.nf_call_iptables = bool(buf[vstart])
            elif kind == IFLA_BR_NF_CALL_IP6TABLES:
                link.nf_call_ip6tables = bool(buf[vstart])


def _ipv6_enabled(buf: bytes, start: int, end: int) -> bool:
    """From IFLA_AF_SPEC: AF_INET6 -> IFLA_INET6_CONF, an array of s32 indexed
    by DEVCONF_*; no AF_INET6 part means no IPv6 on this device."""
    for family, fstart, fend in _attrs(buf, start, end):
        if family != AF_INET6:
            continue
        for kind, vstart, vend in _attrs(buf, fstart, fend):
            if kind == IFLA_INET6_CONF and vend - vstart >= 4 * (DEVCONF_DISABLE_IPV6 + 1):
                (disabled,) = struct.unpack_from("=i", buf, vstart + 4 * DEVCONF_DISABLE_IPV6)
                return bool(disabled == 0)
    return False


def _vxlan(link: Link, buf: bytes, start: int, end: int) -> None:
    link.vxlan_data = True
    for kind, vstart, vend in _attrs(buf, start, end):
        if kind == IFLA_VXLAN_ID:
            (link.vni,) = U32.unpack_from(buf, vstart)
        elif kind == IFLA_VXLAN_LOCAL and vend - vstart == 4:
            link.local_ip = socket.inet_ntop(socket.AF_INET, buf[vstart:vend])
        elif kind == IFLA_VXLAN_PORT:
            (link.port,) = BE16.unpack_from(buf, vstart)
        elif kind == IFLA_VXLAN_LEARNING:
            link.learning = bool(buf[vstart])


def _fdb_row(buf: bytes, start: int, end: int, ifindex: int, flags: int) -> FdbRow:
    mac, dst = "", None
    for kind, vstart, vend in _attrs(buf, start + NDMSG.size, end):
        if kind == NDA_LLADDR:
            mac = buf[vstart:vend].hex(":")
        elif kind == NDA_DST:
            family = socket.AF_INET if vend - vstart == 4 else socket.AF_INET6
            dst = socket.inet_ntop(family, buf[vstart:vend])
    return FdbRow(ifindex, flags, mac, dst)
