"""Network segment ranges (Neutron's network-segment-range), the operator's:
which VNIs new tenant networks take.  A network takes the lowest free VNI of
its project's ranges, then of the shared ones (``allocation.take_vni``).  The
server's configured range (``ApiConfig.vni_range``) is the default range,
made at start and read-only.  Only VXLAN has ranges here: Neutron's other
types (vlan, gre, geneve) have no type driver in Overcast.

``available`` lists the range's free VNIs, as Neutron does, but at most the
lowest ``MAX_AVAILABLE`` of them (the default range has 16 million);
``used`` maps each VNI of the range that a network has to its project.  A
shared range belongs to no project: its project_id is "" (Neutron's null)."""

from __future__ import annotations

import uuid
from typing import Any

from overcast.api import convert as cv
from overcast.api.auth import Context
from overcast.api.config import ApiConfig
from overcast.api.errors import BadRequest, Conflict
from overcast.api.repo import Repo
from overcast.api.resource import Attr, Schema, stored
from overcast.model import keys
from overcast.model.types import Network, NetworkSegmentRange

TYPES = ("vlan", "vxlan", "gre", "geneve")  # neutron-lib's NETWORK_SEGMENT_RANGE_TYPES
SUPPORTED = ("vxlan",)
LIMIT = (1, 2**32 - 1)  # neutron-lib's NETWORK_SEGMENT_RANGE_LIMIT
MAX_VNI = 2**24 - 1
MAX_AVAILABLE = 4096
DEFAULT_ID = str(uuid.uuid5(uuid.NAMESPACE_DNS, "overcast.default-segment-range.vxlan"))


def used_vnis(repo: Repo) -> dict[int, str]:
    """VNI -> the network that has it, once per request."""
    found: dict[int, str] = repo.memo("vni:owners", lambda: {
        int(k.rsplit("/", 1)[1]): str(v) for k, v in repo.range_json(keys.segment("vxlan"))})
    return found


def _in(rng: NetworkSegmentRange, repo: Repo) -> dict[int, str]:
    return {vni: net for vni, net in used_vnis(repo).items()
            if rng.minimum <= vni <= rng.maximum}


def _extra(repo: Repo, rng: NetworkSegmentRange, out: dict[str, Any]) -> None:
    inside = _in(rng, repo)
    used = {}
    for vni in sorted(inside):
        net = repo.get(Network, inside[vni])
        used[str(vni)] = net.project_id if net is not None else None
    out["used"] = used
    available: list[int] = []
    n = rng.minimum
    while n <= rng.maximum and len(available) < MAX_AVAILABLE:
        if n not in inside:
            available.append(n)
        n += 1
    out["available"] = available


SCHEMA = Schema(
    NetworkSegmentRange, "network_segment_range", "network_segment_ranges",
    "/v2.0/network_segment_ranges",
    (
        Attr("default", "default", post=False, put=False),
        stored("shared", cv.to_bool, put=False),
        stored("network_type", cv.one_of(*TYPES), put=False, required=True),
        stored("physical_network", cv.optional(cv.to_str(64)), put=False),
        stored("minimum", cv.int_range(*LIMIT), required=True),
        stored("maximum", cv.int_range(*LIMIT), required=True),
    ),
    extra=_extra,
    aliases=("/v2.0/network-segment-ranges",),  # neutron-tempest-plugin's spelling
)


def _check_bounds(rng: NetworkSegmentRange) -> None:
    """neutron-lib's verify_tunnel_range, for VXLAN's identifiers."""
    for n in (rng.minimum, rng.maximum):
        if not 1 <= n <= MAX_VNI:
            raise _range_error(rng, f"{n} is not a valid {rng.network_type} identifier")
    if rng.maximum < rng.minimum:
        raise _range_error(rng, "End of tunnel range is less than start of tunnel range")


def _range_error(rng: NetworkSegmentRange, error: str) -> BadRequest:
    return BadRequest(f"Invalid network tunnel range: '{rng.minimum}:{rng.maximum}' - {error}.",
                      type="NetworkTunnelRangeError")


