"""compile_firewall: one host's view of the model -> its firewall ruleset
(port security and security groups; ``docs/firewall.md``).

Pure and deterministic: the same view, in any order, gives the same
ruleset.  The chains are constant (:mod:`overcast.plan.firewall_chains`);
everything that depends on ports and rules is an element, commented with
the id of the API object that made it.  A port's security groups are
enforced through the tag of its *group set* (the sorted ids of its groups),
so ports with the same groups share their rule elements: the element count
is (group sets on the host) x (their rules) x (remote addresses), not
multiplied by ports.
"""

from __future__ import annotations

import functools
import operator
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, ip_network
from typing import TypeVar

from overcast.model.problems import Problem
from overcast.model.types import (
    AddressGroup,
    AddressPair,
    FixedIP,
    NetworkLog,
    Port,
    SecurityGroup,
)
from overcast.plan import names
from overcast.plan.firewall_chains import (
    LOG_SETS,
    STATELESS,
    chains,
    sets,
    zone_chain,
    zone_chain_name,
)
from overcast.plan.firewall_expr import canonical, jump
from overcast.plan.firewall_groupsets import CACHE, GroupSet, elements_of
from overcast.plan.firewall_rules import ADDRESS_GROUP
from overcast.plan.firewall_space import Network, prefix_cover
from overcast.plan.leases import SERVER_IP, SERVER_MAC
from overcast.plan.routers import Overlay
from overcast.plan.subsystems.firewall_observe import address_span
from overcast.plan.subsystems.firewall_records import NftElement, NftRuleset, NftTable
from overcast.plan.view import HostView

K = TypeVar("K", str, tuple[str, ...])
TAG_BITS = 24  # group set tags: 1 .. 2**24-1 in meta mark
ZONES = 65535  # conntrack zones: 1 .. 65535
PORTS = 1 << 14  # ports whose anti-spoofing elements are kept (of the last plans)
RULE_PATH = "security_group_rule/"  # a rule's problems' path: RULE_PATH + its id


@dataclass(frozen=True)
class FirewallPlan:
    ruleset: NftRuleset
    tags: Mapping[tuple[str, ...], int] = field(default_factory=dict)  # group set -> tag
    zones: Mapping[str, int] = field(default_factory=dict)  # network id -> conntrack zone
    # element -> every API object id that asks for it (its comment is the first)
    sources: Mapping[NftElement, tuple[str, ...]] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    # local port id -> what this host enforces for it
    enforced: Mapping[str, Enforced] = field(default_factory=dict)
    # local port id -> its packet logs (the ports with port security that a log names)
    logged: Mapping[str, PortLog] = field(default_factory=dict)


@dataclass(frozen=True)
class PortLog:
    """What is logged of one port's packets: ``events`` (``ACCEPT``: its
    new connections that its groups admit, ``DROP``: what they drop), for
    the logs ``log_ids`` of ``project_id``."""

    events: tuple[str, ...]
    log_ids: tuple[str, ...]
    project_id: str = ""


@dataclass(frozen=True)
class Enforced:
    """What a host enforces for one of its ports: port security on, the
    security groups its tag stands for (none without port security), and
    what of them it cannot enforce (``"security group rule <id>: <why>"``,
    also a port-level problem such as mixed stateful and stateless groups):
    those rules are left out, everything else is in place."""

    port_security: bool
    security_groups: tuple[str, ...] = ()
    not_enforced: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"port_security": self.port_security,
                                  "security_groups": list(self.security_groups)}
        if self.not_enforced:
            out["not_enforced"] = list(self.not_enforced)
        return out


