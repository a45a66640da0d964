"""NetlinkKernel: the Kernel contract over rtnetlink, in the current network
namespace (the agent runs inside its host's namespace), or in a named one when
``netns`` is given (tests, tools).

Three sockets, all made in that namespace at the same moment, so they see the
same devices: the raw dump reader (observe, with the tc dumps), the raw
batched writer (FDB entries and attachments: the many changes; tc requests,
one at a time: ``linux/tc.py``) and pyroute2 (bridges, VXLAN and ifb
devices: create, set, delete, adopt; the rare changes).  Every change is
acknowledged before apply returns, so each one sees what the previous ones did.

nftables goes through a libnftables context made in the same namespace on
first use (a host without the library keeps the other subsystems; the
subsystem that needs it is refused, naming the library).  libnftables 1.0.6
neither writes nor reports a table's comment in JSON, so the mark of a table
an nft batch creates is written first, by a text ``create table`` of the
empty table with its comment (a separate transaction: if the JSON batch is
then refused, those tables are deleted again), and read from the text
listing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkDumpInterrupted, NetlinkError

from overcast.linux.conntrack import Conntrack
from overcast.linux.devices import NETNS_RUN_DIR, disable_ipv6, entered_netns
from overcast.linux.netns import RouterNamespaces, add_veth
from overcast.linux.nft import LIBRARY, ListedTable, Nftables, NftError, marked_tables
from overcast.linux.nft_view import NftView, ReadProbe
from overcast.linux.nftgen import LazyGeneration
from overcast.linux.rtnl import DumpInterrupted
from overcast.linux.rtnl_write import Refusal, Request, RtnlWriter, fdb_request, link_set_request
from overcast.linux.tc import (
    TcReader,
    TcRow,
    class_request_ceil,
    classify_request,
    qdisc_request,
    redirect_request,
)
from overcast.plan import diff as steps
from overcast.plan.firewall_admits import Flow
from overcast.plan.names import NFT_TABLE_PREFIX
from overcast.plan.raw import (
    EEXIST,
    FdbRow,
    KernelRefusal,
    KernelRows,
    Link,
    LinkExists,
    Netns,
    NsRule,
    TcQdisc,
    owned_nft_rows,
)
from overcast.plan.state import ApplyError, Change, KernelState
from overcast.plan.subsystem import Subsystem
from overcast.plan.subsystems import SUBSYSTEMS
from overcast.plan.subsystems.routers import METER_TABLE

AF_BRIDGE = 7
IFF_UP = 0x1
DUMP_ATTEMPTS = 5
# an unchanged nftables generation lets observe reuse its last listing this long
# (the firewall's counters, read from the listing, are then at most this old)
NFT_ROWS_MAX_AGE = 10.0
GENERATIONS = 1 << 32  # the generation id is a u32: it wraps
GENERATION_STEP_CHAIN = "overcast_generation_step"  # made and deleted in one batch (_generation_step)
REFUSALS = (NetlinkError, LookupError, ValueError, OSError, KernelRefusal)
# links subsystem's kind-specific data -> pyroute2's link arguments
_LINK_INFO = {"mcast_snooping": "br_mcast_snooping", "mcast_querier": "br_mcast_querier",
              "nf_call_iptables": "br_nf_call_iptables",
              "nf_call_ip6tables": "br_nf_call_ip6tables",
              "vni": "vxlan_id", "local": "vxlan_local", "port": "vxlan_port",
              "learning": "vxlan_learning"}
T = TypeVar("T")


class NetlinkKernel:
    def __init__(self, netns: str | None = None,
                 subsystems: Sequence[Subsystem] = SUBSYSTEMS, host: str = "") -> None:
        self._netns = netns
        # the router namespaces of ``host`` (the agent's host name; "": none observed)
        self._routers = RouterNamespaces(host)
        self._subsystems = subsystems
        # A missing namespace fails here (never created); a failure closes
        # the sockets already made.
        with entered_netns(netns), ExitStack() as made:
            self._rtnl = TcReader()
            made.callback(self._rtnl.close)
            self._writer = RtnlWriter()
            made.callback(self._writer.close)
            self._ipr = IPRoute()
            made.pop_all()
        self._nft: Nftables | None = None  # made on first use (see the module doc)
        self._ct: Conntrack | None = None  # ctnetlink, made on first use in the namespace
        self._gen = LazyGeneration(netns)  # NFT_MSG_GETGEN, its socket made on first use
        # the last listing taken while the generation stayed, and what our own
        # batches made of it since (linux/nft_view.py)
        self._view: NftView | None = None
        # during an apply: the generation our batches have moved the view to
        # (None: something else happened, the view goes at the end of the apply)
        self._moved: int | None = None
        self._kept = [self._keeping(sub) for sub in subsystems]
        # subsystem name -> the records the last view held (``_shared``)
        self._last: dict[str, tuple[Any, ...]] = {}
        self.listings = 0  # JSON listings of the ruleset taken (what a reused view saves)
        self._indexes: dict[str, int] | None = None  # name -> ifindex during an apply
        self._observed: dict[str, int] | None = None  # name -> ifindex of the last observe
        self._batch = _Batch()
        self._refused: list[ApplyError] = []  # refusals of batches sent during an apply
        self._current: Change | None = None  # the change whose primitives run now

    def close(self) -> None:
        self._rtnl.close()
        self._writer.close()
        self._ipr.close()
        self._routers.close()
        if self._nft is not None:
            self._nft.close()
        if self._ct is not None:
            self._ct.close()
        self._gen.close()

    def __enter__(self) -> NetlinkKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- observe ------------------------------------------------------------
    def observe(self, fresh: bool = False) -> KernelState:
        """A consistent snapshot, read with the raw dump reader: a dump
        interrupted by a concurrent change (NLM_F_DUMP_INTR) is retried.
        Its ifindexes serve the apply that follows (its changes are computed
        from this snapshot) instead of a links dump of its own.  ``fresh``:
        the firewall's tables are listed even when the last listing could
        serve (``nft_view``), e.g. for their counters, and so are the router
        namespaces' metering tables."""
        if fresh:
            self._view = None
            self._routers.relist(METER_TABLE)

        def read() -> KernelState:
            rows = _Rows(self._rtnl.links(), self._rtnl.fdb, self.nft_view,
                         frozenset(self._view.records) if self._view is not None else frozenset(),
                         self._routers.rows, tc=self._rtnl.tc_rows)
            state = steps.observe(rows, self._kept)
            self._observed = {ln.name: ln.index for ln in rows.link_rows()}
            return state

        self._observed = None
        return _retried(read)

    def observe_with_pyroute2(self) -> KernelState:
        """The same snapshot decoded by pyroute2: several times slower, kept
        as the reference the fast reader is tested against."""
        self._observed = None
        return _retried(lambda: steps.observe(
            _Rows([_link(m) for m in self._ipr.get_links()], self._fdb_pyroute2, self.nft_view,
                  netns=self._routers.rows, tc=self._rtnl.tc_rows),
            self._subsystems))

    def _keeping(self, sub: Subsystem) -> Subsystem:
        """``sub`` with an observe that, when it decodes nftables rows alone,
        keeps its records with the listing (``NftView.records``) and returns
        them again while that listing serves."""
        def observe(rows: KernelRows) -> tuple[Any, ...]:
            assert isinstance(rows, _Rows)
            held = rows.held(sub.name)
            if held is not None:
                return held
            probe = ReadProbe(rows)
            found = tuple(sub.observe(probe))
            if probe.nft_only:
                found = _shared(found, self._last.get(sub.name, ()))
                rows.keep(sub.name, found)
                self._last[sub.name] = found
            return found

        return replace(sub, observe=observe)

    def _fdb_pyroute2(self, ifindexes: Collection[int]) -> list[FdbRow]:
        return [
            FdbRow(msg["ifindex"], msg["flags"], str(msg.get("NDA_LLADDR")).lower(), msg.get("NDA_DST"))
            for msg in self._ipr.get_neighbours(family=AF_BRIDGE)
            if msg["ifindex"] in ifindexes
        ]

    # --- apply --------------------------------------------------------------
    def apply(self, changes: Sequence[Change]) -> list[ApplyError]:
        """Each change through its subsystem.  FDB entries and attachments are
        queued and sent as one batch; any other primitive first flushes the
        queue (what comes before it is done before it)."""
        # name -> ifindex: the last observe's, when nothing was applied since;
        # else one links dump (on first use)
        self._indexes, self._observed = self._observed, None
        self._batch, self._refused = _Batch(), []
        view = self._view
        self._moved = view.generation if view is not None else None
        try:
            errors = steps.apply(self, changes, REFUSALS, _describe, self._pin, self._subsystems)
            errors += self._refused + self._flush()
        finally:
            moved, self._moved = self._moved, None
            self._current, self._refused = None, []
        # our batches were the only nftables transactions since the view: it
        # follows them (linux/nft_view.py); else the next observe lists
        if view is None or moved is None or self._view is not view:
            self._view = None
        elif moved != view.generation:  # else no batch: the kernel holds the view still
            self._view = view.after(moved, changes, errors, self._subsystems)
            if self._view is not None:
                self._last.update(self._view.records)
        order = {id(change): i for i, change in enumerate(changes)}
        return sorted(errors, key=lambda err: order[id(err.change)])

    def _pin(self, change: Change) -> None:
        self._current = change

    def _queue(self, request: Request) -> None:
        assert self._current is not None
        self._batch.add(self._current, request)

    def _flush(self) -> list[ApplyError]:
        """Send the queued requests; an error for each one the kernel refused
        (or for all of them when the batch could not be sent)."""
        changes, requests = self._batch.changes, self._batch.requests
        self._batch = _Batch()
        if not requests:
            return []
        try:
            answers = self._writer.send(requests)
        except OSError as exc:
            reason = f"netlink batch failed ({exc}): outcome unknown until the next observe"
            return [ApplyError(change, reason) for change in changes]
        return [ApplyError(change, refusal.describe())
                for change, refusal in zip(changes, answers, strict=True) if refusal is not None]

    def _flushed(self) -> None:
        """Before a primitive that is not batched: send the queue, keep its refusals."""
        self._refused += self._flush()

    # --- KernelIO primitives -----------------------------------------------------
    def link_add(self, name: str, kind: str, mtu: int, info: dict[str, int | str]) -> None:
        self._flushed()
        args = {_LINK_INFO[k]: v for k, v in info.items()}
        try:
            self._ipr.link("add", ifname=name, kind=kind, mtu=mtu, **args)
        except NetlinkError as exc:
            if exc.code == EEXIST:
                raise LinkExists(_describe(exc)) from None
            raise

    def link_get(self, name: str) -> Link | None:
        self._flushed()
        try:
            (msg,) = self._ipr.get_links(ifname=name)
        except (NetlinkError, ValueError):  # pyroute2 0.9: an empty answer for a missing name
            return None
        return _link(msg)

    def link_set(self, name: str, mtu: int, alias: str, up: bool,
                 mcast_snooping: bool | None = None,
                 nf_call: tuple[bool, bool] | None = None) -> None:
        self._flushed()
        extra: dict[str, Any] = {}
        if mcast_snooping is not None:
            extra = {"kind": "bridge", "br_mcast_snooping": int(mcast_snooping)}
        if nf_call is not None:
            extra.update(kind="bridge", br_nf_call_iptables=int(nf_call[0]),
                         br_nf_call_ip6tables=int(nf_call[1]))
        self._ipr.link("set", index=self._index(name), mtu=mtu, ifalias=alias,
                       state="up" if up else "down", **extra)

    def link_del(self, name: str) -> None:
        self._flushed()
        self._ipr.link("del", index=self._index(name))
        if self._indexes is not None:
            self._indexes.pop(name, None)

    def port_set(self, name: str, master: str, mtu: int | None = None,
                 up: bool | None = None, group: int | None = None) -> None:
        index = self._index(name)
        if not master:
            self._queue(link_set_request(index, master=0, group=group))
        else:
            self._queue(link_set_request(index, master=self._index(master), mtu=mtu, up=up,
                                         group=group))

    def fdb_add(self, dev: str, mac: str, dst: str) -> None:
        self._queue(fdb_request("append", self._index(dev), mac, dst))

    def fdb_del(self, dev: str, mac: str, dst: str) -> None:
        self._queue(fdb_request("del", self._index(dev), mac, dst))

    def ipv6_off(self, name: str) -> None:
        """Set before the device goes up (the sysctl is not a netlink request)."""
        with entered_netns(self._netns):
            disable_ipv6(name)

    # --- traffic control (linux/tc.py) ---------------------------------------------
    def tc_rows(self, devices: Collection[str]) -> list[TcRow]:
        """``KernelRows.tc_rows`` outside an observe (with a links dump of its own)."""
        return _retried(lambda: self._rtnl.tc_rows(devices, self._rtnl.links()))

    def tc_qdisc(self, op: str, dev: str, kind: str, handle: int, parent: int,
                 default: int = 0) -> None:
        """An add refused only because the same kind and handle is there
        (EEXIST) is done."""
        index = self._tc_index(dev)
        refusal = self._tc(qdisc_request(op, index, kind, handle, parent, default))
        if refusal is None:
            return
        if op == "add" and refusal.code == EEXIST:
            held = _retried(lambda: self._rtnl.qdiscs({index: dev}))
            if any(q == TcQdisc(dev, kind, handle, parent, q.default) for _, q in held):
                return
        raise KernelRefusal(f"tc qdisc {op} {kind} {handle:#x} parent {parent:#x} dev {dev}: "
                            f"{refusal.describe()}")

    def tc_class(self, op: str, dev: str, handle: int, parent: int, rate: int = 0,
                 burst: int = 0, ceil: int = 0) -> None:
        refusal = self._tc(class_request_ceil(op, self._tc_index(dev), handle, parent, rate,
                                              burst, ceil))
        if refusal is not None:
            raise KernelRefusal(f"tc class {op} htb {handle:#x} parent {parent:#x} dev {dev}: "
                                f"{refusal.describe()}")

    def tc_classify(self, op: str, dev: str, parent: int, prio: int, handle: int,
                    keys: tuple[tuple[int, int, int], ...] = (), classid: int = 0) -> None:
        request = classify_request(op, self._tc_index(dev), parent, prio, handle, keys, classid)
        refusal = self._tc(request)
        if refusal is not None:
            raise KernelRefusal(f"tc filter {op} dev {dev} parent {parent:#x} prio {prio} "
                                f"handle {handle:#x} classid {classid:#x}: {refusal.describe()}")

    def tc_redirect(self, op: str, dev: str, prio: int, target: str) -> None:
        index = self._tc_index(dev)
        to = self._tc_index(target) if op == "add" else 0
        refusal = self._tc(redirect_request(op, index, prio, to))
        if refusal is not None:
            raise KernelRefusal(f"tc filter {op} dev {dev} prio {prio} redirect to {target}: "
                                f"{refusal.describe()}")

    def _tc(self, request: Request) -> Refusal | None:
        """Send one tc request at once (after the queue): None or its refusal."""
        self._flushed()
        (answer,) = self._writer.send([request])
        return answer

    def _tc_index(self, name: str) -> int:
        try:
            return self._index(name)
        except LookupError as exc:
            raise KernelRefusal(str(exc)) from None

    # --- router namespaces (linux/netns.py) ---------------------------------------
    def netns_rows(self) -> list[Netns]:
        return self._routers.rows()

    def netns_add(self, name: str, mark: str) -> None:
        self._flushed()
        self._routers.add(name, mark)

    def netns_del(self, name: str) -> None:
        self._flushed()
        self._routers.delete(name)

    def netns_forwarding(self, name: str) -> None:
        self._flushed()
        self._routers.forwarding(name)

    def veth_add(self, name: str, alias: str, mtu: int, peer: str, netns: str) -> None:
        """From this (the host) namespace; the peer is made in ``netns``."""
        self._flushed()
        try:
            add_veth(self._ipr, name, alias, mtu, peer, f"{NETNS_RUN_DIR}/{netns}")
        except NetlinkError as exc:
            raise KernelRefusal(f"veth {name} (peer {peer} in {netns}): {_describe(exc)}") from None
        self.ipv6_off(name)

    def ns_link_set(self, netns: str, dev: str, mac: str, mtu: int, up: bool,
                    ipv6: bool) -> None:
        self._flushed()
        self._routers.link_set(netns, dev, mac, mtu, up, ipv6)

    def ns_addr(self, op: str, netns: str, dev: str, cidr: str) -> None:
        self._flushed()
        self._routers.addr(op, netns, dev, cidr)

    def ns_neigh(self, op: str, netns: str, dev: str, ip: str, mac: str) -> None:
        self._flushed()
        self._routers.neigh(op, netns, dev, ip, mac)

    def ns_route(self, op: str, netns: str, dst: str, gateway: str, table: int = 254,
                 dev: str = "") -> None:
        self._flushed()
        self._routers.route(op, netns, dst, gateway, table, dev)

    def ns_rule(self, op: str, netns: str, rule: NsRule) -> None:
        self._flushed()
        self._routers.rule(op, netns, rule)

    def ns_nft(self, netns: str, commands: list[dict[str, Any]]) -> None:
        self._flushed()
        self._routers.nft(netns, commands)

    def ns_garp(self, netns: str, dev: str, ip: str) -> None:
        self._flushed()
        self._routers.garp(netns, dev, ip)

    def ns_forget(self, netns: str, ip: str, proto: int = 0,
                  ports: tuple[int, int] | None = None) -> None:
        self._flushed()
        self._routers.forget(netns, ip, proto, ports)

    def nft(self, commands: list[dict[str, Any]]) -> None:
        """One JSON batch; the tables it marks are created first (module doc)."""
        self._flushed()
        before = self._followed()
        if before is None:
            self._view = None  # the next observe lists what this batch made
        known = self._view.comments if before is not None and self._view is not None else None
        nft = self._nftables()
        marked = marked_tables(commands)
        step = _generation_step(marked) if before is not None else []
        try:
            made = self._mark_tables(nft, marked, known)
            try:
                nft.json_cmd({"nftables": [_added(c, made) for c in commands] + step})
            except NftError:
                if made:  # all or nothing: the tables made for this batch go again
                    try:
                        nft.text_cmd("\n".join(f"delete table {f} {n}" for f, n in made))
                    except NftError:
                        pass
                raise
        except NftError as exc:
            raise KernelRefusal(str(exc)) from None
        after = (before + 1) % GENERATIONS if before is not None else None
        if after is not None and step and not made and self._generation() == after:
            self._moved = after  # this batch was the one transaction since: the view follows
            if self._view is not None and any("table" in c.get("delete", {}) for c in commands):
                self._view.comments = None  # a table went: its check lists again

    def _followed(self) -> int | None:
        """The generation before a batch that the view can follow: during an
        apply, for a change of a subsystem whose records the view holds,
        when the kernel's generation is the one the view (and our batches
        since) left.  None otherwise; the view then goes at the end of the
        apply (a batch outside an apply drops it at once)."""
        expected, self._moved = self._moved, None
        view, change = self._view, self._current
        if expected is None or view is None or change is None:
            return None
        owner = next((sub.name for sub in self._subsystems if type(change.obj) in sub.kinds), "")
        if owner not in view.records or self._generation() != expected:
            return None
        return expected

    def nft_rows(self) -> list[dict[str, Any]]:
        """Our tables' objects (``KernelRows.nft_rows``), comments filled in
        from the text listing where the JSON lacks them (``nft_view``)."""
        rows = self.nft_view(rows=True).rows
        assert rows is not None
        return rows

    def nft_view(self, rows: bool) -> NftView:
        """The last listing while it serves, else a new one.  It serves
        while the namespace's nftables generation has not moved (no
        transaction since, by anyone; ``linux/nftgen.py``) and the owned
        tables are the same (a table with ``flags owner`` goes when its
        process ends, without a new generation), for at most
        ``NFT_ROWS_MAX_AGE`` seconds from the listing; after our own batches
        it is what they made of it (``NftView.after``), and then lists when
        ``rows`` are asked for.  (The kernel moves the generation before a
        commit's in-place changes, such as a chain's policy, are live: a
        listing in those microseconds can be reused until the next
        generation or this age.)"""
        gen = self._generation()
        tables = self._owned_tables()
        handles = _handles(tables)
        now = time.monotonic()
        view = self._view
        if view is not None and view.serves(gen, handles, now, NFT_ROWS_MAX_AGE) \
                and (view.rows is not None or not rows):
            return view
        view = NftView(-1 if gen is None else gen, handles, now, self._list_nft_rows(),
                       comments={(t.family, t.name): t.comment for t in tables})
        self._view = view if gen is not None and self._generation() == gen else None
        return view

    def _generation(self) -> int | None:
        """The nftables generation, None when it cannot be read (then
        every observe lists)."""
        return self._gen.read()

    def _list_nft_rows(self) -> list[dict[str, Any]]:
        """One JSON listing, in a libnftables context of its own that goes
        with it: a context keeps what it listed (every element) in its cache
        until its next command, which first frees it (~15-45 ms at 10,000
        elements, measured); in the batches' context that was the next
        change's batch."""
        nft = self._nftables()
        self.listings += 1
        try:
            with Nftables(netns=self._netns) as lister:
                items: list[dict[str, Any]] = lister.list_ruleset().get("nftables", [])
            unmarked = [t for item in items if (t := item.get("table")) is not None
                        and "comment" not in t and str(t.get("name")).startswith(NFT_TABLE_PREFIX)]
            if unmarked:
                comments = nft.table_comments()
                for table in unmarked:
                    comment = comments.get((table["family"], table["name"]))
                    if comment is not None:
                        table["comment"] = comment
        except NftError as exc:
            raise KernelRefusal(str(exc)) from None
        return owned_nft_rows(items)

    def table_handles(self) -> frozenset[str]:
        """``nft:<family>:<name>:<handle>`` of every table with an owned name:
        one cheap terse listing (no elements, ``Nftables.tables``), for the
        agent's loop to notice at once a table deleted (or deleted and made
        again) by hand.  Empty when nftables cannot be read."""
        return _handles(self._owned_tables())

    def _owned_tables(self) -> list[ListedTable]:
        """The tables with an owned name (one terse listing); none when
        nftables cannot be read."""
        try:
            listed = self._nftables().tables()
        except (KernelRefusal, NftError):
            return []
        return [t for t in listed.values() if t.name.startswith(NFT_TABLE_PREFIX)]

    def conntrack_flows(self, zones: Collection[int]) -> list[Flow]:
        ct = self._conntrack()
        try:
            return ct.flows(zones)
        except BaseException:
            self._conntrack_lost(ct)
            raise

    def conntrack_delete(self, flows: Sequence[Flow]) -> int:
        ct = self._conntrack()
        try:
            return ct.delete(flows)
        except BaseException:
            self._conntrack_lost(ct)
            raise

    def _conntrack_lost(self, ct: Conntrack) -> None:
        """After an error the socket may still carry a dump's rest or late
        acks: the next request gets a new one."""
        self._ct = None
        ct.close()

    def _conntrack(self) -> Conntrack:
        if self._ct is None:
            with entered_netns(self._netns):
                self._ct = Conntrack()
        return self._ct

    def _nftables(self) -> Nftables:
        if self._nft is None:
            try:
                self._nft = Nftables(netns=self._netns)
            except (OSError, NftError) as exc:  # OSError: ctypes found no library
                raise KernelRefusal(f"nftables unavailable ({LIBRARY}): {exc}") from None
        return self._nft

    @staticmethod
    def _mark_tables(nft: Nftables, marked: list[tuple[str, str, str]],
                     known: dict[tuple[str, str], str | None] | None = None) -> set[tuple[str, str]]:
        """Create, empty and with their comment, the marked tables that do
        not exist yet (one transaction); return them.  A batch that marks no
        table (the trial batches of a refused change) lists nothing, nor one
        whose tables ``known`` (the view's, at the generation the kernel is
        still at) already has, each with its mark."""
        if not marked or (known is not None
                          and all(known.get((f, n), None) == c for f, n, c in marked)):
            return set()
        have = {key: t.comment for key, t in nft.tables().items()}  # tables only, with comments
        for f, n, c in marked:  # ours only if it already carries the mark: never write into a foreign one
            if (f, n) in have and have[(f, n)] != c:
                raise NftError(f"table {f} {n} exists and is not ours (no mark {c!r})")
        new = {(f, n): c for f, n, c in marked if (f, n) not in have}
        if new:
            nft.text_cmd("\n".join(f'create table {f} {n} {{ comment "{c}" ; }}'
                                   for (f, n), c in new.items()))
        return set(new)

    def _index(self, name: str) -> int:
        """The ifindex of ``name``: from the observe just before or one links
        dump per apply (a lookup per name cost ~3 ms, 7 ms per attached tap),
        then a lookup on a miss (devices created since).  A device replaced
        since then has a new ifindex (they are not reused at once): its
        requests are refused (ENODEV) and reported, never misdirected."""
        if self._indexes is None:
            self._indexes = {ln.name: ln.index for ln in _retried(self._rtnl.links)}
        found = self._indexes.get(name)
        if found is None:
            looked = self._ipr.link_lookup(ifname=name)
            if not looked:
                raise LookupError(f"{name}: no such device")
            found = self._indexes[name] = int(looked[0])
        return found


