"""A router's SNAT port: where its SNAT host receives the traffic that the
other hosts' routers send out without a floating IP (docs/routers.md).

A router has exactly one while it has an external gateway with an address
and at least one IPv4 interface (with ``enable_snat`` off too: its traffic
then leaves by the gateway un-NATed, as in Neutron, and still through the
SNAT host): a port owned by the router
(``network:router_centralized_snat``, as Neutron DVR's), on the subnet of
one of its IPv4 interfaces, bound to no host (the agents place it on the
router's SNAT host).  It costs one address on that subnet, and the
gateway port one on the external network: two per router, whatever the
number of hosts.  :func:`sync` keeps it so after every change of the
router's gateway or interfaces.
"""

from __future__ import annotations

from overcast.api.auth import Context
from overcast.api.kinds import port as ports
from overcast.api.repo import Repo
from overcast.model.types import ROUTER_INTERFACE, ROUTER_SNAT, Port, Router, Subnet


def sync(repo: Repo, router: Router) -> None:
    """Make or move or remove the router's SNAT port as its gateway and
    interfaces now ask."""
    current = sorted(repo.where(Port, device_id=router.id, device_owner=ROUTER_SNAT),
                     key=lambda p: p.id)
    candidates = _ipv4_interface_subnets(repo, router) if _snat_on(router) else []
    keep = next((p for p in current
                 if any(f.subnet_id in {s.id for s in candidates} for f in p.fixed_ips)), None)
    for port in current:
        if port is not keep:
            ports.release(repo, port)
    if keep is None and candidates:
        subnet = candidates[0]
        ports.create(repo, Context("", True), {
            "id": repo.new_id(), "project_id": "", "network_id": subnet.network_id,
            "device_owner": ROUTER_SNAT, "device_id": router.id,
            "_fixed_ips": ({"subnet_id": subnet.id},), "port_security_enabled": False,
        })


def _snat_on(router: Router) -> bool:
    """A gateway with an address: one without (on an external network without
    subnets) has nothing to SNAT to, and its SNAT port would only cost an address."""
    return bool((router.external_gateway or {}).get("external_fixed_ips"))


def _ipv4_interface_subnets(repo: Repo, router: Router) -> list[Subnet]:
    ids = {f.subnet_id for p in repo.where(Port, device_id=router.id, device_owner=ROUTER_INTERFACE)
           for f in p.fixed_ips}
    return sorted((s for s in repo.all(Subnet) if s.id in ids and s.ip_version == 4),
                  key=lambda s: s.id)
