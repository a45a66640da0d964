"""(root) The DNS responder on port 53 inside a namespace of its own
(``ocx-dn-<pid>-<role>``, loopback up), asked by ``dig`` over UDP and TCP: what a
client sees, the TCP fallback of a truncated answer, the relay to an upstream
(a second responder), records swapped at run time, a flood from one address
while another still gets its answers, and garbage on both transports.

Every dig waits at most a second per try; the responders are threads of this
process, stopped (and joined) by the fixtures; the flooder is a subprocess
killed by its PID if it outlives its time."""

from __future__ import annotations

import os
import random
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from overcast.linux.devices import entered_netns
from overcast.linux.dns_responder import DnsResponder, Limits, TokenBuckets
from overcast.services import dns

from .conftest import namespaces, sh

pytestmark = pytest.mark.root
PREFIX = f"ocx-dn-{os.getpid() % 100000}"
SERVER, UPSTREAM, SILENT = "127.0.0.1", "127.0.0.54", "127.0.0.55"
V6 = "fd00:dd::53"
NS1 = "ns1.example.org"
OTHER_PROJECT = "127.0.0.9"  # a source address the callback serves no records to


def _records(hosts: list[tuple[str, list[str]]], serial: int = 1) -> dns.Records:
    zones = [dns.Zone(o, serial, (NS1,)) for o in
             ("example.org", dns.reverse_zone("10.0.0.0/16"), dns.reverse_zone("fd00::/64"))]
    return dns.Records(dns.host_entries(hosts), zones)


HOSTS = [("vm1.example.org", ["10.0.0.5", "fd00::5"]), (NS1, ["10.0.0.1"]),
         ("big.example.org", [f"10.0.1.{i}" for i in range(1, 101)]),
         ("forty.example.org", [f"10.0.2.{i}" for i in range(1, 41)])]


@dataclass
class Lab:
    ns: str
    records: dict[str, dns.Records]  # "now": what the main responder serves (swap it)

    def dig(self, *args: str, check: bool = True) -> str:
        """dig's output; one try of at most a second unless ``args`` say otherwise."""
        done = sh(self.ns, "dig", "-p", "53", "+time=1", "+tries=1", *args, check=False)
        assert not check or done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def _start(ns: str, responder: DnsResponder) -> DnsResponder:
    with entered_netns(ns):  # its sockets, thread and relay threads live in the namespace
        responder.start()
    return responder


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with namespaces(PREFIX) as make:
        ns = make("a")
        sh(ns, "ip", "link", "set", "lo", "up")
        sh(ns, "ip", "addr", "add", f"{V6}/128", "dev", "lo", "nodad")
        holder = {"now": _records(HOSTS)}
        upstream_records = dns.Records([("www.example.com", "A", "192.0.2.80", 60)],
                                       [dns.Zone("example.com", 9, ("ns.example.com",))])
        main = DnsResponder([SERVER, "::1", V6], lambda source, local: (
            None if source == OTHER_PROJECT else holder["now"]), upstream=(UPSTREAM, 53))
        upstream = DnsResponder([UPSTREAM], lambda source, local: upstream_records)
        started = [_start(ns, upstream), _start(ns, main)]
        try:
            yield Lab(ns, holder)
        finally:
            for responder in started:
                responder.stop()


def _status(out: str) -> str:
    found = re.search(r"status: (\w+)", out)
    assert found, out
    return found.group(1)


def _flags(out: str) -> set[str]:
    found = re.search(r";; flags: ([a-z ]*);", out)
    assert found, out
    return set(found.group(1).split())


def _answers(out: str) -> list[str]:
    """The data of each answer line of ``+noall +answer`` output."""
    return [line.split()[-1] for line in out.splitlines() if line and not line.startswith(";")]


def test_udp_and_tcp_give_the_same_answers(lab: Lab) -> None:
    for transport in ("+notcp", "+tcp"):
        assert lab.dig(f"@{SERVER}", transport, "+short", "vm1.example.org").split() == ["10.0.0.5"]
        assert lab.dig("@::1", transport, "+short", "vm1.example.org", "AAAA").split() == ["fd00::5"]
        assert lab.dig(f"@{V6}", transport, "+short", "VM1.EXAMPLE.ORG").split() == ["10.0.0.5"]
    out = lab.dig(f"@{SERVER}", "+noall", "+comments", "+answer", "vm1.example.org")
    assert _status(out) == "NOERROR" and {"qr", "aa"} <= _flags(out)
    assert "udp: 1232" in out  # our EDNS size, echoed


