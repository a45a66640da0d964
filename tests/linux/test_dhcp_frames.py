"""The DHCP responder's frames, without sockets: a request that comes again
with a new transaction id is answered from the reply kept for it, which is
byte for byte the reply made afresh (checksums included); a changed port,
another source MAC or another request gets its own; boots are still told."""

from __future__ import annotations

import dataclasses
import socket
import struct
from typing import Any

from overcast.linux.dhcp_responder import Event, Responder, checksum, encode_frame
from overcast.services import dhcp

MAC = "fa:16:3e:00:00:05"
CONFIG = dhcp.PortConfig(mac=MAC, ip="10.0.0.5", prefixlen=24, server_ip="10.0.0.2",
                         server_mac="fa:16:3e:ff:ff:fe", router="10.0.0.1", host_name="vm5",
                         mtu=1450)
PARAMS = (dhcp.PARAMETERS, bytes([1, 3, 6, 12, 15, 26, 121]))


def frame(kind: int, xid: int, *options: tuple[int, bytes], secs: int = 0, src: str = MAC) -> bytes:
    """A client's broadcast frame: Ethernet, IPv4 (0.0.0.0 -> 255.255.255.255), UDP 68 -> 67."""
    payload = bytearray(dhcp.client_message(kind, MAC, xid, options=options))
    payload[8:10] = struct.pack("!H", secs)
    udp = struct.pack("!HHHH", 68, 67, 8 + len(payload), 0) + bytes(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), b"\xff" * 4)
    return b"\xff" * 6 + bytes.fromhex(src.replace(":", "")) + b"\x08\x00" + ip + udp


class Sock:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)


def responder(configs: dict[str, dhcp.PortConfig], events: list[Event] | None = None
              ) -> tuple[Responder, Sock]:
    got = events if events is not None else []
    return Responder(lambda ifname, mac: configs.get(mac), got.append), Sock()


def answer(r: Responder, sock: Sock, data: bytes) -> bytes | None:
    before = len(sock.sent)
    r._frame("tap0", sock, data)  # type: ignore[arg-type]
    return sock.sent[-1] if len(sock.sent) > before else None


def fresh(data: bytes, config: dhcp.PortConfig) -> bytes | None:
    """The reply of a responder that has seen nothing, for a config that has answered nothing."""
    r, sock = responder({MAC: dataclasses.replace(config)})
    return answer(r, sock, data)


def udp_sum_ok(reply: bytes) -> bool:
    ip, udp = reply[14:34], reply[34:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(udp))
    return checksum(pseudo + udp) == 0 and checksum(ip) == 0


def test_a_repeated_request_is_answered_with_the_fresh_reply_and_its_own_id() -> None:
    r, sock = responder({MAC: dataclasses.replace(CONFIG)})
    first = answer(r, sock, frame(dhcp.DISCOVER, 1, PARAMS))
    for xid, secs in ((2, 0), (0xFFFFFFFF, 7), (0, 3), (0x12345678, 65535)):
        data = frame(dhcp.DISCOVER, xid, PARAMS, secs=secs)
        again = answer(r, sock, data)
        assert again is not None and first is not None
        assert again == fresh(data, CONFIG), xid
        assert dhcp.parse(again[42:]).xid == xid and udp_sum_ok(again)
    assert len(r._remembered) == 1  # one request (its id and secs aside), one reply kept
    request = frame(dhcp.REQUEST, 9, PARAMS, (dhcp.REQUESTED_IP, socket.inet_aton(CONFIG.ip)))
    acked = answer(r, sock, request)
    assert acked is not None and acked == fresh(request, CONFIG)
    assert dhcp.parse(acked[42:]).message_type == dhcp.ACK


def test_a_changed_port_another_source_mac_or_another_request_get_their_own() -> None:
    configs = {MAC: dataclasses.replace(CONFIG)}
    r, sock = responder(configs)
    answer(r, sock, frame(dhcp.DISCOVER, 1, PARAMS))
    configs[MAC] = dataclasses.replace(CONFIG, ip="10.0.0.9")  # the port's address changed
    moved = answer(r, sock, frame(dhcp.DISCOVER, 2, PARAMS))
    assert moved is not None and dhcp.parse(moved[42:]).yiaddr == "10.0.0.9"
    # the same payload from another MAC (chaddr is the port's): not answered
    assert answer(r, sock, frame(dhcp.DISCOVER, 3, PARAMS, src="fa:16:3e:00:00:66")) is None
    other = answer(r, sock, frame(dhcp.DISCOVER, 4, (dhcp.PARAMETERS, bytes([3, 1]))))
    assert other is not None and other == fresh(frame(dhcp.DISCOVER, 4, (dhcp.PARAMETERS, bytes([3, 1]))),
                                               configs[MAC])
    configs.clear()  # the port is gone: silence, even for a request answered before
    assert answer(r, sock, frame(dhcp.DISCOVER, 5, PARAMS)) is None


def test_boots_are_told_once_and_again_after_a_release_from_kept_replies_too() -> None:
    events: list[Event] = []
    r, sock = responder({MAC: dataclasses.replace(CONFIG)}, events)
    for xid in (1, 2, 3):
        answer(r, sock, frame(dhcp.DISCOVER, xid, PARAMS))
    assert [e.kind for e in events] == ["discover"]
    release = frame(dhcp.RELEASE, 4, (dhcp.SERVER_ID, socket.inet_aton(CONFIG.server_ip)))
    assert answer(r, sock, release) is None
    answer(r, sock, frame(dhcp.DISCOVER, 5, PARAMS))  # answered from the kept reply
    assert [e.kind for e in events] == ["discover", "release", "discover"]


def test_a_kept_reply_is_the_encoded_decision() -> None:
    """The kept frame is what encode_frame makes of the core's decision."""
    config = dataclasses.replace(CONFIG)
    data = frame(dhcp.DISCOVER, 77, PARAMS)
    decision: Any = dhcp.decide(dhcp.parse(data[42:]), config)
    assert fresh(data, config) == encode_frame(config, decision.dest, decision.reply)
