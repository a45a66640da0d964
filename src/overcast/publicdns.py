"""``overcast public-dns``: the authoritative DNS server of the public zone,
its own process (the lab runs it in its internet namespace), and with
``--bind-public`` the dynamic public binding (``Binder``, below).

It serves, from the store, the names of the floating IPs that have one
(Neutron's dns-integration: a floating IP's ``dns_name`` in its
``dns_domain``, else in the zone): A records in the zone, and the PTR of
each address in the reverse zones of the external networks' subnets; SOA
and NS at each apex (``ns1.<zone>`` with the listen address as its A).
It reads the store every ``--interval`` seconds and swaps its records
when the published names changed (the SOA serial moves with them), so a
change answers within a second; UDP and TCP, as the internal DNS.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

from overcast.model import keys
from overcast.model.types import FloatingIP, Network, Port, Resource, Subnet
from overcast.services import dns
from overcast.store import Store, open_store

log = logging.getLogger(__name__)
R = TypeVar("R", bound=Resource)
TTL = 30


@dataclass(frozen=True)
class Published:
    """What the zone says: names -> addresses, and the reverse zones."""

    zone: str
    hosts: tuple[tuple[str, tuple[str, ...]], ...]
    cidrs: tuple[str, ...]


def published(zone: str, fips: Iterable[FloatingIP], networks: Iterable[Network],
              subnets: Iterable[Subnet], claimed: Mapping[str, str] | None = None) -> Published:
    """The names of the floating IPs inside ``zone`` (the others are some
    other server's), and the reverse zones of the external subnets.  A name
    a port holds as its public host name (``claimed``: name -> port id) is
    only its binding's (no one else's floating IP joins it), and the zone's
    own names (its apex, ``ns1``) are nobody's."""
    zone = zone.rstrip(".").lower()
    claimed = claimed or {}
    hosts: dict[str, list[str]] = {}
    for fip in fips:
        if not fip.dns_name or not fip.floating_ip_address:
            continue
        domain = (fip.dns_domain or zone).rstrip(".").lower()
        fqdn = f"{fip.dns_name.rstrip('.').lower()}.{domain}"
        if fqdn in (zone, f"ns1.{zone}") or not fqdn.endswith("." + zone):
            continue
        owner = claimed.get(fqdn)
        if owner is not None and (fip.port_id != owner or fip.description != BOUND_BY):
            continue
        hosts.setdefault(fqdn, []).append(fip.floating_ip_address)
    external = {n.id for n in networks if n.router_external}
    cidrs = sorted(s.cidr for s in subnets if s.network_id in external and s.ip_version == 4)
    return Published(zone, tuple(sorted((h, tuple(sorted(a))) for h, a in hosts.items())),
                     tuple(cidrs))


def records(what: Published, serial: int, ns_ip: str) -> dns.Records:
    ns = f"ns1.{what.zone}"
    hosts = [*what.hosts, (ns, (ns_ip,))]
    return dns.network_records(what.zone, hosts, what.cidrs, serial, ns=(ns,), ttl=TTL)


def _objects(store: Store, cls: type[R], kind: str) -> list[R]:
    out = []
    for kv in store.range(keys.obj(kind)).kvs:
        try:
            out.append(cls.from_stored(json.loads(kv.value)))
        except (ValueError, TypeError) as exc:
            log.warning("store key %s: %s; ignored", kv.key, exc)
    return out


class PublicZone:
    """The current records, rebuilt from the store when what they publish changed."""

    def __init__(self, store: Store, zone: str, ns_ip: str) -> None:
        self.store, self.zone, self.ns_ip = store, zone, ns_ip
        self.what: Published | None = None
        self.serial = 0
        self.current: dns.Records | None = None

    def refresh(self) -> bool:
        claimed: dict[str, str] = {}
        for port in sorted(_objects(self.store, Port, "port"), key=lambda p: p.created_at):
            if port.public_hostname:  # the first to name it holds it
                claimed.setdefault(port.public_hostname, port.id)
        what = published(self.zone, _objects(self.store, FloatingIP, "floatingip"),
                         _objects(self.store, Network, "network"),
                         _objects(self.store, Subnet, "subnet"), claimed)
        if what == self.what:
            return False
        self.serial = max(self.serial + 1, int(time.time()) & 0xFFFFFFFF)
        self.current = records(what, self.serial, self.ns_ip)
        self.what = what
        log.info("public zone %s: %d names, serial %d", what.zone, len(what.hosts), self.serial)
        return True