def test_nxdomain_and_nodata_carry_the_soa(lab: Lab) -> None:
    for transport in ("+notcp", "+tcp"):
        out = lab.dig(f"@{SERVER}", transport, "+noall", "+comments", "+authority", "nope.example.org")
        assert _status(out) == "NXDOMAIN" and "aa" in _flags(out)
        assert re.search(r"^example\.org\.\s+30\s+IN\s+SOA\s+ns1\.example\.org\. hostmaster", out, re.M)
        out = lab.dig(f"@{SERVER}", transport, "+noall", "+comments", "+authority",
                      "vm1.example.org", "MX")
        assert _status(out) == "NOERROR" and re.search(r"\sSOA\s", out)
    assert lab.dig(f"@{SERVER}", "+short", "example.org", "NS").split() == ["ns1.example.org."]
    assert lab.dig(f"@{SERVER}", "+short", "example.org", "SOA").split()[2] == "1"


def test_reverse_lookups_v4_and_v6(lab: Lab) -> None:
    assert lab.dig(f"@{SERVER}", "+short", "-x", "10.0.0.5").split() == ["vm1.example.org."]
    assert lab.dig(f"@{SERVER}", "+tcp", "+short", "-x", "fd00::5").split() == ["vm1.example.org."]
    out = lab.dig(f"@{SERVER}", "+noall", "+comments", "-x", "10.0.9.9")
    assert _status(out) == "NXDOMAIN"


def test_a_big_answer_is_truncated_over_udp_and_whole_over_tcp(lab: Lab) -> None:
    out = lab.dig(f"@{SERVER}", "+noall", "+comments", "+answer", "big.example.org")
    assert "Truncated, retrying in TCP mode" in out
    assert sorted(_answers(out)) == sorted(f"10.0.1.{i}" for i in range(1, 101))
    ignored = lab.dig(f"@{SERVER}", "+ignore", "+noall", "+comments", "+answer", "big.example.org")
    assert "tc" in _flags(ignored) and _answers(ignored) == []
    # 40 records (~700 octets): over 512 without EDNS, within the 1232 that EDNS allows
    plain = lab.dig(f"@{SERVER}", "+noedns", "+ignore", "+noall", "+comments", "forty.example.org")
    assert "tc" in _flags(plain)
    edns = lab.dig(f"@{SERVER}", "+bufsize=4096", "+ignore", "+noall", "+comments", "+answer",
                   "forty.example.org")
    assert "tc" not in _flags(edns) and len(_answers(edns)) == 40


def test_outside_names_are_refused_at_once_without_an_upstream(lab: Lab) -> None:
    records = _records(HOSTS)
    lonely = _start(lab.ns, DnsResponder(["127.0.0.56"], lambda source, local: records))
    try:
        started = time.monotonic()
        out = lab.dig("@127.0.0.56", "+noall", "+comments", "www.example.com")
        assert _status(out) == "REFUSED" and time.monotonic() - started < 1.0
        out = lab.dig("@127.0.0.56", "+tcp", "+noall", "+comments", "www.example.com")
        assert _status(out) == "REFUSED"
    finally:
        lonely.stop()


def test_another_project_is_refused_even_its_own_zone(lab: Lab) -> None:
    out = lab.dig(f"@{SERVER}", "-b", OTHER_PROJECT, "+noall", "+comments", "vm1.example.org")
    assert _status(out) == "REFUSED"


def test_outside_names_are_relayed_to_the_upstream(lab: Lab) -> None:
    for transport in ("+notcp", "+tcp"):
        out = lab.dig(f"@{SERVER}", transport, "+noall", "+comments", "+answer", "www.example.com")
        assert _status(out) == "NOERROR" and _answers(out) == ["192.0.2.80"]
        assert "aa" in _flags(out)  # the upstream's own reply (authoritative there), relayed as it is
        out = lab.dig(f"@{SERVER}", transport, "+noall", "+comments", "nope.example.com")
        assert _status(out) == "NXDOMAIN"


def test_a_silent_upstream_gives_servfail_in_bounded_time(lab: Lab) -> None:
    records = _records(HOSTS)
    with entered_netns(lab.ns):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    relay = DnsResponder(["127.0.0.57"], lambda source, local: records, upstream=(SILENT, 53),
                         limits=Limits(upstream_timeout=0.4))
    try:
        udp.bind((SILENT, 53))
        tcp.bind((SILENT, 53))
        tcp.listen(8)  # accepts in the kernel, never answers
        _start(lab.ns, relay)
        for transport in ("+notcp", "+tcp"):
            started = time.monotonic()
            out = lab.dig("@127.0.0.57", transport, "+time=3", "+noall", "+comments", "www.example.com")
            assert _status(out) == "SERVFAIL" and time.monotonic() - started < 1.5
    finally:
        relay.stop()
        udp.close()
        tcp.close()


