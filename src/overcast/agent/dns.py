"""The agent's internal DNS: one DNS responder (``linux/dns_responder.py``,
with the protocol of ``services/dns.py``) in each network's service
namespace (``plan/services.py``), on the address DHCP hands out as the
resolver.  Each pass hands it the plan's zones; a zone whose content
changed gets new records at once (the responder asks for them per query),
a namespace no longer planned has its responder stopped, and one made again
(its inode changed: sockets keep the old one alive) gets a new responder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol

from overcast.plan.services import DnsZone
from overcast.services import dns

log = logging.getLogger(__name__)

RecordsFor = Callable[[str, str], "dns.Records | None"]


class Responder(Protocol):  # what DnsServers needs of linux.dns_responder.DnsResponder
    def start(self) -> None: ...
    def stop(self) -> None: ...


def records(zone: DnsZone) -> dns.Records:
    return dns.network_records(zone.domain, zone.hosts, zone.cidrs, zone.serial)


class DnsServers:
    """``update`` from the agent's loop; the responders' threads read the
    records of their namespace (a dict entry swapped whole)."""

    def __init__(self, factory: Callable[[RecordsFor], Responder],
                 enter: Callable[[str], AbstractContextManager[None]],
                 identity: Callable[[str], int] | None = None) -> None:
        self._factory, self._enter = factory, enter
        self._identity = identity or _netns_inode
        self._zones: dict[str, DnsZone] = {}
        self._records: dict[str, dns.Records] = {}
        self._running: dict[str, tuple[Responder, int]] = {}  # netns -> responder, its inode

    def update(self, zones: Iterable[DnsZone]) -> None:
        wanted = {z.netns: z for z in zones}
        for ns, zone in wanted.items():
            if self._zones.get(ns) != zone:
                self._records[ns] = records(zone)
                self._zones[ns] = zone
        for ns in sorted(set(self._zones) - set(wanted)):
            self._stop(ns)
            self._zones.pop(ns, None)
            self._records.pop(ns, None)
        for ns in sorted(wanted):
            self._ensure(ns)

    def stop(self) -> None:
        for ns in sorted(self._running):
            self._stop(ns)

    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    def lookup(self, ns: str) -> dns.Records | None:
        return self._records.get(ns)

    def _ensure(self, ns: str) -> None:
        try:
            inode = self._identity(ns)
        except OSError:
            return  # not made yet (the pass that makes it failed): the next pass again
        running = self._running.get(ns)
        if running is not None and running[1] == inode:
            return
        if running is not None:
            self._stop(ns)
        responder = self._factory(lambda source, local: self._records.get(ns))
        try:
            with self._enter(ns):  # the sockets are made in the namespace
                responder.start()
        except OSError as exc:
            log.warning("DNS in %s not started (the next pass tries again): %s", ns, exc)
            return
        self._running[ns] = (responder, inode)
        log.info("DNS in %s: %d names", ns, len(self._zones[ns].hosts))

    def _stop(self, ns: str) -> None:
        running = self._running.pop(ns, None)
        if running is not None:
            running[0].stop()


def _netns_inode(ns: str) -> int:
    return os.stat(os.path.join("/run/netns", ns)).st_ino
