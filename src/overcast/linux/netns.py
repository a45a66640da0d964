"""Router namespaces on the real kernel: this host's ``ocr-`` namespaces read
whole (``KernelRows.netns_rows``) and the write primitives of the routers
subsystem (``KernelIO.netns_add`` ... ``ns_route``).

A namespace is made and unmade natively, as ``ip netns add``/``del`` do
it (``linux/netns_mount.py``: no shelling out); under ``ip netns exec``,
whose private mount namespace would keep the namespace to this process,
both are refused, naming the cause.

Each namespace is read through a raw dump reader made inside it
(``linux/netns_read.py``: ~10x faster than pyroute2's decoding, measured)
and written through a pyroute2 ``IPRoute`` made inside it on the first
write (a socket made in a namespace stays there).  Both are kept per
namespace and closed when the namespace is deleted or no longer listed: an
open socket keeps a deleted namespace, and every device in it, alive.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from overcast.linux.conntrack import Conntrack
from overcast.linux.devices import NETNS_RUN_DIR, PROC_IPV6_CONF, entered_netns
from overcast.linux.garp import send_garp
from overcast.linux.netns_mount import check_shared, mount_new, unmount
from overcast.linux.netns_nft import NamespaceNft
from overcast.linux.netns_read import AF_INET, AF_INET6, MAIN_TABLE, NUD_PERMANENT, NamespaceReader
from overcast.linux.rtnl import DumpInterrupted
from overcast.plan.names import ROUTE_PROTO, is_router_netns
from overcast.plan.raw import (
    EEXIST,
    KernelRefusal,
    LinkExists,
    Netns,
    NsRule,
)

DUMP_ATTEMPTS = 5
RTNH_F_ONLINK = 0x4
RT_SCOPE_LINK = 253
# a router namespace's sysctls (KernelIO.netns_add): path -> value; all but IPv6's must exist.
# "default" before any device is made (a new device takes it); "all" for what combines with it
_CONF = "/proc/sys/net/ipv4/conf/"
SETTINGS = {
    "/proc/sys/net/ipv4/ip_forward": "1",
    "/proc/sys/net/ipv6/conf/all/forwarding": "1",
    **{f"{_CONF}{scope}/{key}": value for scope in ("default", "all") for key, value in (
        ("rp_filter", "0"),  # asymmetric paths: out by the SNAT port, back by a gateway
        ("arp_ignore", "1"),  # a device answers ARP for its own addresses only
        ("arp_announce", "2"),
        ("arp_notify", "1"),
        ("send_redirects", "0"),  # never tell a VM to go round its own router (to the SNAT port)
    )},
}
OPTIONAL = frozenset({"/proc/sys/net/ipv6/conf/all/forwarding"})
T = TypeVar("T")


@dataclass
class _Opened:
    """The sockets made in one namespace (a name made again is another namespace)."""

    inode: int  # of the namespace they were made in
    reader: NamespaceReader
    nft: NamespaceNft
    ipr: IPRoute | None = None  # pyroute2, for the write primitives: made on the first one

    def close(self) -> None:
        self.reader.close()
        self.nft.close()
        if self.ipr is not None:
            self.ipr.close()


class RouterNamespaces:
    """This host's router namespaces (``names.is_router_netns`` for
    ``host``; none when ``host`` is ""), with a reader (and once written
    in, an ``IPRoute``) in each."""

    def __init__(self, host: str, run_dir: str = NETNS_RUN_DIR) -> None:
        self._host = host
        self._run_dir = run_dir
        self._open: dict[str, _Opened] = {}

    def close(self) -> None:
        for name in list(self._open):
            self._drop(name)

    # --- read ---------------------------------------------------------------
    def names(self) -> list[str]:
        """The entries of the run directory that are this host's router
        namespaces (a stale file is listed; reading it finds it gone)."""
        if not self._host:
            return []
        try:
            entries = os.listdir(self._run_dir)
        except FileNotFoundError:
            return []
        return sorted(n for n in entries if is_router_netns(n, self._host))

    def rows(self) -> list[Netns]:
        """Each namespace read whole; one that goes while being read is left
        out; one that cannot be read is a refusal naming it (the routers
        subsystem is then left unobserved, not taken for empty)."""
        listed = self.names()
        for name in set(self._open) - set(listed):
            self._drop(name)
        found = []
        for name in listed:
            try:
                found.append(self._row(name))
            except OSError as exc:
                self._drop(name)
                if not _vanished(exc):
                    raise KernelRefusal(f"router namespace {name}: unreadable: {exc}") from None
        return found

    def relist(self, table: str) -> None:
        """The next read lists again the namespaces whose tables include
        ``table`` (for its counters)."""
        for opened in self._open.values():
            opened.nft.forget(table)

    def _row(self, name: str) -> Netns:
        opened = self._opened(name)
        with entered_netns(self._path(name)):
            forwarding = _forwarding()
        return _retried(lambda: opened.reader.read(name, forwarding, opened.nft.rows()))

    # --- write --------------------------------------------------------------
    def add(self, name: str, mark: str) -> None:
        """``KernelIO.netns_add``: made, or an unmarked one adopted."""
        path = self._path(name)
        ipr = None
        if os.path.lexists(path):
            try:
                ipr = self._ipr(name)
            except OSError as exc:
                if not _vanished(exc):
                    raise
                # a file with no namespace on it (a crash between file and
                # mount): the namespace is mounted onto it below
        if ipr is not None:
            (lo,) = ipr.get_links(ifname="lo")
            found = lo.get("IFLA_IFALIAS") or ""
            if found:
                raise KernelRefusal(f"router namespace {name} exists with mark {found!r}: "
                                    "not ours to adopt")
        else:
            check_shared(name, self._run_dir)
            mount_new(path)
            ipr = self._ipr(name)
        self._ns_call(name, "lo", lambda: ipr.link(
            "set", index=_index(ipr, name, "lo"), ifalias=mark, state="up"))
        self.forwarding(name)

    def delete(self, name: str) -> None:
        """``KernelIO.netns_del``: its devices deleted first (a veth's peer
        goes with it at once, not when the kernel frees the namespace),
        then ``umount`` (detach) and unlink, as ``ip netns del`` does."""
        path = self._path(name)
        if not os.path.lexists(path):
            raise KernelRefusal(f"router namespace {name}: no such namespace")
        check_shared(name, self._run_dir)
        try:
            ipr = self._ipr(name)
        except OSError as exc:
            if not _vanished(exc):
                raise
        else:
            for msg in ipr.get_links():
                if msg.get("IFLA_IFNAME") != "lo":
                    self._ns_call(name, msg.get("IFLA_IFNAME"),
                                  partial(ipr.link, "del", index=msg["index"]))
        self._drop(name)
        unmount(name, path)

    def forwarding(self, name: str) -> None:
        """``KernelIO.netns_forwarding``: IPv4 and IPv6 forwarding on, and the
        other sysctls of a router namespace (``SETTINGS``)."""
        self._writing(name)
        with entered_netns(self._path(name)):
            for path, value in SETTINGS.items():
                _write_sysctl(path, value, missing_ok=path in OPTIONAL)

    def link_set(self, netns: str, dev: str, mac: str, mtu: int, up: bool, ipv6: bool) -> None:
        """``KernelIO.ns_link_set``: IPv6 is set before the device goes up."""
        ipr = self._writing(netns)
        index = _index(ipr, netns, dev)
        self._ns_call(netns, dev, lambda: ipr.link("set", index=index, address=mac, mtu=mtu,
                                                   **({} if up else {"state": "down"})))
        with entered_netns(self._path(netns)):
            conf = os.path.join(PROC_IPV6_CONF, dev, "disable_ipv6")
            if not _write_sysctl(conf, "0" if ipv6 else "1", missing_ok=True) and ipv6:
                raise KernelRefusal(f"router namespace {netns}: {dev}: no IPv6 on the device")
        if up:
            self._ns_call(netns, dev, lambda: ipr.link("set", index=index, state="up"))

    def addr(self, op: str, netns: str, dev: str, cidr: str) -> None:
        """``KernelIO.ns_addr``; an IPv6 address without DAD (the control
        plane made it unique, and a tentative address is not used for a
        second or more)."""
        ipr = self._writing(netns)
        iface = ipaddress.ip_interface(cidr)
        extra = {"flags": 0x2} if iface.version == 6 and op == "add" else {}  # IFA_F_NODAD
        self._ns_call(netns, f"{dev} address {cidr}", lambda: ipr.addr(
            op, index=_index(ipr, netns, dev), address=str(iface.ip),
            prefixlen=iface.network.prefixlen, **extra))

    def neigh(self, op: str, netns: str, dev: str, ip: str, mac: str) -> None:
        """``KernelIO.ns_neigh``: "replace" (permanent) or "del"."""
        ipr = self._writing(netns)
        index = _index(ipr, netns, dev)
        extra = {"lladdr": mac, "state": NUD_PERMANENT} if op == "replace" else {}
        self._ns_call(netns, f"{dev} neighbour {ip}",
                      lambda: ipr.neigh(op, dst=ip, ifindex=index, **extra))

    def route(self, op: str, netns: str, dst: str, gateway: str, table: int = MAIN_TABLE,
              dev: str = "") -> None:
        """``KernelIO.ns_route``: protocol ``ROUTE_PROTO`` (a "del" touches
        only a route of that protocol); with ``dev`` out of that device, the
        gateway on its link (``onlink``), or without one a link-scope route.
        An "add" replaces a route to the same destination (the same route
        made again after its device was remade is no refusal)."""
        ipr = self._writing(netns)
        net = ipaddress.ip_network(dst)
        extra: dict[str, Any] = {"gateway": gateway} if gateway else {}
        if dev:
            extra["oif"] = _index(ipr, netns, dev)
            if gateway:
                extra["flags"] = RTNH_F_ONLINK
            else:
                extra["scope"] = RT_SCOPE_LINK
        self._ns_call(netns, f"route {dst} table {table}", lambda: ipr.route(
            "replace" if op == "add" else op, dst=str(net.network_address), dst_len=net.prefixlen, table=table,
            proto=ROUTE_PROTO, family=AF_INET6 if net.version == 6 else AF_INET, **extra))

    def rule(self, op: str, netns: str, rule: NsRule) -> None:
        """``KernelIO.ns_rule``: an IPv4 policy rule of protocol ``ROUTE_PROTO``."""
        ipr = self._writing(netns)
        extra: dict[str, Any] = {}
        if rule.src:
            net = ipaddress.ip_network(rule.src)
            extra.update(src=str(net.network_address), src_len=net.prefixlen)
        if rule.dst:
            net = ipaddress.ip_network(rule.dst)
            extra.update(dst=str(net.network_address), dst_len=net.prefixlen)
        if rule.suppress_prefixlength >= 0:
            extra["suppress_prefixlen"] = rule.suppress_prefixlength
        self._ns_call(netns, f"rule {rule.priority} lookup {rule.table}", lambda: ipr.rule(
            op, family=AF_INET, priority=rule.priority, table=rule.table, protocol=ROUTE_PROTO,
            **extra))

    def nft(self, netns: str, commands: list[dict[str, Any]]) -> None:
        """``KernelIO.ns_nft``: one atomic batch in the namespace."""
        self._writing(netns)
        self._opened(netns).nft.batch(commands)

    def garp(self, netns: str, dev: str, ip: str) -> None:
        """``KernelIO.ns_garp`` (IPv4: a floating IP)."""
        self._writing(netns)
        try:
            with entered_netns(self._path(netns)):
                send_garp(dev, ip)
        except (OSError, ValueError) as exc:
            raise KernelRefusal(f"router namespace {netns}: {dev}: gratuitous ARP for {ip}: "
                                f"{exc}") from None

    def forget(self, netns: str, ip: str, proto: int = 0,
               ports: tuple[int, int] | None = None) -> int:
        """``KernelIO.ns_forget``: the namespace's conntrack entries to or
        from ``ip`` deleted (a floating IP that left), or those to ``ip``
        over ``proto`` to a port in ``ports`` (a port forwarding that went);
        how many went."""
        self._writing(netns)
        try:
            with entered_netns(self._path(netns)):
                ct = Conntrack()
            try:
                flows = ct.touching(ip)
                if ports is not None:
                    flows = [f for f in flows if f.dst == ip and f.proto == proto
                             and ports[0] <= f.dport <= ports[1]]
                return ct.delete(flows)
            finally:
                ct.close()
        except OSError as exc:
            raise KernelRefusal(f"router namespace {netns}: conntrack entries of {ip}: "
                                f"{exc}") from None

    # --- sockets ------------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self._run_dir, name)

    def _opened(self, name: str) -> _Opened:
        """The namespace's sockets, made on first use, and again when the
        name now holds another namespace.  OSError (FileNotFoundError,
        EINVAL) when the name holds none."""
        path = self._path(name)
        inode = os.stat(path).st_ino
        opened = self._open.get(name)
        if opened is not None and opened.inode == inode:
            return opened
        self._drop(name)
        with entered_netns(path):
            opened = _Opened(inode, NamespaceReader(), NamespaceNft(name, path))
        self._open[name] = opened
        return opened

    def _ipr(self, name: str) -> IPRoute:
        """The namespace's pyroute2 socket (made in it on first use)."""
        opened = self._opened(name)
        if opened.ipr is None:
            with entered_netns(self._path(name)):
                opened.ipr = IPRoute()
        return opened.ipr

    def _writing(self, name: str) -> IPRoute:
        """The socket of a namespace a primitive writes in; a refusal naming it if none."""
        try:
            return self._ipr(name)
        except OSError as exc:
            if not _vanished(exc):
                raise
            raise KernelRefusal(f"router namespace {name}: no such namespace") from None

    def _drop(self, name: str) -> None:
        opened = self._open.pop(name, None)
        if opened is not None:
            opened.close()

    @staticmethod
    def _ns_call(netns: str, what: object, call: Callable[[], object]) -> None:
        """A netlink request; its refusal names the namespace and the object."""
        try:
            call()
        except NetlinkError as exc:
            raise KernelRefusal(f"router namespace {netns}: {what}: netlink error "
                                f"{exc.code}: {os.strerror(exc.code)}") from None


