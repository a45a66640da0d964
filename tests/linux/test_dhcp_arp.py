"""The DHCP responder's ARP answer for the server id (pure frame functions)."""

from __future__ import annotations

import struct

from overcast.linux.dhcp_responder import arp_reply, decode_arp_request
from overcast.services import dhcp

VM_MAC, SERVER_MAC = "fa:16:3e:00:00:05", "fa:16:3f:00:00:01"


def request(sender: str = VM_MAC, frame_src: str = VM_MAC, op: int = 1) -> bytes:
    mac = bytes.fromhex(sender.replace(":", ""))
    eth = b"\xff" * 6 + bytes.fromhex(frame_src.replace(":", "")) + b"\x08\x06"
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + bytes([10, 0, 0, 5])
    return eth + arp + b"\x00" * 6 + bytes([169, 254, 169, 254]) + b"\x00" * 18


def test_a_request_is_decoded_and_answered_with_the_servers_mac() -> None:
    assert decode_arp_request(request()) == (VM_MAC, "10.0.0.5", "169.254.169.254")
    config = dhcp.PortConfig(mac=VM_MAC, ip="10.0.0.5", prefixlen=24, server_ip="169.254.169.254",
                             server_mac=SERVER_MAC)
    reply = arp_reply(config, VM_MAC, "10.0.0.5")
    assert reply[:6] == bytes.fromhex(VM_MAC.replace(":", ""))  # to the asker
    assert reply[6:12] == reply[22:28] == bytes.fromhex(SERVER_MAC.replace(":", ""))
    assert reply[20:22] == b"\x00\x02"  # a reply
    assert reply[28:32] == bytes([169, 254, 169, 254]) and reply[38:42] == bytes([10, 0, 0, 5])


def test_anything_else_is_not_a_request_to_answer() -> None:
    assert decode_arp_request(request(op=2)) is None  # a reply
    assert decode_arp_request(request(sender="fa:16:3e:00:00:99")) is None  # forged sender MAC
    assert decode_arp_request(request()[:30]) is None  # truncated
    assert decode_arp_request(b"") is None