def test_swapped_records_answer_at_once(lab: Lab) -> None:
    before = lab.records["now"]
    try:
        lab.records["now"] = _records([h for h in HOSTS if h[0] != "vm1.example.org"] +
                                      [("vm2.example.org", ["10.0.0.6"])], serial=2)
        out = lab.dig(f"@{SERVER}", "+noall", "+comments", "vm1.example.org")
        assert _status(out) == "NXDOMAIN"
        assert lab.dig(f"@{SERVER}", "+short", "vm2.example.org").split() == ["10.0.0.6"]
        assert lab.dig(f"@{SERVER}", "+tcp", "+short", "example.org", "SOA").split()[2] == "2"
        assert lab.dig(f"@{SERVER}", "+short", "-x", "10.0.0.5").split() == []
    finally:
        lab.records["now"] = before


FLOODER = """
import socket, sys, time
q = bytes.fromhex(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.2", 0))
s.setblocking(False)
sent = got = 0
start = time.monotonic()
end = start + float(sys.argv[2])
while time.monotonic() < end:
    for _ in range(32):
        try:
            s.sendto(q, ("127.0.0.1", 53))
            sent += 1
        except BlockingIOError:
            pass
    while True:
        try:
            s.recv(4096)
            got += 1
        except BlockingIOError:
            break
print(sent, got, time.monotonic() - start)
"""


