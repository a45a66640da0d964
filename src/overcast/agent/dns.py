"""The agent's services in the networks' service namespaces
(``plan/services.py``): a DNS responder (``linux/dns_responder.py``, protocol
``services/dns.py``) and a metadata server (``linux/metadata_server.py``,
``services/metadata.py``) in each, on the address DHCP hands out.

Each pass hands them the plan's zones; a zone whose content changed is
prepared anew at once (the servers ask for it per request), a namespace no
longer planned has its server stopped, and one made again (its inode
changed: sockets keep the old one alive) gets a new server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Generic, Protocol, TypeVar

from overcast.plan.services import DnsZone, MetadataZone
from overcast.services import dns, metadata

log = logging.getLogger(__name__)


class Zone(Protocol):
    @property
    def netns(self) -> str: ...


class Server(Protocol):  # a DnsResponder or a MetadataServer
    def start(self) -> None: ...
    def stop(self) -> None: ...


Z = TypeVar("Z", bound=Zone)
D = TypeVar("D")


class NamespaceServers(Generic[Z, D]):
    """``update`` from the agent's loop; each server's threads read what was
    prepared for its namespace (a dict entry swapped whole)."""

    def __init__(self, what: str, prepare: Callable[[Z], D],
                 factory: Callable[[Callable[[], D | None]], Server],
                 enter: Callable[[str], AbstractContextManager[None]],
                 identity: Callable[[str], int] | None = None) -> None:
        self.what, self._prepare, self._factory, self._enter = what, prepare, factory, enter
        self._identity = identity or _netns_inode
        self._zones: dict[str, Z] = {}
        self._data: dict[str, D] = {}
        self._running: dict[str, tuple[Server, int]] = {}  # netns -> server, its inode

    def update(self, zones: Iterable[Z]) -> None:
        wanted = {z.netns: z for z in zones}
        for ns, zone in wanted.items():
            if self._zones.get(ns) != zone:
                self._data[ns] = self._prepare(zone)
                self._zones[ns] = zone
        for ns in sorted(set(self._zones) - set(wanted)):
            self._stop(ns)
            self._zones.pop(ns, None)
            self._data.pop(ns, None)
        for ns in sorted(wanted):
            self._ensure(ns)

    def stop(self) -> None:
        for ns in sorted(self._running):
            self._stop(ns)

    def running(self) -> frozenset[str]:
        return frozenset(self._running)

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
        server = self._factory(lambda: self._data.get(ns))
        try:
            with self._enter(ns):  # the sockets are made in the namespace
                server.start()
        except OSError as exc:
            log.warning("%s in %s not started (the next pass tries again): %s", self.what, ns, exc)
            return
        self._running[ns] = (server, inode)
        log.info("%s in %s started", self.what, ns)

    def _stop(self, ns: str) -> None:
        running = self._running.pop(ns, None)
        if running is not None:
            running[0].stop()


def records(zone: DnsZone) -> dns.Records:
    return dns.network_records(zone.domain, zone.hosts, zone.cidrs, zone.serial)


def meta_ports(zone: MetadataZone) -> dict[str, metadata.MetaPort]:
    """Address -> what the port with it is told."""
    return {p.ip: metadata.MetaPort(p.ip, p.port_id, p.instance_id, p.mac, p.local_hostname,
                                    p.cidr, p.public_ipv4, p.public_hostname) for p in zone.ports}


RecordsFor = Callable[[str, str], "dns.Records | None"]
MetaLookup = Callable[[str], "metadata.MetaPort | None"]


def dns_servers(factory: Callable[[RecordsFor], Server],
                enter: Callable[[str], AbstractContextManager[None]],
                identity: Callable[[str], int] | None = None
                ) -> NamespaceServers[DnsZone, dns.Records]:
    """DNS: every querier in the namespace (the network's VMs) gets its zone."""
    def make(get: Callable[[], dns.Records | None]) -> Server:
        return factory(lambda source, local: get())
    return NamespaceServers("DNS", records, make, enter, identity)


def metadata_servers(factory: Callable[[MetaLookup], Server],
                     enter: Callable[[str], AbstractContextManager[None]],
                     identity: Callable[[str], int] | None = None
                     ) -> NamespaceServers[MetadataZone, dict[str, metadata.MetaPort]]:
    """Metadata: a request is answered for the local port with its source address."""
    def make(get: Callable[[], dict[str, metadata.MetaPort] | None]) -> Server:
        return factory(lambda source: (get() or {}).get(source))
    return NamespaceServers("metadata", meta_ports, make, enter, identity)


def _netns_inode(ns: str) -> int:
    return os.stat(os.path.join("/run/netns", ns)).st_ino