class Binder:
    """The dynamic public binding: a port with ``public_hostname`` gets a
    floating IP from the public pool while its VM runs, named by it in the
    public zone, and gives it back when the VM stops.

    Runs: its host saw a DHCP boot (``keys.boot``, written by the agent) and
    not a release since, and the port is ACTIVE (or DOWN for less than
    ``grace`` seconds).  The floating IP is made and deleted through the
    API (in process, as an admin, in the port's project), so its address
    comes from the pool the API keeps and the usual checks hold (a router
    must connect the port's subnet to the public network).  What it did, or
    why it could not (the pool empty), is in ``keys.public``, which the API
    shows as the port's ``overcast:public_binding``; each problem is logged
    once."""

    def __init__(self, store: Store, api: Any, network: str, subnet: str = "",
                 grace: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.api, self.network, self.subnet = store, api, network, subnet
        self.grace, self.clock = grace, clock
        self._down_since: dict[str, float] = {}
        self._said: dict[str, str] = {}
        self._first = True

    def step(self) -> None:
        ports = {p.id: p for p in _objects(self.store, Port, "port") if p.public_hostname}
        boots = _values(self.store, keys.boot())
        statuses = _values(self.store, keys.port_status())
        bound = _values(self.store, keys.public())
        fips = {f.id: f for f in _objects(self.store, FloatingIP, "floatingip")}
        first, self._first = self._first, False
        for port in ports.values():
            had = bound.get(port.id, {})
            fip = fips.get(str(had.get("floatingip_id", "")))
            if fip is None:  # ours but not recorded (another binder's, or a crash after the POST)
                fip = next((f for f in fips.values() if f.port_id == port.id
                            and f.description == BOUND_BY), None)
            if fip is not None and fip.port_id != port.id:
                # moved or unhooked by someone: it is still ours, and still carries the name
                self._unbind(port.id, fip.id, port.public_hostname)
                fip, had = None, {}
            if self._runs(port.id, boots.get(port.id), statuses.get(port.id), first):
                if fip is None:
                    self._bind(port)
                elif f"{fip.dns_name}.{fip.dns_domain.rstrip('.')}" != port.public_hostname:
                    self._unbind(port.id, fip.id, port.public_hostname)  # renamed: bound anew
                elif had.get("floatingip_id") != fip.id:
                    self._adopt(port, fip)
            elif fip is not None or "address" in had or "problem" in had:
                self._unbind(port.id, fip.id if fip else "", port.public_hostname)
        for port_id, had in bound.items():
            if port_id not in ports:  # deleted, or its name taken away
                self._unbind(port_id, str(had.get("floatingip_id", "")), None)
        self._down_since = {p: t for p, t in self._down_since.items() if p in ports}

    def _runs(self, port_id: str, boot: dict[str, Any] | None, status: dict[str, Any] | None,
              first: bool) -> bool:
        """``first``: this binder's first step, when a port already DOWN has
        been so for who knows how long (its grace is over)."""
        if not boot or boot.get("event") != "boot":
            self._down_since.pop(port_id, None)
            return False
        if status and status.get("status") == "ACTIVE":
            self._down_since.pop(port_id, None)
            return True
        since = self._down_since.setdefault(
            port_id, self.clock() - (self.grace if first else 0.0))
        return self.clock() - since < self.grace

    def _adopt(self, port: Port, fip: FloatingIP) -> None:
        """A floating IP of ours on the port that the record does not name."""
        self._write(port.id, {"hostname": port.public_hostname,
                              "address": fip.floating_ip_address, "floatingip_id": fip.id})

    def _bind(self, port: Port) -> None:
        label, _, domain = port.public_hostname.partition(".")
        network = self._network_id()
        body: dict[str, Any] = {"floating_network_id": network, "port_id": port.id,
                                "project_id": port.project_id, "dns_name": label,
                                "dns_domain": f"{domain}.", "description": BOUND_BY}
        subnet = self.subnet or self._pool_subnet(network)
        if subnet:
            body["subnet_id"] = subnet
        status, reply = self._call("POST", "/v2.0/floatingips", {"floatingip": body})
        if status == 201:
            fip = reply["floatingip"]
            self._write(port.id, {"hostname": port.public_hostname,
                                  "address": fip["floating_ip_address"],
                                  "floatingip_id": fip["id"]})
            log.info("port %s: %s is %s", port.id, port.public_hostname,
                     fip["floating_ip_address"])
            self._said.pop(port.id, None)
            return
        error = reply.get("NeutronError", {}) if isinstance(reply, dict) else {}
        why = ("public pool empty: " if error.get("type") == "IpAddressGenerationFailure"
               else "") + str(error.get("message", f"HTTP {status}"))
        self._write(port.id, {"hostname": port.public_hostname, "problem": why})
        if self._said.get(port.id) != why:
            log.warning("port %s: no public address for %s: %s", port.id, port.public_hostname,
                        why)
            self._said[port.id] = why

    def _unbind(self, port_id: str, fip_id: str, hostname: str | None) -> None:
        if fip_id:
            status, _ = self._call("DELETE", f"/v2.0/floatingips/{fip_id}")
            if status not in (204, 404):
                log.warning("port %s: floating IP %s not deleted (HTTP %d)", port_id, fip_id,
                            status)
                return
            log.info("port %s: %s given back", port_id, hostname or "its address")
        if hostname is None:
            self.store.delete(keys.public(port_id))
        else:
            self._write(port_id, {"hostname": hostname})
        self._said.pop(port_id, None)

    def _network_id(self) -> str:
        nets = [n for n in _objects(self.store, Network, "network")
                if n.router_external and self.network in (n.id, n.name, "")]
        return nets[0].id if len(nets) == 1 else self.network

    def _pool_subnet(self, network: str) -> str:
        """The network's subnet tagged ``POOL_TAG`` (the operator's choice of
        pool, through the API), else "" (any of its subnets)."""
        tagged = sorted(s.id for s in _objects(self.store, Subnet, "subnet")
                        if s.network_id == network and POOL_TAG in s.tags)
        return tagged[0] if tagged else ""

    def _write(self, port_id: str, value: dict[str, Any]) -> None:
        raw = json.dumps(value, sort_keys=True).encode()
        current = self.store.get(keys.public(port_id))
        if current is None or current.value != raw:
            self.store.put(keys.public(port_id), raw)

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        from overcast.api import Request  # noqa: PLC0415 - the binder only

        data = b"" if body is None else json.dumps(body).encode()
        resp = self.api.handle(Request(method, path, [], {}, data))
        return resp.status, resp.body


BOUND_BY = "overcast:public-binding"
POOL_TAG = "public-pool"  # a subnet of the public network so tagged is the pool


def _values(store: Store, prefix: str) -> dict[str, dict[str, Any]]:
    out = {}
    for kv in store.range(prefix).kvs:
        try:
            value = json.loads(kv.value)
        except ValueError:
            continue
        if isinstance(value, dict):
            out[kv.key[len(prefix):]] = value
    return out


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or "." not in host:
        host, port = value, "53"
    try:
        return str(ipaddress.IPv4Address(host)), int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not IPv4[:PORT]") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="overcast public-dns", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="store URL, as the server's")
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 53), metavar="IP[:PORT]",
                   help="address to answer on (UDP and TCP; default %(default)s)")
    p.add_argument("--zone", required=True, help="the public zone, e.g. cloud.example")
    p.add_argument("--interval", type=float, default=0.25,
                   help="seconds between reads of the store (default %(default)s)")
    p.add_argument("--bind-public", action="store_true",
                   help="also make and withdraw the dynamic public bindings (ports with "
                        "overcast:public_hostname)")
    p.add_argument("--public-network", default="",
                   help="the external network of the public pool (name or id; default: the "
                        "only one)")
    p.add_argument("--public-subnet", default="",
                   help=f"its subnet of the pool (default: the one tagged {POOL_TAG!r}, else any)")
    p.add_argument("--grace", type=float, default=30.0,
                   help="seconds a port may be DOWN before its VM counts as stopped "
                        "(default %(default)s)")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    from overcast.linux.dns_responder import DnsResponder  # noqa: PLC0415 - kernel I/O at run only

    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s public-dns %(levelname)s %(message)s")
    store = open_store(args.store)
    zone = PublicZone(store, args.zone, args.listen[0])
    zone.refresh()
    binder = None
    if args.bind_public:
        from overcast.api import Api  # noqa: PLC0415 - the binder only

        binder = Binder(store, Api(store), args.public_network, args.public_subnet, args.grace)
    responder = DnsResponder([args.listen[0]], lambda source, local: zone.current,
                             port=args.listen[1])
    responder.start()
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("public zone %s on %s:%d", args.zone, *args.listen)
    try:
        while not stopping.wait(args.interval):
            for work, what in ((binder.step if binder else None, "binding"),
                               (zone.refresh, "the zone")):
                try:
                    if work is not None:
                        work()
                except Exception as exc:  # noqa: BLE001 - retried; the answers stay
                    log.warning("%s: %s", what, exc)
    finally:
        responder.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
