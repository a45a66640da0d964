"""``overcast public-dns``: the authoritative DNS server of the public zone,
its own process (the lab runs it in its internet namespace).

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
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType
from typing import TypeVar

from overcast.model import keys
from overcast.model.types import FloatingIP, Network, Resource, Subnet
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
              subnets: Iterable[Subnet]) -> Published:
    """The names of the floating IPs inside ``zone`` (the others are some
    other server's), and the reverse zones of the external subnets."""
    zone = zone.rstrip(".").lower()
    hosts: dict[str, list[str]] = {}
    for fip in fips:
        if not fip.dns_name or not fip.floating_ip_address:
            continue
        domain = (fip.dns_domain or zone).rstrip(".").lower()
        fqdn = f"{fip.dns_name.rstrip('.').lower()}.{domain}"
        if fqdn == zone or fqdn.endswith("." + zone):
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
        what = published(self.zone, _objects(self.store, FloatingIP, "floatingip"),
                         _objects(self.store, Network, "network"),
                         _objects(self.store, Subnet, "subnet"))
        if what == self.what:
            return False
        self.serial = max(self.serial + 1, int(time.time()) & 0xFFFFFFFF)
        self.current = records(what, self.serial, self.ns_ip)
        self.what = what
        log.info("public zone %s: %d names, serial %d", what.zone, len(what.hosts), self.serial)
        return True


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
            try:
                zone.refresh()
            except Exception as exc:  # noqa: BLE001 - a failed read is retried, the answers stay
                log.warning("reading the store: %s", exc)
    finally:
        responder.stop()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
