"""Conntrack entries through ctnetlink (``NETLINK_NETFILTER``), raw: a dump of
the entries of given zones, and their deletion by tuple and zone.

Only what the firewall's sweep needs (``docs/firewall.md``, "What a rule
change does to existing connections"): each entry's zone and original
tuple.  One dump of the whole table serves all the zones asked for, and
each entry is kept only when its zone is one of them: ``CTA_ZONE`` in a
dump request filters only on newer kernels (older ones ignore it and return
every zone), so it is not relied on, and an entry of another zone is never
returned, so never deleted.  A delete names the zone too.  An entry already
gone (``ENOENT``: it timed out or was closed meanwhile) is not an error.

Every read has a timeout (``TIMEOUT``: a lost reply raises
``TimeoutError`` instead of blocking the agent), the receive buffer holds
the acks of a whole send (``SEND_CHUNK`` deletes), and an entry whose
attributes are malformed is skipped.  After any error the socket may still
carry the rest of a dump: its owner closes it and makes a new one
(``NetlinkKernel``).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Collection, Iterator, Sequence

from overcast.plan.firewall_admits import Flow

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 1, 2
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLA_F_NESTED, NLA_TYPE_MASK = 0x8000, 0x3FFF
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_ZONE = 1, 2, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_PROTO_ICMP = {4: (4, 5, 6), 6: (7, 8, 9)}  # (id, type, code) attributes per family
ICMP = {4: 1, 6: 58}
FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
VERSION: dict[int, int] = {int(socket.AF_INET): 4, int(socket.AF_INET6): 6}
RECV_BUFFER = 1 << 16  # bytes per read
SOCKET_BUFFER = 1 << 20  # SO_RCVBUF: 100 acks (each an error message quoting its request) fit many times
SEND_CHUNK = 100  # delete requests per send
TIMEOUT = 5.0  # seconds without a reply: the request failed

SO_RCVBUFFORCE = 33
NLMSGHDR = struct.Struct("=IHHII")
NFGENMSG = struct.Struct("=BBH")
NLATTR = struct.Struct("=HH")
BE16 = struct.Struct("!H")


class ConntrackError(OSError):
    """ctnetlink refused a request (not an entry that was already gone)."""


class Conntrack:
    """One NETLINK_NETFILTER socket, in the namespace current when created."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, SOCKET_BUFFER)
        except OSError:  # not CAP_NET_ADMIN: up to net.core.rmem_max
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        self._sock.settimeout(timeout)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def flows(self, zones: Collection[int]) -> list[Flow]:
        """The entries of ``zones`` (both families), original direction: one
        dump of the table, filtered here (module doc)."""
        wanted = frozenset(zones)
        if not wanted:
            return []
        body = NFGENMSG.pack(socket.AF_UNSPEC, 0, 0)
        seq = self._send([(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, body)])[0]
        out: list[Flow] = []
        for msg in self._replies({seq}, dump=True):
            flow = _flow(msg)
            if flow is not None and flow.zone in wanted:
                out.append(flow)
        return out

    def touching(self, address: str) -> list[Flow]:
        """Every entry (any zone) whose original or reply direction goes to
        ``address``: the flows a NAT to or from it made (its original tuple)."""
        body = NFGENMSG.pack(socket.AF_UNSPEC, 0, 0)
        seq = self._send([(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, body)])[0]
        wanted = str(ipaddress.ip_address(address))
        out: list[Flow] = []
        for msg in self._replies({seq}, dump=True):
            flow = _flow(msg)
            if flow is not None and wanted in (flow.dst, _reply_dst(msg)):
                out.append(flow)
        return out

    def delete(self, flows: Sequence[Flow]) -> int:
        """Delete ``flows`` (each by its original tuple in its zone); how
        many the kernel deleted (an entry already gone is skipped)."""
        deleted = 0
        for i in range(0, len(flows), SEND_CHUNK):
            chunk = flows[i:i + SEND_CHUNK]
            seqs = self._send([(IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, _delete_body(f))
                               for f in chunk])
            codes = dict(self._acks(set(seqs)))
            for seq, flow in zip(seqs, chunk, strict=True):
                code = codes.get(seq, 0)
                if code == 0:
                    deleted += 1
                elif code != errno.ENOENT:
                    raise ConntrackError(code, f"conntrack delete {flow.render()}: {os.strerror(code)}")
        return deleted

    # --- netlink --------------------------------------------------------------
    def _send(self, requests: list[tuple[int, int, bytes]]) -> list[int]:
        data, seqs = bytearray(), []
        for msg_type, flags, body in requests:
            self._seq += 1
            seqs.append(self._seq)
            data += NLMSGHDR.pack(NLMSGHDR.size + len(body), NFNL_SUBSYS_CTNETLINK << 8 | msg_type,
                                  flags, self._seq, 0) + body
        self._sock.sendall(bytes(data))
        return seqs

    def _messages(self) -> Iterator[tuple[int, int, int, bytes]]:
        """(type, flags, seq, payload) of the messages of one read."""
        buf = self._sock.recv(RECV_BUFFER)
        pos = 0
        while pos + NLMSGHDR.size <= len(buf):
            length, msg_type, flags, seq, _pid = NLMSGHDR.unpack_from(buf, pos)
            if length < NLMSGHDR.size:
                break
            yield msg_type, flags, seq, buf[pos + NLMSGHDR.size:pos + length]
            pos += (length + 3) & ~3

    def _replies(self, seqs: set[int], dump: bool) -> Iterator[bytes]:
        done = False
        while not done:
            for msg_type, _flags, seq, payload in list(self._messages()):
                if seq not in seqs:
                    continue
                if msg_type == NLMSG_DONE:
                    done = True
                elif msg_type == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise ConntrackError(code, f"conntrack dump: {os.strerror(code)}")
                    done = not dump
                else:
                    yield payload

    def _acks(self, seqs: set[int]) -> Iterator[tuple[int, int]]:
        waiting = set(seqs)
        while waiting:
            for msg_type, _flags, seq, payload in list(self._messages()):
                if msg_type == NLMSG_ERROR and seq in waiting:
                    waiting.discard(seq)
                    yield seq, -struct.unpack_from("=i", payload)[0]


