"""One gratuitous ARP: an ARP request for an address of our own, sent from
a device of the current network namespace to the broadcast address, so the
hosts and switches of its network learn where that address lives now (a
floating IP that moved here).  The form ``arping -U`` sends: sender and
target IP both the address, target MAC zero.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARP_REQUEST = 1
BROADCAST = b"\xff" * 6
_ARP = struct.Struct("!HHBBH6s4s6s4s")


def send_garp(dev: str, ip: str) -> None:
    """OSError when the device is missing or down (ENODEV, ENETDOWN)."""
    addr = ipaddress.IPv4Address(ip).packed
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((dev, ETH_P_ARP))
        mac = sock.getsockname()[4]
        sock.send(garp_frame(mac, addr))


def garp_frame(mac: bytes, addr: bytes) -> bytes:
    """The Ethernet frame: broadcast, from ``mac``, ARP request for ``addr``."""
    header = BROADCAST + mac + struct.pack("!H", ETH_P_ARP)
    return header + _ARP.pack(1, ETH_P_IP, 6, 4, ARP_REQUEST, mac, addr, b"\0" * 6, addr)
