"""The kernel as the data plane's subsystems see it: rows as the kernel
reports them (:class:`Link`, :class:`FdbRow`, nftables objects as libnftables'
JSON), the read side
(:class:`KernelRows`) and the write side (:class:`KernelIO`).

Both sides are protocols.  The real driver (``overcast.linux.netlink``)
implements them over rtnetlink, the fake (``overcast.linux.fake``) over rows
in memory with the kernel's own side effects.  A subsystem's observe rule
reads rows and its apply calls the write primitives, so the fake and the
driver run the same subsystem code and differ only below these protocols.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from overcast.plan.names import is_owned_table

NTF_SELF = 0x2  # an FDB row of the device itself (not of the bridge above it)
EEXIST = 17


@dataclass(slots=True)
class Link:
    """The fields of one link that observe needs; vxlan fields only when
    ``kind == "vxlan"`` and the kernel sent its data (``vxlan_data``)."""

    index: int
    name: str = ""
    alias: str = ""
    mtu: int = 0
    up: bool = False
    master: int = 0  # ifindex of the master device; 0: none
    kind: str = ""
    vxlan_data: bool = False
    vni: int = 0
    local_ip: str = ""
    port: int = 0
    learning: bool = False
    group: int = 0  # IFLA_GROUP
    mcast_snooping: bool = False  # bridges: as IFLA_BR_MCAST_SNOOPING says
    nf_call_iptables: bool = False  # bridges: IFLA_BR_NF_CALL_IPTABLES (False without br_netfilter)
    nf_call_ip6tables: bool = False  # bridges: IFLA_BR_NF_CALL_IP6TABLES
    ipv6: bool = False  # IPv6 enabled on the device (False also when the kernel has none)


@dataclass(frozen=True, slots=True)
class FdbRow:
    """One AF_BRIDGE neighbour (FDB) row: ``dst`` is None when absent."""

    ifindex: int
    flags: int
    mac: str
    dst: str | None = field(default=None)


@dataclass(frozen=True, slots=True)
class NsLink:
    """A device inside a router namespace (``lo`` left out)."""

    name: str
    kind: str = ""
    mac: str = ""  # lower case
    mtu: int = 0
    up: bool = False
    ipv6: bool = False  # IPv6 enabled on the device


@dataclass(frozen=True, slots=True)
class NsAddress:
    dev: str
    cidr: str  # address/prefix length, as the kernel holds it ("10.0.0.1/24")


@dataclass(frozen=True, slots=True)
class NsNeighbour:
    """A permanent neighbour entry (NUD_PERMANENT; the others are left out)."""

    dev: str
    ip: str
    mac: str  # lower case


@dataclass(frozen=True, slots=True)
class NsRoute:
    """A route of the main table made by Overcast (protocol
    :data:`overcast.plan.names.ROUTE_PROTO`; the others are left out)."""

    dst: str  # network/prefix length ("0.0.0.0/0")
    gateway: str  # "" for none
    dev: str = ""  # "" when the route has no output device
    table: int = 254  # RT_TABLE_MAIN


@dataclass(frozen=True, slots=True, order=True)
class NsRule:
    """A routing policy rule made by Overcast (protocol ROUTE_PROTO)."""

    priority: int
    src: str  # "" for all, else network/prefix length
    table: int
    suppress_prefixlength: int = -1  # -1: none
    dst: str = ""  # "" for all, else network/prefix length


@dataclass(frozen=True, slots=True)
class Netns:
    """One router namespace of this host, as one read of it found it."""

    name: str
    mark: str  # the ifalias of its ``lo``: the ownership mark
    # net.ipv4.ip_forward, net.ipv6.conf.all.forwarding and the other sysctls of a router
    # namespace (KernelIO.netns_add) all as Overcast sets them
    forwarding: bool
    links: tuple[NsLink, ...] = ()
    addresses: tuple[NsAddress, ...] = ()
    neighbours: tuple[NsNeighbour, ...] = ()
    routes: tuple[NsRoute, ...] = ()
    rules: tuple[NsRule, ...] = ()
    # the namespace's nftables tables named with NFT_TABLE_PREFIX, as ``list ruleset``
    # gives them in libnftables JSON (``{"table": ...}``, ``{"chain": ...}``, ``{"rule": ...}``)
    nft: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class TcQdisc:
    """One qdisc of a device, as a tc dump gives it.  ``handle`` and
    ``parent`` are 32-bit tc handles (major << 16 | minor; the root parent
    is ``TC_H_ROOT``, the ingress qdisc's ``TC_H_INGRESS``).  ``default``:
    an htb qdisc's default class minor (0 for other kinds)."""

    dev: str
    kind: str  # "htb", "ingress", "pfifo_fast", ...
    handle: int
    parent: int
    default: int = 0


@dataclass(frozen=True, slots=True)
class TcClass:
    """One htb class: ``rate`` and ``ceil`` in bytes per second, ``burst``
    and ``cburst`` in bytes (converted back from the kernel's buffer times,
    so within a few bytes of what was set)."""

    dev: str
    handle: int
    parent: int
    rate: int
    ceil: int
    burst: int
    cburst: int


@dataclass(frozen=True, slots=True)
class TcFilter:
    """One filter of a device: ``parent`` the qdisc it hangs on (the
    ingress qdisc: ``TC_H_INGRESS_PARENT``), ``prio`` its priority, ``kind``
    the classifier ("u32", ...); ``match_all``: a u32 filter whose only key
    matches every packet; ``redirect``: the device a mirred egress redirect
    action sends to ("" without one).  ``classid``: the class a u32 filter
    puts what it matches in (0: none); only such a filter also carries its
    ``handle`` (its key node) and ``keys`` ((value, mask, offset) each, 32
    bits at ``offset`` bytes from the network header), so that other rows
    read as they always did."""

    dev: str
    parent: int
    prio: int
    kind: str
    match_all: bool = False
    redirect: str = ""
    classid: int = 0
    handle: int = 0
    keys: tuple[tuple[int, int, int], ...] = ()


TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1  # the ingress qdisc's parent
TC_H_INGRESS_PARENT = 0xFFFF0000  # the ingress qdisc's handle: the parent of its filters


class KernelRows(Protocol):
    """One consistent read of the kernel (the driver retries a read that a
    concurrent change tore)."""

    def link_rows(self) -> list[Link]: ...

    def fdb_rows(self, ifindexes: Collection[int]) -> list[FdbRow]:
        """FDB rows of the devices ``ifindexes``."""
        ...

    def nft_rows(self) -> list[dict[str, Any]]:
        """The nftables objects of Overcast's tables, as ``list ruleset``
        gives them in libnftables JSON (``{"table": {...}}``, ``{"chain":
        {...}}``, ``{"rule": {...}}``, ``{"set": {...}}``, ``{"map": {...}}``
        ...; with handles; a table row carries its ``comment``), in its
        order: each table, then its sets and maps, its chains, then its
        rules chain by chain.  Only tables that are ours (owned name AND
        mark, :func:`overcast.plan.names.is_owned_table`) and their objects;
        see :func:`owned_nft_rows`."""
        ...

    def tc_rows(self, devices: Collection[str]) -> list[TcQdisc | TcClass | TcFilter]:
        """The qdiscs, htb classes and filters of the named devices (those
        that exist; the others are left out), in one read."""
        ...

    def netns_rows(self) -> list[Netns]:
        """This host's router namespaces (:func:`overcast.plan.names.
        is_router_netns` for the host the kernel was made for), each read
        whole; a namespace that went while being read is left out."""
        ...


class KernelRefusal(Exception):
    """The kernel refused a primitive; the message says why (as the kernel did)."""


class LinkExists(KernelRefusal):
    """``link_add`` of a name that exists."""


class KernelIO(Protocol):
    """Write primitives, in the kernel's terms.  Names are resolved by the
    implementation; a missing device is a refusal of that change only.
    ``port_set`` and the FDB primitives may be queued and sent in batches:
    any other netlink or nft primitive first sends what is queued, so order
    is kept (``ipv6_off`` is a sysctl write: it takes effect at once, before
    a queued request that brings the device up).  The queued primitives are
    meant for use inside ``Kernel.apply``, which sends the queue at its end."""

    def link_add(self, name: str, kind: str, mtu: int, info: dict[str, int | str]) -> None:
        """Create a device (``info``: kind-specific data, see the links
        subsystem); :class:`LinkExists` if the name is taken."""
        ...

    def link_get(self, name: str) -> Link | None: ...

    def link_set(self, name: str, mtu: int, alias: str, up: bool,
                 mcast_snooping: bool | None = None,
                 nf_call: tuple[bool, bool] | None = None) -> None:
        """``mcast_snooping`` and ``nf_call`` (br_netfilter for IPv4, IPv6)
        are bridge options; None leaves them as they are."""
        ...

    def link_del(self, name: str) -> None: ...

    def port_set(self, name: str, master: str, mtu: int | None = None,
                 up: bool | None = None, group: int | None = None) -> None:
        """Enslave ``name`` to ``master`` ("" detaches it), set MTU, up flag
        and interface group (None: leave it)."""
        ...

    def fdb_add(self, dev: str, mac: str, dst: str) -> None: ...

    def fdb_del(self, dev: str, mac: str, dst: str) -> None: ...

    def ipv6_off(self, name: str) -> None:
        """No IPv6 on the device (no MLD, RS or DAD into a tenant network)."""
        ...

    # --- router namespaces (the routers subsystem) ---
    def netns_add(self, name: str, mark: str) -> None:
        """Create the network namespace ``name`` (``/run/netns/<name>``) with
        its ``lo`` up and marked (ifalias ``mark``), IPv4 and IPv6
        forwarding on, and for IPv4 (``all`` and ``default``): rp_filter 0
        (routed paths are asymmetric: out by the SNAT port, back by the
        gateway), arp_ignore 1 and arp_announce 2 (a device answers ARP for
        its own addresses only), arp_notify 1 (a device that comes up
        announces its addresses), send_redirects 0 (a router never sends
        a VM to the SNAT port round itself).  A namespace of that name that exists is adopted
        when it has no mark (we crashed while making it), else refused."""
        ...

    def netns_del(self, name: str) -> None:
        """Delete the namespace (with every device in it: a veth's peer goes too)."""
        ...

    def netns_forwarding(self, name: str) -> None:
        """IPv4 and IPv6 forwarding on in namespace ``name``."""
        ...

    def veth_add(self, name: str, alias: str, mtu: int, peer: str, netns: str) -> None:
        """A veth pair: ``name`` here (marked ``alias``, down, IPv6 off),
        ``peer`` in namespace ``netns`` (down); both with ``mtu``.
        :class:`LinkExists` if ``name`` is taken."""
        ...

    def ns_link_set(self, netns: str, dev: str, mac: str, mtu: int, up: bool,
                    ipv6: bool) -> None:
        """Set a device in ``netns``: MAC, MTU, IPv6 on or off (before it
        goes up), up flag."""
        ...

    def ns_addr(self, op: str, netns: str, dev: str, cidr: str) -> None:
        """``op`` "add" or "del" address ``cidr`` (``10.0.0.1/24``) on ``dev``."""
        ...

    def ns_neigh(self, op: str, netns: str, dev: str, ip: str, mac: str) -> None:
        """``op`` "replace" (a permanent entry) or "del"."""
        ...

    def ns_route(self, op: str, netns: str, dst: str, gateway: str, table: int = 254,
                 dev: str = "") -> None:
        """``op`` "add" or "del" a route of protocol
        :data:`overcast.plan.names.ROUTE_PROTO` in ``table`` to ``dst`` via
        ``gateway``; with ``dev``: out of that device, the gateway taken as
        on its link (``onlink``), or without a gateway a link-scope route.
        An "add" replaces a route to the same destination and table."""
        ...

    def ns_rule(self, op: str, netns: str, rule: NsRule) -> None:
        """``op`` "add" or "del" a policy rule (IPv4, protocol ROUTE_PROTO)."""
        ...

    def ns_nft(self, netns: str, commands: list[dict[str, Any]]) -> None:
        """One libnftables JSON batch in namespace ``netns`` (atomic)."""
        ...

    def ns_garp(self, netns: str, dev: str, ip: str) -> None:
        """Send one gratuitous ARP for ``ip`` from ``dev`` in ``netns`` (a
        floating IP that moved here: the external network learns its new place)."""
        ...

    def ns_forget(self, netns: str, ip: str, proto: int = 0,
                  ports: tuple[int, int] | None = None) -> None:
        """Delete the conntrack entries in ``netns`` whose original or reply
        direction goes to ``ip`` (a floating IP that left: no flow keeps
        its NAT); with ``proto`` and ``ports``, only those whose original
        direction goes to ``ip`` over ``proto`` to a port in that range (a
        port forwarding that went)."""
        ...

    # --- traffic control (the qos subsystem) ---
    def tc_qdisc(self, op: str, dev: str, kind: str, handle: int, parent: int,
                 default: int = 0) -> None:
        """``op`` "add" or "del" a qdisc: ``kind`` "htb" (``default``: its
        default class minor) or "ingress" (``handle`` TC_H_INGRESS_PARENT,
        ``parent`` TC_H_INGRESS).  Deleting a qdisc takes its classes and
        filters along.  An "add" of a qdisc that exists with the same kind and
        handle is not refused (a no-op)."""
        ...

    def tc_class(self, op: str, dev: str, handle: int, parent: int, rate: int = 0,
                 burst: int = 0, ceil: int = 0) -> None:
        """``op`` "replace" (create or change in place, never re-creating the
        qdisc: queued packets stay queued) or "del" an htb class with ``rate``
        and ``ceil`` (bytes per second; ``ceil`` 0: the rate) and ``burst`` =
        ``cburst`` (bytes)."""
        ...

    def tc_classify(self, op: str, dev: str, parent: int, prio: int, handle: int,
                    keys: tuple[tuple[int, int, int], ...] = (), classid: int = 0) -> None:
        """``op`` "add" or "del" one u32 filter (key node ``handle`` of the
        table 800:, protocol all) of priority ``prio`` on ``dev``'s qdisc
        ``parent``: a packet matching all ``keys`` ((value, mask, offset from
        the network header, negative into the link header)) goes to class
        ``classid``.  An add of a handle that exists is refused."""
        ...

    def tc_redirect(self, op: str, dev: str, prio: int, target: str) -> None:
        """``op`` "add" or "del" a u32 match-all filter of priority ``prio`` on
        ``dev``'s ingress qdisc (which must exist) with a mirred egress redirect
        action to ``target``: everything that ``dev`` receives leaves by
        ``target``'s egress (an ifb device, whose root qdisc then shapes it)."""
        ...

    def nft(self, commands: list[dict[str, Any]]) -> None:
        """One libnftables JSON batch (the items of ``{"nftables": [...]}``:
        ``{"add": {"table": {...}}}``, ``{"flush": ...}``, ``{"delete": ...}``
        ...), atomic: all of it or none of it.  A table is marked by
        ``"comment"`` in its ``add``/``create``.  :class:`KernelRefusal` with
        libnftables' message when refused."""
        ...


def owned_nft_rows(ruleset: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects of Overcast's tables in a ``list ruleset`` (JSON items, in
    its order): a table is ours only if its name has the owned prefix AND its
    comment is our mark; ``metainfo`` and everything of other tables is left
    out."""
    items = list(ruleset)
    ours = {(t["family"], t["name"]) for item in items if (t := item.get("table")) is not None
            and is_owned_table(t["name"], t.get("comment"))}
    out: list[dict[str, Any]] = []
    for item in items:
        for kind, body in item.items():
            if kind == "metainfo" or not isinstance(body, dict):
                continue
            table = body.get("name") if kind == "table" else body.get("table")
            if (body.get("family"), table) in ours:
                out.append(item)
    return out