@dataclass
class _Out:
    elements: dict[tuple[str, str, str], tuple[str, list[str]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, family: str, set_: str, key: object, source: str, data: object = None) -> None:
        self.add_text(family, set_, _text(key), source, "" if data is None else _text(data))

    def add_text(self, family: str, set_: str, key: str, source: str, data_text: str = "") -> None:
        """``add`` of a key (and data) already in canonical JSON."""
        ident = (family, set_, key)
        held = self.elements.setdefault(ident, (data_text, []))
        if held[0] != data_text:
            self.problems.append(Problem(source, f"{set_} {ident[2]} is already {held[0]}"))
            return
        held[1].append(source)


def compile_firewall(view: HostView, devices: Mapping[str, str], overlay: Overlay | None = None,
                     bridged: Iterable[str] = (), dhcp: Mapping[str, str] | None = None
                     ) -> FirewallPlan:
    """The ruleset of ``view.host`` for its local ports ``devices`` (port id
    -> tap, as ``plan_host`` attaches them), the routers' ``overlay``
    elements, and a conntrack zone for every network with a bridge here
    (``bridged``, besides the local ports' networks).  ``dhcp``: port id ->
    tap of the ports this host's DHCP server answers (their requests stop
    at their tap: DHCP never crosses the overlay)."""
    ports = {p.id: p for p in view.ports}
    local = sorted((ports[pid] for pid in devices if pid in ports), key=lambda p: p.id)
    out = _Out()
    zones = _probe({p.network_id for p in local} | set(bridged), ZONES)
    if overlay is not None:
        _overlay(out, overlay)
    _networks(out, view, zones)
    for port_id, tap in sorted((dhcp or {}).items()):
        out.add("bridge", "dhcp_local", tap, f"port/{port_id}")
    secured = [p for p in local if p.port_security_enabled]
    tags = _probe({_groupset(p) for p in secured}, 2**TAG_BITS - 1)
    groups = {g.id: g for g in view.security_groups}
    stateless = {p.id for p in secured if _stateless(out, p, groups)}
    for p in secured:  # the tag says it (firewall_chains.STATELESS): one group set, one answer
        if p.id in stateless:
            tags[_groupset(p)] |= STATELESS
    loose_nets = {p.network_id for p in secured if p.id in stateless}
    for port in local:
        tap = devices[port.id]
        out.add("bridge", "tag", tap, f"port/{port.id}",
                tags[_groupset(port)] if port.port_security_enabled else 0)
        if port.port_security_enabled:
            loose = port.id in stateless
            conntrack = "notrack_mac" if loose else "tracked_mac" if port.network_id in loose_nets else ""
            _port_security(out, port, tap, conntrack)
    logged = packet_logs(view.network_logs, secured)
    for port_id, entry in logged.items():
        tag = tags[_groupset(ports[port_id])]
        for event in entry.events:
            out.add("inet", LOG_SETS[event], tag, f"log/{entry.log_ids[0]}")
    groupsets = _security_groups(out, view, tags, groups)
    ruleset, sources = _ruleset(out, zones.values(), groupsets)
    problems = tuple(sorted(set(out.problems), key=lambda p: (p.path, p.message)))
    enforced = _enforced(local, view, problems)
    return FirewallPlan(ruleset, dict(sorted(tags.items())), dict(sorted(zones.items())),
                        sources, problems, enforced, logged)


def packet_logs(logs: Iterable[NetworkLog], ports: Iterable[Port]) -> dict[str, PortLog]:
    """Port id -> what is logged of it, for ``ports`` (with port security):
    the enabled security group logs that name the port (``target_id``), one
    of its groups (``resource_id``), or neither (every port of the log's
    project), as Neutron's logging selects them; ``ALL`` is both events."""
    wanted = [lg for lg in logs if lg.enabled and lg.resource_type == "security_group"]
    out: dict[str, PortLog] = {}
    if not wanted:
        return out
    for port in ports:
        found = [lg for lg in wanted if (lg.target_id == port.id if lg.target_id
                                          else lg.resource_id in port.security_groups
                                          if lg.resource_id
                                          else lg.project_id == port.project_id)]
        if found:
            events = {e for lg in found
                      for e in (("ACCEPT", "DROP") if lg.event == "ALL" else (lg.event,))}
            out[port.id] = PortLog(tuple(sorted(events)), tuple(sorted(lg.id for lg in found)),
                                   port.project_id)
    return out


def _networks(out: _Out, view: HostView, zones: Mapping[str, int]) -> None:
    """Each bridged network's conntrack zone, mark 0 for its VXLAN device and
    uplink, and the addresses every host has on it for itself."""
    networks = {n.id: n for n in view.networks}
    for net_id, zone in sorted(zones.items()):
        out.add("inet", "zone", names.bridge_name(net_id), f"network/{net_id}",
                jump(zone_chain_name(zone)))
        net = networks.get(net_id)
        if net is not None and net.network_type == "vxlan":
            out.add("bridge", "tag", names.vxlan_name(net_id), f"network/{net_id}", 0)
            # every host answers ARP for its DHCP server's address itself, and has its own
            # service namespace with the server's MAC (plan/leases.py, plan/services.py)
            vxlan = names.vxlan_name(net_id)
            out.add("bridge", "router_ip4", {"concat": [vxlan, SERVER_IP]}, f"network/{net_id}")
            out.add("bridge", "router_mac", {"concat": [vxlan, SERVER_MAC]}, f"network/{net_id}")
        uplink = view.physical_networks.get(net.physical_network or "") if net is not None else None
        if uplink is not None and net is not None and net.network_type == "flat":
            # the physical network's side, as the VXLAN device: mark 0, whatever it came with
            out.add("bridge", "tag", uplink, f"network/{net_id}", 0)


def _overlay(out: _Out, overlay: Overlay) -> None:
    """The routers' gateway MACs and IPs on each VXLAN device, and this
    host's MAC for the frames they route out by it (firewall_chains)."""
    for vxlan, mac, port_id in overlay.macs:
        out.add("bridge", "router_mac", {"concat": [vxlan, mac]}, f"port/{port_id}")
    for vxlan, ip, port_id in overlay.ips:
        out.add("bridge", "router_ip4", {"concat": [vxlan, ip]}, f"port/{port_id}")
    for vxlan, net_id in overlay.devices:
        out.add("bridge", "host_mac", vxlan, f"network/{net_id}", overlay.host_mac)


def forget() -> None:
    """Drop everything kept from earlier plans (the group sets, the ports'
    elements, parsed addresses): the next plan is made from nothing.  Plans
    never need it (what is kept is a function of its inputs); tests do, to
    compare a plan with the one made from nothing."""
    CACHE.clear()
    _LAST_MEMBERS.clear()
    for cached in (_port_elements, _scalar_text, _net, _group_addresses):
        cached.cache_clear()


def _enforced(local: Iterable[Port], view: HostView,
              problems: Iterable[Problem]) -> dict[str, Enforced]:
    """Per local port: port security, its groups, and the problems of its
    groups' rules and of the port itself (what is left out)."""
    by_path: dict[str, list[str]] = {}
    for p in problems:
        by_path.setdefault(p.path, []).append(p.message)
    refused = {p[len(RULE_PATH):] for p in by_path if p.startswith(RULE_PATH)}
    rules_of: dict[str, list[str]] = {}
    for rule in sorted((r for r in view.security_group_rules if refused and r.id in refused),
                       key=lambda r: r.id):
        rules_of.setdefault(rule.security_group_id, []).append(rule.id)
    out = {}
    for port in local:
        if not port.port_security_enabled:
            out[port.id] = Enforced(False)
            continue
        groups = _groupset(port)
        missing = [f"port {port.id}: {m}" for m in by_path.get(f"port/{port.id}", [])]
        missing += [f"security group {g}: {m}" for g in groups
                    for m in by_path.get(f"security_group/{g}", [])]
        missing += [f"security group rule {r}: {m}" for g in groups for r in rules_of.get(g, [])
                    for m in by_path[f"security_group_rule/{r}"]]
        out[port.id] = Enforced(True, groups, tuple(missing))
    return out


def _groupset(port: Port) -> tuple[str, ...]:
    return tuple(sorted(set(port.security_groups)))


def _probe(keys: Iterable[K], space: int) -> dict[K, int]:
    """A small number per key, stable while the keys around it do not
    collide: crc32 of the key, then the next free one (in key order)."""
    taken: dict[int, K] = {}
    out: dict[K, int] = {}
    for key in sorted(keys, key=lambda k: (zlib.crc32(repr(k).encode()) % space, k)):
        n = zlib.crc32(repr(key).encode()) % space + 1
        while n in taken:
            n = n % space + 1
        taken[n] = key
        out[key] = n
    return out


def _stateless(out: _Out, port: Port, groups: Mapping[str, SecurityGroup]) -> bool:
    kinds = {groups[g].stateful for g in port.security_groups if g in groups}
    if len(kinds) > 1:
        out.problems.append(Problem(f"port/{port.id}", "stateful and stateless security groups "
                                    "together; enforced as stateful"))
    return kinds == {False}


def _port_security(out: _Out, port: Port, tap: str, conntrack: str) -> None:
    """Anti-spoofing: which MACs, and which addresses with which MAC, the
    port may send from; frames to it only to those MACs (or multicast).
    ``conntrack``: the set its MACs go into on its bridge (``notrack_mac``
    for a stateless port, ``tracked_mac`` for a stateful one on a bridge
    with a stateless port, "" for none)."""
    src = f"port/{port.id}"
    bridge = names.bridge_name(port.network_id) if conntrack else ""
    for family, set_, key in _port_elements(tap, port.mac_address, port.fixed_ips,
                                            port.allowed_address_pairs, bridge, conntrack):
        out.add_text(family, set_, key, src)


@functools.lru_cache(maxsize=PORTS)
def _port_elements(tap: str, mac_address: str, fixed_ips: tuple[FixedIP, ...],
                   pairs: tuple[AddressPair, ...], bridge: str,
                   conntrack: str) -> tuple[tuple[str, str, str], ...]:
    """(family, set, canonical key) of one port's anti-spoofing elements
    (``_port_security``); kept for the ports of the last plans, which the
    next plan has again."""
    mac = mac_address.lower()
    by_mac: dict[str, list[tuple[Network, str]]] = {mac: []}
    for fixed in fixed_ips:
        by_mac[mac].append((ip_network(fixed.ip_address), ""))
    for pair in pairs:
        by_mac.setdefault((pair.mac_address or mac).lower(), []).append(
            (ip_network(pair.ip_address, strict=False), ""))
    out = []
    for m, nets in sorted(by_mac.items()):
        out.append(("bridge", "mac_ok", canonical({"concat": [tap, m]})))
        if conntrack:
            out.append(("inet", conntrack, canonical({"concat": [bridge, m]})))
        nets.append((ip_network(f"{_link_local(m)}/128"), ""))
        for net, _ in prefix_cover(nets):
            host = net.prefixlen == net.max_prefixlen  # a hash set's (firewall_chains.sets)
            set_ = f"ip{net.version}_{'host' if host else 'ok'}"
            span = address_span(str(net.network_address), str(net.broadcast_address))
            out.append(("bridge", set_, canonical({"concat": [tap, m, span]})))
    return tuple(out)


def _text(value: object) -> str:
    """``canonical``, kept for names and numbers (the same taps and tags each plan)."""
    return _scalar_text(value) if isinstance(value, str | int) else canonical(value)


_scalar_text = functools.lru_cache(maxsize=1 << 16, typed=True)(canonical)


def _link_local(mac: str) -> str:
    """fe80::/64 + the modified EUI-64 of ``mac``."""
    b = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return str(IPv6Address(b"\xfe\x80" + bytes(6) + eui))


@functools.lru_cache(maxsize=1 << 16)
def _net(text: str, strict: bool = True) -> Network:
    """A parsed address or prefix (the same text recurs in every plan)."""
    return ip_network(text, strict=strict)


class _LastMembers:
    """The members of the last ports read, while the ports are the very
    same objects in the same order (frozen: the fields members are made of
    are tuples), as the agent's view passes them until a port changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ports: tuple[Port, ...] = ()
        self._members: dict[str, tuple[Network, ...]] = {}

    def of(self, ports: Sequence[Port]) -> dict[str, tuple[Network, ...]]:
        with self._lock:
            last, members = self._ports, self._members
        if ports is last or (len(ports) == len(last) and all(map(operator.is_, ports, last))):
            return members
        members = _members(ports)
        with self._lock:
            self._ports, self._members = tuple(ports), members
        return members

    def clear(self) -> None:
        with self._lock:
            self._ports, self._members = (), {}


_LAST_MEMBERS = _LastMembers()


def _members(ports: Iterable[Port]) -> dict[str, tuple[Network, ...]]:
    """Security group id -> the addresses of its member ports, on any host
    (fixed IPs and allowed address pairs)."""
    out: dict[str, list[Network]] = {}
    for port in ports:
        nets = [_net(f.ip_address) for f in port.fixed_ips]
        nets += [_net(p.ip_address, strict=False) for p in port.allowed_address_pairs]
        for group in set(port.security_groups):
            out.setdefault(group, []).extend(nets)
    return {group: tuple(nets) for group, nets in out.items()}


class _GroupAddresses:
    """Each address group's addresses, parsed once while they stay the same:
    only its current addresses are kept (a change replaces them), and at
    most ``LIMIT`` groups (the cloud's groups that rules name)."""

    LIMIT = 4096

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple[str, ...], tuple[Network, ...]]] = {}

    def __call__(self, group: AddressGroup) -> tuple[Network, ...]:
        addresses = tuple(group.addresses)
        kept = self._kept.get(group.id)
        if kept is not None and (kept[0] is addresses or kept[0] == addresses):
            return kept[1]
        parsed = tuple(_net(a, strict=False) for a in addresses)
        if len(self._kept) >= self.LIMIT:
            self._kept.clear()
        self._kept[group.id] = (addresses, parsed)
        return parsed

    def cache_clear(self) -> None:
        self._kept.clear()


