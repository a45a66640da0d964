"""The DHCPv4 core: parsing, option encoding and the lease decisions, on bytes."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from overcast.services import dhcp
from overcast.services.dhcp import ACK, DECLINE, DISCOVER, INFORM, NAK, OFFER, RELEASE, REQUEST

MAC = "fa:16:3e:00:00:01"
CONFIG = dhcp.PortConfig(
    mac=MAC, ip="10.0.0.5", prefixlen=24, server_ip="10.0.0.2", server_mac="fa:16:3e:ff:ff:fe",
    router="10.0.0.1", dns_servers=("10.0.0.2",), domain_name="example.org", host_name="vm1",
    mtu=1450, lease_time=3600, routes=(("192.168.0.0/16", "10.0.0.254"),))
SERVER = (dhcp.SERVER_ID, bytes([10, 0, 0, 2]))

# The OFFER to a broadcast DISCOVER asking for 1, 3, 6, 15, 121 (checked by hand
# against RFC 2131 figure 1 and RFC 2132/3442), then padded to 300 bytes.
GOLDEN_OFFER = bytes.fromhex(
    "02 01 06 00"  # op BOOTREPLY, htype Ethernet, hlen 6, hops
    "12345678 0000 8000"  # xid, secs, flags: the client's broadcast bit
    "00000000 0a000005 00000000 00000000"  # ciaddr, yiaddr 10.0.0.5, siaddr, giaddr
    "fa163e000001 00000000000000000000"  # chaddr
) + bytes(192) + bytes.fromhex(  # sname, file
    "63825363"  # magic cookie
    "350102"  # 53 message type OFFER
    "36040a000002"  # 54 server id 10.0.0.2
    "330400000e10 3a0400000708 3b0400000c4e"  # 51 lease 3600, 58 T1 1800, 59 T2 3150
    "0104ffffff00 03040a000001 06040a000002"  # requested first: 1 mask, 3 router, 6 DNS
    "0f0b6578616d706c652e6f7267"  # 15 example.org
    "790c 10c0a8 0a0000fe 00 0a000001"  # 121: 192.168/16 via .254, default via .1
    "0c03766d31 1a0205aa 1c040a0000ff"  # then by code: 12 vm1, 26 MTU 1450, 28 broadcast
    "ff"  # END
)


def request(kind: int, *options: tuple[int, bytes], mac: str = MAC, ciaddr: str = "0.0.0.0",
            broadcast: bool = False) -> dhcp.Message:
    return dhcp.parse(dhcp.client_message(kind, mac, 0x12345678, ciaddr=ciaddr,
                                          broadcast=broadcast, options=options))


def ip(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def answer(message: dhcp.Message, config: dhcp.PortConfig | None = CONFIG) -> dhcp.Message:
    decision = dhcp.decide(message, config)
    assert decision.reply is not None
    return dhcp.parse(decision.reply)


def test_offer_golden_bytes() -> None:
    message = request(DISCOVER, (dhcp.PARAMETERS, bytes([1, 3, 6, 15, 121])), broadcast=True)
    decision = dhcp.decide(message, CONFIG)
    assert decision.reply == GOLDEN_OFFER.ljust(300, b"\x00")
    assert decision.dest == dhcp.Dest("255.255.255.255", "ff:ff:ff:ff:ff:ff")
    assert decision.event == "discover"


def test_parse_reads_the_header_and_options() -> None:
    message = request(REQUEST, (dhcp.REQUESTED_IP, ip("10.0.0.5")), SERVER,
                      (dhcp.CLIENT_ID, b"\x01\xfa\x16\x3e\x00\x00\x01"), (dhcp.HOST_NAME, b"vm1"),
                      (dhcp.MAX_SIZE, struct.pack("!H", 1500)), (dhcp.PARAMETERS, b"\x01\x03"))
    assert (message.op, message.xid, message.mac, message.message_type) == (1, 0x12345678, MAC, REQUEST)
    assert (message.requested_ip, message.server_id, message.host_name) == ("10.0.0.5", "10.0.0.2", "vm1")
    assert message.client_id == b"\x01\xfa\x16\x3e\x00\x00\x01"
    assert (message.max_size, message.parameters) == (1500, (1, 3))


def test_split_options_are_joined_and_overload_is_read() -> None:
    data = bytearray(dhcp.client_message(DISCOVER, MAC, 1, options=[(12, b"ab"), (12, b"cd"),
                                                                      (dhcp.OVERLOAD, b"\x01")]))
    data[108:112] = bytes([15, 1, ord("x"), 255])  # the file field holds option 15
    message = dhcp.parse(bytes(data))
    assert message.host_name == "abcd"
    assert message.option(15) == b"x"


@pytest.mark.parametrize(("data", "why"), [
    (b"", "shorter than"),
    (bytes(239), "shorter than"),
    (dhcp.client_message(DISCOVER, MAC, 1)[:-1], "no END"),
    (dhcp.client_message(DISCOVER, MAC, 1)[:-1] + b"\x0c\x05ab", "claims 5 bytes"),
    (dhcp.client_message(DISCOVER, MAC, 1)[:-1] + b"\x0c", "cut off"),
    (b"\x03" + dhcp.client_message(DISCOVER, MAC, 1)[1:], "op 3"),
    (dhcp.client_message(DISCOVER, MAC, 1)[:236] + b"\x00" * 4 + b"\xff", "magic cookie"),
    (dhcp.client_message(DISCOVER, MAC, 1, options=[(50, b"\x01")]), "option 50 has 1 bytes"),
    (dhcp.client_message(DISCOVER, MAC, 1, options=[(57, b"\x01\x00")]), "under 576"),
    (dhcp.client_message(DISCOVER, MAC, 1) + bytes(5000), "longer than"),
    (dhcp.client_message(DISCOVER, MAC, 1, options=[(52, b"")]), "overload empty"),  # found by fuzzing
    (dhcp.client_message(DISCOVER, MAC, 1, options=[(52, b"\x04")]), "overload 04"),
])
def test_malformed_input_raises_dhcp_error(data: bytes, why: str) -> None:
    with pytest.raises(dhcp.DhcpError, match=why):
        dhcp.parse(data)


def test_bad_hardware_length_is_refused() -> None:
    data = bytearray(dhcp.client_message(DISCOVER, MAC, 1))
    data[2] = 17
    with pytest.raises(dhcp.DhcpError, match="hardware address length 17"):
        dhcp.parse(bytes(data))


def test_selecting_request_is_acked_with_the_lease() -> None:
    reply = answer(request(REQUEST, (dhcp.REQUESTED_IP, ip("10.0.0.5")), SERVER))
    assert (reply.message_type, reply.yiaddr, reply.server_id) == (ACK, "10.0.0.5", "10.0.0.2")
    assert struct.unpack("!I", reply.option(dhcp.LEASE_TIME) or b"") == (3600,)


def test_init_reboot_and_renewal_of_the_ports_ip_are_acked() -> None:
    assert answer(request(REQUEST, (dhcp.REQUESTED_IP, ip("10.0.0.5")))).message_type == ACK
    renewal = dhcp.decide(request(REQUEST, ciaddr="10.0.0.5"), CONFIG)
    assert renewal.reply is not None and dhcp.parse(renewal.reply).message_type == ACK
    assert dhcp.parse(renewal.reply).ciaddr == "10.0.0.5"
    assert renewal.dest == dhcp.Dest("10.0.0.5", MAC)  # unicast to the client's address


def test_a_changed_ip_is_naked_on_renewal_and_offered_anew() -> None:
    moved = dataclasses.replace(CONFIG, ip="10.0.0.9")
    nak = dhcp.decide(request(REQUEST, ciaddr="10.0.0.5"), moved)
    assert nak.reply is not None and dhcp.parse(nak.reply).message_type == NAK
    assert nak.dest == dhcp.Dest("255.255.255.255", "ff:ff:ff:ff:ff:ff")
    assert dhcp.parse(nak.reply).yiaddr == "0.0.0.0" and dhcp.parse(nak.reply).option(51) is None
    rebooted = answer(request(REQUEST, (dhcp.REQUESTED_IP, ip("10.0.0.5"))), moved)
    assert rebooted.message_type == NAK
    offer = answer(request(DISCOVER, (dhcp.REQUESTED_IP, ip("10.0.0.5"))), moved)
    assert (offer.message_type, offer.yiaddr) == (OFFER, "10.0.0.9")


def test_rapid_commit_is_acked_at_once() -> None:
    reply = answer(request(DISCOVER, (dhcp.RAPID_COMMIT, b"")))
    assert (reply.message_type, reply.yiaddr, reply.option(dhcp.RAPID_COMMIT)) == (ACK, "10.0.0.5", b"")
    assert reply.option(dhcp.LEASE_TIME) is not None
    assert answer(request(DISCOVER)).option(dhcp.RAPID_COMMIT) is None


def test_offer_is_unicast_to_the_offered_address_without_the_broadcast_flag() -> None:
    assert dhcp.decide(request(DISCOVER), CONFIG).dest == dhcp.Dest("10.0.0.5", MAC)


def test_inform_is_acked_without_address_or_lease() -> None:
    decision = dhcp.decide(request(INFORM, ciaddr="10.0.0.5"), CONFIG)
    assert decision.reply is not None and decision.event == "inform"
    reply = dhcp.parse(decision.reply)
    assert (reply.message_type, reply.yiaddr, reply.ciaddr) == (ACK, "0.0.0.0", "10.0.0.5")
    assert reply.option(dhcp.LEASE_TIME) is None and reply.option(dhcp.T1) is None
    assert reply.option(dhcp.DNS) == ip("10.0.0.2")
    assert decision.dest == dhcp.Dest("10.0.0.5", MAC)


def test_a_request_for_another_server_gets_silence() -> None:
    other = (dhcp.SERVER_ID, ip("10.0.0.3"))
    assert dhcp.decide(request(REQUEST, (dhcp.REQUESTED_IP, ip("10.0.0.5")), other), CONFIG) == dhcp.SILENCE
    assert dhcp.decide(request(RELEASE, other, ciaddr="10.0.0.5"), CONFIG).event is None


@pytest.mark.parametrize("kind", [RELEASE, DECLINE])
def test_release_and_decline_are_events_without_reply(kind: int) -> None:
    decision = dhcp.decide(request(kind, SERVER, ciaddr="10.0.0.5"), CONFIG)
    assert decision == dhcp.Decision(event=dhcp.TYPE_NAMES[kind])


def test_no_config_a_foreign_mac_a_relay_or_a_reply_get_silence() -> None:
    assert dhcp.decide(request(DISCOVER), None) == dhcp.SILENCE
    assert dhcp.decide(request(DISCOVER, mac="fa:16:3e:00:00:02"), CONFIG) == dhcp.SILENCE
    relayed = dataclasses.replace(request(DISCOVER), giaddr="10.1.0.1")
    assert dhcp.decide(relayed, CONFIG) == dhcp.SILENCE
    offer = dhcp.parse(GOLDEN_OFFER)
    assert dhcp.decide(offer, CONFIG) == dhcp.SILENCE
    assert dhcp.decide(request(REQUEST), CONFIG) == dhcp.SILENCE  # neither option 50 nor ciaddr


def test_option_121_carries_the_default_route_once() -> None:
    reply = answer(request(DISCOVER))
    assert reply.option(dhcp.CLASSLESS_ROUTES) == bytes.fromhex("10c0a8 0a0000fe 00 0a000001")
    assert reply.option(dhcp.ROUTER) == ip("10.0.0.1")
    explicit = dataclasses.replace(CONFIG, routes=(("0.0.0.0/0", "10.0.0.254"), ("10.9.8.0/23", "10.0.0.7")))
    assert answer(request(DISCOVER), explicit).option(121) == bytes.fromhex("00 0a0000fe 170a0908 0a000007")
    assert answer(request(DISCOVER), dataclasses.replace(CONFIG, routes=())).option(121) is None


def test_client_id_is_echoed_and_requested_options_come_first() -> None:
    reply = answer(request(DISCOVER, (dhcp.CLIENT_ID, b"\xff\x00\x01"), (dhcp.PARAMETERS, bytes([26, 12, 1]))))
    assert reply.option(dhcp.CLIENT_ID) == b"\xff\x00\x01"
    codes = [code for code, _ in reply.options]
    assert codes[codes.index(26):codes.index(26) + 3] == [26, 12, 1]


def test_a_repeated_message_gets_the_same_reply_with_its_own_id() -> None:
    """A client's second DISCOVER (a reboot) is answered from the reply kept for
    the port, with the new transaction id; a message differing in anything the
    reply reads (here the client id, then the broadcast flag) gets its own."""
    config = dataclasses.replace(CONFIG)  # a config of its own: nothing remembered yet

    def offer(xid: int, *options: tuple[int, bytes], broadcast: bool = False) -> dhcp.Decision:
        message = dhcp.parse(dhcp.client_message(DISCOVER, MAC, xid, options=options,
                                                 broadcast=broadcast))
        return dhcp.decide(message, config)

    first, again = offer(1), offer(2)
    assert first.reply is not None and again.reply is not None
    assert (dhcp.parse(first.reply).xid, dhcp.parse(again.reply).xid) == (1, 2)
    assert first.reply[:4] + first.reply[8:] == again.reply[:4] + again.reply[8:]
    assert len(config.replies) == 1
    other = offer(3, (dhcp.CLIENT_ID, b"\x01\x02"))
    assert other.reply is not None and dhcp.parse(other.reply).option(dhcp.CLIENT_ID) == b"\x01\x02"
    broadcast = offer(4, broadcast=True)
    assert broadcast.dest is not None and broadcast.dest.ip == "255.255.255.255"
    assert first.dest is not None and first.dest.ip == config.ip
    assert len(config.replies) == 3


def test_a_small_maximum_size_drops_options_that_do_not_fit() -> None:
    many = dataclasses.replace(CONFIG, routes=tuple((f"172.{i}.0.0/16", "10.0.0.254") for i in range(40)))
    small = dhcp.decide(request(DISCOVER), many).reply
    big = dhcp.decide(request(DISCOVER, (dhcp.MAX_SIZE, struct.pack("!H", 1500))), many).reply
    assert small is not None and big is not None
    assert len(small) <= 576 - 28 < len(big)
    assert dhcp.parse(small).option(121) is None and dhcp.parse(small).option(dhcp.DNS) is not None
    assert len(dhcp.parse(big).option(121) or b"") == 40 * 7 + 5


def test_a_long_option_is_split_and_domain_search_encoded() -> None:
    long_name = dataclasses.replace(CONFIG, domain_search=("a.example.org", "b.example"))
    assert answer(request(DISCOVER), long_name).option(dhcp.DOMAIN_SEARCH) == (
        b"\x01a\x07example\x03org\x00\x01b\x07example\x00")
    assert dhcp._encode_option(12, bytes(300)) == b"\x0c\xff" + bytes(255) + b"\x0c\x2d" + bytes(45)


def test_extra_dhcp_opts_names_numbers_and_header_fields() -> None:
    extra = dhcp.extra_options([
        {"opt_name": "tftp-server", "opt_value": "tftp.example", "ip_version": 4},
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
        {"opt_name": "server-ip-address", "opt_value": "10.0.0.9"},
        {"opt_name": "150", "opt_value": "10.0.0.9,10.0.0.10"},
        {"opt_name": "mtu", "opt_value": "1400"},  # replaces the network's MTU
        {"opt_name": "224", "opt_value": "01:02:ff"},
        {"opt_name": "dns-server", "opt_value": "2001:db8::1", "ip_version": 6},  # not IPv4
        {"opt_name": "ntp-server", "opt_value": None},  # Neutron: no such option
    ])
    raw = dhcp.decide(request(DISCOVER), dataclasses.replace(CONFIG, extra=extra)).reply
    assert raw is not None
    reply = dhcp.parse(raw)
    assert (reply.option(66), reply.option(67)) == (b"tftp.example", b"pxelinux.0")
    assert reply.option(150) == ip("10.0.0.9") + ip("10.0.0.10")
    assert (reply.option(26), reply.option(224), reply.option(42)) == (b"\x05\x78", b"\x01\x02\xff", None)
    assert reply.siaddr == "10.0.0.9" and raw[108:118] == b"pxelinux.0"


def test_bad_extra_dhcp_opts_are_all_named() -> None:
    problems = dhcp.check_extra_dhcp_opts([
        {"opt_name": "no-such-option", "opt_value": "x"},
        {"opt_name": "53", "opt_value": "1"},
        {"opt_name": "mtu", "opt_value": "big"},
        {"opt_name": "router", "opt_value": "10.0.0.300"},
        {"opt_name": "mtu", "opt_value": "1400", "ip_version": 5},
        "mtu=1400",
        {"opt_name": "mtu", "opt_value": "1400"},
        {"opt_name": "bootfile-url", "opt_value": "tftp://[2001:db8::1]/x", "ip_version": 6},
    ])
    assert [p.split(":")[0] for p in problems] == [f"extra_dhcp_opts[{i}]" for i in range(6)]
    assert "unknown DHCP option name 'no-such-option'" in problems[0]
    assert "option 53 cannot be set" in problems[1]
    with pytest.raises(dhcp.DhcpError, match=r"extra_dhcp_opts\[0\]"):
        dhcp.extra_options([{"opt_name": "tftp-server", "opt_value": ""}])


def test_a_config_that_cannot_be_encoded_is_refused_when_made() -> None:
    with pytest.raises(dhcp.DhcpError, match="port fa:16:3e:00:00:01"):
        dataclasses.replace(CONFIG, host_name="vm\u00e9")
    with pytest.raises(dhcp.DhcpError, match="MTU 40"):
        dataclasses.replace(CONFIG, mtu=40)
    with pytest.raises(dhcp.DhcpError):
        dataclasses.replace(CONFIG, dns_servers=("10.0.0.256",))
    with pytest.raises(dhcp.DhcpError, match="'fa:16:3e' is not a MAC address"):
        dataclasses.replace(CONFIG, server_mac="fa:16:3e")
    assert dataclasses.replace(CONFIG, mac=MAC.upper()).mac == MAC  # chaddr is compared lowercase


def test_ipv6_addresses_without_ip_version_are_taken_and_left_out_of_dhcpv4() -> None:
    """Neutron takes an entry with no ip_version whatever its value (tempest's
    ExtraDHCPOptionsIpV6TestJSON sends IPv6 servers so); a DHCPv4 answer has
    no room for an IPv6 address, so the entry is no DHCPv4 option."""
    opts = [{"opt_name": "server-ip-address", "opt_value": "2001:db8::9"},
            {"opt_name": "dns-server", "opt_value": "2001:db8::1,2001:db8::2"},
            {"opt_name": "router", "opt_value": "10.0.0.1"}]
    assert dhcp.check_extra_dhcp_opts(opts) == []
    raw = dhcp.decide(request(DISCOVER), dataclasses.replace(
        CONFIG, extra=dhcp.extra_options(opts))).reply
    assert raw is not None
    reply = dhcp.parse(raw)
    plain = dhcp.parse(dhcp.decide(request(DISCOVER), CONFIG).reply or b"")
    assert reply.siaddr == "0.0.0.0" and reply.option(6) == plain.option(6)
    assert reply.option(3) == ip("10.0.0.1")
    # said to be IPv4, an IPv6 address is still wrong; a mix is too
    assert dhcp.check_extra_dhcp_opts([{"opt_name": "server-ip-address",
                                        "opt_value": "2001:db8::9", "ip_version": 4}])
    assert dhcp.check_extra_dhcp_opts([{"opt_name": "dns-server",
                                        "opt_value": "10.0.0.1,2001:db8::1"}])
