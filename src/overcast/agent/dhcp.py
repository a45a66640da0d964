"""The agent's DHCP server: the plan's leases (``plan/leases.py``) answered
on the local ports' taps by the DHCP responder (``linux/dhcp_responder.py``,
with the protocol of ``services/dhcp.py``).  Each pass hands it the latest
leases; it opens the taps that got one and closes those that lost theirs.
A lease answers only the port's own MAC on the port's own tap, so a VM
that asks for other MACs (DHCP starvation) gets nothing.
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from overcast.plan.leases import SERVER_MAC, Lease, Lease6
from overcast.services import dhcp, dhcpv6

log = logging.getLogger(__name__)


class Responder(Protocol):  # what DhcpServer needs of linux.dhcp_responder.Responder
    def booted(self, ifname: str, mac: str) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def attach(self, ifname: str) -> None: ...
    def detach(self, ifname: str) -> None: ...
    def attached(self) -> frozenset[str]: ...
    def alive(self, ifname: str) -> bool: ...


@functools.lru_cache(maxsize=8192)
def port_config(lease: Lease) -> dhcp.PortConfig:
    """The protocol core's view of a lease; raises DhcpError when a value
    cannot be encoded (an extra option the API let through and this
    version of the server cannot carry).  Kept per lease (a frozen value):
    each pass hands over every lease of the host, ~75 us each to encode."""
    return dhcp.PortConfig(
        mac=lease.mac, ip=lease.ip, prefixlen=lease.prefixlen, server_ip=lease.server_ip,
        server_mac=SERVER_MAC, router=lease.router, dns_servers=lease.dns_servers,
        domain_name=lease.domain or None, host_name=lease.host_name, mtu=lease.mtu,
        routes=lease.routes, lease_time=lease.lease_time,
        extra=dhcp.extra_options({"opt_name": n, "opt_value": v} for n, v in lease.extra))


class DhcpServer:
    """``update`` from the agent's loop, ``lookup`` from the responder's
    thread: the table of configs is swapped whole under a lock."""

    def __init__(self, responder_factory: Callable[[Callable[[str, str], dhcp.PortConfig | None],
                                                    Callable[[Any], None]], Responder],
                 on_boot: Callable[[str, str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._configs: dict[tuple[str, str], dhcp.PortConfig] = {}
        self._ports: dict[tuple[str, str], str] = {}  # (tap, mac) -> port id
        self._on_boot = on_boot
        self.problems: dict[str, str] = {}  # port id -> why its lease cannot be answered
        self.responder = responder_factory(self.lookup, self.event)
        self._taps = Taps(self.responder)

    def lookup(self, ifname: str, mac: str) -> dhcp.PortConfig | None:
        with self._lock:
            return self._configs.get((ifname, mac.lower()))

    def event(self, event: Any) -> None:
        """From the responder's thread: a client booted ("discover",
        "request": the first since its tap was opened or it released) or
        let go ("release", "decline"); ``on_boot(port id, kind)`` hears it."""
        log.info("DHCP %s from %s on %s (%s)", event.kind, event.mac, event.ifname, event.ip)
        with self._lock:
            port_id = self._ports.get((event.ifname, event.mac.lower()))
        if port_id is not None and self._on_boot is not None:
            self._on_boot(port_id, event.kind)

    def update(self, leases: Iterable[Lease], present: frozenset[str]) -> None:
        """Answer ``leases`` whose tap is in ``present`` (the devices this
        pass observed), and nothing else."""
        configs, problems, ports = {}, {}, {}
        for lease in leases:
            if lease.dev not in present:
                continue
            try:
                configs[(lease.dev, lease.mac)] = port_config(lease)
                if lease.public:  # only these ports' boots are told (the public binding)
                    ports[(lease.dev, lease.mac)] = lease.port_id
            except dhcp.DhcpError as exc:
                problems[lease.port_id] = str(exc)
        for port_id, why in sorted(problems.items()):
            if self.problems.get(port_id) != why:
                log.error("port %s: no DHCP: %s", port_id, why)
        self.problems = problems
        with self._lock:
            newly = set(ports) - set(self._ports)
            self._configs, self._ports = configs, ports
        for dev, mac in sorted(newly):  # named while running: it booted already
            if self._on_boot is not None and self.responder.booted(dev, mac):
                self._on_boot(ports[(dev, mac)], "request")
        self._taps.open({dev for dev, _ in configs})



class Taps:
    """The taps a responder has open: opened when wanted, closed when not,
    reopened when made again under the same name (a socket on the old device
    is dead: the responder's ``alive`` says so, one cheap question a tap, no
    listing of the namespace's links)."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self._opened: set[str] = set()

    def open(self, wanted: set[str]) -> None:
        attached = self.responder.attached()
        for dev in sorted(self._opened - wanted):
            self.responder.detach(dev)
            self._opened.discard(dev)
        for dev in sorted(wanted):
            if dev in self._opened and dev in attached and self.responder.alive(dev):
                continue
            if dev in self._opened:
                self.responder.detach(dev)
                self._opened.discard(dev)
            try:
                self.responder.attach(dev)
            except OSError as exc:
                if exc.errno != errno.ENODEV:  # gone since the pass observed it: the next sees
                    log.error("%s", exc)
                continue
            self._opened.add(dev)


class Dhcp6Server:
    """DHCPv6 for the plan's ``leases6`` (``linux/dhcpv6_responder.py``,
    ``services/dhcpv6.py``): the same life as :class:`DhcpServer`'s."""

    def __init__(self, responder_factory: Callable[[Callable[[str, str], Any],
                                                    Callable[[Any], None]], Responder]) -> None:
        self._lock = threading.Lock()
        self._configs: dict[tuple[str, str], tuple[dhcpv6.Port6Config, bool]] = {}
        self.responder = responder_factory(self.lookup, self.event)
        self._taps = Taps(self.responder)

    def lookup(self, ifname: str, mac: str) -> tuple[dhcpv6.Port6Config, bool] | None:
        with self._lock:
            return self._configs.get((ifname, mac.lower()))

    def event(self, event: Any) -> None:
        log.info("DHCPv6 %s from %s on %s", getattr(event, "kind", "?"),
                 getattr(event, "mac", "?"), getattr(event, "ifname", "?"))

    def update(self, leases: Iterable[Lease6], present: frozenset[str]) -> None:
        configs = {}
        for lease in leases:
            if lease.dev in present:
                try:
                    configs[(lease.dev, lease.mac)] = (port6_config(lease), lease.stateful)
                except dhcpv6.Dhcpv6Error as exc:
                    log.error("port %s: no DHCPv6: %s", lease.port_id, exc)
        with self._lock:
            self._configs = configs
        self._taps.open({dev for dev, _ in configs})


@functools.lru_cache(maxsize=8192)
def port6_config(lease: Lease6) -> dhcpv6.Port6Config:
    return dhcpv6.Port6Config(mac=lease.mac, server_mac=SERVER_MAC, addresses=lease.addresses,
                              dns_servers=lease.dns_servers,
                              domain_search=(lease.domain,) if lease.domain else ())


