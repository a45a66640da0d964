"""Hosts, shown as Neutron agents.  Agents register themselves; the API only
reads them (and lets an admin disable or forget one)."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import keys
from overcast.model.scheduling import snat_host
from overcast.model.types import ROUTER_INTERFACE, Host, Network, Port, Router


def alive_hosts(repo: Repo) -> set[str]:
    """The names of the hosts whose agent is alive (agents write liveness:
    read untracked, as it is only shown)."""
    alive: set[str] = repo.memo("alive", lambda: {kv.key.rsplit("/", 1)[1]
                                                  for kv in repo.peek(keys.alive())})
    return alive


def snat_hosts(repo: Repo) -> dict[str, str]:
    """Router id -> the live host doing its SNAT, once per request."""
    found: dict[str, str] = repo.memo("snat_hosts", lambda: _snat_hosts(repo, alive_hosts(repo)))
    return found


def _extra(repo: Repo, host: Host, out: dict[str, Any]) -> None:
    alive = alive_hosts(repo)
    out["alive"] = host.host in alive
    out["topic"] = "overcast"
    out["availability_zone"] = host.availability_zone
    out["configurations"] = {"underlay_ip": host.underlay_ip, **host.features}
    snat = snat_hosts(repo)
    if "bridge_mappings" in host.features:  # an agent that can have an external network
        out["configurations"]["snat_routers"] = sorted(r for r, h in snat.items() if h == host.host)
    out["resources_synced"] = None


def _candidates(repo: Repo, alive: set[str]) -> dict[str, dict[str, Any]]:
    """Live hosts that can have routers -> their physical network mappings."""
    mappings = {h.host: (h.features.get("bridge_mappings") or {}) for h in repo.all(Host)
                if h.host in alive and h.features.get("routers")}
    return {h: m for h, m in mappings.items() if isinstance(m, dict)}


def _snat_of(router: Router, net: Network | None, routed: bool,
             candidates: dict[str, dict[str, Any]]) -> str | None:
    if net is None or not net.router_external or not router.admin_state_up or not routed:
        return None  # (as the agents: a router without interfaces has nothing to SNAT)
    if not (router.external_gateway or {}).get("external_fixed_ips"):
        return None  # nor one whose gateway has no address (plan.router_placement)
    return snat_host(router.id, [h for h, m in candidates.items()
                                 if (net.physical_network or "") in m])


def _snat_hosts(repo: Repo, alive: set[str]) -> dict[str, str]:
    """Router id -> the host doing its SNAT: as every agent decides it (the
    live hosts that map its external network's physical network)."""
    candidates = _candidates(repo, alive)
    networks = {n.id: n for n in repo.all(Network) if n.router_external}
    routed = {p.device_id for p in repo.where(Port, device_owner=ROUTER_INTERFACE)}
    out = {}
    for router in repo.all(Router):
        net = networks.get(str((router.external_gateway or {}).get("network_id", "")))
        host = _snat_of(router, net, router.id in routed, candidates)
        if host is not None:
            out[router.id] = host
    return out


def snat_host_of(repo: Repo, router: Router, routed: bool) -> str | None:
    """One router's SNAT host (``_snat_hosts`` for one: reads no other router);
    ``routed``: it has an interface."""
    net_id = (router.external_gateway or {}).get("network_id")
    if not net_id or not routed:
        return None
    return _snat_of(router, repo.get(Network, str(net_id)), routed,
                    _candidates(repo, alive_hosts(repo)))


SCHEMA = Schema(
    Host, "agent", "agents", "/v2.0/agents",
    (
        Attr("host", "host", post=False, put=False),
        Attr("agent_type", "agent_type", post=False, put=False),
        Attr("binary", "binary", post=False, put=False),
        stored("admin_state_up", cv.to_bool),
        Attr("started_at", "started_at", post=False, put=False),
        Attr("heartbeat_timestamp", "heartbeat_timestamp", post=False, put=False),
    ),
    extra=_extra,
)


def update(repo: Repo, ctx: Context, host: Host, fields: dict[str, Any]) -> Host:
    return repo.save(host.replace(**fields))


def delete(repo: Repo, ctx: Context, host: Host) -> None:
    """Forget a host (one taken out of service).  Its ports stay bound to it
    and show binding_failed; an agent still running there registers again
    with its next heartbeat.  Its firewall counters go with it (they are
    summed into the rules' ``overcast:packets``/``overcast:bytes``); an
    agent still running writes them again when they change.  So do its
    metering counters."""
    repo.remove(host)
    repo.delete_key(keys.firewall_counters(host.host))
    repo.delete_key(keys.metering_counters(host.host))