_group_addresses = _GroupAddresses()


class _Remotes(Mapping[str, tuple[Network, ...]]):
    """Remote security group or address group id -> its addresses, made
    when first asked for: a plan that shapes no rule with a remote (most
    plans: their rules are kept from the last one) never reads every port."""

    def __init__(self, view: HostView) -> None:
        self._view = view
        self._members_made: Mapping[str, tuple[Network, ...]] | None = None
        self._groups_made: dict[str, AddressGroup] | None = None

    def _members(self) -> Mapping[str, tuple[Network, ...]]:
        if self._members_made is None:
            self._members_made = _LAST_MEMBERS.of(self._view.ports)
        return self._members_made

    def _groups(self) -> dict[str, AddressGroup]:
        if self._groups_made is None:
            self._groups_made = {g.id: g for g in self._view.address_groups}
        return self._groups_made

    def __getitem__(self, key: str) -> tuple[Network, ...]:
        """One remote: an address group is found by its id and only its own
        addresses are parsed (kept while they are the same), a security
        group's members come from every port once per plan."""
        if key.startswith(ADDRESS_GROUP):
            group = self._groups().get(key[len(ADDRESS_GROUP):])
            if group is None:
                raise KeyError(key)
            return _group_addresses(group)
        return self._members()[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._members()
        yield from (ADDRESS_GROUP + gid for gid in self._groups())

    def __len__(self) -> int:
        return len(self._members()) + len(self._groups())


def _security_groups(out: _Out, view: HostView, tags: Mapping[tuple[str, ...], int],
                     groups: Mapping[str, SecurityGroup]) -> list[GroupSet]:
    """Every group set's rule elements (``firewall_groupsets``: kept from the
    last plan of this host, changed only where its rules changed)."""
    for group in sorted({g for groupset in tags for g in groupset} - groups.keys()):
        out.problems.append(Problem(f"security_group/{group}", "unknown security group"))
    found = elements_of(view.host, tags, view.security_group_rules, _Remotes(view))
    for groupset in found:
        out.problems += groupset.problems
    return found


def _ruleset(out: _Out, zones: Iterable[int], groupsets: Iterable[GroupSet]
             ) -> tuple[NftRuleset, dict[NftElement, tuple[str, ...]]]:
    elements: dict[NftElement, tuple[str, ...]] = {}
    for (family, set_, key), (data, sources) in out.elements.items():
        ids = tuple(sorted(set(sources)))
        elements[NftElement(family, set_, key, data, ids[0].split("/", 1)[1])] = ids
    every = frozenset(elements)
    for groupset in groupsets:  # their sets are keyed by their tags: never an element of another
        elements.update(groupset.sources)
        every |= groupset.elements
    all_chains = _CHAINS | frozenset(_zone_chain(z) for z in zones)
    return NftRuleset(_TABLES, _SETS, all_chains, every), elements


# the constant part of every ruleset, made once
_TABLES = frozenset(NftTable(f) for f in ("bridge", "inet"))
_SETS = frozenset(sets())
_CHAINS = frozenset(chains())
_zone_chain = functools.lru_cache(maxsize=ZONES)(zone_chain)

