"""One reconcile pass: view -> plan -> observe -> diff -> apply -> port status.

Every pass is a full resync of the owned state (observe everything, diff,
apply the minimum); nothing is ever flushed.  Status keys are written only
when their value changes.  :func:`reconcile` is the kernel half of a pass
(observe, diff, apply); tests that drive a kernel call it too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from overcast.agent.conntrack_sweep import Sweep, sweep_conntrack
from overcast.agent.status import (
    ACTIVE,
    DOWN,
    PortStatus,
    missing_devices,
    port_statuses,
    problems_by_port,
    qos_short,
)
from overcast.agent.view import ModelView
from overcast.linux.kernel import Kernel
from overcast.model import keys
from overcast.model.counters import parse_host_counters
from overcast.plan import HostPlan, plan_host
from overcast.plan.adverts import Advert
from overcast.plan.diff import diff
from overcast.plan.firewall import PortLog
from overcast.plan.firewall_admits import Flow
from overcast.plan.firewall_counters import hits
from overcast.plan.leases import DEFAULT_DOMAIN, Lease, Lease6
from overcast.plan.names import is_workload
from overcast.plan.services import DnsZone, MetadataZone
from overcast.plan.state import ApplyError, Change, KernelState
from overcast.plan.subsystems.firewall import NftRuleset
from overcast.plan.subsystems.links import Attachment
from overcast.plan.subsystems.routers import RouterMeter
from overcast.store.base import Compare, Delete, Op, Put, Store

log = logging.getLogger(__name__)
COUNTERS_EVERY = 2.0  # seconds (agent clock) between two writes of the firewall counters


@dataclass(frozen=True)
class ReconcileResult:
    """What one observe -> diff -> apply did: the state it started from, the
    changes it made and the ones the kernel refused."""

    observed: KernelState
    changes: tuple[Change, ...]
    errors: tuple[ApplyError, ...]
    swept: tuple[Flow, ...] = ()  # conntrack entries deleted: the new rules no longer admit them


def reconcile(kernel: Kernel, desired: KernelState, sweep: Sweep | None = None,
              fresh: bool = False) -> ReconcileResult:
    """Observe, diff, apply, then delete the conntrack entries a firewall
    change closed: the kernel half of every pass (never flushes).
    ``sweep``: the zones still to sweep, kept by the agent across passes
    (None: only what this pass's changes call for).  ``fresh``: observe
    reads everything now (``Kernel.observe``)."""
    observed = kernel.observe(fresh)
    changes = diff(desired, observed)
    errors = kernel.apply(changes) if changes else []
    swept = sweep_conntrack(kernel, desired, changes, errors, sweep)
    return ReconcileResult(observed, tuple(changes), tuple(errors), swept)


def _unattached(plan: HostPlan) -> HostPlan:
    """The plan without its workload attachments: fail closed on a kernel
    that cannot enforce the firewall (a tap already attached is detached)."""
    keep = [r for r in plan.state.records
            if not (isinstance(r, Attachment) and is_workload(r.ifname))]
    return replace(plan, state=KernelState.of(keep))


@dataclass
class PassResult:
    plan: HostPlan
    changes: list[Change]
    errors: list[ApplyError]
    statuses: dict[str, PortStatus]
    waiting: list[str] = field(default_factory=list)  # local ports whose device is missing
    # local ports whose device exists but something they need is not in place
    # without a refusal (e.g. held back until the firewall's chains exist): pass again soon
    held: list[str] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return not self.changes and not self.errors


class AdvertSink(Protocol):
    def update(self, adverts: Iterable[Advert]) -> None: ...


class PacketLogSink(Protocol):
    def update(self, logged: Mapping[str, PortLog], devices: Mapping[str, str]) -> None: ...


class LeaseSink(Protocol):
    def update(self, leases: Iterable[Lease], present: frozenset[str]) -> None: ...


class Lease6Sink(Protocol):
    def update(self, leases: Iterable[Lease6], present: frozenset[str]) -> None: ...


class ZoneSink(Protocol):
    def update(self, zones: Iterable[DnsZone]) -> None: ...


class MetadataSink(Protocol):
    def update(self, zones: Iterable[MetadataZone]) -> None: ...


class Reconciler:
    def __init__(self, host: str, underlay_ip: str, store: Store, kernel: Kernel,
                 view: ModelView, clock: Callable[[], float] = time.monotonic,
                 firewall: bool = True) -> None:
        self.host = host
        self.firewall = firewall  # enforce port security and security groups
        # physical network name -> this host's uplink device (flat networks' bridges)
        self.physical_networks: Mapping[str, str] = {}
        # why this kernel cannot enforce the firewall (a missing feature), "" if it can:
        # then, with the firewall on, no port joins a bridge and every port is DOWN
        self.firewall_blocked = ""
        # where the routers' IPv6 advertisements go (the agent's advertiser thread; None: none)
        self.advertiser: AdvertSink | None = None
        # who answers the local ports' DHCP (the agent's DHCP server; None: nobody)
        self.dhcp: LeaseSink | None = None
        self.dhcp6: Lease6Sink | None = None  # and their DHCPv6
        self.dns: ZoneSink | None = None  # who answers the networks' DNS (None: nobody)
        self.metadata: MetadataSink | None = None  # and their metadata
        self.packet_log: PacketLogSink | None = None  # who tells the logged ports' packets
        self.dns_domain = DEFAULT_DOMAIN  # the DHCP domain of ports whose network has none
        self.qos_features: frozenset[str] | None = None  # what QoS can use here (None: all)
        self.qos_uplink: tuple[str, int] | None = None  # where minimums are kept: --qos-uplink
        self.underlay_ip = underlay_ip
        self.store = store
        self.kernel = kernel
        self.view = view
        self.clock = clock
        self.written: dict[str, str] = {}  # port id -> status value we last wrote (JSON)
        self.waiting_since: dict[str, float] = {}
        self._reported_problems: set[str] = set()
        self.counters_written: bytes | None = None  # counters value we last wrote (b"": none)
        self.counters_due = float("-inf")
        self.metering = Metering(store, host)
        self.sweep = Sweep.first()  # conntrack zones still to sweep: all of them at start

    def run_pass(self) -> PassResult:
        view = self.view.host_view(self.host, self.underlay_ip, self.firewall,
                                   self.physical_networks,
                                   self.firewall and not self.firewall_blocked,
                                   self.dns_domain, self.dhcp is not None)
        plan = plan_host(replace(view, qos_features=self.qos_features,
                                 qos_uplink=self.qos_uplink))
        self._log_problems(plan)
        blocked = self.firewall_blocked if self.firewall else ""
        if blocked:
            plan = _unattached(plan)
        # the counters are written when they are due, from a listing taken
        # after this pass's apply: a change never waits for it (~0.7 s at
        # 10,000 elements, where observe without it takes ~2 ms)
        due = self.clock() >= self.counters_due
        done = reconcile(self.kernel, plan.state, self.sweep)
        observed, changes, errors = done.observed, list(done.changes), list(done.errors)
        for name, why in observed.unobserved:
            log.error("subsystem %s left alone: its kernel state cannot be read (%s)", name, why)
        for change in changes:
            log.info("applied: %s", change.render())
        for err in errors:
            log.error("kernel refused: %s", err.render())
        statuses = port_statuses(plan, observed, errors, changes)
        if blocked:
            statuses = {p: PortStatus(DOWN, blocked) for p in statuses}
        missing = missing_devices(plan, observed, changes, errors)
        statuses.update(self._unplannable(plan))
        # DHCP and DNS before the statuses: a port ACTIVE is answered at once
        if self.dhcp is not None:
            self.dhcp.update(plan.leases, frozenset(observed.devices_present))
        if self.dhcp6 is not None:
            self.dhcp6.update(plan.leases6, frozenset(observed.devices_present))
        if self.dns is not None:  # after the apply: the service namespaces exist now
            self.dns.update(plan.dns)
        if self.metadata is not None:
            self.metadata.update(plan.metadata)
        if self.packet_log is not None:
            self.packet_log.update(plan.firewall.logged if plan.firewall is not None else {},
                                   plan.port_devices)
        short = qos_short(plan, observed, changes, errors)
        self.report(statuses, _enforced(plan, statuses), _qos(plan, statuses, short))
        if self.advertiser is not None:  # after the apply: their interfaces exist now
            self.advertiser.update(plan.adverts)
        self.report_counters(plan, self.kernel.observe(fresh=True) if due else observed, due)
        waiting = sorted(p for p, dev in plan.port_devices.items()
                         if dev not in observed.devices_present)
        self._track_waiting(waiting)
        held = sorted(p for p, dev in plan.port_devices.items()
                      if dev in missing and p not in waiting)
        return PassResult(plan, changes, errors, statuses, waiting, held)

    def _unplannable(self, plan: HostPlan) -> dict[str, PortStatus]:
        """Local ports the plan could not place, DOWN with the planner's reason."""
        problems = problems_by_port(plan)
        networks = {p.path.split("/", 1)[1]: p.message for p in plan.problems
                    if p.path.startswith("network/")}
        out = {}
        for port in self.view.ports():
            if port.binding_host_id == self.host and port.id not in plan.port_devices:
                # the port's own problem, else its network's (e.g. a physical network not mapped)
                reason = problems.get(port.id) or (
                    f"network {port.network_id}: {networks[port.network_id]}"
                    if port.network_id in networks
                    else f"network {port.network_id} cannot be realized here")
                out[port.id] = PortStatus(DOWN, reason)
        return out

    def _log_problems(self, plan: HostPlan) -> None:
        current = {f"{p.path}: {p.message}" for p in plan.problems}
        for text in sorted(current - self._reported_problems):
            log.error("cannot realize %s", text)
        self._reported_problems = current

    def _track_waiting(self, waiting: list[str]) -> None:
        now = self.clock()
        self.waiting_since = {p: self.waiting_since.get(p, now) for p in waiting}

    def report(self, statuses: dict[str, PortStatus],
               enforced: dict[str, dict[str, object]] | None = None,
               qos: dict[str, dict[str, object]] | None = None) -> None:
        """Write changed statuses (with ``enforced``: port id -> what the
        firewall enforces for it; ``qos``: what of its QoS policy); drop
        statuses of ports no longer here."""
        puts: list[Put] = []
        for port_id, st in sorted(statuses.items()):
            value: dict[str, object] = {"status": st.status, "host": self.host}
            if st.reason:
                value["reason"] = st.reason
            if enforced and port_id in enforced:
                value["firewall"] = enforced[port_id]
            if qos and port_id in qos:
                value["qos"] = qos[port_id]
            raw = json.dumps(value, sort_keys=True)
            if self.written.get(port_id) != raw and not self._same_in_view(port_id, value):
                puts.append(Put(keys.port_status(port_id), raw.encode()))
                log.info("port %s: %s%s", port_id, st.status, f" ({st.reason})" if st.reason else "")
            else:
                self.written[port_id] = raw
        if puts:
            ops: list[Op] = list(puts)
            self.store.txn([], ops)  # one revision for the whole pass
            for put in puts:
                self.written[put.key[len(keys.PORT_STATUS):]] = put.value.decode()
        for port_id in set(self.view.statuses_of_host(self.host)) | set(self.written):
            if port_id not in statuses:
                self._drop_status(port_id)

    def _same_in_view(self, port_id: str, value: dict[str, object]) -> bool:
        return port_id not in self.written and self.view.port_status(port_id) == value

    def _drop_status(self, port_id: str) -> None:
        """Delete our status key of a port that left this host, unless another
        host has written it meanwhile."""
        self.written.pop(port_id, None)
        key = keys.port_status(port_id)
        kv = self.store.get(key)
        if kv is None:
            return
        try:
            host = json.loads(kv.value).get("host")
        except ValueError:
            host = None
        if host == self.host:
            self.store.txn([Compare(key, "mod", "==", kv.mod_revision)], [Delete(key)])

    def report_counters(self, plan: HostPlan, observed: KernelState, due: bool) -> None:
        """Write the per-rule counters of this host (``keys.firewall_counters``:
        {"host", "rules": {rule id: [packets, bytes]}}, rules with hits only)
        when they changed, at most every ``COUNTERS_EVERY`` seconds; no key
        while nothing was hit (or the firewall is off).  ``due``: decided at
        the pass's start; ``observed`` is then a fresh observe (counters are
        read from a listing, never from a reused one)."""
        if not due:
            return
        self.counters_due = self.clock() + COUNTERS_EVERY
        rulesets = observed[NftRuleset]
        rules = hits(rulesets[0] if rulesets else None,
                     plan.firewall.sources if plan.firewall is not None else {})
        raw = json.dumps({"host": self.host, "rules": {r: list(c) for r, c in rules.items()}},
                         sort_keys=True).encode() if rules else b""
        key = keys.firewall_counters(self.host)
        if self.counters_written is None:  # compared as bytes: a value not ours differs
            kv = self.store.get(key)
            self.counters_written = kv.value if kv is not None else b""
        self.metering.report(observed[RouterMeter], {r.id for r in self.view.metering_rules()},
                             readable=not any(n == "routers" for n, _ in observed.unobserved))
        if raw == self.counters_written:
            return
        self.store.txn([], [Put(key, raw)] if raw else [Delete(key)])
        self.counters_written = raw


class Metering:
    """What this host's routers counted for each metering rule, written to
    ``keys.metering_counters`` ({"host", "rules": {rule id: [packets,
    bytes]}}) with the firewall counters: totals since each rule was made,
    kept across the kernel's own counters starting again from 0 (a table
    made again, for a changed label, has a new digest) and across agent
    restarts (the totals are read back from the key; what the kernel
    counted at the first read after a start is taken as already written,
    so at most what came in the last interval before a restart is lost).
    A pass that could not read the router namespaces reports nothing (its
    empty list would lose every baseline, and the next reading would count
    the kernel's totals again)."""

    def __init__(self, store: Store, host: str) -> None:
        self.store, self.host = store, host
        self.totals: dict[str, tuple[int, int]] | None = None  # rule id -> counted
        self.seen: dict[tuple[str, str, str], tuple[int, int]] = {}  # (ns, digest, rule) -> kernel
        self.written = b""

    def report(self, meters: Iterable[RouterMeter], rules: set[str], readable: bool = True) -> None:
        """``meters``: every router namespace's, as read now (``readable``
        false: they could not be read, and nothing is reported)."""
        if not readable:
            return
        first = self.totals is None
        if self.totals is None:
            kv = self.store.get(keys.metering_counters(self.host))
            self.written = kv.value if kv is not None else b""
            self.totals = dict(parse_host_counters(self.written)) if kv is not None else {}
        totals, seen = self.totals, {}
        for m in meters:
            for rule_id, packets, bytes_ in m.counters:
                at = (m.netns, m.digest, rule_id)
                seen[at] = (packets, bytes_)
                before = self.seen.get(at, (packets, bytes_) if first else (0, 0))
                if packets < before[0] or bytes_ < before[1]:
                    before = (0, 0)  # counted from 0 again
                had = totals.get(rule_id, (0, 0))
                totals[rule_id] = (had[0] + packets - before[0], had[1] + bytes_ - before[1])
        self.seen = seen
        for rule_id in [r for r in totals if r not in rules]:
            del totals[rule_id]
        counted = {r: list(c) for r, c in sorted(totals.items()) if c[0]}
        raw = json.dumps({"host": self.host, "rules": counted}, sort_keys=True).encode() \
            if counted else b""
        if raw != self.written:
            key = keys.metering_counters(self.host)
            self.store.txn([], [Put(key, raw)] if raw else [Delete(key)])
            self.written = raw


def _enforced(plan: HostPlan, statuses: dict[str, PortStatus]) -> dict[str, dict[str, object]]:
    """What the firewall enforces for each ACTIVE port, as compiled for this
    host (ACTIVE: its elements are in the kernel); nothing with the
    firewall off."""
    fw = plan.firewall
    if fw is None:
        return {}
    return {pid: what.as_json() for pid, what in fw.enforced.items()
            if pid in statuses and statuses[pid].status == ACTIVE}


def _qos(plan: HostPlan, statuses: dict[str, PortStatus],
         short: dict[str, list[tuple[object, str]]]) -> dict[str, dict[str, object]]:
    """What of its QoS policy this host enforces for each ACTIVE port: the
    plan's, less what is not in the kernel after the pass (``short``: port
    device -> records and why), which is said instead."""
    out = {}
    for pid, what in plan.qos.items():
        if pid in statuses and statuses[pid].status == ACTIVE:
            tap = plan.port_devices.get(pid, "")
            out[pid] = what.short_of(tap, short.get(tap, ())).as_json()
    return out