def _check_overlap(repo: Repo, rng: NetworkSegmentRange) -> None:
    """Neutron's: ranges of a type may not overlap, except with the default."""
    hit = sorted(o.id for o in repo.all(NetworkSegmentRange)
                 if not o.default and o.id != rng.id and o.network_type == rng.network_type
                 and rng.minimum <= o.maximum and rng.maximum >= o.minimum)
    if hit:
        raise Conflict(f"Network segment range overlaps with range(s) with id {', '.join(hit)}",
                       type="NetworkSegmentRangeOverlaps")


def _read_only(rng: NetworkSegmentRange) -> None:
    if rng.default:
        raise BadRequest(f"Network Segment Range {rng.id} is a default segment range which "
                         "could not be updated or deleted.",
                         type="NetworkSegmentRangeDefaultReadOnly")


def _referenced(rng: NetworkSegmentRange) -> Conflict:
    return Conflict(f"Network Segment Range {rng.id} is referenced by one or more project "
                    "networks.", type="NetworkSegmentRangeReferencedByProject")


def create(repo: Repo, ctx: Context, fields: dict[str, Any]) -> NetworkSegmentRange:
    if fields["network_type"] not in SUPPORTED:
        raise BadRequest(f"Network type {fields['network_type']} does not support network "
                         "segment ranges.", type="NetworkSegmentRangeNetTypeNotSupported")
    shared = fields.get("shared", True)
    rng = NetworkSegmentRange(**{**fields, "physical_network": None, "default": False,
                                 "project_id": "" if shared else fields["project_id"]})
    _check_bounds(rng)
    _check_overlap(repo, rng)
    return repo.save(rng, new=True)


def update(repo: Repo, ctx: Context, rng: NetworkSegmentRange,
           fields: dict[str, Any]) -> NetworkSegmentRange:
    _read_only(rng)
    new = rng.replace(**fields)
    _check_bounds(new)
    used = _in(rng, repo)
    if any(not new.minimum <= vni <= new.maximum for vni in used):
        raise _referenced(rng)  # a network's VNI would leave the range
    # Neutron's check as well: a bound given must stay strictly clear of the VNIs in use (a
    # new minimum at the lowest used VNI is refused, and tempest expects it); a rename is not
    if used and ("minimum" in fields and new.minimum >= min(used)
                 or "maximum" in fields and new.maximum <= max(used)):
        raise _referenced(rng)
    _check_overlap(repo, new)
    return repo.save(new)


def delete(repo: Repo, ctx: Context, rng: NetworkSegmentRange) -> None:
    _read_only(rng)
    if _in(rng, repo):
        raise _referenced(rng)
    repo.remove(rng)


def ensure_default(repo: Repo, cfg: ApiConfig) -> None:
    """The default range is the configured one (at start: made, or moved to a
    changed configuration, as Neutron renews its default ranges)."""
    low, high = cfg.vni_range
    current = repo.get(NetworkSegmentRange, DEFAULT_ID)
    if current is None:
        repo.save(NetworkSegmentRange(id=DEFAULT_ID, network_type="vxlan", minimum=low,
                                      maximum=high, shared=True, default=True), new=True)
    elif (current.minimum, current.maximum) != (low, high):
        repo.save(current.replace(minimum=low, maximum=high))


def ranges_for(repo: Repo, project_id: str) -> list[tuple[int, int]]:
    """Where a new network of this project takes its VNI from, in order: its
    project's ranges, then the shared ones (each by its first VNI)."""
    ranges = [r for r in repo.all(NetworkSegmentRange) if r.network_type == "vxlan"]
    own = sorted((r.minimum, r.maximum) for r in ranges
                 if not r.shared and r.project_id == project_id)
    shared = sorted((r.minimum, r.maximum) for r in ranges if r.shared)
    return own + shared or [repo.cfg.vni_range]