def test_a_flood_from_one_source_does_not_starve_another(lab: Lab) -> None:
    query = dns.build_query("vm1.example.org", dns.A, ident=7).hex()
    flooder = subprocess.Popen(["ip", "netns", "exec", lab.ns, "python3", "-c", FLOODER, query, "2.0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # the flooder is under way (its own counts below prove it flooded)
        for _ in range(10):
            out = lab.dig(f"@{SERVER}", "-b", "127.0.0.3", "+tries=2", "+short", "vm1.example.org")
            assert out.split() == ["10.0.0.5"]
        stdout, _ = flooder.communicate(timeout=10)
    finally:
        if flooder.poll() is None:
            flooder.kill()
            flooder.wait()
    sent, got, seconds = stdout.split()
    allowed = 400 + 200 * float(seconds)  # the burst and the rate
    assert int(sent) > 5 * allowed, "the flooder did not flood"
    assert int(got) <= allowed * 1.1


def _tcp_ask(sock: socket.socket, query: bytes) -> dns.Message:
    sock.sendall(len(query).to_bytes(2, "big") + query)
    return dns.parse(_read(sock, int.from_bytes(_read(sock, 2), "big")))


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the responder closed the connection"
        data += chunk
    return data


def _connect(ns: str, address: tuple[str, int]) -> socket.socket:
    with entered_netns(ns):
        sock = socket.create_connection(address, timeout=2)
    return sock


def test_tcp_carries_several_queries_and_idle_connections_are_closed(lab: Lab) -> None:
    records = _records(HOSTS)
    server = _start(lab.ns, DnsResponder(["127.0.0.58"], lambda source, local: records,
                                         limits=Limits(tcp_idle=0.3, max_tcp=2)))
    try:
        first = _connect(lab.ns, ("127.0.0.58", 53))
        pipelined = b"".join(len(q).to_bytes(2, "big") + q for q in
                             (dns.build_query("vm1.example.org", dns.A, ident=i) for i in (1, 2, 3)))
        first.sendall(pipelined)
        replies = [dns.parse(_read(first, int.from_bytes(_read(first, 2), "big"))) for _ in range(3)]
        assert [r.id for r in replies] == [1, 2, 3]
        second = _connect(lab.ns, ("127.0.0.58", 53))
        assert _tcp_ask(second, dns.build_query("vm1.example.org", dns.A, ident=4)).id == 4
        third = _connect(lab.ns, ("127.0.0.58", 53))  # over the cap of two: closed at once
        assert third.recv(10) == b""
        started = time.monotonic()
        assert first.recv(10) == b""  # idle for 0.3 s: the responder closes it
        assert time.monotonic() - started < 1.5
        for sock in (first, second, third):
            sock.close()
    finally:
        server.stop()


def test_garbage_on_both_transports_leaves_it_answering(lab: Lab) -> None:
    rng = random.Random(10)
    with entered_netns(lab.ns):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.4", 0))
    udp.settimeout(1)
    try:
        for size in (0, 1, 11, 12, 13, 300, 1500, 65000):
            udp.sendto(bytes(rng.randrange(256) for _ in range(size)), (SERVER, 53))
        udp.sendto(struct.pack("!6H", 99, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", (SERVER, 53))
        while True:  # whatever came back is a well-formed reply; the looping name got FORMERR
            reply = dns.parse(udp.recv(65535))
            if reply.id == 99:
                assert reply.rcode == dns.FORMERR
                break
    finally:
        udp.close()
    tcp = _connect(lab.ns, (SERVER, 53))
    tcp.sendall(b"\x00\x05abcde")  # a framed scrap: FORMERR (its header is cut short: nothing)
    tcp.sendall(b"\x00\x0c" + bytes(12))
    assert dns.parse(_read(tcp, int.from_bytes(_read(tcp, 2), "big"))).rcode == dns.FORMERR
    tcp.sendall(b"\xff\xff" + bytes(100))  # a length never completed, then hung up
    tcp.close()
    assert lab.dig(f"@{SERVER}", "+tcp", "+short", "vm1.example.org").split() == ["10.0.0.5"]
    assert lab.dig(f"@{SERVER}", "+short", "vm1.example.org").split() == ["10.0.0.5"]


def _burst(ns: str, server: tuple[str, int], clients: list[str]) -> None:
    """Queries sent from every address of ``clients`` in turn without waiting
    (so that the responder takes many in one batch), names that exist and names
    that do not: each is answered once, to the socket that asked, with its own
    id, question and answer."""
    family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
    socks = []
    with entered_netns(ns):
        for address in clients:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.bind((address, 0))
            sock.settimeout(1)
            socks.append(sock)
    try:
        asked: dict[int, tuple[int, str]] = {}  # id -> (client, name)
        for n in range(120):
            name = "vm1.example.org" if n % 3 else f"nx{n}.example.org"
            asked[n + 1000] = (n % len(socks), name)
            socks[n % len(socks)].sendto(dns.build_query(name, dns.A, ident=n + 1000), server)
        got: dict[int, tuple[int, dns.Message]] = {}
        for c, sock in enumerate(socks):
            for _ in range(sum(1 for client, _ in asked.values() if client == c)):
                reply = dns.parse(sock.recv(65535))
                assert reply.id not in got, f"id {reply.id} answered twice"
                got[reply.id] = (c, reply)
        assert sorted(got) == sorted(asked)
        for ident, (client, reply) in got.items():
            assert client == asked[ident][0], f"id {ident}: its reply went to another client"
            assert dns.name_to_text(reply.questions[0].name).rstrip(".") == asked[ident][1]
            if asked[ident][1] == "vm1.example.org":
                assert reply.rcode == dns.NOERROR
                assert [r.value for r in reply.answers] == ["10.0.0.5"]
            else:
                assert reply.rcode == dns.NXDOMAIN and not reply.answers
    finally:
        for sock in socks:
            sock.close()


def test_a_burst_from_several_clients_is_answered_each_to_its_own(lab: Lab) -> None:
    _burst(lab.ns, (SERVER, 53), ["127.0.0.3", "127.0.0.4", "127.0.0.5"])
    _burst(lab.ns, (V6, 53), [V6, "::1"])


def test_without_recvmmsg_a_datagram_at_a_time_answers_alike(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from overcast.linux import mmsg

    monkeypatch.setattr(mmsg, "available", lambda: False)
    records = lab.records["now"]
    single = _start(lab.ns, DnsResponder(["127.0.0.60"], lambda source, local: records))
    try:
        assert not single._batches
        _burst(lab.ns, ("127.0.0.60", 53), ["127.0.0.3", "127.0.0.4"])
    finally:
        single.stop()


def test_stop_leaves_no_thread_behind(lab: Lab) -> None:
    records = _records(HOSTS)
    before = set(threading.enumerate())
    relay = _start(lab.ns, DnsResponder(["127.0.0.59"], lambda source, local: records, upstream=(UPSTREAM, 53)))
    assert lab.dig("@127.0.0.59", "+short", "www.example.com").split() == ["192.0.2.80"]
    assert {t.name.split("_")[0] for t in set(threading.enumerate()) - before} == {
        "dns-responder", "dns-relay"}
    relay.stop()
    assert set(threading.enumerate()) - before == set()
    out = lab.dig("@127.0.0.59", "+noall", "+comments", "vm1.example.org", check=False)
    assert "no servers could be reached" in out or "connection refused" in out


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=10, burst=5, clock=lambda: now[0], max_sources=3)
    assert [buckets.allow("a") for _ in range(6)] == [True] * 5 + [False]
    assert buckets.allow("b")  # another source has its own bucket
    now[0] = 0.1
    assert buckets.allow("a") and not buckets.allow("a")  # one token in 0.1 s
    for source in "cdefg":  # many sources: the table stays bounded
        assert buckets.allow(source)
    assert len(buckets._buckets) <= 3


def test_the_token_bucket_grants_part_of_a_batch() -> None:
    buckets = TokenBuckets(rate=10, burst=5, clock=lambda: 0.0)
    assert buckets.take("a", 3, 0.0) == 3
    assert buckets.take("a", 3, 0.0) == 2  # what is left of the burst
    assert buckets.take("a", 3, 0.05) == 0  # half a token
    assert buckets.take("a", 3, 0.25) == 2  # 0.5 + 2 tokens, whole ones granted
    assert buckets.allow("a", 0.35) and not buckets.allow("a", 0.35)  # 0.5 left, 1 more