class _Rows:
    """One read of the kernel: the links dump, and the FDB, nftables and tc
    reads on demand (the nftables view checked once, listed at most once; tc
    dumped once per set of devices asked)."""

    def __init__(self, links: list[Link], fdb: Callable[[Collection[int]], list[FdbRow]],
                 nft: Callable[[bool], NftView], held: frozenset[str] = frozenset(),
                 netns: Callable[[], list[Netns]] = list, *,
                 tc: Callable[[Collection[str], list[Link]], list[TcRow]]) -> None:
        self._links = links
        self._netns = netns
        self._tc = tc
        self._tc_read: dict[tuple[str, ...], list[TcRow]] = {}  # devices -> what one dump read
        self._fdb = fdb
        self._nft = nft
        self._held = held  # subsystems whose records the view held when this read began
        self._view: NftView | None = None
        self._spaces: list[Netns] | None = None  # read once per observe, for every subsystem

    def link_rows(self) -> list[Link]:
        return self._links

    def fdb_rows(self, ifindexes: Collection[int]) -> list[FdbRow]:
        return self._fdb(ifindexes)

    def nft_rows(self) -> list[dict[str, Any]]:
        rows = self._nft_view(rows=True).rows
        assert rows is not None
        return rows

    def tc_rows(self, devices: Collection[str]) -> list[TcRow]:
        """Dumped on the first ask, with this read's links (the same devices)."""
        key = tuple(dict.fromkeys(devices))
        if key not in self._tc_read:
            self._tc_read[key] = self._tc(key, self._links)
        return self._tc_read[key]

    def netns_rows(self) -> list[Netns]:
        if self._spaces is None:
            self._spaces = self._netns()
        return self._spaces

    def held(self, name: str) -> tuple[Any, ...] | None:
        """The records subsystem ``name`` decoded from a listing that still
        serves (None: it must decode)."""
        if name not in self._held:
            return None  # no nftables read for a subsystem that may need none
        return self._nft_view(rows=False).records.get(name)

    def keep(self, name: str, records: tuple[Any, ...]) -> None:
        """Keep what subsystem ``name`` decoded from this read's listing alone."""
        if self._view is not None and self._view.rows is not None:
            self._view.records[name] = records

    def _nft_view(self, rows: bool) -> NftView:
        if self._view is None or (rows and self._view.rows is None):
            self._view = self._nft(rows)
        return self._view


