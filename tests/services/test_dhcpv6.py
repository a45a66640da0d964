"""The DHCPv6 core: parsing and the decisions of both address modes, on bytes."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from overcast.services import dhcpv6
from overcast.services.dhcpv6 import (
    ADVERTISE,
    CONFIRM,
    DECLINE,
    INFORMATION_REQUEST,
    NO_ADDRS_AVAIL,
    NO_BINDING,
    NOT_ON_LINK,
    REBIND,
    RELEASE,
    RENEW,
    REPLY,
    REQUEST,
    SOLICIT,
    SUCCESS,
)

MAC = "fa:16:3e:00:00:01"
CONFIG = dhcpv6.Port6Config(mac=MAC, server_mac="fa:16:3e:ff:ff:fe", addresses=("2001:db8::5",),
                            dns_servers=("2001:db8::2",), domain_search=("example.org",))
CLIENT = (dhcpv6.CLIENTID, dhcpv6.duid_ll(MAC))
SERVER = (dhcpv6.SERVERID, CONFIG.server_duid)
OTHER_SERVER = (dhcpv6.SERVERID, dhcpv6.duid_ll("fa:16:3e:ff:ff:01"))
XID = 0x123456

# The ADVERTISE to a SOLICIT with one empty IA_NA (IAID 1), checked by hand
# against RFC 8415 sections 8, 21.2-21.7 and RFC 3646.
GOLDEN_ADVERTISE = bytes.fromhex(
    "02 123456"  # ADVERTISE, the client's transaction id
    "0002 000a 0003 0001 fa163efffffe"  # server id: DUID-LL, Ethernet, the server's MAC
    "0001 000a 0003 0001 fa163e000001"  # client id, echoed
    "0007 0001 ff"  # preference 255: take this one at once
    "0003 0028 00000001 00001c20 00002d00"  # IA_NA: IAID 1, T1 7200, T2 11520
    "0005 0018 20010db8000000000000000000000005 00003840 00015180"  # 2001:db8::5, 4 h, 1 d
    "0017 0010 20010db8000000000000000000000002"  # DNS servers: 2001:db8::2
    "0018 000d 076578616d706c6503 6f726700"  # domain list: example.org
)


def message(kind: int, *options: tuple[int, bytes]) -> dhcpv6.Message:
    return dhcpv6.parse(dhcpv6.build(kind, XID, list(options)))


def answer(msg: dhcpv6.Message, stateful: bool = True,
           config: dhcpv6.Port6Config = CONFIG) -> dhcpv6.Message:
    decision = dhcpv6.decide(msg, config, stateful)
    assert decision.reply is not None
    reply = dhcpv6.parse(decision.reply)
    assert (reply.transaction_id, reply.server_id) == (XID, CONFIG.server_duid)
    return reply


def test_advertise_golden_bytes() -> None:
    solicit = message(SOLICIT, CLIENT, (dhcpv6.ELAPSED_TIME, b"\x00\x00"),
                      (dhcpv6.ORO, b"\x00\x17\x00\x18"), dhcpv6.ia_na(1))
    decision = dhcpv6.decide(solicit, CONFIG, stateful=True)
    assert decision.reply == GOLDEN_ADVERTISE
    assert decision.event == "solicit"


def test_parse_reads_the_header_and_options() -> None:
    msg = message(RENEW, CLIENT, SERVER, (dhcpv6.ELAPSED_TIME, b"\x01\x00"),
                  (dhcpv6.ORO, b"\x00\x17"), (dhcpv6.RAPID_COMMIT, b""),
                  dhcpv6.ia_na(7, ("2001:db8::5", "2001:db8::6"), t1=10, t2=20))
    assert (msg.msg_type, msg.transaction_id, msg.kind) == (RENEW, XID, "renew")
    assert (msg.client_id, msg.server_id) == (CLIENT[1], CONFIG.server_duid)
    assert (msg.elapsed_time, msg.oro, msg.rapid_commit) == (256, (23,), True)
    (ia,) = msg.ia_na
    assert (ia.iaid, ia.t1, ia.t2) == (7, 10, 20)
    assert msg.addresses() == ("2001:db8::5", "2001:db8::6")


def test_rapid_commit_gets_a_reply_with_the_address() -> None:
    reply = answer(message(SOLICIT, CLIENT, (dhcpv6.RAPID_COMMIT, b""), dhcpv6.ia_na(9)))
    assert (reply.msg_type, reply.rapid_commit, reply.client_id) == (REPLY, True, CLIENT[1])
    (ia,) = reply.ia_na
    assert ia.iaid == 9
    assert ia.addresses == (dhcpv6.IaAddress("2001:db8::5", 14400, 86400),)


def test_request_gets_the_ports_address_whatever_the_hint() -> None:
    reply = answer(message(REQUEST, CLIENT, SERVER, dhcpv6.ia_na(1, ("2001:db8::99",))))
    assert reply.msg_type == REPLY
    assert reply.addresses() == ("2001:db8::5",)
    assert reply.option(dhcpv6.DNS_SERVERS) is not None


def test_only_the_first_ia_na_gets_the_addresses() -> None:
    reply = answer(message(REQUEST, CLIENT, SERVER, dhcpv6.ia_na(1), dhcpv6.ia_na(2)))
    first, second = reply.ia_na
    assert first.addresses and first.status is None
    assert (second.addresses, second.status) == ((), NO_ADDRS_AVAIL)


@pytest.mark.parametrize("kind", [RENEW, REBIND])
def test_renewal_of_the_ports_address_is_extended(kind: int) -> None:
    server = [SERVER] if kind == RENEW else []
    reply = answer(message(kind, CLIENT, *server, dhcpv6.ia_na(1, ("2001:db8::5",))))
    (ia,) = reply.ia_na
    assert (ia.t1, ia.t2, ia.status) == (7200, 11520, None)
    assert ia.addresses == (dhcpv6.IaAddress("2001:db8::5", 14400, 86400),)


@pytest.mark.parametrize("kind", [RENEW, REBIND])
def test_a_changed_address_is_dropped_and_the_new_one_given(kind: int) -> None:
    moved = dataclasses.replace(CONFIG, addresses=("2001:db8::6",))
    server = [SERVER] if kind == RENEW else []
    reply = answer(message(kind, CLIENT, *server, dhcpv6.ia_na(1, ("2001:db8::5",))), config=moved)
    (ia,) = reply.ia_na
    assert ia.status is None
    assert [(a.address, a.preferred, a.valid) for a in ia.addresses] == [
        ("2001:db8::6", 14400, 86400), ("2001:db8::5", 0, 0)]


def test_stale_addresses_go_at_lifetime_0_and_an_empty_ia_gets_no_binding() -> None:
    empty = dataclasses.replace(CONFIG, addresses=())
    reply = answer(message(RENEW, CLIENT, SERVER, dhcpv6.ia_na(1, ("2001:db8::5",))), config=empty)
    assert [(ia.addresses, ia.status) for ia in reply.ia_na] == [
        ((dhcpv6.IaAddress("2001:db8::5", 0, 0),), None)]
    reply = answer(message(RENEW, CLIENT, SERVER, dhcpv6.ia_na(1, ("2001:db8::5",)),
                           dhcpv6.ia_na(2)))
    second = reply.ia_na[1]
    assert (second.addresses, second.status) == ((), NO_BINDING)


def test_an_address_added_to_the_port_comes_with_the_old_one_dropped() -> None:
    moved = dataclasses.replace(CONFIG, addresses=("2001:db8::5", "2001:db8::7"))
    reply = answer(message(RENEW, CLIENT, SERVER, dhcpv6.ia_na(1, ("2001:db8::5", "2001:db8::4"))),
                   config=moved)
    (ia,) = reply.ia_na
    assert [(a.address, a.valid) for a in ia.addresses] == [
        ("2001:db8::5", 86400), ("2001:db8::7", 86400), ("2001:db8::4", 0)]


def test_confirm_is_success_for_the_ports_address_and_not_on_link_else() -> None:
    good = answer(message(CONFIRM, CLIENT, dhcpv6.ia_na(1, ("2001:db8::5",))))
    assert (good.msg_type, good.status, good.ia_na) == (REPLY, SUCCESS, ())
    bad = answer(message(CONFIRM, CLIENT, dhcpv6.ia_na(1, ("2001:db8::9",))))
    assert bad.status == NOT_ON_LINK
    empty = dhcpv6.decide(message(CONFIRM, CLIENT, dhcpv6.ia_na(1)), CONFIG, True)
    assert empty == dhcpv6.SILENCE  # RFC 8415 18.3.3: no addresses, no reply


@pytest.mark.parametrize("stateful", [True, False])
def test_information_request_gets_dns_and_domains(stateful: bool) -> None:
    reply = answer(message(INFORMATION_REQUEST, CLIENT, (dhcpv6.ORO, b"\x00\x17\x00\x18")),
                   stateful=stateful)
    assert (reply.msg_type, reply.ia_na) == (REPLY, ())
    assert reply.option(dhcpv6.DNS_SERVERS) == bytes.fromhex("20010db8" + "00" * 11 + "02")
    assert reply.option(dhcpv6.DOMAIN_LIST) == b"\x07example\x03org\x00"
    anonymous = answer(message(INFORMATION_REQUEST), stateful=stateful)  # client id is optional
    assert anonymous.client_id is None and anonymous.option(dhcpv6.DNS_SERVERS)


def test_stateless_solicit_gets_no_addrs_avail_and_is_slowed_down() -> None:
    stateless = dataclasses.replace(CONFIG, addresses=())
    for rapid in ([], [(dhcpv6.RAPID_COMMIT, b"")]):
        reply = answer(message(SOLICIT, CLIENT, dhcpv6.ia_na(1), *rapid), stateful=False,
                       config=stateless)
        assert (reply.msg_type, reply.status, reply.ia_na) == (ADVERTISE, NO_ADDRS_AVAIL, ())
        assert b"SLAAC" in (reply.option(dhcpv6.STATUS_CODE) or b"")
        assert reply.option(dhcpv6.SOL_MAX_RT) == struct.pack("!I", 3600)


def test_stateless_request_renew_and_confirm_get_no_address() -> None:
    stateless = dataclasses.replace(CONFIG, addresses=())
    request = answer(message(REQUEST, CLIENT, SERVER, dhcpv6.ia_na(1)), False, stateless)
    assert [(ia.addresses, ia.status) for ia in request.ia_na] == [((), NO_ADDRS_AVAIL)]
    renew = answer(message(RENEW, CLIENT, SERVER, dhcpv6.ia_na(1, ("2001:db8::5",))), False)
    assert [(ia.addresses, ia.status) for ia in renew.ia_na] == [((), NO_BINDING)]
    confirm = answer(message(CONFIRM, CLIENT, dhcpv6.ia_na(1, ("2001:db8::5",))), False)
    assert confirm.status == NOT_ON_LINK


@pytest.mark.parametrize("kind", [RELEASE, DECLINE])
def test_release_and_decline_get_success_and_an_event(kind: int) -> None:
    msg = message(kind, CLIENT, SERVER, dhcpv6.ia_na(1, ("2001:db8::5",)))
    decision = dhcpv6.decide(msg, CONFIG, True)
    assert decision.event == dhcpv6.TYPE_NAMES[kind]
    assert decision.reply is not None and dhcpv6.parse(decision.reply).status == SUCCESS


@pytest.mark.parametrize("msg", [
    message(REQUEST, CLIENT, OTHER_SERVER, dhcpv6.ia_na(1)),  # the client chose another server
    message(RENEW, CLIENT, OTHER_SERVER, dhcpv6.ia_na(1, ("2001:db8::5",))),
    message(RELEASE, CLIENT, OTHER_SERVER, dhcpv6.ia_na(1, ("2001:db8::5",))),
    message(INFORMATION_REQUEST, CLIENT, OTHER_SERVER),
    message(SOLICIT, CLIENT, SERVER, dhcpv6.ia_na(1)),  # RFC 8415 16: a solicit names no server
    message(REBIND, CLIENT, SERVER, dhcpv6.ia_na(1, ("2001:db8::5",))),
    message(REQUEST, CLIENT, dhcpv6.ia_na(1)),  # a request must name its server
    message(SOLICIT, dhcpv6.ia_na(1)),  # no client id
    message(INFORMATION_REQUEST, CLIENT, dhcpv6.ia_na(1)),  # 16.12: no IA in it
    message(ADVERTISE, CLIENT, SERVER),  # a server's message
    message(REPLY, CLIENT, SERVER),
])
def test_messages_not_for_us_are_ignored(msg: dhcpv6.Message) -> None:
    assert dhcpv6.decide(msg, CONFIG, True) == dhcpv6.SILENCE
    assert dhcpv6.decide(msg, CONFIG, False) == dhcpv6.SILENCE


def test_an_unknown_port_gets_nothing() -> None:
    assert dhcpv6.decide(message(SOLICIT, CLIENT, dhcpv6.ia_na(1)), None, True) == dhcpv6.SILENCE


GOOD = dhcpv6.build(SOLICIT, 1, [CLIENT])


@pytest.mark.parametrize(("data", "why"), [
    (b"", "shorter than its 4-byte header"),
    (b"\x01\x00\x00", "shorter than"),
    (GOOD + bytes(5000), "longer than"),
    (b"\x00\x00\x00\x01", "message type 0"),
    (b"\x0c" + bytes(40), "relayed messages are not served"),
    (GOOD + b"\x00\x08\x00", "cut off after 3 bytes"),
    (GOOD + b"\x00\x08\x00\x05\x00", "claims 5 bytes, 1 are left"),
    (GOOD + b"\x00\x08\x00\x01\x00", "option 8 has 1 bytes, must have 2"),
    (GOOD + b"\x00\x0e\x00\x01\x00", "option 14 has 1 bytes, must have 0"),
    (GOOD + b"\x00\x01\x00\x03abc", "client id option \\(1\\) appears twice"),
    (dhcpv6.build(SOLICIT, 1, [(1, b"ab")]), "DUID of 2 bytes"),
    (dhcpv6.build(SOLICIT, 1, [(2, bytes(131))]), "DUID of 131 bytes"),
    (dhcpv6.build(SOLICIT, 1, [(6, b"\x00\x17\x00")]), "not a list of 2-byte codes"),
    (dhcpv6.build(SOLICIT, 1, [(3, bytes(11))]), "shorter than its 12-byte header"),
    (dhcpv6.build(SOLICIT, 1, [(3, bytes(12) + b"\x00\x05\x00\x10" + bytes(16))]), "under its 24"),
    (dhcpv6.build(SOLICIT, 1, [(3, bytes(12) + b"\x00\x05\x00\x20")]), "IA_NA 0 claims 32"),
    (dhcpv6.build(SOLICIT, 1, [(3, bytes(12) + b"\x00\x0d\x00\x01\x00")]), "no 2-byte code"),
    (dhcpv6.build(SOLICIT, 1, [dhcpv6.ia_na(4), dhcpv6.ia_na(4)]), "same IAID"),
    (dhcpv6.build(SOLICIT, 1, [(3, bytes(12) + b"\x00\x05\x00\x19" + bytes(25))]),
     "IA address of IA_NA 0 is cut off"),
])
def test_malformed_input_raises_dhcpv6_error(data: bytes, why: str) -> None:
    with pytest.raises(dhcpv6.Dhcpv6Error, match=why):
        dhcpv6.parse(data)


@pytest.mark.parametrize(("changes", "why"), [
    ({"mac": "nope"}, "not a MAC"),
    ({"addresses": ("10.0.0.5",)}, "addresses"),
    ({"dns_servers": ("::g",)}, "dns_servers"),
    ({"domain_search": ("a..b",)}, "label '' is empty"),
    ({"preferred_lifetime": 100, "valid_lifetime": 50}, "lifetimes"),
    ({"t1": 9000, "t2": 8000}, "T1 9000 and T2 8000"),
])
def test_bad_port_config_is_refused(changes: dict[str, object], why: str) -> None:
    with pytest.raises(dhcpv6.Dhcpv6Error, match=why):
        dataclasses.replace(CONFIG, **changes)  # type: ignore[arg-type]


def test_config_normalizes_addresses() -> None:
    config = dataclasses.replace(CONFIG, mac=MAC.upper(), addresses=("2001:DB8:0:0::5",))
    assert (config.mac, config.addresses) == (MAC, ("2001:db8::5",))
