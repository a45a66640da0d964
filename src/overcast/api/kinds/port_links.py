"""What other kinds hold of a port, for the port's own handlers: its port
forwardings (they go with it) and its trunk (a trunk's parent or subport
cannot go, as Neutron's PortInUseAsTrunkParent and PortInUseAsSubPort), and
the ``trunk_details`` a trunk's parent port shows."""

from __future__ import annotations

from typing import Any

from overcast.api.errors import Conflict
from overcast.api.repo import Repo
from overcast.model.types import FloatingIP, Port, PortForwarding, Trunk


def trunk_of_parent(repo: Repo, port_id: str) -> Trunk | None:
    if repo.bulk:  # a listing: every port's trunk from one pass over the trunks
        by_port: dict[str, Trunk] = repo.memo("trunks", lambda: {t.port_id: t
                                                                 for t in repo.all(Trunk)})
        return by_port.get(port_id)
    found = repo.where(Trunk, port_id=port_id)
    return found[0] if found else None


def trunk_of_subport(repo: Repo, port_id: str) -> Trunk | None:
    found = repo.holding(Trunk, "sub_ports.port_id", port_id)  # through the index
    return found[0] if found else None


def check_delete(repo: Repo, port: Port) -> None:
    parent = trunk_of_parent(repo, port.id)
    if parent is not None:
        raise Conflict(f"Port {port.id} is currently a parent port for trunk {parent.id}.",
                       type="PortInUseAsTrunkParent")
    sub = trunk_of_subport(repo, port.id)
    if sub is not None:
        raise Conflict(f"Port {port.id} is currently a subport for trunk {sub.id}.",
                       type="PortInUseAsSubPort")


def forget(repo: Repo, port: Port) -> None:
    """Port forwardings to a port that goes, or to an address it no longer
    has, go too (Neutron's port AFTER_UPDATE and PRECOMMIT_DELETE handlers)."""
    kept = {f.ip_address for f in port.fixed_ips}
    gone = repo.get(Port, port.id) is None
    for pf in repo.where(PortForwarding, internal_port_id=port.id):
        if gone or pf.internal_ip_address not in kept:
            repo.remove(pf)
            fip = repo.get(FloatingIP, pf.floatingip_id)
            if fip is not None and not repo.where(PortForwarding, floatingip_id=fip.id):
                repo.save(fip.replace(router_id=None))


def trunk_details(repo: Repo, port: Port, out: dict[str, Any]) -> None:
    """Neutron's trunk-details: only a trunk's parent port has them."""
    trunk = trunk_of_parent(repo, port.id)
    if trunk is None:
        return
    subs = []
    for sub in trunk.sub_ports:
        found = repo.get(Port, sub.port_id)
        subs.append({"segmentation_id": sub.segmentation_id,
                     "segmentation_type": sub.segmentation_type, "port_id": sub.port_id,
                     "mac_address": found.mac_address if found is not None else None})
    out["trunk_details"] = {"trunk_id": trunk.id, "sub_ports": subs}
