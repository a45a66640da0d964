"""Allocation of MAC addresses, fixed IPs and VXLAN segment ids, one strategy each:

* MAC: random, with Neutron's ``fa:16:3e`` prefix, from ``Seams.rng``; up to
  16 draws for one that is free.
* IP: the lowest free address of the subnet's pools.  The subnet's
  allocations are read as a hint (the commit does not depend on all of them);
  the chosen address's own key is read, so a concurrent allocation of it
  fails this commit.
* VNI: the lowest free id of ``ApiConfig.vni_range``.

Each allocation is a key naming its owner (``keys.mac``, ``keys.ipam``,
``keys.segment``), written in the transaction that takes it.  Pure address
arithmetic (pools, gateways, the free-address scan) is in ``model.ipam``.
"""

from __future__ import annotations

import ipaddress
import random

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
        requested = _default_request(subnets)
    by_id = {s.id: s for s in subnets}
    explicit = [_normal_ip(r["ip_address"]) for r in requested if r.get("ip_address")]
    twice = sorted({ip for ip in explicit if explicit.count(ip) > 1})
    if twice:
        raise BadRequest(f"Invalid input for fixed_ips. Reason: IP address {twice[0]} is "
                         "requested more than once.")
    out = [_assign_one(repo, port, net, by_id, req, i) for i, req in enumerate(requested)]
    if len({(f.subnet_id, f.ip_address) for f in out}) != len(out):
        raise BadRequest("Invalid input for fixed_ips. Reason: duplicate IP address requested.")
    return tuple(out)


def _default_request(subnets: list[Subnet]) -> Requested:
    wanted: list[dict[str, str]] = []
    v4 = [s for s in subnets if s.ip_version == 4]
    if v4:
        wanted.append({"subnet_id": v4[0].id})
    wanted += [{"subnet_id": s.id} for s in subnets if s.ip_version == 6]
    return tuple(wanted)


def reassign_ips(repo: Repo, old: Port, new: Port, net: Network,
                 requested: Requested) -> tuple[FixedIP, ...]:
    """A port's new fixed IPs; a request naming only a subnet keeps the
    address the port already has there."""
    release_ips(repo, old.fixed_ips)
    kept = {(f.subnet_id, f.ip_address) for f in old.fixed_ips}
    reqs = []
    for req in requested:
        if "ip_address" not in req and "subnet_id" in req:
            same = [f for f in old.fixed_ips if f.subnet_id == req["subnet_id"]
                    and (f.subnet_id, f.ip_address) in kept]
            if same:
                kept.discard((same[0].subnet_id, same[0].ip_address))
                req = {"subnet_id": same[0].subnet_id, "ip_address": same[0].ip_address}
        reqs.append(req)
    return assign_ips(repo, new, net, tuple(reqs))


def release_ips(repo: Repo, fixed_ips: tuple[FixedIP, ...]) -> None:
    for fip in fixed_ips:
        repo.delete_key(keys.ipam(fip.subnet_id, fip.ip_address))


def release_subnet(repo: Repo, subnet: Subnet) -> None:
    """Every allocation of a subnet that goes away."""
    for kv in repo.tx.range(keys.ipam(subnet.id)):
        repo.delete_key(kv.key)


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
    if ip is None:
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
    return ip


def _free_ip(repo: Repo, subnet: Subnet, net: Network) -> str:
    used = {kv.key.rsplit("/", 1)[1] for kv in repo.peek(keys.ipam(subnet.id))}
    while True:
        ip = ipam.first_free(subnet.allocation_pools, used, subnet.ip_version)
        if ip is None:
            raise Conflict(f"No more IP addresses available on network {net.id}.",
                           type="IpAddressGenerationFailure")
        if repo.tx.get(keys.ipam(subnet.id, ip)) is None:
            return ip
        used.add(ip)  # taken since the hint was read


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
def take_vni(repo: Repo, net: Network) -> int:
    """The network's requested VNI if free (409 if taken), else the lowest free one."""
    if net.segmentation_id is not None:
        vni = net.segmentation_id
        if repo.tx.get(keys.segment("vxlan", vni)) is not None:
            raise Conflict(f"Unable to create the network. The tunnel id {vni} is in use.",
                           type="TunnelIdInUse")
    else:
        used = {int(kv.key.rsplit("/", 1)[1]) for kv in repo.tx.range(keys.segment("vxlan"))}
        lo, hi = repo.cfg.vni_range
        vni = next((n for n in range(lo, hi + 1) if n not in used), -1)
        if vni < 0:
            raise Conflict("Unable to create the network. No tenant network is available "
                           "for allocation.", type="NoNetworkAvailable")
    repo.put_json(keys.segment("vxlan", vni), net.id)
    return vni


def release_vni(repo: Repo, net: Network) -> None:
    if net.segmentation_id is not None and net.network_type == "vxlan":
        repo.delete_key(keys.segment("vxlan", net.segmentation_id))
