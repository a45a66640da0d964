"""The agent's in-memory copy of the store, kept current by watch events.

Applying events is pure bookkeeping: it only says whether the change matters
to the plan (so the loop knows the view is dirty).  Nothing here touches the
kernel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from overcast.model import keys
from overcast.model.types import (
    AddressGroup,
    BandwidthLimitRule,
    DscpMarkingRule,
    FloatingIP,
    MeteringLabel,
    MeteringLabelRule,
    MinimumBandwidthRule,
    Network,
    NetworkLog,
    Port,
    PortForwarding,
    QosPolicy,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)
from overcast.plan import HostView
from overcast.plan.leases import DEFAULT_DOMAIN
from overcast.store.base import Event, KeyValue

log = logging.getLogger(__name__)

# Object kinds the planner reads; other keys are kept but never make the view dirty.
QOS_RULE_KINDS = ("bandwidth_limit_rule", "dscp_marking_rule", "minimum_bandwidth_rule")
PLANNED_KINDS = ("network", "port", "subnet", "security_group", "security_group_rule",
                 "address_group", "router", "floatingip", "port_forwarding", "qos_policy",
                 "metering_label", "metering_label_rule", "log", *QOS_RULE_KINDS)
MODELS: dict[str, type[Any]] = {"network": Network, "port": Port, "security_group": SecurityGroup,
                                "security_group_rule": SecurityGroupRule,
                                "address_group": AddressGroup, "subnet": Subnet, "router": Router,
                                "floatingip": FloatingIP, "port_forwarding": PortForwarding,
                                "metering_label": MeteringLabel,
                                "metering_label_rule": MeteringLabelRule, "log": NetworkLog,
                                "qos_policy": QosPolicy,
                                "bandwidth_limit_rule": BandwidthLimitRule,
                                "dscp_marking_rule": DscpMarkingRule,
                                "minimum_bandwidth_rule": MinimumBandwidthRule}
# What the view keeps: objects, hosts, port statuses and bindings.  The API's
# bookkeeping (IP/MAC/segment allocations, indexes) is never read by an agent;
# keeping it would multiply the view's size and every scan of it.
KEPT_PREFIXES = (keys.OBJ, keys.HOST, keys.ALIVE, keys.PORT_STATUS, keys.BINDING)


class ModelView:
    """Key -> decoded JSON value for the keys under ``KEPT_PREFIXES``."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {kind: {} for kind in MODELS}  # kind -> key -> obj
        self.hosts_raw: dict[str, dict[str, Any]] = {}  # host name -> registration
        self.statuses: dict[str, dict[str, Any]] = {}  # port id -> status value
        self.alive: set[str] = set()  # hosts whose agent holds its liveness lease
        self.revision = 0
        # kind -> its objects as one tuple until one of them changes: every pass's view
        # carries the same tuples, so the planner finds what it made of them by identity
        self._tuples: dict[str, tuple[Any, ...]] = {}

    def load(self, kvs: Iterable[KeyValue], revision: int) -> None:
        """Replace everything with a full read taken at ``revision``."""
        self.values = {}
        self.models = {kind: {} for kind in MODELS}
        self.hosts_raw, self.statuses = {}, {}
        self.alive = set()
        self._tuples = {}
        for kv in kvs:
            if kv.key.startswith(KEPT_PREFIXES):
                self._put(kv.key, kv.value)
        self.revision = revision

    def apply(self, events: Iterable[Event]) -> bool:
        """Apply watch events in order; True when the plan's input changed."""
        relevant = False
        for ev in events:
            self.revision = max(self.revision, ev.revision)
            if not ev.key.startswith(KEPT_PREFIXES):
                continue
            before = self.values.get(ev.key)
            if ev.type == "put":
                self._put(ev.key, ev.value)
            else:
                self._pop(ev.key)
            relevant = relevant or _matters(ev.key, before, self.values.get(ev.key))
        return relevant

    def _pop(self, key: str) -> None:
        self._changes(key)
        self.values.pop(key, None)
        self._model_of(key).pop(key, None)
        if key.startswith(keys.HOST):
            self.hosts_raw.pop(key[len(keys.HOST):], None)
        elif key.startswith(keys.PORT_STATUS):
            self.statuses.pop(key[len(keys.PORT_STATUS):], None)
        elif key.startswith(keys.ALIVE):
            self.alive.discard(key[len(keys.ALIVE):])

    def _put(self, key: str, raw: bytes) -> None:
        try:
            value = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            log.warning("store key %s holds a value that is not JSON; ignored", key)
            return
        self._changes(key)
        self.values[key] = value if isinstance(value, dict) else {"value": value}
        if key.startswith(keys.HOST):
            self.hosts_raw[key[len(keys.HOST):]] = self.values[key]
        elif key.startswith(keys.PORT_STATUS):
            self.statuses[key[len(keys.PORT_STATUS):]] = self.values[key]
        elif key.startswith(keys.ALIVE):
            self.alive.add(key[len(keys.ALIVE):])
        kind = _kind(key)
        if kind in MODELS:
            decoded = _decode(MODELS[kind], [self.values[key]])
            if decoded:
                self.models[kind][key] = decoded[0]
            else:
                self.models[kind].pop(key, None)

    def _changes(self, key: str) -> None:
        self._tuples.pop(_kind(key) or "", None)

    def _model_of(self, key: str) -> dict[str, Any]:
        return self.models.get(_kind(key) or "", {})

    def hosts(self) -> dict[str, str]:
        """Every registered host's underlay IP."""
        return {name: str(value["underlay_ip"]) for name, value in self.hosts_raw.items()
                if value.get("underlay_ip")}

    def physnet_hosts(self, host: str, physical_networks: Mapping[str, str],
                      routers: bool = True) -> dict[str, tuple[str, ...]]:
        """Physical network -> the live hosts that map it and can have
        routers (their registration says ``routers``: the firewall runs
        there).  ``host`` is this one, with its own mappings and ``routers``,
        counted only while it holds its liveness lease: an agent whose lease
        expired (stopped too long, cut off the store) gives up its SNAT as
        the others take it over."""
        out: dict[str, set[str]] = {}
        for name, value in self.hosts_raw.items():
            features = value.get("features") or {}
            if name == host or name not in self.alive or not features.get("routers"):
                continue
            mappings = features.get("bridge_mappings") or {}
            for physnet in mappings if isinstance(mappings, dict) else ():
                out.setdefault(str(physnet), set()).add(name)
        if routers and host in self.alive:
            for physnet in physical_networks:
                out.setdefault(physnet, set()).add(host)
        return {physnet: tuple(sorted(hosts)) for physnet, hosts in sorted(out.items())}

    def router_hosts(self, host: str, routers: bool = True) -> frozenset[str]:
        """The live hosts that can have routers: the others by their
        registration's ``routers``, this one (``host``) by ``routers``, each
        only while it holds its liveness lease (as ``physnet_hosts``)."""
        out = {name for name, value in self.hosts_raw.items()
               if name != host and name in self.alive
               and (value.get("features") or {}).get("routers")}
        if routers and host in self.alive:
            out.add(host)
        return frozenset(out)

    def ports(self) -> list[Port]:
        return list(self.models["port"].values())

    def networks(self) -> list[Network]:
        return list(self.models["network"].values())

    def security_groups(self) -> list[SecurityGroup]:
        return list(self.models["security_group"].values())

    def security_group_rules(self) -> list[SecurityGroupRule]:
        return list(self.models["security_group_rule"].values())

    def _tuple(self, kind: str) -> tuple[Any, ...]:
        found = self._tuples.get(kind)
        if found is None:
            found = self._tuples[kind] = tuple(self.models[kind].values())
        return found

    def metering_rules(self) -> tuple[MeteringLabelRule, ...]:
        return self._tuple("metering_label_rule")

    def address_groups(self) -> list[AddressGroup]:
        return list(self.models["address_group"].values())

    def host_view(self, host: str, underlay_ip: str, firewall: bool = True,
                  physical_networks: Mapping[str, str] | None = None,
                  routers: bool | None = None, dns_domain: str = DEFAULT_DOMAIN,
                  dhcp: bool = True) -> HostView:
        """Every port of every host (the firewall needs the members of remote
        groups wherever they are bound), every security group, rule and
        address group."""
        hosts = self.hosts()
        hosts[host] = underlay_ip
        return HostView(host=host, underlay_ip=underlay_ip, hosts=hosts,
                        networks=self.networks(), ports=self._tuple("port"),
                        security_groups=self.security_groups(),
                        security_group_rules=self._tuple("security_group_rule"), firewall=firewall,
                        address_groups=self.address_groups(),
                        physical_networks=dict(physical_networks or {}),
                        routers=self._tuple("router"), subnets=self._tuple("subnet"),
                        physnet_hosts=self.physnet_hosts(
                            host, physical_networks or {}, firewall if routers is None else routers),
                        floating_ips=self._tuple("floatingip"),
                        port_forwardings=self._tuple("port_forwarding"),
                        metering_labels=self._tuple("metering_label"),
                        metering_rules=self._tuple("metering_label_rule"),
                        network_logs=self._tuple("log"),
                        live_hosts=frozenset(self.alive | {host}),
                        router_hosts=self.router_hosts(
                            host, firewall if routers is None else routers),
                        dns_domain=dns_domain,
                        dhcp=dhcp, qos_policies=self._tuple("qos_policy"),
                        qos_rules=tuple(r for kind in QOS_RULE_KINDS for r in self._tuple(kind)))

    def port_status(self, port_id: str) -> dict[str, Any] | None:
        return self.values.get(keys.port_status(port_id))

    def statuses_of_host(self, host: str) -> dict[str, dict[str, Any]]:
        """Port statuses this host wrote (port id -> value)."""
        return {pid: v for pid, v in self.statuses.items() if v.get("host") == host}


def _kind(key: str) -> str | None:
    """The object kind of a ``/oc/obj/<kind>/<id>`` key, else None."""
    if not key.startswith(keys.OBJ):
        return None
    return key[len(keys.OBJ):].split("/", 1)[0]


def _matters(key: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    if key.startswith(keys.HOST):  # (the mappings: where SNAT can run)
        return any((before or {}).get(k) != (after or {}).get(k) for k in ("underlay_ip", "features"))
    if key.startswith(keys.ALIVE):  # a host that comes or goes moves the SNAT of routers
        return (before is None) != (after is None)
    return _kind(key) in PLANNED_KINDS


def _decode(cls: type[Any], values: list[dict[str, Any]]) -> list[Any]:
    out = []
    for value in values:
        try:
            out.append(cls.from_stored(value))
        except (TypeError, ValueError) as exc:
            log.warning("cannot decode %s %s: %s", cls.__name__, value.get("id"), exc)
    return out
