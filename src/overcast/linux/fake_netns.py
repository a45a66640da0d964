"""Router namespaces in memory, for :class:`overcast.linux.fake.FakeKernel`:
what the kernel holds of each (its ``lo`` mark, forwarding, devices,
addresses, permanent neighbours, Overcast's routes) with the kernel's side
effects: a new device is down with IPv6 on, an address, neighbour or route
needs its device, a route's gateway must be on a connected network,
deleting a device drops what hangs on it, and a veth pair dies whole.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any

from overcast.linux.fake_nft import FakeKernelError, FakeNft
from overcast.plan.names import NFT_TABLE_PREFIX
from overcast.plan.raw import Netns, NsAddress, NsLink, NsNeighbour, NsRoute, NsRule


@dataclass
class FakeNamespace:
    name: str
    mark: str = ""
    forwarding: bool = False
    links: dict[str, NsLink] = field(default_factory=dict)
    addresses: set[NsAddress] = field(default_factory=set)
    neighbours: dict[tuple[str, str], NsNeighbour] = field(default_factory=dict)
    routes: set[NsRoute] = field(default_factory=set)
    rules: set[NsRule] = field(default_factory=set)
    nft: FakeNft = field(default_factory=FakeNft)
    garps: list[tuple[str, str]] = field(default_factory=list)  # (dev, ip) announced
    forgotten: list[str] = field(default_factory=list)  # addresses whose conntrack went

    def row(self) -> Netns:
        tables = [row for row in self.nft.rows() if _table_of(row).startswith(NFT_TABLE_PREFIX)]
        return Netns(self.name, self.mark, self.forwarding, tuple(self.links.values()),
                     tuple(sorted(self.addresses, key=str)),
                     tuple(self.neighbours[k] for k in sorted(self.neighbours)),
                     tuple(sorted(self.routes, key=str)), tuple(sorted(self.rules, key=str)),
                     tuple(tables))

    def link(self, dev: str) -> NsLink:
        if dev not in self.links:
            raise FakeKernelError(f"{dev}: no such device in namespace {self.name}")
        return self.links[dev]

    def remove_link(self, dev: str) -> None:
        self.link(dev)
        del self.links[dev]
        self.addresses = {a for a in self.addresses if a.dev != dev}
        self.neighbours = {k: n for k, n in self.neighbours.items() if n.dev != dev}
        self.routes = {r for r in self.routes if r.dev != dev}

    def route_dev(self, gateway: str) -> str:
        """The device whose connected network holds ``gateway`` (as the kernel finds it)."""
        hop = ipaddress.ip_address(gateway)
        for a in sorted(self.addresses, key=str):
            if hop in ipaddress.ip_interface(a.cidr).network and self.links[a.dev].up:
                return a.dev
        for r in sorted(self.routes, key=str):  # or on a link route (no gateway) of the main table
            if not r.gateway and r.dev and r.table == 254 and self.links[r.dev].up \
                    and hop in ipaddress.ip_network(r.dst):
                return r.dev
        raise FakeKernelError(f"gateway {gateway} is not on a connected network "
                              f"in namespace {self.name}")


class FakeNamespaces:
    """name -> :class:`FakeNamespace`; ``peers``: host device -> (namespace, device)."""

    def __init__(self) -> None:
        self.spaces: dict[str, FakeNamespace] = {}
        self.peers: dict[str, tuple[str, str]] = {}

    def add(self, name: str, mark: str) -> None:
        held = self.spaces.get(name)
        if held is not None and held.mark:
            raise FakeKernelError(f"namespace {name} exists and is marked {held.mark}")
        space = held or FakeNamespace(name)
        space.mark, space.forwarding = mark, True
        self.spaces[name] = space

    def delete(self, name: str) -> list[str]:
        """Delete the namespace; the host sides of its veth pairs (to remove)."""
        self.space(name)
        del self.spaces[name]
        gone = [host for host, (ns, _) in self.peers.items() if ns == name]
        for host in gone:
            del self.peers[host]
        return gone

    def space(self, name: str) -> FakeNamespace:
        if name not in self.spaces:
            raise FakeKernelError(f"namespace {name}: no such namespace")
        return self.spaces[name]

    def veth(self, host_side: str, netns: str, peer: str, mtu: int) -> None:
        space = self.space(netns)
        if peer in space.links:
            raise FakeKernelError(f"{peer}: file exists in namespace {netns}")
        space.links[peer] = NsLink(peer, "veth", "", mtu, False, True)
        self.peers[host_side] = (netns, peer)

    def host_side_gone(self, host_side: str) -> None:
        """A veth's host side was deleted: its peer goes too."""
        found = self.peers.pop(host_side, None)
        if found is not None and found[0] in self.spaces:
            self.spaces[found[0]].remove_link(found[1])

    def link_set(self, netns: str, dev: str, mac: str, mtu: int, up: bool, ipv6: bool) -> None:
        space = self.space(netns)
        space.links[dev] = replace(space.link(dev), mac=mac.lower(), mtu=mtu, up=up, ipv6=ipv6)

    def addr(self, op: str, netns: str, dev: str, cidr: str) -> None:
        space = self.space(netns)
        space.link(dev)
        entry = NsAddress(dev, str(ipaddress.ip_interface(cidr)))
        if op == "add":
            if entry in space.addresses:
                raise FakeKernelError(f"address {cidr} on {dev} exists")
            space.addresses.add(entry)
            return
        if entry not in space.addresses:
            raise FakeKernelError(f"no address {cidr} on {dev}")
        space.addresses.discard(entry)

    def neigh(self, op: str, netns: str, dev: str, ip: str, mac: str) -> None:
        space = self.space(netns)
        space.link(dev)
        if op == "replace":
            space.neighbours[(dev, ip)] = NsNeighbour(dev, ip, mac.lower())
        elif space.neighbours.pop((dev, ip), None) is None:
            raise FakeKernelError(f"no neighbour {ip} on {dev}")

    def nft_batch(self, netns: str, commands: list[dict[str, Any]]) -> None:
        self.space(netns).nft.batch(commands)

    def garp(self, netns: str, dev: str, ip: str) -> None:
        space = self.space(netns)
        if not space.link(dev).up:
            raise FakeKernelError(f"{dev} in namespace {netns} is down: no ARP is sent")
        space.garps.append((dev, ip))

    def route(self, op: str, netns: str, dst: str, gateway: str, table: int, dev: str) -> None:
        space = self.space(netns)
        dst = str(ipaddress.ip_network(dst))
        held = [r for r in space.routes if (r.dst, r.gateway, r.table) == (dst, gateway, table)]
        if op == "del":
            if not held:
                raise FakeKernelError(f"no route {dst} via {gateway} table {table}")
            space.routes.discard(held[0])
            return
        # an add replaces a route to the same destination (as the driver's "replace")
        space.routes = {r for r in space.routes if (r.dst, r.table) != (dst, table)}
        if dev:
            space.link(dev)  # onlink: the gateway is taken as on the device's link
        space.routes.add(NsRoute(dst, gateway, dev or space.route_dev(gateway), table))

    def rule(self, op: str, netns: str, rule: NsRule) -> None:
        space = self.space(netns)
        if op == "add":
            space.rules.add(rule)  # the kernel allows the same rule twice; ours never asks
        elif rule in space.rules:
            space.rules.discard(rule)
        else:
            raise FakeKernelError(f"no rule {rule} in namespace {netns}")


def _table_of(row: dict[str, Any]) -> str:
    """The table a ``list ruleset`` item belongs to (a table's own name)."""
    ((kind, body),) = row.items()
    return str(body.get("name" if kind == "table" else "table", ""))
