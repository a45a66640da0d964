"""Availability zones (Neutron's availability_zone, network_availability_zone
and router_availability_zone): each host is in the zone its agent reports
(``--availability-zone``, "nova" by default).  A zone serves networks (every
host has their bridges and answers their DHCP) and routers (the hosts that can
have router namespaces); it is available while a live, enabled agent is in it.

Networks and routers take ``availability_zone_hints`` (zones that must
exist) and show ``availability_zones``: the zones of the live hosts where
they are realized (a network: where a port of it is bound; a router: where a
port of one of its interfaces' networks is bound, and its SNAT host).  As in
Neutron, a network no host has yet is in no zone."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from overcast.api import convert as cv
from overcast.api.errors import BadRequest, NotFound
from overcast.api.kinds import agent
from overcast.api.repo import Repo
from overcast.api.session import Call
from overcast.api.wire import Response
from overcast.model.types import ROUTER_INTERFACE, Host, Network, Port, Router

PATH = "/v2.0/availability_zones"
RESOURCES = ("network", "router")
AZ_HINTS_DB_LEN = 255  # neutron-lib: the hints as a JSON list fit in 255 characters
FILTERS = ("name", "resource", "state")
PAGING = ("sort_key", "sort_dir", "limit", "marker", "page_reverse")  # accepted, not applied


def serves(host: Host, resource: str) -> bool:
    """Whether a host's zone serves this kind of resource."""
    return resource == "network" or bool(host.features.get("routers", True))


def zones(repo: Repo) -> dict[tuple[str, str], bool]:
    """(zone, resource) -> available, over every registered host."""
    alive = agent.alive_hosts(repo)
    out: dict[tuple[str, str], bool] = {}
    for host in repo.peek_all(Host):
        for resource in RESOURCES:
            if serves(host, resource):
                key = (host.availability_zone, resource)
                out[key] = out.get(key, False) or (host.host in alive and host.admin_state_up)
    return out


def hints(value: Any) -> tuple[str, ...]:
    """neutron-lib's availability_zone_hint_list: unique strings that fit."""
    if not isinstance(value, list):
        raise ValueError(f"'{cv.show(value)}' is not a list")
    for item in value:
        if not isinstance(item, str):
            raise ValueError(f"'{cv.show(item)}' is not a valid string")
        if len(item) > AZ_HINTS_DB_LEN:
            raise ValueError(f"'{cv.show(item)}' exceeds maximum length of {AZ_HINTS_DB_LEN}")
        cv.clean(item)
    if len(set(value)) != len(value):
        raise ValueError(f"Duplicate items in the list: '{cv.show(', '.join(value))}'")
    if len(json.dumps(value)) > AZ_HINTS_DB_LEN:
        raise ValueError("Too many availability_zone_hints specified")
    return tuple(value)


def check_hints(repo: Repo, resource: str, wanted: Iterable[str]) -> None:
    """Neutron's validate_availability_zones: each hint names a zone some
    registered host (alive or not) of this resource is in, else 404."""
    known = {name for name, res in zones(repo) if res == resource}
    for name in wanted:
        if name not in known:
            raise NotFound(f"AvailabilityZone {name} could not be found.",
                           type="AvailabilityZoneNotFound")


def _host_zones(repo: Repo, names: Iterable[str], resource: str) -> list[str]:
    alive = agent.alive_hosts(repo)
    hosts: dict[str, Host] = repo.memo("az:hosts", lambda: {h.host: h
                                                           for h in repo.peek_all(Host)})
    return sorted({hosts[n].availability_zone for n in names
                   if n in alive and n in hosts and serves(hosts[n], resource)})


def _bound(repo: Repo, network_id: str) -> set[str]:
    return {p.binding_host_id for p in repo.where(Port, network_id=network_id)
            if p.binding_host_id}


def network_zones(repo: Repo, net: Network) -> list[str]:
    return _host_zones(repo, _bound(repo, net.id), "network")


def router_zones(repo: Repo, router: Router) -> list[str]:
    nets = {p.network_id for p in repo.where(Port, device_id=router.id)
            if p.device_owner == ROUTER_INTERFACE}
    hosts = set().union(*(_bound(repo, n) for n in nets)) if nets else set()
    snat = agent.snat_host_of(repo, router, bool(nets))
    if snat is not None:
        hosts.add(snat)
    return _host_zones(repo, hosts, "router")


# GET /v2.0/availability_zones ------------------------------------------------------
def list_all(call: Call) -> Response:
    """Every zone and resource with its state, filtered by name, resource and
    state (availability_zone_filter) and cut to ``fields``."""
    wanted: dict[str, set[str]] = {}
    fields: list[str] = []
    for key, value in call.req.params:
        if key == "fields":
            fields.append(value)
        elif key in FILTERS:
            wanted.setdefault(key, set()).add(value)
        elif key in PAGING:
            continue
        else:
            raise BadRequest(f"[{key}] is invalid attribute for filtering")
    found = [{"name": name, "resource": res, "state": "available" if up else "unavailable"}
             for (name, res), up in sorted(zones(call.read()).items())]
    found = [z for z in found if all(z[k] in v for k, v in wanted.items())]
    if fields:
        found = [{k: v for k, v in z.items() if k in fields} for z in found]
    return Response(200, {"availability_zones": found})
