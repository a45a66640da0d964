"""Message encoding and answer decoding of the batched rtnetlink writer (no
root): every request is read back with pyroute2's own decoder, and the
answers are built by hand as the kernel lays them out."""

from __future__ import annotations

import errno
import struct

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from overcast.linux.rtnl_write import (
    NLM_F_ACK,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_REQUEST,
    RTM_DELNEIGH,
    RTM_NEWLINK,
    RTM_NEWNEIGH,
    Refusal,
    decode_answers,
    fdb_request,
    link_set_request,
)

AF_BRIDGE, NTF_SELF, NUD_NOARP, NUD_PERMANENT, IFF_UP = 7, 0x2, 0x40, 0x80, 0x1
NLMSG_ERROR, NLMSG_DONE, NLM_F_CAPPED, NLM_F_ACK_TLVS = 2, 3, 0x100, 0x200


def decoded(cls: type, data: bytes) -> dict[str, object]:
    msg = cls(data)
    msg.decode()
    return {"header": msg["header"], **{name: msg[name] for name, _fmt in msg.fields},
            **{name: value for name, value in msg["attrs"]}}


def test_fdb_append_is_what_bridge_fdb_append_sends() -> None:
    data = fdb_request("append", 7, "FA:16:3E:00:00:02", "198.18.0.2").encode(41)
    msg = decoded(ndmsg, data)
    header = msg["header"]
    assert header["type"] == RTM_NEWNEIGH and header["sequence_number"] == 41  # type: ignore[index]
    assert header["flags"] == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND  # type: ignore[index]
    assert header["length"] == len(data)  # type: ignore[index]
    assert (msg["family"], msg["ifindex"], msg["state"], msg["flags"]) == (
        AF_BRIDGE, 7, NUD_NOARP | NUD_PERMANENT, NTF_SELF)
    assert msg["NDA_LLADDR"] == "fa:16:3e:00:00:02"
    assert msg["NDA_DST"] == "198.18.0.2"
    assert len(data) % 4 == 0


def test_fdb_del_carries_mac_and_destination() -> None:
    msg = decoded(ndmsg, fdb_request("del", 9, "00:00:00:00:00:00", "fd00::3").encode(2))
    assert msg["header"]["type"] == RTM_DELNEIGH  # type: ignore[index]
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK  # type: ignore[index]
    assert (msg["ifindex"], msg["NDA_LLADDR"], msg["NDA_DST"]) == (9, "00:00:00:00:00:00", "fd00::3")


def test_link_set_attaches_sets_mtu_and_up() -> None:
    msg = decoded(ifinfmsg, link_set_request(12, master=3, mtu=1450, up=True).encode(5))
    assert msg["header"]["type"] == RTM_NEWLINK  # type: ignore[index]
    assert msg["header"]["flags"] == NLM_F_REQUEST | NLM_F_ACK  # type: ignore[index]  # no CREATE: only an existing device
    assert (msg["index"], msg["flags"], msg["change"]) == (12, IFF_UP, IFF_UP)
    assert (msg["IFLA_MASTER"], msg["IFLA_MTU"]) == (3, 1450)


def test_link_set_down_detach_and_leave_alone() -> None:
    down = decoded(ifinfmsg, link_set_request(12, master=3, up=False).encode(6))
    assert (down["flags"], down["change"], down["IFLA_MASTER"]) == (0, IFF_UP, 3)
    assert "IFLA_MTU" not in down
    detach = decoded(ifinfmsg, link_set_request(12, master=0).encode(7))
    assert (detach["flags"], detach["change"], detach["IFLA_MASTER"]) == (0, 0, 0)


def ack(seq: int, code: int = 0, text: str = "", capped: bool = True, request: bytes = b"") -> bytes:
    """An NLMSG_ERROR answer as the kernel writes it: error, the request's
    header (and body unless capped), then extended-ack attributes."""
    inner = request or struct.pack("=IHHII", 16, RTM_NEWNEIGH, 5, seq, 0)
    body = struct.pack("=i", -code) + (inner[:16] if capped else inner)
    flags = NLM_F_CAPPED if capped else 0
    if text:
        raw = text.encode() + b"\0"
        body += struct.pack("=HH", 4 + len(raw), 1) + raw + b"\0" * (-len(raw) % 4)
        flags |= NLM_F_ACK_TLVS
    return struct.pack("=IHHII", 16 + len(body), NLMSG_ERROR, flags, seq, 4242) + body


def test_answers_are_matched_by_sequence_number_with_the_kernels_text() -> None:
    request = fdb_request("append", 7, "fa:16:3e:00:00:02", "198.18.0.2").encode(3)
    data = (ack(1) + ack(2, errno.ENODEV, "Unknown device ifindex")
            + ack(3, errno.EOPNOTSUPP, "no slaves here", capped=False, request=request)
            + struct.pack("=IHHII", 20, NLMSG_DONE, 0, 9, 0) + b"\0" * 4 + ack(4, errno.EEXIST))
    assert decode_answers(data) == [
        (1, None),
        (2, Refusal(errno.ENODEV, "No such device (Unknown device ifindex)")),
        (3, Refusal(errno.EOPNOTSUPP, "Operation not supported (no slaves here)")),
        (4, Refusal(errno.EEXIST, "File exists")),
    ]
    assert Refusal(errno.ENODEV, "No such device").describe() == "netlink error 19: No such device"