def _attr(kind: int, value: bytes) -> bytes:
    length = NLATTR.size + len(value)
    return NLATTR.pack(length, kind) + value + b"\0" * (-length % 4)


def _nested(kind: int, *attrs: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, b"".join(attrs))


def attributes(buf: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """The netlink attributes of ``buf[start:end]``, type -> value (the last of a type)."""
    out: dict[int, bytes] = {}
    end = len(buf) if end is None else end
    pos = start
    while pos + NLATTR.size <= end:
        length, kind = NLATTR.unpack_from(buf, pos)
        if length < NLATTR.size:
            break
        out[kind & NLA_TYPE_MASK] = buf[pos + NLATTR.size:pos + length]
        pos += (length + 3) & ~3
    return out


def _flow(payload: bytes) -> Flow | None:
    """The zone and original tuple of one entry (None: not IPv4/IPv6, or an
    attribute missing or malformed: such an entry is never deleted)."""
    try:
        return _parsed(payload)
    except (IndexError, ValueError, struct.error):
        return None


def _parsed(payload: bytes) -> Flow | None:
    if len(payload) < NFGENMSG.size:
        return None
    family = payload[0]
    version = VERSION.get(family)
    if version is None:
        return None
    top = attributes(payload, NFGENMSG.size)
    zone = BE16.unpack(top[CTA_ZONE][:2])[0] if CTA_ZONE in top else 0
    tup = attributes(top.get(CTA_TUPLE_ORIG, b""))
    ip, proto = attributes(tup.get(CTA_TUPLE_IP, b"")), attributes(tup.get(CTA_TUPLE_PROTO, b""))
    src_attr, dst_attr = (CTA_IP_V4_SRC, CTA_IP_V4_DST) if version == 4 else (CTA_IP_V6_SRC, CTA_IP_V6_DST)
    if src_attr not in ip or dst_attr not in ip or CTA_PROTO_NUM not in proto:
        return None
    size = 4 if version == 4 else 16
    if len(ip[src_attr]) != size or len(ip[dst_attr]) != size:
        return None
    num = proto[CTA_PROTO_NUM][0]
    src, dst = (str(ipaddress.ip_address(ip[a])) for a in (src_attr, dst_attr))
    if num == ICMP[version]:
        id_, type_, code = CTA_PROTO_ICMP[version]
        if type_ not in proto:
            return None
        word = proto[type_][0] << 8 | proto.get(code, b"\0")[0]
        return Flow(zone, version, src, dst, num, word, _be16(proto.get(id_)))
    return Flow(zone, version, src, dst, num, _be16(proto.get(CTA_PROTO_SRC_PORT)),
                _be16(proto.get(CTA_PROTO_DST_PORT)))


def _reply_dst(payload: bytes) -> str:
    """The destination of an entry's reply direction ("" when it has none)."""
    try:
        top = attributes(payload, NFGENMSG.size)
        ip = attributes(attributes(top.get(CTA_TUPLE_REPLY, b"")).get(CTA_TUPLE_IP, b""))
        raw = ip.get(CTA_IP_V4_DST) or ip.get(CTA_IP_V6_DST)
        return str(ipaddress.ip_address(raw)) if raw and len(raw) in (4, 16) else ""
    except (IndexError, ValueError, struct.error):
        return ""


def _be16(value: bytes | None) -> int:
    if value is not None and len(value) < 2:
        raise ValueError("short 16-bit attribute")
    return BE16.unpack(value[:2])[0] if value else 0


def _delete_body(f: Flow) -> bytes:
    ip = _nested(CTA_TUPLE_IP, *(
        _attr(a, ipaddress.ip_address(v).packed)
        for a, v in zip((CTA_IP_V4_SRC, CTA_IP_V4_DST) if f.version == 4 else (CTA_IP_V6_SRC, CTA_IP_V6_DST),
                        (f.src, f.dst), strict=True)))
    fields = [_attr(CTA_PROTO_NUM, bytes([f.proto]))]
    if f.proto == ICMP[f.version]:
        id_, type_, code = CTA_PROTO_ICMP[f.version]
        fields += [_attr(id_, BE16.pack(f.dport)), _attr(type_, bytes([f.sport >> 8])),
                   _attr(code, bytes([f.sport & 0xFF]))]
    else:
        fields += [_attr(CTA_PROTO_SRC_PORT, BE16.pack(f.sport)),
                   _attr(CTA_PROTO_DST_PORT, BE16.pack(f.dport))]
    tup = _nested(CTA_TUPLE_ORIG, ip, _nested(CTA_TUPLE_PROTO, *fields))
    return NFGENMSG.pack(FAMILY[f.version], 0, 0) + tup + _attr(CTA_ZONE, BE16.pack(f.zone))
