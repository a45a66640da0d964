"""What a host's routers advertise on their IPv6 interfaces (router
advertisements, :mod:`overcast.services.ra`): part of the plan, not of the
kernel state (an RA is sent, not kept), so the agent hands the latest
plan's adverts to its advertiser.  Pure data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Advert:
    """Router interface ``dev`` in namespace ``netns`` advertises
    ``prefixes`` (its IPv6 subnets with an ``ipv6_ra_mode``) in ``mode``."""

    netns: str
    dev: str
    mac: str
    mtu: int
    mode: str
    prefixes: tuple[str, ...]