def add_veth(ipr: IPRoute, name: str, alias: str, mtu: int, peer: str, netns_path: str) -> None:
    """``KernelIO.veth_add`` through the host namespace's ``ipr``: the peer
    is created straight in the namespace at ``netns_path``; both stay down.
    (IPv6 off for ``name`` is the caller's: a sysctl of the host namespace.)"""
    try:
        fd = os.open(netns_path, os.O_RDONLY)
    except FileNotFoundError:
        raise KernelRefusal(f"veth {name}: no router namespace {netns_path}") from None
    try:
        ipr.link("add", ifname=name, kind="veth", mtu=mtu,
                 peer={"ifname": peer, "mtu": mtu, "net_ns_fd": fd})
    except NetlinkError as exc:
        if exc.code != EEXIST:
            raise
        if ipr.link_lookup(ifname=name):
            raise LinkExists(f"{name}: a device of that name exists") from None
        raise KernelRefusal(f"veth {name}: peer {peer} exists in {netns_path}") from None
    finally:
        os.close(fd)
    ipr.link("set", index=ipr.link_lookup(ifname=name)[0], ifalias=alias)


# --- reading one namespace ------------------------------------------------------
def _forwarding() -> bool:
    """Every sysctl of ``SETTINGS`` as it should be, read in the calling
    thread's namespace (``/proc/sys/net`` is the namespace of the thread
    that opens it).  No IPv6 in the kernel (no file) leaves IPv4 alone to say."""
    for path, value in SETTINGS.items():
        try:
            with open(path) as f:
                if f.read().strip() != value:
                    return False
        except FileNotFoundError:
            if path not in OPTIONAL:
                raise
    return True


def _write_sysctl(path: str, value: str, missing_ok: bool) -> bool:
    """Write ``value``; False when the file is missing and that is fine."""
    try:
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:
        if not missing_ok:
            raise
        return False
    return True


def _vanished(exc: OSError) -> bool:
    """The namespace went (its file, or the mount on it)."""
    return isinstance(exc, FileNotFoundError) or exc.errno in (errno.ENOENT, errno.EINVAL)


def _retried(read: Callable[[], T]) -> T:
    """A read again when a dump was interrupted by a concurrent change."""
    for attempt in range(DUMP_ATTEMPTS):
        try:
            return read()
        except DumpInterrupted:
            if attempt == DUMP_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _index(ipr: IPRoute, netns: str, dev: str) -> int:
    found = ipr.link_lookup(ifname=dev)
    if not found:
        raise KernelRefusal(f"router namespace {netns}: {dev}: no such device")
    return int(found[0])
