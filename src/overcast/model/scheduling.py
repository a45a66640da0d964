"""Which host does what, decided the same way by every agent and the API
from the same inputs: pure functions of the model and the live hosts.

A router's SNAT runs on one host among the live hosts that map the
physical network of its external network (Neutron DVR's ``dvr_snat``).
The host is chosen by rendezvous hashing: each candidate's weight is a
hash of (router, host) and the heaviest wins, so a host that goes moves
only its own routers, and a host that joins takes about its share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def snat_host(router_id: str, candidates: Iterable[str]) -> str | None:
    """The host that does SNAT for ``router_id`` among ``candidates``
    (None when there is none)."""
    best: tuple[bytes, str] | None = None
    for host in candidates:
        weight = hashlib.sha256(f"{router_id}/{host}".encode()).digest()
        if best is None or (weight, host) > best:
            best = (weight, host)
    return None if best is None else best[1]