@dataclass
class _Batch:
    """Raw requests not yet sent, with their changes."""

    changes: list[Change] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def add(self, change: Change, request: Request) -> None:
        self.changes.append(change)
        self.requests.append(request)


def _handles(tables: list[ListedTable]) -> frozenset[str]:
    return frozenset(f"nft:{t.family}:{t.name}:{t.handle}" for t in tables)


def _shared(found: tuple[Any, ...], last: tuple[Any, ...]) -> tuple[Any, ...]:
    """Freshly decoded records, each sharing what it can with the record of
    its type held before (a record type with ``sharing``, as the firewall's
    ruleset: equal parts become the same objects, so the diff that follows
    compares by identity)."""
    before = {type(r): r for r in last}
    return tuple(r.sharing(before[type(r)]) if hasattr(r, "sharing") and type(r) in before
                 else r for r in found)


def _generation_step(marked: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """A chain added and deleted again at the end of a batch the view may
    follow, in the first table the batch marks (it exists by then).  The
    kernel moves the generation only for a commit that changes something: a
    batch of ours that found its change already made (by another writer's
    transaction just before it) would leave that writer's one step for ours
    to follow.  With this the batch is always a transaction of its own
    (+0.04 ms per batch); no chain is left.  None without a marked table (such a batch
    is not followed)."""
    if not marked:
        return []
    family, table, _ = marked[0]
    chain = {"chain": {"family": family, "table": table, "name": GENERATION_STEP_CHAIN}}
    return [{"add": chain}, {"delete": chain}]


def _added(command: dict[str, Any], made: set[tuple[str, str]]) -> dict[str, Any]:
    """``create table`` of a table made just before for this batch: ``add``."""
    table = command.get("create", {}).get("table")
    if isinstance(table, dict) and (table.get("family"), table.get("name")) in made:
        return {"add": {"table": table}}
    return command


def _describe(exc: BaseException) -> str:
    if isinstance(exc, NetlinkError):
        return f"netlink error {exc.code}: {exc.args[1] if len(exc.args) > 1 else exc}"
    return str(exc)


def _retried(read: Callable[[], T]) -> T:
    for attempt in range(DUMP_ATTEMPTS):
        try:
            return read()
        except (DumpInterrupted, NetlinkDumpInterrupted):
            if attempt == DUMP_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _link(msg: Any) -> Link:
    """A Link from a pyroute2 RTM_NEWLINK message."""
    info = msg.get("IFLA_LINKINFO")
    data = info.get("IFLA_INFO_DATA") if info else None
    link = Link(
        index=msg["index"],
        name=msg.get("IFLA_IFNAME") or "",
        alias=msg.get("IFLA_IFALIAS") or "",
        mtu=msg.get("IFLA_MTU") or 0,
        up=bool(msg["flags"] & IFF_UP),
        master=msg.get("IFLA_MASTER") or 0,
        group=msg.get("IFLA_GROUP") or 0,
        kind=(info.get("IFLA_INFO_KIND") if info else None) or "",
    )
    if link.kind == "vxlan" and data is not None:
        link.vxlan_data = True
        link.vni = int(data.get("IFLA_VXLAN_ID") or 0)
        link.local_ip = data.get("IFLA_VXLAN_LOCAL") or ""
        link.port = int(data.get("IFLA_VXLAN_PORT") or 0)
        link.learning = bool(data.get("IFLA_VXLAN_LEARNING"))
    elif link.kind == "bridge" and data is not None:
        link.mcast_snooping = bool(data.get("IFLA_BR_MCAST_SNOOPING"))
        link.nf_call_iptables = bool(data.get("IFLA_BR_NF_CALL_IPTABLES"))
        link.nf_call_ip6tables = bool(data.get("IFLA_BR_NF_CALL_IP6TABLES"))
    spec = msg.get("IFLA_AF_SPEC")
    inet6 = spec.get("AF_INET6") if spec else None
    conf = inet6.get("IFLA_INET6_CONF") if inet6 else None
    link.ipv6 = conf is not None and not conf.get("disable_ipv6")
    return link
