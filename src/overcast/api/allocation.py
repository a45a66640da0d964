"""Allocation of MAC addresses, fixed IPs and VXLAN segment ids, one strategy each:

* MAC: random, with Neutron's ``fa:16:3e`` prefix, from ``Seams.rng``; up to
  16 draws for one that is free.
* IP: the lowest free address of the subnet's pools.  The subnet's
  allocations are read as a hint (the commit does not depend on all of them);
  the chosen address's own key is read, so a concurrent allocation of it
  fails this commit.
* VNI: the lowest free id of the network's segment ranges (its project's, then
  the shared ones: ``kinds.segment_range``), by default ``ApiConfig.vni_range``.

Each allocation is a key naming its owner (``keys.mac``, ``keys.ipam``,
``keys.segment``), written in the transaction that takes it.  Pure address
arithmetic (pools, gateways, the free-address scan) is in ``model.ipam``.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter, deque

from overcast.api.errors import BadRequest, Conflict
from overcast.api.repo import Repo
from overcast.model import ipam, keys, validate
from overcast.model.problems import ModelError
from overcast.model.types import FixedIP, Network, Port, Subnet

NEUTRON_MAC_PREFIX = (0xFA, 0x16, 0x3E)
MAC_ATTEMPTS = 16
Requested = tuple[dict[str, str], ...]


def random_mac(rng: random.Random) -> str:
    tail = [rng.randrange(256) for _ in range(3)]
    return ":".join(f"{b:02x}" for b in (*NEUTRON_MAC_PREFIX, *tail))


# MAC addresses -----------------------------------------------------------------
def take_mac(repo: Repo, port: Port, mac: str | None) -> str:
    """``mac`` if given and free (409 if taken), else a random free one."""
    if mac is not None:
        problems = validate.check_mac(mac, "port.mac_address")
        if problems:
            raise ModelError(problems)
        if repo.tx.get(keys.mac(mac)) is not None:
            raise Conflict(f"Unable to complete operation for network {port.network_id}. "
                           f"The mac address {mac} is in use.", type="MacAddressInUse")
    else:
        mac = _free_mac(repo, port)
    repo.put_json(keys.mac(mac), port.id)
    return mac


def _free_mac(repo: Repo, port: Port) -> str:
    for _ in range(MAC_ATTEMPTS):
        mac = random_mac(repo.seams.rng)
        if repo.tx.get(keys.mac(mac)) is None:
            return mac
    # every candidate was taken: never hand out a MAC twice
    raise Conflict(f"Unable to create the port on network {port.network_id}: no free "
                   f"MAC address was found after {MAC_ATTEMPTS} attempts.",
                   type="MacAddressGenerationFailure")


def release_mac(repo: Repo, mac: str) -> None:
    repo.delete_key(keys.mac(mac))


# fixed IPs -----------------------------------------------------------------------
def assign_ips(repo: Repo, port: Port, net: Network,
               requested: Requested | None) -> tuple[FixedIP, ...]:
    """The port's fixed IPs: what ``requested`` names (a subnet, an address or
    both), or by default one address of the first IPv4 subnet and one of each
    IPv6 subnet."""
    subnets = sorted(repo.where(Subnet, network_id=net.id),
                     key=lambda s: (s.ip_version, s.created_at, s.id))
    if requested is None:
        requested = _default_request(_for_owner(subnets, port.device_owner))
    by_id = {s.id: s for s in subnets}
    counts = Counter(_normal_ip(r["ip_address"]) for r in requested if r.get("ip_address"))
    twice = sorted(ip for ip, n in counts.items() if n > 1)
    if twice:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: IP address {twice[0]} is "
                         "requested more than once.")
    out = [_assign_one(repo, port, net, by_id, req, i) for i, req in enumerate(requested)]
    if len({(f.subnet_id, f.ip_address) for f in out}) != len(out):
        raise BadRequest("Invalid input for fixed_ips. Reason: duplicate IP address requested.")
    return tuple(out)


def _for_owner(subnets: list[Subnet], owner: str) -> list[Subnet]:
    """Neutron's subnet service types: the subnets for the port's device
    owner (exactly) if the network has any, else those for no particular
    owner."""
    mine = [s for s in subnets if owner and owner in s.service_types]
    return mine or [s for s in subnets if not s.service_types]


def _default_request(subnets: list[Subnet]) -> Requested:
    wanted: list[dict[str, str]] = []
    v4 = [s for s in subnets if s.ip_version == 4]
    if v4:
        wanted.append({"subnet_id": v4[0].id})
    wanted += [{"subnet_id": s.id} for s in subnets if s.ip_version == 6]
    return tuple(wanted)


def reassign_ips(repo: Repo, old: Port, new: Port, net: Network,
                 requested: Requested) -> tuple[FixedIP, ...]:
    """A port's new fixed IPs; a request naming only a subnet keeps an address
    the port already has there that no request names (Neutron's
    _get_changed_ips_for_port: addresses first, then subnets), else a new one."""
    release_ips(repo, old.fixed_ips)
    named = {_normal_ip(r["ip_address"]) for r in requested if r.get("ip_address")}
    held: dict[str, deque[str]] = {}  # the port's addresses by subnet, in order, not yet kept
    for f in old.fixed_ips:
        if _normal_ip(f.ip_address) not in named:
            held.setdefault(f.subnet_id, deque()).append(f.ip_address)
    reqs = []
    for req in requested:
        if "ip_address" not in req and "subnet_id" in req:
            same = held.get(req["subnet_id"])
            if same:
                req = {"subnet_id": req["subnet_id"], "ip_address": same.popleft()}
        reqs.append(req)
    return assign_ips(repo, new, net, tuple(reqs))


def release_ips(repo: Repo, fixed_ips: tuple[FixedIP, ...]) -> None:
    for fip in fixed_ips:
        repo.delete_key(keys.ipam(fip.subnet_id, fip.ip_address))
        free = _free_addresses(repo).get(fip.subnet_id)
        if free is not None:
            free.release(ipam.ip_int(fip.ip_address))


def release_subnet(repo: Repo, subnet: Subnet) -> None:
    """Every allocation of a subnet that goes away."""
    for kv in repo.tx.range(keys.ipam(subnet.id)):
        repo.delete_key(kv.key)
    _free_addresses(repo).pop(subnet.id, None)


def _normal_ip(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip


def _assign_one(repo: Repo, port: Port, net: Network, subnets: dict[str, Subnet],
                req: dict[str, str], index: int) -> FixedIP:
    path = f"port.fixed_ips[{index}]"
    ip = req.get("ip_address")
    subnet_id = req.get("subnet_id") or (_subnet_for(ip, subnets, net) if ip else None)
    if subnet_id is None:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: {path} names neither a subnet "
                         "nor an address.")
    subnet = subnets.get(subnet_id)
    if subnet is None:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: subnet {subnet_id} is not on "
                         f"network {net.id}.")
    automatic = (subnet.ipv6_address_mode in validate.AUTO_ADDRESS_MODES
                 and not port.device_owner.startswith("network:router"))
    if automatic and ip is not None and ip != ipam.eui64_address(subnet.cidr, port.mac_address):
        raise BadRequest(f"IPv6 address {ip} cannot be directly assigned to a port on subnet "
                         f"{subnet.id} as the subnet is configured for automatic addresses",
                         type="AllocationOnAutoAddressSubnet")
    if automatic:  # the address the guest makes itself from its MAC (SLAAC)
        ip = _requested_ip(repo, port, subnet, ipam.eui64_address(subnet.cidr, port.mac_address),
                           path)
    elif ip is None:
        ip = _free_ip(repo, subnet, net)
    else:
        ip = _requested_ip(repo, port, subnet, ip, path)
    repo.put_json(keys.ipam(subnet.id, ip), port.id)
    return FixedIP(subnet.id, ip)


def _requested_ip(repo: Repo, port: Port, subnet: Subnet, ip: str, path: str) -> str:
    problems = validate.check_fixed_ip(ip, subnet, path + ".ip_address",
                                       port.device_owner.startswith("network:router"))
    if problems:
        raise ModelError(problems)
    ip = str(ipaddress.ip_address(ip))
    if repo.tx.get(keys.ipam(subnet.id, ip)) is not None:
        raise Conflict(f"IP address {ip} already allocated in subnet {subnet.id}",
                       type="IpAddressAlreadyAllocated")
    free = _free_addresses(repo).get(subnet.id)
    if free is not None:
        free.take(ipam.ip_int(ip))
    return ip


def _free_ip(repo: Repo, subnet: Subnet, net: Network) -> str:
    free = _free_addresses(repo).get(subnet.id)
    if free is None:
        used = {ipam.ip_int(kv.key.rsplit("/", 1)[1]) for kv in repo.peek(keys.ipam(subnet.id))}
        free = _free_addresses(repo)[subnet.id] = _FreeAddresses(subnet, used)
    while True:
        n = free.lowest()
        if n is None:
            raise Conflict(f"No more IP addresses available on network {net.id}.",
                           type="IpAddressGenerationFailure")
        free.take(n)  # the caller writes its key; or it is taken since the hint was read
        ip = free.text(n)
        if repo.tx.get(keys.ipam(subnet.id, ip)) is None:
            return ip


def _free_addresses(repo: Repo) -> dict[str, _FreeAddresses]:
    """Per transaction: each subnet's free-address scan, so that the allocations
    are read once per subnet, not once per address."""
    found: dict[str, _FreeAddresses] = repo.memo("ipam:free", dict)
    return found


class _FreeAddresses:
    """The lowest free address of a subnet's pools (as ``ipam.first_free``),
    with a cursor: taking addresses one after another scans each once, so a
    port with many fixed IPs (or a bulk of ports) costs the addresses it
    takes, not their square."""

    def __init__(self, subnet: Subnet, used: set[int]) -> None:
        self.version = subnet.ip_version
        self.pools = sorted(map(ipam.pool_bounds, subnet.allocation_pools))
        self.used = used
        self.pool = 0  # every free address is in pools[pool:] and >= low
        self.low = self.pools[0][0] if self.pools else 0

    def lowest(self) -> int | None:
        while self.pool < len(self.pools):
            a, b = self.pools[self.pool]
            n = max(self.low, a)
            while n <= b and n in self.used:
                n += 1
            self.low = n
            if n <= b:
                return n
            self.pool += 1
        return None

    def take(self, n: int) -> None:
        self.used.add(n)

    def release(self, n: int) -> None:
        self.used.discard(n)
        if n < self.low:
            self.pool, self.low = 0, n

    def text(self, n: int) -> str:
        return str(ipaddress.ip_address(n) if self.version == 4 else ipaddress.IPv6Address(n))


def _subnet_for(ip: str, subnets: dict[str, Subnet], net: Network) -> str:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: '{ip}' is not a valid IP "
                         "address.") from None
    for s in subnets.values():
        if addr in ipaddress.ip_network(s.cidr):
            return s.id
    raise BadRequest(f"Invalid input for fixed_ips. Reason: IP address {ip} is not a valid IP "
                     f"for any of the subnets on network {net.id}.")


# VXLAN segment ids -----------------------------------------------------------------
def take_vni(repo: Repo, net: Network, ranges: list[tuple[int, int]] | None = None) -> int:
    """The network's requested VNI if free (409 if taken), else the lowest free
    one of ``ranges``, tried in order (by default the configured range)."""
    if net.segmentation_id is not None:
        vni = net.segmentation_id
        if repo.tx.get(keys.segment("vxlan", vni)) is not None:
            raise Conflict(f"Unable to create the network. The tunnel id {vni} is in use.",
                           type="TunnelIdInUse")
        free = _free_vnis(repo, create=False)
        if free is not None:
            free.take(vni)
    else:
        free = _free_vnis(repo)
        assert free is not None
        found = free.lowest(ranges or [repo.cfg.vni_range])
        if found is None:
            raise Conflict("Unable to create the network. No tenant network is available "
                           "for allocation.", type="NoNetworkAvailable")
        vni = found
        free.take(vni)
    repo.put_json(keys.segment("vxlan", vni), net.id)
    return vni


def release_vni(repo: Repo, net: Network) -> None:
    if net.segmentation_id is not None and net.network_type == "vxlan":
        repo.delete_key(keys.segment("vxlan", net.segmentation_id))
        free = _free_vnis(repo, create=False)
        if free is not None:
            free.release(net.segmentation_id)


def _free_vnis(repo: Repo, create: bool = True) -> _FreeVnis | None:
    """Per transaction: the segments in use, read once (the commit depends on
    all of them: a concurrent create of any network conflicts, as before)."""
    if not create:
        existing: _FreeVnis | None = repo.memoized("vni:free")
        return existing
    found: _FreeVnis = repo.memo("vni:free", lambda: _FreeVnis(
        {int(kv.key.rsplit("/", 1)[1]) for kv in repo.tx.range(keys.segment("vxlan"))}))
    return found


class _FreeVnis:
    """The lowest free VNI of some ranges, with a cursor per range (see
    ``_FreeAddresses``)."""

    def __init__(self, used: set[int]) -> None:
        self.used = used
        self.lows: dict[tuple[int, int], int] = {}  # every free VNI of a range is >= its low

    def lowest(self, ranges: list[tuple[int, int]]) -> int | None:
        for first, high in ranges:
            n = self.lows.get((first, high), first)
            while n <= high and n in self.used:
                n += 1
            self.lows[(first, high)] = n
            if n <= high:
                return n
        return None

    def take(self, n: int) -> None:
        self.used.add(n)

    def release(self, n: int) -> None:
        self.used.discard(n)
        for (first, high), low in self.lows.items():
            if first <= n < low:
                self.lows[(first, high)] = n
