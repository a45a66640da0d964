"""``overcast agent`` / ``python -m overcast.agent``: the host agent process."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import resource
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from overcast.agent.dhcp import Dhcp6Server, DhcpServer
from overcast.agent.dns import NamespaceServers, dns_servers, metadata_servers
from overcast.agent.liveness import LEASE_TTL, Liveness
from overcast.agent.loop import AgentLoop
from overcast.agent.reconciler import Reconciler
from overcast.agent.view import ModelView
from overcast.linux.devices import list_tap_devices
from overcast.linux.kernel import Kernel
from overcast.model import keys
from overcast.plan.leases import DEFAULT_DOMAIN, SERVER_IP
from overcast.plan.services import DnsZone, MetadataZone
from overcast.store import Store, open_store

log = logging.getLogger("overcast.agent")
FIREWALL_DEFAULT = "on"
FIREWALL_FEATURES = ("nft_bridge", "conntrack", "br_netfilter", "br_nf_call", "nft_firewall")


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not an IP address") from None


def _upstream(value: str) -> tuple[str, int]:
    """``IP`` or ``IP:PORT`` (``[IPv6]:PORT``): port 53 unless given."""
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"'{value}': the port is not 1..65535")
    return _address(host), int(port)


def _mapping(value: str) -> tuple[str, str]:
    name, eq, device = value.partition("=")
    if not eq or not name or not device or len(device) > 15 or "/" in device or " " in device:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not NAME=DEVICE (a physical network name and an interface name)")
    return name, device


def _uplink(value: str) -> tuple[str, int]:
    device, eq, kbps = value.partition("=")
    if not eq or not device or len(device) > 15 or "/" in device or " " in device \
            or not kbps.isdigit() or int(kbps) <= 0:
        raise argparse.ArgumentTypeError(
            f"'{value}' is not DEVICE=KBPS (an interface name and its capacity in kbit/s)")
    return device, int(kbps)


def _zone(value: str) -> str:
    if not value or len(value) > 255 or value != value.strip():
        raise argparse.ArgumentTypeError(
            f"'{value}' is not an availability zone name (1 to 255 characters, no spaces "
            "around it)")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="overcast agent", description=(
        "Overcast host agent: watches the store, plans this host's bridges, VXLAN "
        "devices and FDB, applies the difference to the kernel and reports port status."))
    p.add_argument("--host", required=True, help="this hypervisor's name (binding:host_id)")
    p.add_argument("--store", required=True, help="store URL, e.g. sqlite:///run/overcast/store.db")
    p.add_argument("--underlay-ip", required=True, type=_address,
                   help="this host's VXLAN tunnel endpoint")
    p.add_argument("--resync-interval", type=float, default=10.0,
                   help="seconds between full resyncs (default 10)")
    p.add_argument("--lease-ttl", type=float, default=LEASE_TTL,
                   help="seconds the liveness lease lasts without a heartbeat (default %(default)s)")
    p.add_argument("--firewall", choices=("on", "off"), default=FIREWALL_DEFAULT,
                   help="enforce port security and security groups with nftables; with off "
                        "every port passes everything (default %(default)s)")
    p.add_argument("--physical-network", action="append", default=[], type=_mapping,
                   metavar="NAME=DEVICE", dest="physical_networks",
                   help="bridge flat networks of physical network NAME to this host's DEVICE "
                        "(repeatable; as Neutron's bridge_mappings)")
    p.add_argument("--qos-uplink", type=_uplink, default=None, metavar="DEVICE=KBPS",
                   help="guarantee QoS minimum bandwidth (what VMs send) on DEVICE, the link "
                        "tenant traffic leaves this host by, of KBPS kbit/s real capacity "
                        "(default: minimum bandwidth not enforced)")
    p.add_argument("--dhcp", choices=("on", "off"), default="on",
                   help="answer the local ports' DHCP on their taps, and their networks' DNS and "
                        f"metadata at {SERVER_IP} (default %(default)s)")
    p.add_argument("--dns-upstream", type=_upstream, default=None, metavar="IP[:PORT]",
                   help="where the internal DNS sends names that are not the cloud's (default: "
                        "none, they are REFUSED)")
    p.add_argument("--dns-domain", default=DEFAULT_DOMAIN,
                   help="the domain DHCP gives ports whose network has no dns_domain (as the "
                        "server's; default %(default)s)")
    p.add_argument("--availability-zone", type=_zone, default="nova", metavar="NAME",
                   help="the availability zone this host is in, as the agents list and "
                        "/v2.0/availability_zones show it (default %(default)s, as Neutron's)")
    p.add_argument("--packet-log", default="", metavar="PATH",
                   help="where the security group packet logs' lines go, appended (default: "
                        "this agent's own log, logger overcast.packet_log)")
    p.add_argument("--log-level", default="INFO",
                   help="DEBUG, INFO, WARNING or ERROR (default %(default)s)")
    return p


def detect_features() -> dict[str, Any]:
    """Probe the kernel once; say loudly what is disabled."""
    from overcast.linux.features import detect_features as probe

    try:
        report = probe()
    except Exception as exc:  # noqa: BLE001 - a failed probe must not stop the agent
        log.error("kernel feature detection failed: %s", exc)
        return {}
    for feature in report.missing():
        log.warning("kernel feature %s MISSING (%s): disabled: %s",
                    feature.name, feature.detail, feature.disables)
    log.info("kernel features available: %s",
             ", ".join(f.name for f in report.features if f.available))
    return report.to_dict()


def firewall_blocked(features: dict[str, Any]) -> str:
    """Why this kernel cannot enforce the firewall ("" if it can, or if the
    probe itself failed: then the ruleset's own refusals say it)."""
    missing = [n for n in FIREWALL_FEATURES
               if features and not features.get(n, {}).get("available")]
    return f"firewall cannot be enforced: kernel feature {', '.join(missing)} missing" \
        if missing else ""


def qos_features(features: dict[str, Any]) -> frozenset[str] | None:
    """The features QoS may use (the probe's available ones); None when the
    probe failed (then the kernel's refusals say what is missing)."""
    if not features:
        return None
    return frozenset(name for name, f in features.items()
                     if isinstance(f, dict) and f.get("available"))


def physical_networks(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """``--physical-network`` NAME=DEVICE pairs as a mapping; a name given twice is an error."""
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise SystemExit("overcast agent: --physical-network names a physical network twice")
    if mapping:
        log.info("physical networks: %s", ", ".join(f"{n}={d}" for n, d in sorted(mapping.items())))
    return mapping


def _more_files() -> None:
    """The soft limit of open files up to the hard one: each router namespace
    holds a few sockets of the agent's (its reader, nftables, the writer)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard  # (the kernel's nr_open)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("open files stay limited to %d: %s", soft, exc)


def _blocked(features: dict[str, Any], firewall: bool) -> str:
    """Why the firewall cannot run here ("" when it can or is off), said in the log."""
    if not firewall:
        log.warning("firewall off: no port security and no security groups on this host")
        return ""
    blocked = firewall_blocked(features)
    if blocked:
        log.error("%s: no port joins a bridge and every port is DOWN (fail closed); "
                  "--firewall off runs them without port security and security groups", blocked)
    return blocked


@dataclass
class Services:
    """What the agent answers and sends besides the kernel state: the
    routers' IPv6 router advertisements and the local ports' DHCP."""

    advertiser: Any
    dhcp: DhcpServer | None
    dns: NamespaceServers[DnsZone, Any] | None = None
    metadata: NamespaceServers[MetadataZone, Any] | None = None
    dhcp6: Dhcp6Server | None = None
    packet_log: Any = None  # (PacketLog, its NflogReader): the firewall's logged packets

    def start(self) -> None:
        if self.packet_log is not None:
            try:
                self.packet_log[1].start()
            except OSError as exc:
                log.warning("%s: security group packet logs disabled on this host", exc)
                self.packet_log = None
        self.advertiser.start()
        if self.dhcp is not None:
            self.dhcp.responder.start()
        if self.dhcp6 is not None:
            self.dhcp6.responder.start()

    def stop(self) -> None:
        if self.packet_log is not None:
            self.packet_log[1].stop()
        self.advertiser.stop()
        if self.dhcp is not None:
            self.dhcp.responder.stop()
        if self.dhcp6 is not None:
            self.dhcp6.responder.stop()
        for servers in (self.dns, self.metadata):
            if servers is not None:
                servers.stop()


def _services(args: argparse.Namespace) -> Services:
    from overcast.linux.devices import entered_netns
    from overcast.linux.dhcp_responder import Responder
    from overcast.linux.dhcpv6_responder import Responder as Responder6
    from overcast.linux.dns_responder import DnsResponder
    from overcast.linux.metadata_server import MetadataServer
    from overcast.linux.ra_sender import Advertiser

    if args.dhcp == "off":
        return Services(Advertiser(), None)
    upstream = args.dns_upstream
    boots = _boot_writer(open_store(args.store), args.host)  # written from the responder's thread
    dhcp = DhcpServer(lambda lookup, on_event: Responder(lookup, on_event), on_boot=boots)
    return Services(Advertiser(), dhcp,
                    dns_servers(lambda records_for: DnsResponder([SERVER_IP], records_for,
                                                                 upstream=upstream),
                                entered_netns),
                    metadata_servers(lambda lookup: MetadataServer(SERVER_IP, lookup),
                                     entered_netns),
                    Dhcp6Server(lambda lookup, on_event: Responder6(lookup, on_event)))


def _reconciler(args: argparse.Namespace, store: Store, kernel: Kernel, firewall: bool,
                blocked: str, physical: dict[str, str], services: Services) -> Reconciler:
    reconciler = Reconciler(args.host, args.underlay_ip, store, kernel, ModelView(),
                            firewall=firewall)
    reconciler.firewall_blocked = blocked
    reconciler.physical_networks = physical
    reconciler.advertiser = services.advertiser
    reconciler.dhcp = services.dhcp
    reconciler.dns = services.dns
    reconciler.dhcp6 = services.dhcp6
    reconciler.metadata = services.metadata
    if services.packet_log is not None:
        reconciler.packet_log = services.packet_log[0]
    reconciler.dns_domain = args.dns_domain.rstrip(".")
    reconciler.qos_uplink = args.qos_uplink
    return reconciler


def _packet_log(args: argparse.Namespace) -> tuple[Any, Any]:
    from overcast.agent.packet_log import PacketLog, file_writer
    from overcast.linux.nflog import NflogReader, interface_name
    from overcast.plan.firewall_chains import LOG_GROUP

    write = None
    if args.packet_log:
        try:
            write = file_writer(args.packet_log)
        except OSError as exc:
            log.error("--packet-log %s: %s; packet logs go to this agent's log", args.packet_log,
                      exc)
    told = PacketLog(interface_name, write)
    return told, NflogReader(LOG_GROUP, told.on_packet)


def _boot_writer(store: Store, host: str) -> Callable[[str, str], None]:
    """A port's DHCP boot or release, for the public binding (``keys.boot``)."""
    def write(port_id: str, kind: str) -> None:
        event = "release" if kind in ("release", "decline") else "boot"
        value = {"host": host, "event": event, "at": time.time()}
        try:
            store.put(keys.boot(port_id), json.dumps(value, sort_keys=True).encode())
        except Exception as exc:  # noqa: BLE001 - a lost event: the next boot or release says it
            log.warning("port %s: DHCP %s not recorded: %s", port_id, event, exc)
    return write


def run(args: argparse.Namespace) -> int:
    from overcast.linux.netlink import NetlinkKernel

    _more_files()
    features = detect_features()
    firewall = args.firewall == "on"
    blocked = _blocked(features, firewall)
    store: Store = open_store(args.store)
    beat_store: Store = open_store(args.store)  # the keep-alive thread's own connection
    kernel = NetlinkKernel(host=args.host)
    physical = physical_networks(args.physical_networks)
    services = _services(args)
    if firewall and not blocked:
        services.packet_log = _packet_log(args)
    reconciler = _reconciler(args, store, kernel, firewall, blocked, physical, services)
    reconciler.qos_features = qos_features(features)
    # what the loop polls between passes: the workload devices, and Overcast's
    # nft tables (a table deleted by hand is repaired at once, not at the resync)
    loop = AgentLoop(store, reconciler, args.resync_interval,
                     list_devices=lambda: list_tap_devices() | kernel.table_handles())
    # the agents list shows the mappings as Neutron's agents do (configurations.bridge_mappings)
    # routers: this host can have them (their gateway MACs need the firewall); the SNAT of a
    # router is only ever given to such a host
    liveness = Liveness(beat_store, args.host, args.underlay_ip,
                        {**features, "bridge_mappings": physical,
                         "qos_uplink": {"available": args.qos_uplink is not None,
                                        "disables": "QoS minimum bandwidth (agent option "
                                                    "--qos-uplink DEVICE=KBPS)"},
                         "routers": firewall and not blocked}, args.lease_ttl,
                        args.availability_zone)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping (kernel state is left as it is)", signum)
        loop.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    liveness.register()  # first: the first pass sees this host alive (a SNAT candidate)
    loop.full_read()
    liveness.start()
    services.start()
    log.info("agent %s up: underlay %s, store %s, resync every %gs",
             args.host, args.underlay_ip, args.store, args.resync_interval)
    try:
        loop.run()
    finally:
        services.stop()
        liveness.stop(revoke=True)
        kernel.close()
        store.close()
        beat_store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format=f"%(asctime)s {args.host} %(name)s %(levelname)s %(message)s")
    return run(args)
