"""Hosts, shown as Neutron agents.  Agents register themselves; the API only
reads them (and lets an admin disable or forget one)."""

from __future__ import annotations

from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import keys
from overcast.model.types import Host


def _extra(repo: Repo, host: Host, out: dict[str, Any]) -> None:
    # agents write liveness: read untracked, as it is only shown
    alive: set[str] = repo.memo("alive", lambda: {kv.key.rsplit("/", 1)[1]
                                                  for kv in repo.peek(keys.alive())})
    out["alive"] = host.host in alive
    out["topic"] = "overcast"
    out["availability_zone"] = None
    out["configurations"] = {"underlay_ip": host.underlay_ip, **host.features}
    out["resources_synced"] = None


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
    agent still running writes them again when they change."""
    repo.remove(host)
    repo.delete_key(keys.firewall_counters(host.host))

