"""agent/dns.py: a DNS responder per planned service namespace, records
swapped when a zone changes, stopped when its namespace leaves, restarted
when the namespace is made again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from overcast.agent.dns import NamespaceServers, dns_servers
from overcast.plan.services import DnsZone
from overcast.services import dns


class FakeResponder:
    def __init__(self, records_for: Callable[[str, str], dns.Records | None], log: list[str],
                 where: list[str]) -> None:
        self.records_for, self.log, self.where = records_for, log, where
        self.ns = ""

    def start(self) -> None:
        self.ns = self.where[-1]
        self.log.append(f"start {self.ns}")

    def stop(self) -> None:
        self.log.append(f"stop {self.ns}")


def servers(inodes: dict[str, int]) -> tuple[NamespaceServers[DnsZone, dns.Records], list[str],
                                            list[FakeResponder]]:
    log: list[str] = []
    where: list[str] = []
    made: list[FakeResponder] = []

    @contextmanager
    def enter(ns: str) -> Iterator[None]:
        where.append(ns)
        yield

    def identity(ns: str) -> int:
        if ns not in inodes:
            raise FileNotFoundError(ns)
        return inodes[ns]

    def factory(records_for: Callable[[str, str], dns.Records | None]) -> FakeResponder:
        made.append(FakeResponder(records_for, log, where))
        return made[-1]
    return dns_servers(factory, enter, identity), log, made


def zone(ns: str, *hosts: tuple[str, tuple[str, ...]]) -> DnsZone:
    return DnsZone(ns, "net", "a.example", tuple(hosts), ("10.0.0.0/24",))


def test_a_zone_gets_a_responder_in_its_namespace_and_new_records_in_place() -> None:
    srv, log, made = servers({"ns1": 1, "ns2": 2})
    srv.update([zone("ns1", ("web.a.example", ("10.0.0.5",))), zone("ns3")])
    assert log == ["start ns1"] and srv.running() == {"ns1"}  # ns3 is not made yet
    before = made[0].records_for("10.0.0.9", "169.254.169.254")
    assert before is not None
    srv.update([zone("ns1", ("db.a.example", ("10.0.0.6",)))])
    after = made[0].records_for("10.0.0.9", "169.254.169.254")
    assert after is not None and after is not before and log == ["start ns1"]  # not restarted
    assert dns.parse(dns.answer(dns.build_query("web.a.example", dns.A), after).reply or b"").rcode == 3
    assert dns.parse(dns.answer(dns.build_query("db.a.example", dns.A), after).reply or b"").answers


def test_a_namespace_gone_stops_its_responder_and_one_made_again_gets_a_new_one() -> None:
    inodes = {"ns1": 1}
    srv, log, made = servers(inodes)
    srv.update([zone("ns1")])
    inodes["ns1"] = 7  # deleted and made again: the old sockets hold the old namespace
    srv.update([zone("ns1")])
    assert log == ["start ns1", "stop ns1", "start ns1"]
    srv.update([])
    assert log[-1] == "stop ns1" and srv.running() == frozenset()
    assert made[-1].records_for("10.0.0.9", "169.254.169.254") is None  # nothing served
